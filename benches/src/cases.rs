//! The operations, written once for every backend: each case drives the engine on
//! a backend's store and the backend's raw store through the same steps.

use std::cell::RefCell;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chrono::Duration as Span;
use criterion::black_box;
use tenure::{
    Actor, AuthorizeRequest, ClientRegistration, Engine, ListGrants, ManualClock, RefreshRequest,
    Secret, Storage, Timestamp,
};

use crate::fixture::{self, CLIENT, ZONE, epoch};
use crate::{Bench, Case, OrDie, RawStore, Sizes, rotation, runtime, time_async};

/// A backend: how to open an empty engine store and an empty raw store.
pub trait Backend: 'static {
    /// The hand-written store for this backend.
    type Raw: RawStore + Send + Sync + 'static;

    /// Opens an empty engine store, with whatever must outlive it (a guard that
    /// drops its database schema, say).
    fn storage(runtime: &tokio::runtime::Runtime) -> (Arc<dyn Storage>, Keep);

    /// Opens an empty raw store.
    fn raw(runtime: &tokio::runtime::Runtime) -> Self::Raw;

    /// The grants the `refresh/history=…` case rotates in turn: few enough that
    /// rotating each of them a thousand times beforehand takes seconds.
    const WORKING_SET: u64;

    /// The grants a store of the cases that use grants up (the fresh `refresh`,
    /// `revoke`) is filled with (see `Pool`): on memory, about as few as the
    /// history case's working set, so that both find their grants as warm in the
    /// caches and their indexes as shallow; on sled and PostgreSQL, where a fresh
    /// store costs a directory or a connection pool and a bulk load leaves
    /// deferred writes behind it, many.
    const POOL: u64;
}

/// Records written to a store at once when fixtures are loaded.
const RECORDS_PER_LOAD: u64 = 1000;

