//! tenure against a peer and against the floor, on the hot operations, in one
//! process: introspection, authorization (issuing a grant with an access and a
//! refresh token) and refresh (rotating them).
//!
//! - **tenure**: the engine on the memory backend ([`MemoryStorage`]), on a manual
//!   clock, with everything it does: secrets hashed at rest, versions, history,
//!   events, policy.
//! - **peer**: oxide-auth 0.6.1's `TokenMap` with its `RandomGenerator` of 32 bytes
//!   (tenure's secrets carry 256 bits too), called as its endpoints call it:
//!   `recover_token` and an expiry check to introspect, `issue` to authorize,
//!   `recover_refresh` and `refresh` to rotate. It keeps plaintext tokens in two
//!   `HashMap`s and nothing else (no status, history, events or versions), and
//!   takes `&mut self` to write; here it runs on one thread with no lock, its best
//!   case.
//! - **floor**: the least any store that keeps only digests must do. Introspection:
//!   SHA-256 of the presented token, one probe of a `HashMap` keyed by digest, an
//!   expiry compare. Authorization: 512 random bits from the operating system in
//!   one call, written as two token texts, their two digests, two inserts. Refresh:
//!   the digest of the presented token, one removal, then what authorization does.
//!
//! Each side starts with the same number of live grants ([`GRANTS`] in the
//! summary). The three sides of an operation
//! are timed in alternating rounds (see [`measure`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Duration as Span;
use criterion::black_box;
use oxide_auth::primitives::generator::RandomGenerator;
use oxide_auth::primitives::grant::{Extensions, Grant as PeerGrant};
use oxide_auth::primitives::issuer::{Issuer, TokenMap};
use oxide_auth::primitives::scope::Scope;
use tenure::{
    AuthorizeRequest, Digest, Engine, ManualClock, RefreshRequest, Secret, SecretBytes, SecretKind,
    Timestamp,
};
use tenure_memory::MemoryStorage;

use crate::fixture::{self, CLIENT, ZONE, epoch};
use crate::{OrDie, runtime, time_async};

/// Live grants on each side before anything is timed.
pub const GRANTS: u64 = 100_000;

