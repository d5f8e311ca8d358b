//! What tenure costs, as ratios against raw storage doing the same reads and writes.
//!
//! Every benchmark is a [`Case`]: one operation run through the engine on a
//! backend, and the same storage reads and writes done by hand on the raw store
//! underneath (a `HashMap`/`BTreeMap` under a lock for the memory backend, sled
//! trees for sled, redb tables for redb, plain SQL tables for PostgreSQL). Both
//! sides start from the same records, loaded outside the timed part, so the ratio
//! `engine / raw` is what the engine adds: validation, policy, versions and
//! conflict checks, events, cursors, the async storage trait, and the richer
//! indexes a real backend keeps.
//!
//! The raw side hashes a presented token with SHA-256 before looking it up, as any
//! store that keeps only digests must, and keys new tokens by the digest of their
//! secret; it does no validation, policy, randomness or versioning.
//!
//! Two ways to run them:
//!
//! ```text
//! cargo bench -p tenure-benches                       # criterion, every case
//! cargo run --release -p tenure-benches --bin summary  # a short run, one line per case
//! ```
//!
//! PostgreSQL cases run when `TENURE_BENCH_POSTGRES_URL` (or
//! `TENURE_TEST_POSTGRES_URL`) names a database; `scripts/with-postgres.sh` starts a
//! throwaway one.

pub mod cases;
pub mod durable;
pub mod fixture;
pub mod memory;
pub mod peers;
pub mod postgres;
pub mod raw_memory;
pub mod raw_postgres;
pub mod raw_redb;
pub mod raw_sled;
pub mod redb;
pub mod rotation;
pub mod rss;
pub mod sled;

use std::time::{Duration, Instant};

use tenure::Timestamp;

/// A store written by hand for one backend: the storage reads and writes each
/// engine operation makes, without the engine.
#[allow(async_fn_in_trait)]
pub trait RawStore {
    /// Stores the client every grant is made to.
    async fn put_client(&self, client: tenure::Client);

    /// Stores grants with their tokens and history.
    async fn load_families(&self, families: Vec<fixture::Family>);

    /// Stores bare grants.
    async fn load_grants(&self, grants: Vec<tenure::Grant>);

    /// Looks up a presented token and its grant; whether the token is active.
    async fn introspect(&self, presented: &str, now: Timestamp) -> bool;

    /// Reads the client and writes grant `i` with an access and a refresh token and
    /// its creation (and the client's `last_used_at`, at most once a day).
    async fn authorize(&self, i: u64, now: Timestamp);

    /// Rotates the refresh token `presented` of grant `i`: reads the token with
    /// its grant, and the client; writes the grant at its next generation, deletes
    /// the spent refresh token's record, writes the new access and refresh tokens
    /// (with their expiry index entries) and the client's `last_used_at` at most
    /// once a day. No token list is read, no transition appended. The new refresh
    /// token ([`fixture::refresh_secret`] of the next generation), or `None` if
    /// the presented token cannot be rotated.
    async fn refresh(&self, presented: &str, i: u64, now: Timestamp) -> Option<String>;

    /// Revokes a grant: writes the grant and one transition; its tokens are not
    /// rewritten (they read inactive with it). Whether it was active.
    async fn revoke(&self, grant_id: &str, now: Timestamp) -> bool;

    /// The first page of `limit` grants of a user, newest first; how many.
    async fn page(&self, user_id: &str, limit: usize) -> usize;

    /// Marks up to `limit` grants expired by `now` as expired (the grant and a
    /// transition each), then deletes up to `limit` tokens expired by `now`, found
    /// through the token expiry index; how many grants.
    async fn sweep(&self, now: Timestamp, limit: usize) -> usize;
}

/// One operation, through the engine and by hand on the raw store.
pub trait Bench {
    /// Runs the operation `iters` times through the engine; returns the time the
    /// operations took, setup excluded.
    fn engine(&mut self, iters: u64) -> Duration;

    /// Runs the same storage reads and writes `iters` times on the raw store.
    fn raw(&mut self, iters: u64) -> Duration;
}