/// The families of `access` access tokens written at once when fixtures are
/// loaded: about [`RECORDS_PER_LOAD`] records. Bigger writes leave sled deferred
/// work that the timed operations after them would pay for.
fn families_per_load(access: u64) -> usize {
    (RECORDS_PER_LOAD / (access + 2)).max(1) as usize
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

    /// The benchmark client, as stored.
    pub fn client(&self) -> tenure::Client {
        self.runtime
            .block_on(self.storage.get_client(ZONE, CLIENT))
            .or_die("reading the client")
            .or_die("reading the client")
            .record
    }

    /// Loads grants `range` with `access` access tokens each (see
    /// [`fixture::family`]).
    pub fn load_families(&self, range: std::ops::Range<u64>, access: u64) {
        self.runtime.block_on(fixture::put_families(
            &*self.storage,
            range.map(|i| fixture::family(i, access)),
            families_per_load(access),
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
        RawSide::with_client::<B>(engine.client())
    }

    /// Opens it, with `client` stored.
    pub fn with_client<B: Backend<Raw = R>>(client: tenure::Client) -> RawSide<R> {
        let runtime = runtime();
        let raw = B::raw(&runtime);
        runtime.block_on(raw.put_client(client));
        RawSide {
            runtime,
            raw: Arc::new(raw),
            now: epoch(),
        }
    }

    /// Loads grants `range` with `access` access tokens each (see
    /// [`fixture::family`]).
    pub fn load_families(&self, range: std::ops::Range<u64>, access: u64) {
        let families: Vec<fixture::Family> = range.map(|i| fixture::family(i, access)).collect();
        for chunk in families.chunks(families_per_load(access)) {
            self.runtime
                .block_on(self.raw.load_families(chunk.to_vec()));
        }
    }

    /// Loads bare grants.
    pub fn load_grants(&self, grants: Vec<tenure::Grant>) {
        for chunk in grants.chunks(1000) {
            self.runtime.block_on(self.raw.load_grants(chunk.to_vec()));
        }
    }
}

/// Grants used up once each, from a store filled with [`Backend::POOL`] fresh
/// grants at once (not timed) and replaced by a freshly filled one when they are
/// used up: so that every operation finds its store as big, and its grant as
/// recently written, however many records a grant has and however many
/// operations are timed, and a load's after-effects (a durable store's deferred
/// writes) spread over as many operations whatever the grants hold.
#[derive(Debug)]
struct Pool {
    next: u64,
    capacity: u64,
    filled: bool,
}

impl Pool {
    /// A pool of `capacity` grants to a store.
    fn new(capacity: u64) -> Pool {
        Pool {
            next: 0,
            capacity: capacity.max(1),
            filled: false,
        }
    }

    /// The pool of backend `B`.
    fn of<B: Backend>() -> Pool {
        Pool::new(B::POOL)
    }

    /// Runs `iters` operations on unused grants of `side`: fills it with `load`
    /// first (replacing it with `reopen()` first when its grants are used up),
    /// then times the operations with `time(side, first grant, count)`. Returns
    /// the time they took in all.
    fn run<S>(
        &mut self,
        side: &mut S,
        iters: u64,
        reopen: impl Fn() -> S,
        load: impl Fn(&S, std::ops::Range<u64>),
        time: impl Fn(&S, u64, u64) -> Duration,
    ) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            if self.next >= self.capacity {
                *side = reopen();
                self.filled = false;
                self.next = 0;
            }
            if !self.filled {
                load(side, 0..self.capacity);
                self.filled = true;
            }
            let n = left.min(self.capacity - self.next);
            total += time(side, self.next, n);
            self.next += n;
            left -= n;
        }
        total
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
        engine.load_families(0..TOKEN_ZONE, 1);
        raw.load_families(0..TOKEN_ZONE, 1);
        let secrets = (0..TOKEN_ZONE)
            .map(|i| fixture::access_secret(i, 1))
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
struct Refresh<B: Backend> {
    engine: EngineSide,
    raw: RawSide<B::Raw>,
    /// The client, for the raw stores that replace full ones.
    client: tenure::Client,
    engine_pool: Pool,
    raw_pool: Pool,
}

impl<B: Backend> Refresh<B> {
    fn open() -> Self {
        let engine = EngineSide::open::<B>();
        let client = engine.client();
        Refresh {
            raw: RawSide::with_client::<B>(client.clone()),
            engine,
            client,
            engine_pool: Pool::of::<B>(),
            raw_pool: Pool::of::<B>(),
        }
    }
}

/// The refresh token of grant `i` as authorization left it.
fn first_refresh_token(i: u64) -> String {
    fixture::refresh_secret(i, 1, fixture::family_expiry())
}

impl<B: Backend> Bench for Refresh<B> {
    fn engine(&mut self, iters: u64) -> Duration {
        self.engine_pool.run(
            &mut self.engine,
            iters,
            EngineSide::open::<B>,
            |side, range| side.load_families(range, 1),
            |side, first, n| {
                let requests: Vec<RefreshRequest> = (first..first + n)
                    .map(|i| {
                        let secret = Secret::from_presented(first_refresh_token(i));
                        RefreshRequest::new(CLIENT, &secret)
                    })
                    .collect();
                let (engine, requests) = (&side.engine, &requests);
                time_async(&side.runtime, n, |i| async move {
                    let request = requests[i as usize].clone();
                    black_box(engine.refresh(ZONE, request).await.or_die("refresh"));
                })
            },
        )
    }

    fn raw(&mut self, iters: u64) -> Duration {
        let client = &self.client;
        self.raw_pool.run(
            &mut self.raw,
            iters,
            || RawSide::with_client::<B>(client.clone()),
            |side, range| side.load_families(range, 1),
            |side, first, n| {
                let secrets: Vec<String> = (first..first + n).map(first_refresh_token).collect();
                let (raw, now, secrets) = (&*side.raw, side.now, &secrets);
                time_async(&side.runtime, n, |i| async move {
                    let rotated = raw.refresh(&secrets[i as usize], first + i, now).await;
                    assert!(
                        black_box(rotated).is_some(),
                        "fixture refresh token refused"
                    );
                })
            },
        )
    }
}

/// Refreshing grants that have already been rotated `history` times: a working
/// set of grants ([`Backend::WORKING_SET`]), rotated `history` times before
/// anything is timed the way a running server rotates them ([`crate::rotation`]:
/// a round an access-token lifetime apart, expired tokens swept before each), the
/// engine's through the engine, the raw store's loaded as the state that leaves
/// ([`fixture::rotated_family`]); then timed going on the same way, round after
/// round, each grant presenting its current refresh token (the sweeps and clock
/// moves between rounds are not timed, the raw store sweeping through its own
/// token expiry index). The grants expire a century after the setup's last round.
struct RefreshHistory<R> {
    engine: EngineSide,
    raw: RawSide<R>,
    /// Each grant's current refresh token, engine side.
    engine_tokens: RefCell<Vec<Secret>>,
    /// Each grant's current refresh token, raw side.
    raw_tokens: RefCell<Vec<String>>,
    engine_rounds: Rounds,
    raw_rounds: Rounds,
}

/// Where one side of [`RefreshHistory`] stands: the round under way and how many
/// of its grants that round has rotated.
#[derive(Debug, Clone, Copy)]
struct Rounds {
    round: u64,
    done: u64,
    grants: u64,
}

impl Rounds {
    /// After round `round`, of `grants` grants.
    fn after(round: u64, grants: u64) -> Rounds {
        Rounds {
            round,
            done: grants,
            grants,
        }
    }

    /// Runs `iters` rotations, round after round: when a round begins, `start(its
    /// time)` (not timed); then `time(its time, first grant, count)` times its
    /// rotations. Returns the time they took in all.
    fn run(
        &mut self,
        iters: u64,
        start: impl Fn(Timestamp),
        time: impl Fn(Timestamp, u64, u64) -> Duration,
    ) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            if self.done == self.grants {
                self.round += 1;
                self.done = 0;
                start(rotation::round_at(self.round));
            }
            let n = left.min(self.grants - self.done);
            total += time(rotation::round_at(self.round), self.done, n);
            self.done += n;
            left -= n;
        }
        total
    }
}

