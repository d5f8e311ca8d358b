//! The operations, written once for every backend: each case drives the engine on
//! a backend's store and the backend's raw store through the same steps.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chrono::Duration as Span;
use criterion::black_box;
use tenure::{
    Actor, AuthorizeRequest, ClientRegistration, Engine, ListGrants, ManualClock, RefreshRequest,
    Secret, Storage, Timestamp,
};

use crate::fixture::{self, CLIENT, ZONE, epoch};
use crate::{Bench, Case, OrDie, RawStore, Sizes, runtime, time_async};

/// A backend: how to open an empty engine store and an empty raw store.
pub trait Backend: 'static {
    /// The hand-written store for this backend.
    type Raw: RawStore + Send + Sync + 'static;

    /// Opens an empty engine store, with whatever must outlive it (a guard that
    /// drops its database schema, say).
    fn storage(runtime: &tokio::runtime::Runtime) -> (Arc<dyn Storage>, Keep);

    /// Opens an empty raw store.
    fn raw(runtime: &tokio::runtime::Runtime) -> Self::Raw;
}

/// Something kept until a store is dropped, and dropped after it.
pub type Keep = Box<dyn std::any::Any + Send + Sync>;

/// The engine on a fresh store of backend `B`, on a manual clock at [`epoch`], with
/// the benchmark client registered.
pub struct EngineSide {
    /// Runs the engine's futures.
    pub runtime: tokio::runtime::Runtime,
    /// The engine.
    pub engine: Engine,
    /// Its store.
    pub storage: Arc<dyn Storage>,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    /// Dropped after the store (fields drop in order).
    _keep: Keep,
}

impl EngineSide {
    /// Opens it.
    pub fn open<B: Backend>() -> EngineSide {
        let runtime = runtime();
        let (storage, keep) = B::storage(&runtime);
        let clock = Arc::new(ManualClock::new(epoch()));
        let engine = Engine::builder(storage.clone())
            .clock(clock.clone())
            .build();
        runtime.block_on(async {
            engine
                .register_client(
                    ZONE,
                    ClientRegistration::new("Bench")
                        .id(CLIENT)
                        .scopes(["read", "write"]),
                )
                .await
                .or_die("registering the client");
        });
        EngineSide {
            runtime,
            engine,
            storage,
            clock,
            _keep: keep,
        }
    }

    /// Loads grants `range` with `tokens` tokens each.
    pub fn load_families(&self, range: std::ops::Range<u64>, tokens: usize) {
        self.runtime.block_on(fixture::put_families(
            &*self.storage,
            range.map(|i| fixture::family(i, tokens)),
            500,
        ));
    }

    /// Loads bare grants.
    pub fn load_grants(&self, grants: impl IntoIterator<Item = tenure::Grant>) {
        self.runtime
            .block_on(fixture::put_grants(&*self.storage, grants));
    }
}

/// The raw store of backend `B`, with its own clock.
pub struct RawSide<R> {
    /// Runs the raw store's futures.
    pub runtime: tokio::runtime::Runtime,
    /// The store.
    pub raw: Arc<R>,
    /// Its time.
    pub now: Timestamp,
}

impl<R: RawStore + Send + Sync + 'static> RawSide<R> {
    /// Opens it, with the benchmark client stored.
    pub fn open<B: Backend<Raw = R>>(engine: &EngineSide) -> RawSide<R> {
        let runtime = runtime();
        let raw = B::raw(&runtime);
        let client = engine
            .runtime
            .block_on(engine.storage.get_client(ZONE, CLIENT))
            .or_die("reading the client")
            .or_die("reading the client")
            .record;
        runtime.block_on(raw.put_client(client));
        RawSide {
            runtime,
            raw: Arc::new(raw),
            now: epoch(),
        }
    }

    /// Loads grants `range` with `tokens` tokens each.
    pub fn load_families(&self, range: std::ops::Range<u64>, tokens: usize) {
        let families = range.map(|i| fixture::family(i, tokens)).collect();
        self.runtime.block_on(self.raw.load_families(families));
    }

    /// Loads bare grants.
    pub fn load_grants(&self, grants: Vec<tenure::Grant>) {
        for chunk in grants.chunks(1000) {
            self.runtime.block_on(self.raw.load_grants(chunk.to_vec()));
        }
    }
}

