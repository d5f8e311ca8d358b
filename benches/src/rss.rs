//! Resident memory of this process, and bytes per grant of a store holding a
//! million of them; disk bytes per grant of a sled store; and what a grant takes
//! after a thousand rotations, against a fresh one, on both.

use std::sync::Arc;

use chrono::Duration;
use tenure::{ClientRegistration, Engine, ManualClock, Secret, Storage};
use tenure_memory::MemoryStorage;
use tenure_sled::{SledConfig, SledStorage};

use crate::fixture::{self, CLIENT, ZONE};
use crate::raw_memory::RawMemory;
use crate::{OrDie, RawStore, rotation, runtime};

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
                        range.map(|i| fixture::family(i, 1)),
                        chunk,
                    )
                    .await
                }
                (Store::Raw, Fill::Grants) => {
                    raw.load_grants(range.map(|i| fixture::grant(i, expires)).collect())
                        .await
                }
                (Store::Raw, Fill::Authorized) => {
                    raw.load_families(range.map(|i| fixture::family(i, 1)).collect())
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
                            .load_families(range.map(|i| fixture::family(i, 1)).collect())
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
                    fixture::put_families(&store, (0..n).map(|i| fixture::family(i, 1)), chunk)
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

/// An engine on a store, with grants to rotate as a running server does (see
/// [`crate::rotation`]).
struct Rotation {
    engine: Engine,
    clock: Arc<ManualClock>,
    /// Each grant's current refresh token.
    tokens: Vec<Secret>,
}

impl Rotation {
    /// The engine on `storage`, its client registered, and the refresh tokens of
    /// the `n` grants [`Rotation::load`] writes (allocated now, so that a
    /// measurement taken afterwards does not count them).
    async fn open(storage: Arc<dyn Storage>, n: u64) -> Rotation {
        let clock = Arc::new(ManualClock::new(fixture::epoch()));
        let engine = Engine::builder(storage).clock(clock.clone()).build();
        engine
            .register_client(
                ZONE,
                ClientRegistration::new("Bench")
                    .id(CLIENT)
                    .scopes(["read", "write"]),
            )
            .await
            .or_die("registering the client");
        Rotation {
            engine,
            clock,
            tokens: rotation::first_tokens(0..n, rotation::expiry(ROTATIONS)),
        }
    }

    /// Writes the fresh grants, as authorization leaves them.
    async fn load(&self, storage: &dyn Storage) {
        let n = self.tokens.len() as u64;
        let expires = rotation::expiry(ROTATIONS);
        fixture::put_families(
            storage,
            (0..n).map(|i| fixture::family_expiring(i, 1, expires)),
            1000,
        )
        .await;
    }

    /// Runs `rotations` rounds, at most [`ROTATIONS`].
    async fn rotate(&mut self, rotations: u64) {
        assert!(
            rotations <= ROTATIONS,
            "the grants expire after {ROTATIONS} rounds"
        );
        rotation::rotate(&self.engine, &self.clock, &mut self.tokens, rotations).await;
    }

    /// Checks that the store holds what a grant holds after a rotation and the
    /// sweep before it: its access token and its refresh token, two per grant.
    async fn check_pruned(&self, storage: &dyn Storage) {
        let far = fixture::epoch() + Duration::days(100_000);
        let held = storage
            .expired_tokens(ZONE, far, usize::MAX)
            .await
            .or_die("counting tokens");
        assert_eq!(
            held.len(),
            2 * self.tokens.len(),
            "after rotation and sweep, each grant holds an access and a refresh token"
        );
    }
}

/// Rotations in the after-rotation measurements.
pub const ROTATIONS: u64 = 1_000;

/// Resident bytes per grant of the memory backend holding `n` grants: fresh (as
/// authorization leaves them), and after each was rotated `rotations` times (at
/// most [`ROTATIONS`]) through the engine the way a running server rotates them
/// (see [`crate::rotation`]). Both from one process: the growth of resident memory over
/// the empty store, divided by `n`. Run it in a fresh process.
pub fn rotated_bytes_per_grant(n: u64, rotations: u64) -> (f64, f64) {
    let rt = runtime();
    let memory = Arc::new(MemoryStorage::new());
    let storage: Arc<dyn Storage> = memory.clone();
    let mut rotating = rt.block_on(Rotation::open(storage.clone(), n));
    let before = resident_bytes().or_die("reading resident memory");
    rt.block_on(rotating.load(&*storage));
    let fresh = resident_bytes().or_die("reading resident memory");
    rt.block_on(rotating.rotate(rotations));
    let after = resident_bytes().or_die("reading resident memory");
    rt.block_on(rotating.check_pruned(&*storage));
    let per_grant = |bytes: u64| bytes.saturating_sub(before) as f64 / n as f64;
    (per_grant(fresh), per_grant(after))
}

/// What a sled store takes per grant, fresh and after rotations; see
/// [`rotated_disk_bytes_per_grant`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskBytes {
    /// Bytes of its files per grant, fresh.
    pub fresh: f64,
    /// Bytes of its files per grant, after the rotations.
    pub rotated: f64,
    /// Bytes of its live records (keys and values in every tree) per grant, fresh.
    pub live_fresh: f64,
    /// Bytes of its live records per grant, after the rotations.
    pub live_rotated: f64,
}

