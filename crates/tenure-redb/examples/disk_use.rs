//! Bytes on disk per grant: after creating 100,000 grants through the engine, and
//! after revoking a quarter, letting a quarter expire and sweeping (which expires
//! those grants and prunes every token whose expiry has passed, through the token
//! expiry index), then deleting those half; and, for comparison, the bytes of the
//! live keys and values.
//!
//! ```text
//! cargo run --release -p tenure-redb --example disk_use [GRANTS] [periodic|immediate] [FLUSH_EVERY_MS] [FLUSH_AFTER]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use chrono::Duration;
use redb::{ReadableTable, TableHandle};
use tenure::{Actor, AuthorizeRequest, ClientRegistration, Clock, Engine, ManualClock};
use tenure_redb::{DATABASE_FILE, Durability, RedbConfig, RedbStorage};

const ZONE: &str = "zone-1";
const WRITERS: usize = 8;

/// Bytes of every file under `dir`.
fn bytes_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                bytes_on_disk(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

fn report(what: &str, dir: &Path, per: usize) {
    let bytes = bytes_on_disk(dir);
    println!(
        "{what}: {bytes} bytes ({:.1} MiB), {:.0} bytes per grant",
        bytes as f64 / 1024.0 / 1024.0,
        bytes as f64 / per as f64
    );
}

/// Runs `op(i)` for every `i` in `range`, `WRITERS` at a time.
async fn each<F, Fut>(range: std::ops::Range<usize>, op: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let op = op.clone();
            let range = range.clone();
            tokio::spawn(async move {
                for i in range.skip(w).step_by(WRITERS) {
                    op(i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::main]
async fn main() {
    let grants: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("GRANTS is a number"))
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    // Periodic commits by default, and a durable commit before every measurement:
    // redb frees pages only in durable commits, so the two modes use disk
    // differently, and either can be measured.
    let durability = match std::env::args().nth(2).as_deref() {
        None | Some("periodic") => Durability::Periodic,
        Some("immediate") => Durability::Immediate,
        Some(other) => panic!("unknown durability {other:?}"),
    };
    let flush_every = std::env::args()
        .nth(3)
        .map_or(500, |ms| ms.parse().expect("FLUSH_EVERY_MS is a number"));
    let flush_after = std::env::args()
        .nth(4)
        .map_or(RedbConfig::new().flush_after, |n| {
            n.parse().expect("FLUSH_AFTER is a number")
        });
    println!("{durability:?}, flush every {flush_every} ms or {flush_after} commits");
    let config = RedbConfig::new()
        .durability(durability)
        .flush_every(std::time::Duration::from_millis(flush_every))
        .flush_after(flush_after);
    let store = RedbStorage::open_with(&path, config.clone()).unwrap();
    let clock = Arc::new(ManualClock::new("2030-01-01T00:00:00Z".parse().unwrap()));
    let engine = Engine::builder(Arc::new(store.clone()))
        .clock(clock.clone())
        .build();
    engine
        .register_client(
            ZONE,
            ClientRegistration::new("Calendar")
                .id("calendar")
                .scopes(["read", "write"]),
        )
        .await
        .unwrap();

    // Grant i: user i % 1000, resource i % 10. Every fourth expires in an hour.
    let soon = clock.now() + Duration::hours(1);
    let ids: Arc<Vec<std::sync::OnceLock<String>>> =
        Arc::new((0..grants).map(|_| std::sync::OnceLock::new()).collect());
    {
        let (engine, ids) = (engine.clone(), ids.clone());
        each(0..grants, move |i| {
            let (engine, ids) = (engine.clone(), ids.clone());
            async move {
                let mut request = AuthorizeRequest::new(
                    "calendar",
                    format!("user-{:04}", i % 1000),
                    format!("resource-{}", i % 10),
                    ["read"],
                );
                if i % 4 == 1 {
                    request = request.expires_at(soon);
                }
                let issued = engine.authorize(ZONE, request).await.unwrap();
                ids[i].set(issued.grant.id).unwrap();
            }
        })
        .await;
    }
    store.flush().await.unwrap();
    report(&format!("{grants} grants"), &path, grants);

    // Revoke every fourth (i % 4 == 0), let every fourth expire (i % 4 == 1) and
    // sweep, then delete both: half of the grants.
    {
        let (engine, ids) = (engine.clone(), ids.clone());
        each(0..grants, move |i| {
            let (engine, ids) = (engine.clone(), ids.clone());
            async move {
                if i % 4 == 0 {
                    engine
                        .revoke_grant(ZONE, ids[i].get().unwrap(), Actor::Admin)
                        .await
                        .unwrap();
                }
            }
        })
        .await;
    }
    // Two hours on, every access token (one hour) has expired too, and so has every
    // token of the grants that expired: the sweep prunes them all.
    clock.advance(Duration::hours(2));
    let (mut swept, mut pruned) = (0, 0);
    loop {
        let report = engine.sweep_expired(ZONE, 1000).await.unwrap();
        swept += report.expired;
        pruned += report.tokens_removed;
        if !report.more && report.tokens_removed == 0 {
            break;
        }
    }
    store.flush().await.unwrap();
    report(
        &format!(
            "after revoking {} and sweeping {swept} (and {pruned} expired tokens)",
            grants.div_ceil(4)
        ),
        &path,
        grants,
    );
    {
        let (engine, ids) = (engine.clone(), ids.clone());
        each(0..grants, move |i| {
            let (engine, ids) = (engine.clone(), ids.clone());
            async move {
                if i % 4 < 2 {
                    engine
                        .delete_grant(ZONE, ids[i].get().unwrap())
                        .await
                        .unwrap();
                }
            }
        })
        .await;
    }
    store.flush().await.unwrap();
    let left = grants - grants.div_ceil(4) - (grants + 2) / 4;
    report(
        &format!("after deleting them ({left} grants left), per grant created"),
        &path,
        grants,
    );
    report("  the same, per grant left", &path, left);
    drop(engine);
    drop(store);
    let store = RedbStorage::open_with(&path, config).unwrap();
    let integrity = store.check_integrity().await.unwrap();
    assert!(integrity.is_consistent(), "{integrity:#?}");
    assert_eq!(integrity.grants as usize, left);
    report("after reopening, per grant left", &path, left);

    // As many new grants as were deleted: does the file grow, or reuse the space?
    let engine = Engine::builder(Arc::new(store.clone()))
        .clock(clock.clone())
        .build();
    let added = grants - left;
    {
        let engine = engine.clone();
        each(0..added, move |i| {
            let engine = engine.clone();
            async move {
                let request = AuthorizeRequest::new(
                    "calendar",
                    format!("user-{:04}", i % 1000),
                    format!("resource-{}", i % 10),
                    ["read"],
                );
                engine.authorize(ZONE, request).await.unwrap();
            }
        })
        .await;
    }
    store.flush().await.unwrap();
    report(
        &format!("after {added} new grants ({grants} grants), per grant"),
        &path,
        grants,
    );
    drop(engine);
    drop(store);
    // The live data, for comparison: every key and value of every table.
    let raw = redb::Database::open(path.join(DATABASE_FILE)).unwrap();
    let txn = raw.begin_read().unwrap();
    let live: usize = txn
        .list_tables()
        .unwrap()
        .map(|handle| {
            let table = txn
                .open_table(redb::TableDefinition::<&[u8], &[u8]>::new(handle.name()))
                .unwrap();
            table
                .iter()
                .unwrap()
                .map(|kv| {
                    let (k, v) = kv.unwrap();
                    k.value().len() + v.value().len()
                })
                .sum::<usize>()
        })
        .sum();
    println!(
        "live keys and values: {live} bytes, {:.0} bytes per grant",
        live as f64 / grants as f64
    );
}