/// Grants loaded ahead of the operations that use each one up once.
#[derive(Debug, Default)]
struct Pool {
    next: u64,
    loaded: u64,
}

impl Pool {
    /// Makes sure `iters` unused grants are loaded, loading what is missing with
    /// `load`; returns the first one.
    fn take(&mut self, iters: u64, load: impl FnOnce(std::ops::Range<u64>)) -> u64 {
        if self.next + iters > self.loaded {
            load(self.loaded..self.next + iters);
            self.loaded = self.next + iters;
        }
        let first = self.next;
        self.next += iters;
        first
    }
}

/// The grants the token cases are spread over.
const TOKEN_ZONE: u64 = 10_000;

/// Introspecting an access token, on one thread.
struct Introspect<R> {
    engine: EngineSide,
    raw: RawSide<R>,
    secrets: Arc<Vec<String>>,
}

impl<R: RawStore + Send + Sync + 'static> Introspect<R> {
    fn open<B: Backend<Raw = R>>() -> Self {
        let engine = EngineSide::open::<B>();
        let raw = RawSide::open::<B>(&engine);
        engine.load_families(0..TOKEN_ZONE, 2);
        raw.load_families(0..TOKEN_ZONE, 2);
        let secrets = (0..TOKEN_ZONE)
            .map(|i| fixture::secret(tenure::TokenKind::Access, i, 0))
            .collect();
        Introspect {
            engine,
            raw,
            secrets: Arc::new(secrets),
        }
    }
}

fn introspect_with(engine: &Engine, secrets: &[String], i: u64) -> impl Future<Output = ()> {
    let secret = &secrets[(i % secrets.len() as u64) as usize];
    async move {
        let answer = engine.introspect(ZONE, secret).await.or_die("introspect");
        assert!(black_box(answer).is_active(), "fixture token inactive");
    }
}

fn raw_introspect<R: RawStore>(
    raw: &R,
    secrets: &[String],
    now: Timestamp,
    i: u64,
) -> impl Future<Output = ()> {
    let secret = &secrets[(i % secrets.len() as u64) as usize];
    async move {
        assert!(
            black_box(raw.introspect(secret, now).await),
            "fixture token inactive"
        );
    }
}

impl<R: RawStore + Send + Sync + 'static> Bench for Introspect<R> {
    fn engine(&mut self, iters: u64) -> Duration {
        let (engine, secrets) = (&self.engine.engine, &self.secrets);
        time_async(&self.engine.runtime, iters, |i| {
            introspect_with(engine, secrets, i)
        })
    }

    fn raw(&mut self, iters: u64) -> Duration {
        let (raw, secrets, now) = (&*self.raw.raw, &self.secrets, self.raw.now);
        time_async(&self.raw.runtime, iters, |i| {
            raw_introspect(raw, secrets, now, i)
        })
    }
}

/// Introspecting on `threads` threads at once, each on its own current-thread
/// runtime; the time is the wall time for `iters` introspections in all.
struct IntrospectThreads<R> {
    inner: Introspect<R>,
    threads: u64,
}

/// Runs `op(iteration)` on `threads` threads, `iters` times in all; the wall time
/// from the first thread's start to the last one's end, each read by the worker
/// threads themselves (the spawning thread may wake late on a busy machine).
fn on_threads<F, Fut>(threads: u64, iters: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Sync,
    Fut: Future<Output = ()>,
{
    let barrier = Barrier::new(threads as usize);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    let rt = runtime();
                    let share = iters / threads + u64::from(t < iters % threads);
                    barrier.wait();
                    let start = Instant::now();
                    rt.block_on(async {
                        for i in 0..share {
                            op(t * 1_000_003 + i).await;
                        }
                    });
                    (start, Instant::now())
                })
            })
            .collect();
        let spans: Vec<(Instant, Instant)> = handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(span) => span,
                Err(e) => std::panic::resume_unwind(e),
            })
            .collect();
        let start = spans.iter().map(|s| s.0).min();
        let end = spans.iter().map(|s| s.1).max();
        match (start, end) {
            (Some(start), Some(end)) => end.saturating_duration_since(start),
            _ => Duration::ZERO,
        }
    })
}