/// Disk bytes per grant of a sled store holding `n` grants: fresh, and after
/// each was rotated `rotations` times (at most [`ROTATIONS`]) through the engine
/// as a running server rotates them (see [`crate::rotation`]); the size of its
/// files, flushed, over that of the store holding only the client, divided by
/// `n`. The store has its default settings (every write set flushed before it is
/// acknowledged). Also the bytes of its live records, keys and values, read from
/// its trees once it is closed (the fresh figure from a second store, loaded the
/// same way and not rotated), divided by `n`: what the files would hold with no
/// garbage in sled's log.
pub fn rotated_disk_bytes_per_grant(n: u64, rotations: u64) -> DiskBytes {
    let rt = runtime();
    let open = |dir: &tempfile::TempDir| {
        Arc::new(
            SledStorage::open_with(dir.path(), SledConfig::new()).or_die("opening a sled store"),
        )
    };
    let (fresh_dir, rotated_dir) = (
        tempfile::tempdir().or_die("creating a directory"),
        tempfile::tempdir().or_die("creating a directory"),
    );
    let per_grant = |bytes: u64| bytes as f64 / n as f64;
    let (fresh, rotated) = {
        let store = open(&rotated_dir);
        let storage: Arc<dyn Storage> = store.clone();
        rt.block_on(async {
            let mut rotating = Rotation::open(storage.clone(), n).await;
            let size = || async {
                store.flush().await.or_die("flushing the sled store");
                store
                    .size_on_disk()
                    .await
                    .or_die("measuring the sled store")
            };
            let empty = size().await;
            rotating.load(&*storage).await;
            let fresh = size().await;
            rotating.rotate(rotations).await;
            let after = size().await;
            rotating.check_pruned(&*storage).await;
            (
                per_grant(fresh.saturating_sub(empty)),
                per_grant(after.saturating_sub(empty)),
            )
        })
    };
    {
        let store = open(&fresh_dir);
        rt.block_on(async {
            let rotating = Rotation::open(store.clone(), n).await;
            rotating.load(&*store).await;
            store.flush().await.or_die("flushing the sled store");
        });
    }
    DiskBytes {
        fresh,
        rotated,
        live_fresh: per_grant(live_bytes(fresh_dir.path())),
        live_rotated: per_grant(live_bytes(rotated_dir.path())),
    }
}

/// The bytes of the keys and values in every tree of the (closed) sled database
/// at `path`.
fn live_bytes(path: &std::path::Path) -> u64 {
    let db = open_closed_sled(path);
    let mut bytes = 0;
    for name in db.tree_names() {
        let tree = db.open_tree(&name).or_die("opening a sled tree");
        for entry in tree.iter() {
            let (key, value) = entry.or_die("reading a sled tree");
            bytes += (key.len() + value.len()) as u64;
        }
    }
    bytes
}

/// Opens the sled database at `path` as a plain sled database, waiting as
/// `SledStorage::open` does while the background writes of a store just dropped
/// still hold sled's lock on its files.
fn open_closed_sled(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::Config::new().path(path).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            opened => return opened.or_die("reopening a sled store"),
        }
    }
}