impl<R: RawStore + Send + Sync + 'static> RefreshHistory<R> {
    fn open<B: Backend<Raw = R>>(history: u64) -> Self {
        let grants = B::WORKING_SET;
        let engine = EngineSide::open::<B>();
        let raw = RawSide::open::<B>(&engine);
        let expires = rotation::round_at(history) + Span::days(36_500);
        let mut tokens = rotation::first_tokens(0..grants, expires);
        engine.runtime.block_on(async {
            fixture::put_families(
                &*engine.storage,
                (0..grants).map(|i| fixture::family_expiring(i, 1, expires)),
                500,
            )
            .await;
            rotation::rotate(&engine.engine, &engine.clock, &mut tokens, history).await;
        });
        let last = rotation::round_at(history);
        let families: Vec<fixture::Family> = (0..grants)
            .map(|i| fixture::rotated_family(i, history, last, expires))
            .collect();
        let raw_tokens = families.iter().map(|f| f.refresh.clone()).collect();
        raw.runtime.block_on(raw.raw.load_families(families));
        RefreshHistory {
            engine,
            raw,
            engine_tokens: RefCell::new(tokens),
            raw_tokens: RefCell::new(raw_tokens),
            engine_rounds: Rounds::after(history, grants),
            raw_rounds: Rounds::after(history, grants),
        }
    }
}

impl<R: RawStore + Send + Sync + 'static> Bench for RefreshHistory<R> {
    fn engine(&mut self, iters: u64) -> Duration {
        let (side, tokens) = (&self.engine, &self.engine_tokens);
        self.engine_rounds.run(
            iters,
            |at| {
                side.clock.set(at);
                side.runtime.block_on(rotation::sweep(&side.engine));
            },
            |_, first, n| {
                let engine = &side.engine;
                time_async(&side.runtime, n, |i| async move {
                    let at = (first + i) as usize;
                    let request = RefreshRequest::new(CLIENT, &tokens.borrow()[at]);
                    let issued = engine.refresh(ZONE, request).await.or_die("refresh");
                    tokens.borrow_mut()[at] = black_box(issued)
                        .refresh_token
                        .or_die("a rotated refresh token");
                })
            },
        )
    }

    fn raw(&mut self, iters: u64) -> Duration {
        let (side, tokens) = (&self.raw, &self.raw_tokens);
        self.raw_rounds.run(
            iters,
            |at| {
                side.runtime.block_on(side.raw.sweep(at, 1_000_000));
            },
            |now, first, n| {
                let raw = &*side.raw;
                time_async(&side.runtime, n, |i| async move {
                    let at = (first + i) as usize;
                    let presented = tokens.borrow()[at].clone();
                    let rotated = raw.refresh(&presented, at as u64, now).await;
                    tokens.borrow_mut()[at] =
                        black_box(rotated).or_die("fixture refresh token refused");
                })
            },
        )
    }
}