impl<R: RawStore + Send + Sync + 'static> Bench for IntrospectThreads<R> {
    fn engine(&mut self, iters: u64) -> Duration {
        let (engine, secrets) = (&self.inner.engine.engine, &*self.inner.secrets);
        on_threads(self.threads, iters, |i| introspect_with(engine, secrets, i))
    }

    fn raw(&mut self, iters: u64) -> Duration {
        let (raw, secrets, now) = (
            &*self.inner.raw.raw,
            &*self.inner.secrets,
            self.inner.raw.now,
        );
        on_threads(self.threads, iters, |i| {
            raw_introspect(raw, secrets, now, i)
        })
    }
}

/// How much more introspection throughput `threads` threads get than one, on the
/// same stores, in alternating rounds: `(engine, raw)`, each the median time of one
/// thread for a batch over the median time of `threads` threads for the same batch.
/// The batch is sized so that one thread takes at least `floor`.
pub fn introspect_scaling<B: Backend>(threads: u64, rounds: usize, floor: Duration) -> (f64, f64) {
    let mut single = Introspect::open::<B>();
    // Sized on the calling thread; timed on spawned ones below.
    let mut iters = 1;
    while single.engine(iters) < floor && iters < 1 << 24 {
        iters *= 2;
    }
    let (mut engine, mut raw) = (Vec::new(), Vec::new());
    // One thread runs on a spawned thread too, so that both sides allocate from
    // fresh per-thread heaps rather than one of them from the heap the fixtures
    // were built in.
    let (e, r, secrets, now) = (
        &single.engine.engine,
        &*single.raw.raw,
        &*single.secrets,
        single.raw.now,
    );
    let (mut engine_many, mut raw_many) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        engine.push(on_threads(1, iters, |i| introspect_with(e, secrets, i)).as_secs_f64());
        engine_many
            .push(on_threads(threads, iters, |i| introspect_with(e, secrets, i)).as_secs_f64());
        raw.push(on_threads(1, iters, |i| raw_introspect(r, secrets, now, i)).as_secs_f64());
        raw_many
            .push(on_threads(threads, iters, |i| raw_introspect(r, secrets, now, i)).as_secs_f64());
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    (
        median(engine) / median(engine_many),
        median(raw) / median(raw_many),
    )
}

/// Authorizing: a grant with an access and a refresh token.
struct Authorize<R> {
    engine: EngineSide,
    raw: RawSide<R>,
    engine_next: u64,
    raw_next: u64,
}

impl<R: RawStore + Send + Sync + 'static> Bench for Authorize<R> {
    fn engine(&mut self, iters: u64) -> Duration {
        let first = self.engine_next;
        self.engine_next += iters;
        let engine = &self.engine.engine;
        time_async(&self.engine.runtime, iters, |i| async move {
            let request = AuthorizeRequest::new(
                CLIENT,
                fixture::user_id(first + i),
                "resource-1",
                ["read", "write"],
            );
            black_box(engine.authorize(ZONE, request).await.or_die("authorize"));
        })
    }

    fn raw(&mut self, iters: u64) -> Duration {
        let first = self.raw_next;
        self.raw_next += iters;
        let (raw, now) = (&*self.raw.raw, self.raw.now);
        time_async(&self.raw.runtime, iters, |i| async move {
            raw.authorize(first + i, now).await;
        })
    }
}

/// Refreshing a freshly authorized grant: rotation.
struct Refresh<R> {
    engine: EngineSide,
    raw: RawSide<R>,
    engine_pool: Pool,
    raw_pool: Pool,
}

impl<R: RawStore + Send + Sync + 'static> Bench for Refresh<R> {
    fn engine(&mut self, iters: u64) -> Duration {
        let side = &self.engine;
        let first = self
            .engine_pool
            .take(iters, |range| side.load_families(range, 2));
        let requests: Vec<RefreshRequest> = (first..first + iters)
            .map(|i| {
                let secret = fixture::secret(tenure::TokenKind::Refresh, i, 0);
                RefreshRequest::new(CLIENT, &Secret::from_presented(secret))
            })
            .collect();
        let engine = &side.engine;
        let requests = &requests;
        time_async(&side.runtime, iters, |i| async move {
            let request = requests[i as usize].clone();
            black_box(engine.refresh(ZONE, request).await.or_die("refresh"));
        })
    }

    fn raw(&mut self, iters: u64) -> Duration {
        let side = &self.raw;
        let first = self
            .raw_pool
            .take(iters, |range| side.load_families(range, 2));
        let secrets: Vec<String> = (first..first + iters)
            .map(|i| fixture::secret(tenure::TokenKind::Refresh, i, 0))
            .collect();
        let (raw, now, secrets) = (&*side.raw, side.now, &secrets);
        time_async(&side.runtime, iters, |i| async move {
            let rotated = raw.refresh(&secrets[i as usize], first + i, now).await;
            assert!(rotated, "fixture refresh token refused");
        })
    }
}

