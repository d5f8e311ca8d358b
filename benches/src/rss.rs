//! Resident memory of this process, and bytes per grant of a store holding a
//! million of them; disk bytes per grant of a sled store.

use std::sync::Arc;

use chrono::Duration;
use tenure::Storage;
use tenure_memory::MemoryStorage;

use crate::fixture;
use crate::raw_memory::RawMemory;
use crate::{OrDie, RawStore, runtime};

/// Resident memory of this process in bytes, from `/proc/self/statm`.
pub fn resident_bytes() -> std::io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| std::io::Error::other("unreadable /proc/self/statm"))?;
    Ok(pages * 4096)
}

/// What a store is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Bare grants, with the store's indexes.
    Grants,
    /// Grants as authorization leaves them: with an access and a refresh token and
    /// the creation transition.
    Authorized,
}

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// [`MemoryStorage`].
    Memory,
    /// [`RawMemory`].
    Raw,
}

/// Fills a fresh store of `store` with `n` records of `fill` and returns the growth
/// of resident memory per grant. Run it in a fresh process: memory freed earlier
/// and kept by the allocator would hide part of the growth.
pub fn bytes_per_grant(store: Store, fill: Fill, n: u64) -> f64 {
    let rt = runtime();
    let expires = fixture::epoch() + Duration::days(30);
    let before = resident_bytes().or_die("reading resident memory");
    // The stores are kept alive until after the second reading.
    let memory = Arc::new(MemoryStorage::new());
    let raw = RawMemory::new();
    let chunk = 1000;
    for start in (0..n).step_by(chunk) {
        let range = start..(start + chunk as u64).min(n);
        rt.block_on(async {
            match (store, fill) {
                (Store::Memory, Fill::Grants) => {
                    fixture::put_grants(&*memory, range.map(|i| fixture::grant(i, expires))).await
                }
                (Store::Memory, Fill::Authorized) => {
                    fixture::put_families(
                        &*memory as &dyn Storage,
                        range.map(|i| fixture::family(i, 2)),
                        chunk,
                    )
                    .await
                }
                (Store::Raw, Fill::Grants) => {
                    raw.load_grants(range.map(|i| fixture::grant(i, expires)).collect())
                        .await
                }
                (Store::Raw, Fill::Authorized) => {
                    raw.load_families(range.map(|i| fixture::family(i, 2)).collect())
                        .await
                }
            }
        });
    }
    let after = resident_bytes().or_die("reading resident memory");
    drop((memory, raw));
    after.saturating_sub(before) as f64 / n as f64
}

/// Fills a fresh sled store (the engine's, or the raw one when `raw`) with `n`
/// records of `fill`, flushes it and returns the bytes its files take per grant.
pub fn disk_bytes_per_grant(raw: bool, fill: Fill, n: u64) -> f64 {
    let rt = runtime();
    let expires = fixture::epoch() + Duration::days(30);
    let chunk = 1000;
    let bytes = if raw {
        let store = crate::raw_sled::RawSled::new();
        for start in (0..n).step_by(chunk) {
            let range = start..(start + chunk as u64).min(n);
            rt.block_on(async {
                match fill {
                    Fill::Grants => {
                        store
                            .load_grants(range.map(|i| fixture::grant(i, expires)).collect())
                            .await
                    }
                    Fill::Authorized => {
                        store
                            .load_families(range.map(|i| fixture::family(i, 2)).collect())
                            .await
                    }
                }
            });
        }
        store.size_on_disk()
    } else {
        let store = tenure_sled::SledStorage::temporary_with(tenure_sled::SledConfig::new())
            .or_die("opening a sled store");
        rt.block_on(async {
            match fill {
                Fill::Grants => {
                    fixture::put_grants(&store, (0..n).map(|i| fixture::grant(i, expires))).await
                }
                Fill::Authorized => {
                    fixture::put_families(&store, (0..n).map(|i| fixture::family(i, 2)), chunk)
                        .await
                }
            }
            store.flush().await.or_die("flushing the sled store");
            store
                .size_on_disk()
                .await
                .or_die("measuring the sled store")
        })
    };
    bytes as f64 / n as f64
}