/// Revoking a grant holding `tokens` live access tokens (from its authorization
/// and `tokens - 1` rotations) and its refresh token.
struct Revoke<B: Backend> {
    engine: EngineSide,
    raw: RawSide<B::Raw>,
    /// The client, for the raw stores that replace full ones.
    client: tenure::Client,
    tokens: u64,
    engine_pool: Pool,
    raw_pool: Pool,
}

impl<B: Backend> Revoke<B> {
    fn open(tokens: u64) -> Self {
        let engine = EngineSide::open::<B>();
        let client = engine.client();
        Revoke {
            raw: RawSide::with_client::<B>(client.clone()),
            engine,
            client,
            tokens,
            engine_pool: Pool::of::<B>(),
            raw_pool: Pool::of::<B>(),
        }
    }
}

impl<B: Backend> Bench for Revoke<B> {
    fn engine(&mut self, iters: u64) -> Duration {
        let tokens = self.tokens;
        self.engine_pool.run(
            &mut self.engine,
            iters,
            EngineSide::open::<B>,
            |side, range| side.load_families(range, tokens),
            |side, first, n| {
                let ids: Vec<String> = (first..first + n).map(fixture::grant_id).collect();
                let (engine, ids) = (&side.engine, &ids);
                time_async(&side.runtime, n, |i| async move {
                    let grant = engine
                        .revoke_grant(ZONE, &ids[i as usize], Actor::Admin)
                        .await
                        .or_die("revoke");
                    assert_eq!(
                        black_box(grant).status,
                        tenure::GrantStatus::Revoked,
                        "fixture grant not revoked"
                    );
                })
            },
        )
    }

    fn raw(&mut self, iters: u64) -> Duration {
        let (tokens, client) = (self.tokens, &self.client);
        self.raw_pool.run(
            &mut self.raw,
            iters,
            || RawSide::with_client::<B>(client.clone()),
            |side, range| side.load_families(range, tokens),
            |side, first, n| {
                let ids: Vec<String> = (first..first + n).map(fixture::grant_id).collect();
                let (raw, now, ids) = (&*side.raw, side.now, &ids);
                time_async(&side.runtime, n, |i| async move {
                    assert!(
                        raw.revoke(&ids[i as usize], now).await,
                        "fixture grant gone"
                    );
                })
            },
        )
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
    cases.push(Case::new(format!("{backend}/refresh"), Refresh::<B>::open));
    for &history in &sizes.refresh_history {
        cases.push(Case::new(
            format!("{backend}/refresh/history={history}"),
            move || RefreshHistory::open::<B>(history),
        ));
    }
    for &tokens in &sizes.revoke_tokens {
        cases.push(Case::new(
            format!("{backend}/revoke/k={tokens}"),
            move || Revoke::<B>::open(tokens),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool fills its side once, uses its grants up across runs, and starts
    /// over on a fresh, freshly filled side.
    #[test]
    fn pool_fills_a_side_and_replaces_it_when_used_up() {
        let mut pool = Pool::new(5);
        let mut side = 0u32;
        let loads = RefCell::new(Vec::new());
        let timed = RefCell::new(Vec::new());
        let opened = std::cell::Cell::new(0);
        for iters in [3, 4, 4] {
            pool.run(
                &mut side,
                iters,
                || {
                    opened.set(opened.get() + 1);
                    opened.get()
                },
                |side, range| loads.borrow_mut().push((*side, range)),
                |side, first, n| {
                    timed.borrow_mut().push((*side, first, n));
                    Duration::from_nanos(n)
                },
            );
        }
        assert_eq!(loads.into_inner(), vec![(0, 0..5), (1, 0..5), (2, 0..5)]);
        assert_eq!(
            timed.into_inner(),
            vec![(0, 0, 3), (0, 3, 2), (1, 0, 2), (1, 2, 3), (2, 0, 1)]
        );
        assert_eq!(opened.get(), 2);
    }
}