/// Revoking a grant holding `tokens` live tokens.
struct Revoke<R> {
    engine: EngineSide,
    raw: RawSide<R>,
    tokens: usize,
    engine_pool: Pool,
    raw_pool: Pool,
}

impl<R: RawStore + Send + Sync + 'static> Bench for Revoke<R> {
    fn engine(&mut self, iters: u64) -> Duration {
        let (side, tokens) = (&self.engine, self.tokens);
        let first = self
            .engine_pool
            .take(iters, |range| side.load_families(range, tokens));
        let ids: Vec<String> = (first..first + iters).map(fixture::grant_id).collect();
        let (engine, ids) = (&side.engine, &ids);
        time_async(&side.runtime, iters, |i| async move {
            let grant = engine
                .revoke_grant(ZONE, &ids[i as usize], Actor::Admin)
                .await
                .or_die("revoke");
            black_box(grant);
        })
    }

    fn raw(&mut self, iters: u64) -> Duration {
        let (side, tokens) = (&self.raw, self.tokens);
        let first = self
            .raw_pool
            .take(iters, |range| side.load_families(range, tokens));
        let ids: Vec<String> = (first..first + iters).map(fixture::grant_id).collect();
        let (raw, now, ids) = (&*side.raw, side.now, &ids);
        time_async(&side.runtime, iters, |i| async move {
            assert!(
                raw.revoke(&ids[i as usize], now).await,
                "fixture grant gone"
            );
        })
    }
}

/// The first page of 50 of one user's grants, in a zone of `grants`.
struct Page<R> {
    engine: EngineSide,
    raw: RawSide<R>,
    user: String,
}

impl<R: RawStore + Send + Sync + 'static> Page<R> {
    fn open<B: Backend<Raw = R>>(grants: u64) -> Self {
        let engine = EngineSide::open::<B>();
        let raw = RawSide::open::<B>(&engine);
        let expires = epoch() + Span::days(30);
        engine.load_grants((0..grants).map(|i| fixture::grant(i, expires)));
        raw.load_grants((0..grants).map(|i| fixture::grant(i, expires)).collect());
        Page {
            engine,
            raw,
            user: fixture::user_id(grants / 2),
        }
    }
}

impl<R: RawStore + Send + Sync + 'static> Bench for Page<R> {
    fn engine(&mut self, iters: u64) -> Duration {
        let request = ListGrants {
            user_id: Some(self.user.clone()),
            limit: Some(50),
            ..ListGrants::default()
        };
        let (engine, request) = (&self.engine.engine, &request);
        time_async(&self.engine.runtime, iters, |_| async move {
            let page = engine.list_grants(ZONE, request).await.or_die("list");
            assert_eq!(black_box(page).items.len(), 50, "short page");
        })
    }

    fn raw(&mut self, iters: u64) -> Duration {
        let (raw, user) = (&*self.raw.raw, &self.user);
        time_async(&self.raw.runtime, iters, |_| async move {
            assert_eq!(black_box(raw.page(user, 50).await), 50, "short page");
        })
    }
}

/// Sweeping `expired` grants among `grants`: grant `j` expires `j` ms after an
/// hour past [`epoch`], and each run moves the clock so that exactly `expired` more
/// are due.
struct Sweep<B: Backend> {
    engine: Option<EngineSide>,
    raw: Option<RawSide<B::Raw>>,
    expired: u64,
    grants: u64,
    engine_next: u64,
    raw_next: u64,
}

fn sweep_fixture(grants: u64) -> impl Iterator<Item = tenure::Grant> {
    let start = epoch() + Span::hours(1);
    (0..grants).map(move |j| fixture::grant(j, start + Span::milliseconds(j as i64)))
}

