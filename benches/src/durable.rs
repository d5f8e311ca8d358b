//! The two embedded durable stores side by side: sled and redb, each through the
//! engine with its default settings (immediate durability), on the measures a
//! choice between them turns on that the per-operation cases do not show:
//!
//! - **group commit**: authorizations per second with 1, 4 and 16 writers at once,
//!   which shows how well concurrent write sets share a durable commit;
//! - **disk over a store's life**: bytes per grant after creating grants, after
//!   revoking a quarter of them and letting a quarter expire and sweeping, after
//!   deleting that half, and after creating as many again (does the file give the
//!   space back, reuse it, or grow?).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Duration as Span;
use tenure::{Actor, AuthorizeRequest, ClientRegistration, Engine, ManualClock, Storage};
use tenure_redb::{RedbConfig, RedbStorage};
use tenure_sled::{SledConfig, SledStorage};

use crate::OrDie;
use crate::fixture::{CLIENT, ZONE, epoch};

/// An embedded durable store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    /// [`SledStorage`].
    Sled,
    /// [`RedbStorage`].
    Redb,
}

impl Durable {
    /// Both, sled first.
    pub const ALL: [Durable; 2] = [Durable::Sled, Durable::Redb];

    /// Its name on the command line and in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Durable::Sled => "sled",
            Durable::Redb => "redb",
        }
    }

    /// The store named `name`.
    pub fn named(name: &str) -> Option<Durable> {
        Durable::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// An open store of either kind.
#[derive(Clone)]
enum Store {
    Sled(SledStorage),
    Redb(RedbStorage),
}

impl Store {
    /// Opens a store of `kind` in `dir`, with its default settings.
    fn open(kind: Durable, dir: &Path) -> Store {
        match kind {
            Durable::Sled => Store::Sled(
                SledStorage::open_with(dir, SledConfig::new()).or_die("opening a sled store"),
            ),
            Durable::Redb => Store::Redb(
                RedbStorage::open_with(dir, RedbConfig::new()).or_die("opening a redb store"),
            ),
        }
    }

    fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Store::Sled(s) => Arc::new(s.clone()),
            Store::Redb(r) => Arc::new(r.clone()),
        }
    }

    /// Makes everything written so far durable.
    async fn flush(&self) {
        match self {
            Store::Sled(s) => s.flush().await.or_die("flushing sled"),
            Store::Redb(r) => r.flush().await.or_die("flushing redb"),
        }
    }
}

/// An engine on a fresh store of `kind` in `dir`, on a manual clock, with the
/// benchmark client registered.
async fn engine_on(kind: Durable, dir: &Path) -> (Engine, Store, Arc<ManualClock>) {
    let store = Store::open(kind, dir);
    let clock = Arc::new(ManualClock::new(epoch()));
    let engine = Engine::builder(store.storage())
        .clock(clock.clone())
        .build();
    engine
        .register_client(
            ZONE,
            ClientRegistration::new("Bench")
                .id(CLIENT)
                .scopes(["read", "write"]),
        )
        .await
        .or_die("registering the client");
    (engine, store, clock)
}

/// Authorizes grant `i`: its own user, a tenth of the resources.
fn request(i: u64) -> AuthorizeRequest {
    AuthorizeRequest::new(
        CLIENT,
        format!("user-{i:07}"),
        format!("resource-{}", i % 10),
        ["read"],
    )
}

/// A multi-threaded runtime with a worker per core, as a server runs.
fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .or_die("starting a tokio runtime")
}

/// Authorizations per second on a fresh store of `kind` with `writers` tasks
/// authorizing at once, for `time` after a warm-up of a quarter of it.
pub fn group_commit(kind: Durable, writers: u64, time: Duration) -> f64 {
    let runtime = server_runtime();
    let dir = tempfile::tempdir().or_die("creating a store directory");
    runtime.block_on(async {
        let (engine, _store, _clock) = engine_on(kind, &dir.path().join("store")).await;
        let next = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let counting = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let (engine, next, done) = (engine.clone(), next.clone(), done.clone());
                let (counting, stop) = (counting.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        engine
                            .authorize(ZONE, request(i))
                            .await
                            .or_die("authorizing");
                        if counting.load(Ordering::Relaxed) {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(time / 4).await;
        counting.store(true, Ordering::Relaxed);
        let start = Instant::now();
        tokio::time::sleep(time).await;
        let counted = done.load(Ordering::Relaxed);
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.or_die("joining a writer");
        }
        counted as f64 / elapsed.as_secs_f64()
    })
}

/// Bytes per grant created over a store's life (see [`lifecycle`]).
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    /// After creating the grants.
    pub created: f64,
    /// After revoking a quarter, letting a quarter expire, and sweeping (which
    /// expires those and prunes every expired token).
    pub swept: f64,
    /// After deleting that half.
    pub deleted: f64,
    /// After creating as many grants again as were deleted.
    pub refilled: f64,
}

