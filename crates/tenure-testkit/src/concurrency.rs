//! Concurrency scenarios: operations that race on one store must still leave it in a
//! state the rules allow.
//!
//! Each scenario is a `pub async fn` taking a fresh store. It spawns its racers with
//! `tokio::spawn`, so run it on a multi-threaded runtime to get real parallelism:
//!
//! ```
//! use std::sync::Arc;
//!
//! #[tokio::main(flavor = "multi_thread", worker_threads = 4)]
//! async fn main() {
//!     tenure_testkit::concurrency::refresh_raced_by_eight(Arc::new(
//!         tenure_memory::MemoryStorage::new(),
//!     ))
//!     .await;
//! }
//! ```
//!
//! Two kinds of scenario:
//!
//! - **Races** ([`refresh_raced_by_eight`], [`revoke_raced_by_refresh`],
//!   [`authorize_raced_by_sweep`]): racers start together behind a [`Barrier`];
//!   nothing waits on a timer. Each repeats its race a bounded number of times
//!   ([`ITERATIONS`]) to make harmful interleavings likely.
//! - **Interleavings** ([`refresh_after_a_competing_refresh`],
//!   [`token_revocation_after_a_competing_refresh`],
//!   [`refresh_after_a_competing_revocation`]): the one interleaving that matters,
//!   forced every time. The store is wrapped so that a competing operation commits
//!   between an operation's token read and its grant read.
//!
//! Every scenario panics with a description at the first state the rules do not
//! allow. The engines read a [`ManualClock`], so no token expires unless a scenario
//! says so.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Duration;
use tenure::device::DeviceAuthorization;
use tenure::personal::PersonalGrant;
use tenure::{
    AccessType, Actor, AuthorizeRequest, Client, ClientRegistration, Digest, Engine, Error, Grant,
    GrantFilter, GrantPage, GrantQuery, GrantStatus, GrantType, InvalidGrantReason, Issued, Keyset,
    ListGrants, ManualClock, RefreshRequest, Secret, SortOrder, Storage, Timestamp, Token,
    Transition, TransitionReason, Versioned, WriteSet,
};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

/// How many times each scenario repeats its race.
pub const ITERATIONS: usize = 32;

/// How many tasks present the same refresh token at once.
pub const RACERS: usize = 8;

const ZONE: &str = "zone-race";
const CLIENT: &str = "racer";
const RESOURCE: &str = "calendar";

fn start() -> Timestamp {
    chrono::DateTime::from_timestamp(1_893_456_000, 0).expect("2030-01-01 is a valid time")
}

async fn engine_with_client(storage: Arc<dyn Storage>) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let engine = Engine::builder(storage).clock(clock.clone()).build();
    engine
        .register_client(
            ZONE,
            ClientRegistration::new("Racer")
                .id(CLIENT)
                .scopes(["read", "write"]),
        )
        .await
        .expect("registering the racing client");
    (engine, clock)
}

async fn authorize(engine: &Engine, user: String) -> Issued {
    engine
        .authorize(
            ZONE,
            AuthorizeRequest::new(CLIENT, user, RESOURCE, ["read", "write"]),
        )
        .await
        .expect("authorizing")
}

async fn assert_inactive(engine: &Engine, what: &str, token: &Secret) {
    let answer = engine
        .introspect(ZONE, token.expose())
        .await
        .expect("introspecting");
    assert!(
        !answer.is_active(),
        "{what} is still active on a revoked grant: {answer:?}"
    );
}

async fn reasons(engine: &Engine, zone: &str, grant_id: &str) -> Vec<TransitionReason> {
    engine
        .grant_history(zone, grant_id)
        .await
        .expect("reading the history")
        .iter()
        .map(|t| t.reason)
        .collect()
}