fn due_at(last: u64) -> Timestamp {
    epoch() + Span::hours(1) + Span::milliseconds(last as i64)
}

impl<B: Backend> Sweep<B> {
    fn engine_side(&mut self) -> &EngineSide {
        if self.engine.is_none() || self.engine_next + self.expired > self.grants {
            self.engine = None;
            let side = EngineSide::open::<B>();
            side.load_grants(sweep_fixture(self.grants));
            self.engine = Some(side);
            self.engine_next = 0;
        }
        self.engine.as_ref().or_die("engine side")
    }

    fn raw_side(&mut self) -> &RawSide<B::Raw> {
        if self.raw.is_none() || self.raw_next + self.expired > self.grants {
            self.raw = None;
            let engine = EngineSide::open::<B>();
            let side = RawSide::open::<B>(&engine);
            side.load_grants(sweep_fixture(self.grants).collect());
            self.raw = Some(side);
            self.raw_next = 0;
        }
        self.raw.as_ref().or_die("raw side")
    }
}

impl<B: Backend> Bench for Sweep<B> {
    fn engine(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let k = self.expired;
        for _ in 0..iters {
            let next = self.engine_next;
            let side = self.engine_side();
            side.clock.set(due_at(next + k - 1));
            let (engine, rt) = (&side.engine, &side.runtime);
            total += time_async(rt, 1, |_| async move {
                let report = engine.sweep_expired(ZONE, k as usize).await.or_die("sweep");
                assert_eq!(black_box(report).expired as u64, k, "short sweep");
            });
            self.engine_next += k;
        }
        total
    }

    fn raw(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let k = self.expired;
        for _ in 0..iters {
            let next = self.raw_next;
            let side = self.raw_side();
            let (raw, rt, now) = (&*side.raw, &side.runtime, due_at(next + k - 1));
            total += time_async(rt, 1, |_| async move {
                let swept = raw.sweep(now, k as usize).await;
                assert_eq!(black_box(swept) as u64, k, "short sweep");
            });
            self.raw_next += k;
        }
        total
    }
}

/// Every case of backend `B`, named `{backend}/...`; `threads` adds introspection
/// on two threads.
pub fn cases<B: Backend>(backend: &str, sizes: &Sizes, threads: bool) -> Vec<Case> {
    let mut cases = vec![Case::new(format!("{backend}/introspect"), || {
        Introspect::open::<B>()
    })];
    if threads {
        cases.push(Case::new(format!("{backend}/introspect/2-threads"), || {
            IntrospectThreads {
                inner: Introspect::open::<B>(),
                threads: 2,
            }
        }));
    }
    cases.push(Case::new(format!("{backend}/authorize"), || {
        let engine = EngineSide::open::<B>();
        let raw = RawSide::open::<B>(&engine);
        Authorize {
            engine,
            raw,
            engine_next: 0,
            raw_next: 0,
        }
    }));
    cases.push(Case::new(format!("{backend}/refresh"), || {
        let engine = EngineSide::open::<B>();
        let raw = RawSide::open::<B>(&engine);
        Refresh {
            engine,
            raw,
            engine_pool: Pool::default(),
            raw_pool: Pool::default(),
        }
    }));
    for &tokens in &sizes.revoke_tokens {
        cases.push(Case::new(
            format!("{backend}/revoke/k={tokens}"),
            move || {
                let engine = EngineSide::open::<B>();
                let raw = RawSide::open::<B>(&engine);
                Revoke {
                    engine,
                    raw,
                    tokens,
                    engine_pool: Pool::default(),
                    raw_pool: Pool::default(),
                }
            },
        ));
    }
    for &grants in &sizes.page_zones {
        cases.push(Case::new(format!("{backend}/page/n={grants}"), move || {
            Page::open::<B>(grants as u64)
        }));
    }
    for &(expired, grants) in &sizes.sweeps {
        cases.push(Case::new(
            format!("{backend}/sweep/k={expired},n={grants}"),
            move || Sweep::<B> {
                engine: None,
                raw: None,
                expired: expired as u64,
                grants: grants as u64,
                engine_next: 0,
                raw_next: 0,
            },
        ));
    }
    cases
}