/// Writers at once while filling and emptying a store.
const WRITERS: u64 = 16;

/// Runs `op(i)` for every `i` below `n`, [`WRITERS`] at a time.
async fn each<F, Fut>(n: u64, op: F)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in (w..n).step_by(WRITERS as usize) {
                    op(i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.or_die("joining a writer");
    }
}

/// Bytes of every file under `dir`.
pub fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .or_die("listing a store directory")
        .map(|entry| {
            let entry = entry.or_die("listing a store directory");
            let meta = entry.metadata().or_die("reading a file's size");
            if meta.is_dir() {
                bytes_under(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// The bytes per grant a store of `kind` takes over its life, through the engine:
/// `n` grants authorized (an access and a refresh token each), then a quarter
/// revoked and a quarter expired and swept, then that half deleted, then as many
/// new grants authorized. Every figure is taken after a flush and divided by `n`.
pub fn lifecycle(kind: Durable, n: u64) -> Lifecycle {
    let runtime = server_runtime();
    let dir = tempfile::tempdir().or_die("creating a store directory");
    let path = dir.path().join("store");
    runtime.block_on(async {
        let (engine, store, clock) = engine_on(kind, &path).await;
        let per_grant = |store: &Store| {
            let store = store.clone();
            let path = path.clone();
            async move {
                store.flush().await;
                bytes_under(&path) as f64 / n as f64
            }
        };
        let ids: Arc<Vec<std::sync::OnceLock<String>>> =
            Arc::new((0..n).map(|_| std::sync::OnceLock::new()).collect());
        let soon = epoch() + Span::hours(1);
        {
            let (engine, ids) = (engine.clone(), ids.clone());
            each(n, move |i| {
                let (engine, ids) = (engine.clone(), ids.clone());
                async move {
                    let mut request = request(i);
                    if i % 4 == 1 {
                        request = request.expires_at(soon);
                    }
                    let issued = engine.authorize(ZONE, request).await.or_die("authorizing");
                    // Each index is set once, by the one writer that owns it.
                    let _ = ids[i as usize].set(issued.grant.id);
                }
            })
            .await;
        }
        let created = per_grant(&store).await;
        {
            let (engine, ids) = (engine.clone(), ids.clone());
            each(n, move |i| {
                let (engine, ids) = (engine.clone(), ids.clone());
                async move {
                    if i % 4 == 0 {
                        let id = ids[i as usize].get().or_die("a grant id");
                        engine
                            .revoke_grant(ZONE, id, Actor::Admin)
                            .await
                            .or_die("revoking");
                    }
                }
            })
            .await;
        }
        // Two hours on, every access token (an hour) has expired, and so have the
        // grants that expire in an hour: the sweep expires those and prunes the
        // tokens.
        clock.advance(Span::hours(2));
        loop {
            let report = engine.sweep_expired(ZONE, 1000).await.or_die("sweeping");
            if !report.more && report.tokens_removed == 0 {
                break;
            }
        }
        let swept = per_grant(&store).await;
        {
            let (engine, ids) = (engine.clone(), ids.clone());
            each(n, move |i| {
                let (engine, ids) = (engine.clone(), ids.clone());
                async move {
                    if i % 4 < 2 {
                        let id = ids[i as usize].get().or_die("a grant id");
                        engine.delete_grant(ZONE, id).await.or_die("deleting");
                    }
                }
            })
            .await;
        }
        let deleted = per_grant(&store).await;
        let again = n.div_ceil(2);
        {
            let engine = engine.clone();
            each(again, move |i| {
                let engine = engine.clone();
                async move {
                    engine
                        .authorize(ZONE, request(n + i))
                        .await
                        .or_die("authorizing");
                }
            })
            .await;
        }
        let refilled = per_grant(&store).await;
        Lifecycle {
            created,
            swept,
            deleted,
            refilled,
        }
    })
}