/// Eight tasks present the same refresh token at once: exactly one gets new tokens,
/// the other seven get [`Error::RefreshTokenReused`], and the grant ends revoked for
/// reuse with every token of it, old and new, inactive.
///
/// # Panics
///
/// At the first outcome the rules do not allow.
pub async fn refresh_raced_by_eight(storage: Arc<dyn Storage>) {
    let (engine, _clock) = engine_with_client(storage).await;
    for iteration in 0..ITERATIONS {
        let issued = authorize(&engine, format!("user-{iteration}")).await;
        let refresh = issued
            .refresh_token
            .clone()
            .expect("an offline client gets a refresh token");
        let barrier = Arc::new(Barrier::new(RACERS));
        let mut racers = JoinSet::new();
        for _ in 0..RACERS {
            let (engine, barrier, token) = (engine.clone(), barrier.clone(), refresh.clone());
            racers.spawn(async move {
                barrier.wait().await;
                engine
                    .refresh(ZONE, RefreshRequest::new(CLIENT, &token))
                    .await
            });
        }
        let mut winners = Vec::new();
        let mut reused = 0;
        for outcome in racers.join_all().await {
            match outcome {
                Ok(won) => winners.push(won),
                Err(Error::RefreshTokenReused { grant_id }) => {
                    assert_eq!(grant_id, issued.grant.id, "reuse names another grant");
                    reused += 1;
                }
                Err(e) => panic!("iteration {iteration}: a racer failed with {e:?}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "iteration {iteration}: {} refreshes succeeded with one token",
            winners.len()
        );
        assert_eq!(
            reused,
            RACERS - 1,
            "iteration {iteration}: reuse not reported"
        );

        let grant = engine
            .get_grant(ZONE, &issued.grant.id)
            .await
            .expect("reading the grant");
        assert_eq!(grant.status, GrantStatus::Revoked, "iteration {iteration}");
        assert!(!grant.refresh_token_set, "iteration {iteration}");
        assert_eq!(
            reasons(&engine, ZONE, &issued.grant.id).await,
            [
                TransitionReason::Created,
                TransitionReason::Refreshed,
                TransitionReason::ReuseDetected
            ],
            "iteration {iteration}: history"
        );
        let won = &winners[0];
        assert_inactive(&engine, "the first access token", &issued.access_token).await;
        assert_inactive(&engine, "the raced refresh token", &refresh).await;
        assert_inactive(&engine, "the winner's access token", &won.access_token).await;
        let rotated = won
            .refresh_token
            .as_ref()
            .expect("the winner gets a refresh token");
        assert_inactive(&engine, "the winner's refresh token", rotated).await;
    }
}

/// How many grants see a revocation race a refresh at once, in each iteration of
/// [`revoke_raced_by_refresh`].
pub const PAIRS: usize = 8;

/// What one racing pair did.
struct PairOutcome {
    issued: Issued,
    whole_grant: bool,
    refreshed: tenure::Result<Issued>,
    revoked: tenure::Result<bool>,
}

/// A revocation races a refresh of the same grant, on [`PAIRS`] grants at once. Half
/// the pairs revoke the grant (`revoke_grant`), the others its refresh token
/// (RFC 7009). Whichever wins, a revoked grant never keeps an active token, including
/// one the refresh just issued; and a refresh-token revocation and a refresh of that
/// token never both succeed.
///
/// # Panics
///
/// At the first outcome the rules do not allow.
pub async fn revoke_raced_by_refresh(storage: Arc<dyn Storage>) {
    let (engine, _clock) = engine_with_client(storage).await;
    for iteration in 0..ITERATIONS {
        let barrier = Arc::new(Barrier::new(2 * PAIRS));
        let mut pairs = JoinSet::new();
        for pair in 0..PAIRS {
            let issued = authorize(&engine, format!("user-{iteration}-{pair}")).await;
            let refresh = issued
                .refresh_token
                .clone()
                .expect("an offline client gets a refresh token");
            let whole_grant = pair % 2 == 0;
            let refresher = {
                let (engine, barrier, token) = (engine.clone(), barrier.clone(), refresh.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    engine
                        .refresh(ZONE, RefreshRequest::new(CLIENT, &token))
                        .await
                })
            };
            let revoker = {
                let (engine, barrier) = (engine.clone(), barrier.clone());
                let grant_id = issued.grant.id.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    if whole_grant {
                        engine
                            .revoke_grant(ZONE, &grant_id, Actor::Admin)
                            .await
                            .map(|g| g.status == GrantStatus::Revoked)
                    } else {
                        engine.revoke_token(ZONE, refresh.expose(), None).await
                    }
                })
            };
            pairs.spawn(async move {
                PairOutcome {
                    issued,
                    whole_grant,
                    refreshed: refresher.await.expect("the refresher panicked"),
                    revoked: revoker.await.expect("the revoker panicked"),
                }
            });
        }
        for outcome in pairs.join_all().await {
            check_pair(&engine, iteration, outcome).await;
        }
    }
}