/// A named benchmark, built only when it is about to run (some load a million
/// records).
pub struct Case {
    /// `backend/operation[/parameter]`.
    pub name: String,
    /// Builds the benchmark's stores and fixtures.
    pub make: Box<dyn FnOnce() -> Box<dyn Bench>>,
}

impl Case {
    /// A case named `name`, built by `make`.
    pub fn new<B: Bench + 'static>(
        name: impl Into<String>,
        make: impl FnOnce() -> B + 'static,
    ) -> Case {
        Case {
            name: name.into(),
            make: Box::new(move || Box::new(make())),
        }
    }
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish()
    }
}

/// How big the fixtures of the scaling cases are.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Zone sizes for the page of 50.
    pub page_zones: Vec<usize>,
    /// `(expired, zone size)` pairs for the sweep.
    pub sweeps: Vec<(usize, usize)>,
    /// Access tokens held by the revoked grant (from as many mintings).
    pub revoke_tokens: Vec<u64>,
    /// Rotations a grant has been through before it is refreshed.
    pub refresh_history: Vec<u64>,
}

impl Sizes {
    /// Every size: pages in zones of 10k, 100k and 1M grants, sweeps of 10 and 100
    /// among 10k and of 100 among 100k, revocations of grants holding 1, 10 and 100
    /// access tokens, refreshes of grants rotated 1,000 times.
    pub fn full() -> Sizes {
        Sizes {
            page_zones: vec![10_000, 100_000, 1_000_000],
            sweeps: vec![(10, 10_000), (100, 10_000), (100, 100_000)],
            revoke_tokens: vec![1, 10, 100],
            refresh_history: vec![1_000],
        }
    }
}

/// Times `op` over `iters` runs on a current-thread runtime.
pub fn time_async<F, Fut>(runtime: &tokio::runtime::Runtime, iters: u64, mut op: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    runtime.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            op(i).await;
        }
        start.elapsed()
    })
}

/// Times `op` over `iters` runs.
pub fn time_sync(iters: u64, mut op: impl FnMut(u64)) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        op(i);
    }
    start.elapsed()
}

/// A current-thread tokio runtime with timers and I/O, for one bench.
pub fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot start a tokio runtime: {e}"),
    }
}

/// Unwraps a fixture or benchmark step: a benchmark whose setup fails has nothing
/// to measure, so it stops with the reason.
pub trait OrDie<T> {
    /// The value, or a panic naming `what`.
    fn or_die(self, what: &str) -> T;
}

impl<T, E: std::fmt::Display> OrDie<T> for Result<T, E> {
    fn or_die(self, what: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

impl<T> OrDie<T> for Option<T> {
    fn or_die(self, what: &str) -> T {
        match self {
            Some(v) => v,
            None => panic!("{what}: nothing there"),
        }
    }
}

/// The plain-text filter criterion was given on the command line, if any: its
/// first positional argument, unless it uses regular-expression syntax.
fn criterion_filter() -> Option<String> {
    const WITH_VALUE: [&str; 14] = [
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--measurement-time",
        "--warm-up-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--color",
        "--output-format",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            let plain = !arg.contains(|c: char| "\\.^$|?*+()[]{}".contains(c));
            return plain.then_some(arg);
        }
    }
    None
}

/// Runs `cases` under criterion: a group per case, with an `engine` and a `raw`
/// benchmark in it. A case the command line's filter leaves out is not built, so
/// its fixtures are not loaded.
pub fn criterion_cases(c: &mut criterion::Criterion, cases: Vec<Case>) {
    let filter = criterion_filter();
    for case in cases {
        if filter.as_ref().is_some_and(|f| {
            !case.name.contains(f.as_str())
                && !format!("{}/engine", case.name).contains(f.as_str())
                && !format!("{}/raw", case.name).contains(f.as_str())
        }) {
            continue;
        }
        let mut bench = (case.make)();
        let mut group = c.benchmark_group(&case.name);
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        group.bench_function("engine", |b| b.iter_custom(|iters| bench.engine(iters)));
        group.bench_function("raw", |b| b.iter_custom(|iters| bench.raw(iters)));
        group.finish();
    }
}