/// The operations compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Checking a presented access token.
    Introspect,
    /// Issuing a grant with an access and a refresh token.
    Authorize,
    /// Rotating a grant's refresh token.
    Refresh,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 3] = [Op::Introspect, Op::Authorize, Op::Refresh];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Introspect => "introspect",
            Op::Authorize => "authorize",
            Op::Refresh => "refresh",
        }
    }

    /// The operation named `name`.
    pub fn named(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// tenure's side: the engine on memory, with its grants loaded as
/// authorization leaves them.
pub struct Tenure {
    grants: u64,
    runtime: tokio::runtime::Runtime,
    engine: Engine,
    /// Each grant's access token.
    access: Vec<Secret>,
    /// Each grant's current refresh token.
    refresh: Vec<Secret>,
    next_refresh: usize,
    next_user: u64,
}

impl Tenure {
    /// Opens it, loaded with `grants` grants.
    pub fn open(grants: u64) -> Tenure {
        let runtime = runtime();
        let storage = MemoryStorage::new();
        let clock = std::sync::Arc::new(ManualClock::new(epoch()));
        let engine = Engine::builder(std::sync::Arc::new(storage.clone()))
            .clock(clock)
            .build();
        runtime.block_on(async {
            engine
                .register_client(
                    ZONE,
                    tenure::ClientRegistration::new("Bench")
                        .id(CLIENT)
                        .scopes(["read", "write"]),
                )
                .await
                .or_die("registering the client");
            fixture::put_families(&storage, (0..grants).map(|i| fixture::family(i, 1)), 300).await;
        });
        Tenure {
            grants,
            runtime,
            engine,
            access: (0..grants)
                .map(|i| Secret::from_presented(fixture::access_secret(i, 1)))
                .collect(),
            refresh: (0..grants)
                .map(|i| {
                    Secret::from_presented(fixture::refresh_secret(i, 1, fixture::family_expiry()))
                })
                .collect(),
            next_refresh: 0,
            next_user: grants,
        }
    }

    /// Runs `op` `iters` times; the time it took.
    pub fn run(&mut self, op: Op, iters: u64) -> Duration {
        let engine = &self.engine;
        let grants = self.grants;
        match op {
            Op::Introspect => {
                let access = &self.access;
                time_async(&self.runtime, iters, |i| async move {
                    let secret = &access[(i % grants) as usize];
                    let answer = engine
                        .introspect(ZONE, secret.expose())
                        .await
                        .or_die("introspect");
                    assert!(black_box(answer).is_active(), "fixture token inactive");
                })
            }
            Op::Authorize => {
                let first = self.next_user;
                self.next_user += iters;
                time_async(&self.runtime, iters, |i| async move {
                    let request = AuthorizeRequest::new(
                        CLIENT,
                        fixture::user_id(first + i),
                        "resource-1",
                        ["read", "write"],
                    );
                    black_box(engine.authorize(ZONE, request).await.or_die("authorize"));
                })
            }
            Op::Refresh => {
                let refresh = std::cell::RefCell::new(std::mem::take(&mut self.refresh));
                let first = self.next_refresh;
                self.next_refresh = (first + iters as usize) % grants as usize;
                let tokens = &refresh;
                let took = time_async(&self.runtime, iters, |i| async move {
                    let at = (first + i as usize) % grants as usize;
                    let request = RefreshRequest::new(CLIENT, &tokens.borrow()[at]);
                    let issued = engine.refresh(ZONE, request).await.or_die("refresh");
                    tokens.borrow_mut()[at] = black_box(issued)
                        .refresh_token
                        .or_die("a rotated refresh token");
                });
                self.refresh = refresh.into_inner();
                took
            }
        }
    }
}

/// The peer's side: a `TokenMap` with its grants issued.
pub struct Peer {
    grants: u64,
    map: TokenMap<RandomGenerator>,
    /// A grant as an authorization endpoint hands it to `issue`.
    template: PeerGrant,
    access: Vec<String>,
    refresh: Vec<String>,
    next_refresh: usize,
    next_user: u64,
    now: Timestamp,
}

impl Peer {
    /// Opens it, loaded with `grants` grants.
    pub fn open(grants: u64) -> Peer {
        let mut map = TokenMap::new(RandomGenerator::new(32));
        let template = PeerGrant {
            owner_id: String::new(),
            client_id: CLIENT.to_owned(),
            scope: "read write".parse::<Scope>().or_die("a scope"),
            redirect_uri: "https://client.example/cb".parse().or_die("a URL"),
            until: fixture::family_expiry(),
            extensions: Extensions::new(),
        };
        let (mut access, mut refresh) = (Vec::new(), Vec::new());
        for i in 0..grants {
            let mut grant = template.clone();
            grant.owner_id = fixture::user_id(i);
            let issued = map.issue(grant).ok().or_die("issuing on the peer");
            access.push(issued.token);
            refresh.push(issued.refresh.or_die("a refresh token"));
        }
        Peer {
            grants,
            map,
            template,
            access,
            refresh,
            next_refresh: 0,
            next_user: grants,
            now: epoch(),
        }
    }

    /// Runs `op` `iters` times; the time it took.
    pub fn run(&mut self, op: Op, iters: u64) -> Duration {
        let start = Instant::now();
        match op {
            Op::Introspect => {
                for i in 0..iters {
                    let token = &self.access[(i % self.grants) as usize];
                    let grant = self.map.recover_token(token).ok().or_die("recover_token");
                    let live = grant.is_some_and(|g| g.until > self.now);
                    assert!(black_box(live), "peer token inactive");
                }
            }
            Op::Authorize => {
                for i in 0..iters {
                    let mut grant = self.template.clone();
                    grant.owner_id = fixture::user_id(self.next_user + i);
                    grant.until = self.now + Span::hours(1);
                    black_box(self.map.issue(grant).ok().or_die("issue"));
                }
                self.next_user += iters;
            }
            Op::Refresh => {
                for _ in 0..iters {
                    let at = self.next_refresh;
                    self.next_refresh = (at + 1) % self.grants as usize;
                    let token = &self.refresh[at];
                    let mut grant = self
                        .map
                        .recover_refresh(token)
                        .ok()
                        .or_die("recover_refresh")
                        .or_die("a live refresh token");
                    grant.until = self.now + Span::hours(1);
                    let rotated = self.map.refresh(token, grant).ok().or_die("refresh");
                    self.refresh[at] = black_box(rotated).refresh.or_die("a refresh token");
                }
            }
        }
        start.elapsed()
    }
}

/// What the floor keeps per token: its grant and its expiry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    grant: u32,
    expires_ms: i64,
}