async fn check_pair(engine: &Engine, iteration: usize, outcome: PairOutcome) {
    let PairOutcome {
        issued,
        whole_grant,
        refreshed,
        revoked,
    } = outcome;
    let revoked =
        revoked.unwrap_or_else(|e| panic!("iteration {iteration}: revocation failed: {e:?}"));
    let won = match refreshed {
        Ok(won) => Some(won),
        Err(Error::InvalidGrant {
            reason: InvalidGrantReason::TokenRevoked,
        }) => None,
        Err(e) => panic!("iteration {iteration}: the refresh failed with {e:?}"),
    };
    if whole_grant {
        assert!(
            revoked,
            "iteration {iteration}: revoke_grant left it active"
        );
    } else {
        assert!(
            revoked != won.is_some(),
            "iteration {iteration}: refresh succeeded: {}, token revocation: {revoked}",
            won.is_some()
        );
    }

    let grant = engine
        .get_grant(ZONE, &issued.grant.id)
        .await
        .expect("reading the grant");
    assert_eq!(
        grant.status == GrantStatus::Revoked,
        revoked,
        "iteration {iteration}: the grant reads {}",
        grant.status
    );
    let refresh = issued
        .refresh_token
        .as_ref()
        .expect("an offline client gets a refresh token");
    if grant.status == GrantStatus::Revoked {
        assert_inactive(engine, "the first access token", &issued.access_token).await;
        assert_inactive(engine, "the first refresh token", refresh).await;
        if let Some(won) = &won {
            assert_inactive(engine, "the refreshed access token", &won.access_token).await;
            if let Some(rotated) = &won.refresh_token {
                assert_inactive(engine, "the rotated refresh token", rotated).await;
            }
        }
    } else {
        let won = won.expect("an active grant after the race was refreshed");
        assert!(
            engine
                .introspect(ZONE, won.access_token.expose())
                .await
                .expect("introspecting")
                .is_active(),
            "iteration {iteration}: the new access token of an active grant is inactive"
        );
    }
}

/// Grants being authorized while sweeps run and the clock moves: no grant is lost,
/// every one reads the status its expiry says, and once a final sweep is done no
/// expired grant is left stored active and no swept grant keeps a token.
///
/// Each round uses its own zone of the store. Half the grants go to a client whose
/// grants last one second, so the sweeps race with the very grants being created.
///
/// # Panics
///
/// At the first outcome the rules do not allow.
pub async fn authorize_raced_by_sweep(storage: Arc<dyn Storage>) {
    const ROUNDS: usize = ITERATIONS / 4;
    const AUTHORIZERS: usize = 4;
    const PER_AUTHORIZER: usize = 8;
    const EXPIRED_BEFORE: usize = 12;

    let clock = Arc::new(ManualClock::new(start()));
    let engine = Engine::builder(storage.clone())
        .clock(clock.clone())
        .build();
    for round in 0..ROUNDS {
        let zone: Arc<str> = format!("zone-sweep-{round}").into();
        for (id, seconds) in [("short", 1), ("long", 3600)] {
            engine
                .register_client(
                    &zone,
                    ClientRegistration::new(id)
                        .id(id)
                        .scopes(["read"])
                        .grants([GrantType::AuthorizationCode])
                        .access_type(AccessType::Online)
                        .lifetimes(seconds, seconds),
                )
                .await
                .expect("registering a client");
        }
        let mut created = Vec::new();
        for n in 0..EXPIRED_BEFORE {
            let issued = engine
                .authorize(
                    &zone,
                    AuthorizeRequest::new("short", format!("early-{n}"), RESOURCE, ["read"]),
                )
                .await
                .expect("authorizing before the race");
            created.push(issued.grant.id);
        }
        clock.advance(Duration::seconds(2));

        let barrier = Arc::new(Barrier::new(AUTHORIZERS + 2));
        let mut authorizers = JoinSet::new();
        for a in 0..AUTHORIZERS {
            let (engine, barrier, zone) = (engine.clone(), barrier.clone(), zone.clone());
            authorizers.spawn(async move {
                barrier.wait().await;
                let mut ids = Vec::new();
                for n in 0..PER_AUTHORIZER {
                    let client = if n % 2 == 0 { "short" } else { "long" };
                    let request =
                        AuthorizeRequest::new(client, format!("user-{a}-{n}"), RESOURCE, ["read"]);
                    match engine.authorize(&zone, request).await {
                        Ok(issued) => ids.push(issued.grant.id),
                        Err(e) => panic!("authorizing during the race failed with {e:?}"),
                    }
                    tokio::task::yield_now().await;
                }
                ids
            });
        }
        let sweeper = {
            let (engine, barrier, zone) = (engine.clone(), barrier.clone(), zone.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..4 * AUTHORIZERS * PER_AUTHORIZER {
                    if let Err(e) = engine.sweep_expired(&zone, 3).await {
                        panic!("sweeping during the race failed with {e:?}");
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let ticker = {
            let (clock, barrier) = (clock.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..PER_AUTHORIZER {
                    clock.advance(Duration::milliseconds(500));
                    tokio::task::yield_now().await;
                }
            })
        };
        for ids in authorizers.join_all().await {
            created.extend(ids);
        }
        sweeper.await.expect("the sweeper panicked");
        ticker.await.expect("the clock panicked");

        // Finish the sweep; each batch strictly shrinks what is left.
        for _ in 0..=created.len() {
            let report = engine
                .sweep_expired(&zone, 5)
                .await
                .expect("sweeping after the race");
            if !report.more {
                break;
            }
        }
        let now = engine.now();
        assert!(
            storage
                .expired_grants(&zone, now, created.len() + 1)
                .await
                .expect("reading the expiry index")
                .is_empty(),
            "round {round}: expired grants are still stored active after a full sweep"
        );
        for id in &created {
            let grant = engine
                .get_grant(&zone, id)
                .await
                .unwrap_or_else(|e| panic!("round {round}: grant {id} was lost: {e:?}"));
            let expected = if grant.expires_at <= now {
                GrantStatus::Expired
            } else {
                GrantStatus::Active
            };
            assert_eq!(grant.status, expected, "round {round}: grant {id}");
            let stored = storage
                .get_grant(&zone, id)
                .await
                .expect("reading the store")
                .expect("the grant is stored");
            assert_eq!(stored.record.status, expected, "round {round}: stored {id}");
            let history = reasons(&engine, &zone, id).await;
            let want_history: &[TransitionReason] = match expected {
                GrantStatus::Expired => &[TransitionReason::Created, TransitionReason::Expired],
                _ => &[TransitionReason::Created],
            };
            assert_eq!(history, want_history, "round {round}: history of {id}");
            if expected == GrantStatus::Expired {
                let tokens = storage
                    .grant_tokens(&zone, id)
                    .await
                    .expect("reading the tokens");
                assert!(
                    tokens.is_empty(),
                    "round {round}: swept grant {id} keeps {} tokens",
                    tokens.len()
                );
            }
        }
        let mut listed = Vec::new();
        let mut request = ListGrants {
            order: SortOrder::Ascending,
            limit: Some(7),
            ..ListGrants::default()
        };
        for _ in 0..=created.len() {
            let page = engine
                .list_grants(&zone, &request)
                .await
                .expect("listing the zone");
            listed.extend(page.items.into_iter().map(|g| g.id));
            match page.after_cursor {
                Some(after) => request.after = Some(after),
                None => break,
            }
        }
        let mut want = created.clone();
        want.sort();
        listed.sort();
        assert_eq!(
            listed, want,
            "round {round}: the listing differs from the grants made"
        );
    }
}

// ----- deterministic interleavings -----

type Interjection = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A store that, once armed, runs a competing operation to completion right before
/// the next grant read: the moment between an operation's token read and its grant
/// read, where a concurrent commit lands in a real race.
struct Interleaved {
    inner: Arc<dyn Storage>,
    before_grant_read: Mutex<Option<Interjection>>,
}

impl fmt::Debug for Interleaved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interleaved")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Interleaved {
    fn new(inner: Arc<dyn Storage>) -> Self {
        Interleaved {
            inner,
            before_grant_read: Mutex::new(None),
        }
    }

    fn arm(&self, competing: impl Future<Output = ()> + Send + 'static) {
        *self
            .before_grant_read
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Box::pin(competing));
    }
}

#[async_trait]
impl Storage for Interleaved {
    async fn zones(&self, after: Option<&str>, limit: usize) -> tenure::Result<Vec<String>> {
        self.inner.zones(after, limit).await
    }

    async fn get_client(
        &self,
        zone_id: &str,
        id: &str,
    ) -> tenure::Result<Option<Versioned<Client>>> {
        self.inner.get_client(zone_id, id).await
    }

    async fn list_clients(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<Client>>> {
        self.inner.list_clients(zone_id, after, limit).await
    }

    async fn get_grant(&self, zone_id: &str, id: &str) -> tenure::Result<Option<Versioned<Grant>>> {
        let competing = self
            .before_grant_read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(competing) = competing {
            competing.await;
        }
        self.inner.get_grant(zone_id, id).await
    }

    async fn list_grants(&self, query: &GrantQuery) -> tenure::Result<GrantPage> {
        self.inner.list_grants(query).await
    }

    async fn count_grants(
        &self,
        zone_id: &str,
        filter: &GrantFilter,
        now: Timestamp,
    ) -> tenure::Result<u64> {
        self.inner.count_grants(zone_id, filter, now).await
    }

    async fn expired_grants(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<Grant>>> {
        self.inner.expired_grants(zone_id, now, limit).await
    }

    async fn grant_history(
        &self,
        zone_id: &str,
        grant_id: &str,
    ) -> tenure::Result<Vec<Transition>> {
        self.inner.grant_history(zone_id, grant_id).await
    }

    async fn get_token(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> tenure::Result<Option<Versioned<Token>>> {
        self.inner.get_token(zone_id, digest).await
    }

    async fn grant_tokens(
        &self,
        zone_id: &str,
        grant_id: &str,
    ) -> tenure::Result<Vec<Versioned<Token>>> {
        self.inner.grant_tokens(zone_id, grant_id).await
    }

    async fn expired_tokens(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<Token>>> {
        self.inner.expired_tokens(zone_id, now, limit).await
    }

    async fn get_personal_grant(
        &self,
        zone_id: &str,
        id: &str,
    ) -> tenure::Result<Option<Versioned<PersonalGrant>>> {
        self.inner.get_personal_grant(zone_id, id).await
    }

    async fn list_personal_grants(
        &self,
        zone_id: &str,
        user_id: &str,
        after: Option<&Keyset>,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<PersonalGrant>>> {
        self.inner
            .list_personal_grants(zone_id, user_id, after, limit)
            .await
    }

    async fn list_zone_personal_grants(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<PersonalGrant>>> {
        self.inner
            .list_zone_personal_grants(zone_id, after, limit)
            .await
    }

    async fn get_device_authorization(
        &self,
        zone_id: &str,
        device_code: &Digest,
    ) -> tenure::Result<Option<Versioned<DeviceAuthorization>>> {
        self.inner
            .get_device_authorization(zone_id, device_code)
            .await
    }

    async fn find_device_authorization(
        &self,
        zone_id: &str,
        user_code: &str,
    ) -> tenure::Result<Option<Versioned<DeviceAuthorization>>> {
        self.inner
            .find_device_authorization(zone_id, user_code)
            .await
    }

    async fn expired_device_authorizations(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<DeviceAuthorization>>> {
        self.inner
            .expired_device_authorizations(zone_id, now, limit)
            .await
    }

    async fn list_device_authorizations(
        &self,
        zone_id: &str,
        after: Option<&Digest>,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<DeviceAuthorization>>> {
        self.inner
            .list_device_authorizations(zone_id, after, limit)
            .await
    }

    async fn get_authorization_code(
        &self,
        zone_id: &str,
        code: &Digest,
    ) -> tenure::Result<Option<Versioned<tenure::AuthorizationCode>>> {
        self.inner.get_authorization_code(zone_id, code).await
    }

    async fn expired_authorization_codes(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<tenure::AuthorizationCode>>> {
        self.inner
            .expired_authorization_codes(zone_id, now, limit)
            .await
    }

    async fn apply(&self, set: WriteSet) -> tenure::Result<()> {
        self.inner.apply(set).await
    }
}

/// Two engines on one clock: `direct` on the store, `interleaved` on an
/// [`Interleaved`] view of it; a client registered and one grant authorized.
async fn interleaving(storage: Arc<dyn Storage>) -> (Engine, Engine, Arc<Interleaved>, Issued) {
    let interleaved = Arc::new(Interleaved::new(storage.clone()));
    let (direct, clock) = engine_with_client(storage).await;
    let racing = Engine::builder(interleaved.clone()).clock(clock).build();
    let issued = authorize(&direct, "alice".to_owned()).await;
    (direct, racing, interleaved, issued)
}

/// Arms `interleaved` with a refresh of `token` through `direct`, and returns where
/// its outcome will be.
fn arm_refresh(
    interleaved: &Interleaved,
    direct: &Engine,
    token: &Secret,
) -> Arc<Mutex<Option<tenure::Result<Issued>>>> {
    let outcome = Arc::new(Mutex::new(None));
    let (direct, token, slot) = (direct.clone(), token.clone(), outcome.clone());
    interleaved.arm(async move {
        let refreshed = direct
            .refresh(ZONE, RefreshRequest::new(CLIENT, &token))
            .await;
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(refreshed);
    });
    outcome
}

fn competing_outcome(slot: &Mutex<Option<tenure::Result<Issued>>>) -> Issued {
    slot.lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .expect("the competing refresh ran")
        .expect("the competing refresh succeeded")
}

/// A refresh reads its token, then another refresh of the same token commits, then
/// the first reads the grant. The first must be answered as reuse (the token is
/// spent by then) and revoke the grant; it must never succeed as well.
///
/// # Panics
///
/// If the stale refresh is answered otherwise.
pub async fn refresh_after_a_competing_refresh(storage: Arc<dyn Storage>) {
    let (direct, racing, interleaved, issued) = interleaving(storage).await;
    let token = issued
        .refresh_token
        .expect("an offline client gets a refresh token");
    let competing = arm_refresh(&interleaved, &direct, &token);
    let answer = racing
        .refresh(ZONE, RefreshRequest::new(CLIENT, &token))
        .await;
    let won = competing_outcome(&competing);
    assert!(
        matches!(answer, Err(Error::RefreshTokenReused { .. })),
        "a refresh of a token spent while it ran answered {answer:?}"
    );
    let grant = direct
        .get_grant(ZONE, &issued.grant.id)
        .await
        .expect("reading the grant");
    assert_eq!(
        grant.status,
        GrantStatus::Revoked,
        "reuse must revoke the grant"
    );
    assert_inactive(
        &direct,
        "the competing refresh's access token",
        &won.access_token,
    )
    .await;
}

/// A token revocation reads the refresh token, then a refresh of it commits, then
/// the revocation reads the grant. The token is spent by then, so the revocation
/// must change nothing and say so; the refreshed tokens stay active.
///
/// # Panics
///
/// If the stale revocation revokes anything.
pub async fn token_revocation_after_a_competing_refresh(storage: Arc<dyn Storage>) {
    let (direct, racing, interleaved, issued) = interleaving(storage).await;
    let token = issued
        .refresh_token
        .expect("an offline client gets a refresh token");
    let competing = arm_refresh(&interleaved, &direct, &token);
    let revoked = racing
        .revoke_token(ZONE, token.expose(), None)
        .await
        .expect("revoking the token");
    let won = competing_outcome(&competing);
    assert!(
        !revoked,
        "a token spent before the revocation read its grant was revoked"
    );
    let grant = direct
        .get_grant(ZONE, &issued.grant.id)
        .await
        .expect("reading the grant");
    assert_eq!(grant.status, GrantStatus::Active, "the grant was revoked");
    assert!(
        direct
            .introspect(ZONE, won.access_token.expose())
            .await
            .expect("introspecting")
            .is_active(),
        "the refreshed access token was revoked"
    );
}

/// A refresh reads its token, then the grant is revoked, then the refresh reads the
/// grant. The token is revoked by then: the answer is
/// [`InvalidGrantReason::TokenRevoked`], as for a refresh that came after.
///
/// # Panics
///
/// If the refresh is answered otherwise.
pub async fn refresh_after_a_competing_revocation(storage: Arc<dyn Storage>) {
    let (direct, racing, interleaved, issued) = interleaving(storage).await;
    let token = issued
        .refresh_token
        .expect("an offline client gets a refresh token");
    let (engine, grant_id) = (direct.clone(), issued.grant.id.clone());
    interleaved.arm(async move {
        engine
            .revoke_grant(ZONE, &grant_id, Actor::Admin)
            .await
            .expect("the competing revocation");
    });
    let answer = racing
        .refresh(ZONE, RefreshRequest::new(CLIENT, &token))
        .await;
    assert!(
        matches!(
            answer,
            Err(Error::InvalidGrant {
                reason: InvalidGrantReason::TokenRevoked
            })
        ),
        "a refresh of a token revoked while it ran answered {answer:?}"
    );
}