/// The floor's side: a `HashMap` from digest to a token's grant and expiry.
pub struct Floor {
    grants: u64,
    map: HashMap<[u8; 32], Entry>,
    access: Vec<String>,
    /// Each grant's current refresh token.
    refresh: Vec<String>,
    next_refresh: usize,
    next_grant: u32,
    now_ms: i64,
}

impl Floor {
    /// Opens it, loaded with `grants` grants.
    pub fn open(grants: u64) -> Floor {
        let access: Vec<String> = (0..grants).map(|i| fixture::access_secret(i, 1)).collect();
        let expires_ms = fixture::family_expiry().timestamp_millis();
        let mut map = HashMap::new();
        let mut refresh = Vec::new();
        for (i, secret) in access.iter().enumerate() {
            let grant = i as u32;
            map.insert(*Digest::of(secret).as_bytes(), Entry { grant, expires_ms });
            let [_, next] = random_pair();
            map.insert(*Digest::of(&next).as_bytes(), Entry { grant, expires_ms });
            refresh.push(next);
        }
        Floor {
            grants,
            map,
            access,
            refresh,
            next_refresh: 0,
            next_grant: grants as u32,
            now_ms: epoch().timestamp_millis(),
        }
    }

    /// Two fresh secrets' digests inserted for `grant`; the second secret.
    fn issue(&mut self, grant: u32) -> String {
        let [access, refresh] = random_pair();
        let expires_ms = self.now_ms + 3_600_000;
        self.map
            .insert(*Digest::of(&access).as_bytes(), Entry { grant, expires_ms });
        self.map.insert(
            *Digest::of(&refresh).as_bytes(),
            Entry { grant, expires_ms },
        );
        refresh
    }

    /// Runs `op` `iters` times; the time it took.
    pub fn run(&mut self, op: Op, iters: u64) -> Duration {
        let start = Instant::now();
        match op {
            Op::Introspect => {
                for i in 0..iters {
                    let secret = &self.access[(i % self.grants) as usize];
                    let digest = Digest::of(secret);
                    let live = self
                        .map
                        .get(digest.as_bytes())
                        .is_some_and(|e| self.now_ms < e.expires_ms);
                    assert!(black_box(live), "floor token inactive");
                }
            }
            Op::Authorize => {
                for _ in 0..iters {
                    let grant = self.next_grant;
                    self.next_grant = grant.wrapping_add(1);
                    black_box(self.issue(grant));
                }
            }
            Op::Refresh => {
                for _ in 0..iters {
                    let at = self.next_refresh;
                    self.next_refresh = (at + 1) % self.grants as usize;
                    let digest = Digest::of(&self.refresh[at]);
                    let spent = self.map.remove(digest.as_bytes()).or_die("a live refresh");
                    self.refresh[at] = black_box(self.issue(spent.grant));
                }
            }
        }
        start.elapsed()
    }
}

/// Two token texts of 256 bits each, from 512 bits read from the operating
/// system in one call, written as tenure writes an access token.
fn random_pair() -> [String; 2] {
    let mut bits = [0u8; 64];
    getrandom::fill(&mut bits).or_die("reading random bits");
    let text = |half: &[u8]| {
        let bytes: [u8; 32] = half.try_into().unwrap_or([0; 32]);
        Secret::from_bits(SecretKind::AccessToken, &SecretBytes::from_bytes(bytes))
            .expose()
            .to_owned()
    };
    [text(&bits[..32]), text(&bits[32..])]
}

/// Nanoseconds per operation on each side of `op`, each side loaded with
/// `grants` grants: `(tenure, peer, floor)`, the medians of `rounds` alternating rounds, each long enough (at least `floor` of
/// tenure's time) to time reliably.
pub fn measure(op: Op, grants: u64, rounds: usize, floor: Duration) -> (f64, f64, f64) {
    let mut tenure = Tenure::open(grants);
    let mut peer = Peer::open(grants);
    let mut base = Floor::open(grants);
    let mut iters = 1;
    while tenure.run(op, iters) < floor && iters < 1 << 22 {
        iters *= 2;
    }
    // A warm-up round of each of the others.
    peer.run(op, iters);
    base.run(op, iters);
    let per_op = |d: Duration| d.as_nanos() as f64 / iters as f64;
    let (mut t, mut p, mut f) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        t.push(per_op(tenure.run(op, iters)));
        p.push(per_op(peer.run(op, iters)));
        f.push(per_op(base.run(op, iters)));
    }
    (median(t), median(p), median(f))
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}
