//! The async engine: loads records, applies the lifecycle rules, commits write sets.
//!
//! Every public operation runs in a `tracing` span and is counted through the
//! `metrics` facade, here rather than in the backends, so that every store reports
//! the same; [`Engine`]'s documentation lists the spans, events and metrics.
//! Conflicts are retried by one policy ([`retry`]), never by a backend as well.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use tracing::field::Empty;

mod client_auth;
mod clients;
mod codes;
mod device;
mod machine;
mod observe;
mod personal;
mod retry;

pub use client_auth::{ClientCredentials, MAX_SECRET_OVERLAP};
pub use clients::{ClientChange, ClientPage};
pub use codes::IssuedCode;
pub use device::{DeviceAuthorizationPage, DevicePoll, DeviceRequest, DeviceStart, GuessLimits};
pub use machine::ClientCredentialsRequest;
pub use personal::PersonalGrantPage;

use crate::client::{GrantsNothing, PermissionResolver};
use crate::code::{AuthorizationCode, PkceRequirement};
use crate::cursor::{self, CursorKey, Listing};
use crate::error::{Error, InvalidGrantReason, RecordKind, Result};
use crate::event::{Event, EventSubscriber};
use crate::lifecycle::{self, Changes, Fresh, Introspection, NewGrant, RefreshOutcome};
use crate::model::{
    Actor, Client, Grant, GrantStatus, GrantType, Token, TokenKind, Transition, TransitionReason,
};
use crate::secret::{Digest, Secret, SecretBytes};
use crate::storage::{
    Expect, GrantFilter, GrantPage, GrantQuery, Keyset, Position, RecordKey, SortOrder, Storage,
    Versioned, Write, WriteSet,
};
use crate::time::{Clock, SystemClock, Timestamp, to_millis};
use crate::validate;
use observe::Outcome;

/// How many times an operation whose write set met a concurrent change is attempted
/// in all, by default.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 16;

/// The longest wait before the second retry, by default: 1 ms (the first retry is
/// immediate). Each later retry may wait up to twice as long as the one before.
pub const DEFAULT_RETRY_BASE_DELAY: std::time::Duration = std::time::Duration::from_millis(1);

/// The longest any retry waits, by default: 50 ms.
pub const DEFAULT_RETRY_MAX_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Tunables of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How many times an operation is attempted in all when its write set keeps
    /// meeting concurrent changes ([`DEFAULT_MAX_ATTEMPTS`]); then the operation fails
    /// with [`Error::Conflict`]. Each attempt reads afresh and decides again.
    pub max_attempts: u32,
    /// The ceiling of the wait before the second retry (`DEFAULT_RETRY_BASE_DELAY`,
    /// 1 ms).
    /// The first retry follows at once; before each later one the engine waits a
    /// random time between zero and a ceiling that starts here and doubles with each
    /// attempt ("full jitter"), up to [`retry_max_delay`](Self::retry_max_delay).
    pub retry_base_delay: std::time::Duration,
    /// The highest ceiling of a wait between attempts (`DEFAULT_RETRY_MAX_DELAY`,
    /// 50 ms).
    pub retry_max_delay: std::time::Duration,
    /// How long after a refresh the spent refresh token may still be redeemed, for a
    /// client that lost the response. Zero (the default) makes every second
    /// presentation reuse.
    pub reuse_grace: Duration,
    /// A client's `last_used_at` is written at most once per this period, however
    /// often it is used; one day by default.
    pub last_used_period: Duration,
    /// How long a device code and its user code live (RFC 8628); ten minutes by
    /// default.
    pub device_code_lifetime: Duration,
    /// The device polling interval to start with, in seconds; 5 by default.
    pub device_poll_interval: u32,
    /// Limits on wrong user-code guesses.
    pub user_code_guesses: GuessLimits,
    /// How long an authorization code lives: 60 seconds by default, at most
    /// [`MAX_CODE_LIFETIME`](crate::code::MAX_CODE_LIFETIME) (a longer setting is
    /// held to it).
    pub code_lifetime: Duration,
    /// Which clients must use PKCE; public clients by default.
    pub pkce: PkceRequirement,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_base_delay: DEFAULT_RETRY_BASE_DELAY,
            retry_max_delay: DEFAULT_RETRY_MAX_DELAY,
            reuse_grace: Duration::zero(),
            last_used_period: Duration::days(1),
            device_code_lifetime: Duration::minutes(10),
            device_poll_interval: crate::device::DEFAULT_INTERVAL_SECONDS,
            user_code_guesses: GuessLimits::default(),
            code_lifetime: crate::code::DEFAULT_CODE_LIFETIME,
            pkce: PkceRequirement::default(),
        }
    }
}

/// Builds an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    subscribers: Vec<Arc<dyn EventSubscriber>>,
    resolver: Arc<dyn PermissionResolver>,
    cursor_key: CursorKey,
    sleep: retry::RetrySleep,
}

impl EngineBuilder {
    /// Uses this clock instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses this configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the refresh-token reuse grace window (default zero).
    pub fn reuse_grace(mut self, grace: Duration) -> Self {
        self.config.reuse_grace = grace;
        self
    }

    /// Adds a subscriber for committed events.
    pub fn subscriber(mut self, subscriber: Arc<dyn EventSubscriber>) -> Self {
        self.subscribers.push(subscriber);
        self
    }

    /// Uses the host's answer to "which scopes can this account grant?".
    pub fn permission_resolver(mut self, resolver: Arc<dyn PermissionResolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Signs pagination cursors with this key (see [`crate::cursor`]).
    pub fn cursor_key(mut self, key: CursorKey) -> Self {
        self.cursor_key = key;
        self
    }

    /// Waits between conflict retries with this function instead of Tokio's timer
    /// (`tokio::time::sleep`, the default, which needs a Tokio runtime with its time
    /// driver enabled): a host on another runtime passes its own timer, and a test
    /// can watch the waits. It is called before every retry with the delay drawn by
    /// the retry policy (see [`EngineConfig::retry_base_delay`]); a zero delay (the
    /// first retry's) is not passed on.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tenure::Engine;
    /// # use tenure_memory::MemoryStorage;
    /// let engine = Engine::builder(Arc::new(MemoryStorage::new()))
    ///     .retry_sleep(tokio::time::sleep)
    ///     .build();
    /// # let _ = engine;
    /// ```
    pub fn retry_sleep<F, Fut>(mut self, sleep: F) -> Self
    where
        F: Fn(std::time::Duration) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.sleep = retry::RetrySleep::new(sleep);
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                storage: self.storage,
                clock: self.clock,
                config: self.config,
                subscribers: self.subscribers,
                resolver: self.resolver,
                cursor_key: self.cursor_key,
                sleep: self.sleep,
                ids: Mutex::new(uuid::ContextV7::new()),
                guesses: device::GuessCounter::default(),
            }),
        }
    }
}

#[derive(Debug)]
struct Inner {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    subscribers: Vec<Arc<dyn EventSubscriber>>,
    resolver: Arc<dyn PermissionResolver>,
    cursor_key: CursorKey,
    sleep: retry::RetrySleep,
    ids: Mutex<uuid::ContextV7>,
    guesses: device::GuessCounter,
}

/// The grant-lifecycle engine. Cheap to clone; clones share everything.
///
/// # Conflicts
///
/// An operation whose write set met a concurrent change reads afresh, decides again
/// and commits again, up to [`EngineConfig::max_attempts`] times in all; the first
/// retry follows at once, each later one after a random wait below a ceiling that
/// doubles from [`EngineConfig::retry_base_delay`] up to
/// [`EngineConfig::retry_max_delay`]. This is the only retry loop: backends report
/// a conflict (PostgreSQL's serialization failures and deadlocks included) and never
/// retry it themselves, so attempts do not multiply.
///
/// # Traces and logs
///
/// Every public operation runs in a [`tracing`] span named after it (target
/// `tenure::engine`): at `INFO` for operations that change something, at `DEBUG`
/// for reads. Its fields are the `zone`, and the `grant_id` or `client_id` where the
/// operation knows it (a refresh learns its grant's id from the token, and records it
/// then), and, for operations that commit, `attempt`: how many attempts it took. No
/// span or event ever carries a token, a secret, a digest of one, or a password.
///
/// | event | level | fields |
/// | --- | --- | --- |
/// | refresh-token reuse detected (the grant is revoked) | `WARN` | `zone`, `grant_id`, `client_id` |
/// | grant revoked, token revoked, grant deleted | `INFO` | `zone`, `grant_id`, `reason`, `actor` |
/// | client registered or updated | `INFO` | `zone`, `client_id` |
/// | grant created, refreshed, expired | `DEBUG` | `zone`, `grant_id` |
/// | conflict, retrying | `DEBUG` | `operation`, `attempt`, `delay_us` |
/// | storage failed | `ERROR` | `operation`, `error` (the error and all its causes) |
/// | storage unavailable, conflicts outlasted every attempt | `WARN` | `operation`, `error` |
///
/// Events about records are logged once their change has committed, as
/// [`EventSubscriber`]s hear of them.
///
/// # Metrics
///
/// Recorded through the [`metrics`](https://docs.rs/metrics) facade; the host
/// installs a recorder (a Prometheus exporter, say). Without one, recording does
/// nothing. [`Engine::describe_metrics`] gives them their descriptions.
///
/// | metric | kind | labels | what |
/// | --- | --- | --- | --- |
/// | `tenure_engine_operations_total` | counter | `operation`, `outcome` | public operations by how they ended |
/// | `tenure_engine_conflict_retries_total` | counter | `operation` | attempts made again after a conflict |
/// | `tenure_sweep_expired_total` | counter | | grants whose expiry a sweep persisted |
/// | `tenure_sweep_tokens_removed_total` | counter | | expired tokens a sweep deleted |
/// | `tenure_sweep_devices_removed_total` | counter | | expired device authorizations a sweep deleted |
/// | `tenure_sweep_codes_removed_total` | counter | | expired authorization codes a sweep deleted |
/// | `tenure_store_apply_seconds` | histogram | | time of each [`Storage::apply`], committed or not |
///
/// `operation` is the method's name (`refresh`, `revoke_grant`, …; the client
/// updates `update_client`, `patch_client` and `merge_client` count as
/// `change_client`). `outcome` is one of:
///
/// | outcome | meaning |
/// | --- | --- |
/// | `ok` | done, or nothing needed doing |
/// | `rotated` | a refresh token was rotated |
/// | `revoked` | a grant or token was revoked |
/// | `reuse_detected` | a spent refresh token was presented; its grant was revoked |
/// | `not_found` | the record asked for does not exist |
/// | `refused` | a rule or validation refused the request ([`Error`]'s other variants) |
/// | `conflict_exhausted` | concurrent changes outlasted every attempt ([`Error::Conflict`]) |
/// | `unavailable` | the store could not be reached ([`Error::Unavailable`]) |
/// | `error` | the store failed ([`Error::Backend`]) |
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// A request to create a grant (an authorization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// The client the grant is made to.
    pub client_id: String,
    /// The user granting.
    pub user_id: String,
    /// The resource the grant is for.
    pub resource_id: String,
    /// The provider issuing it.
    pub provider_id: String,
    /// The organization; the client's when `None`.
    pub organization_id: Option<String>,
    /// The scopes.
    pub scopes: Vec<String>,
    /// The grant's expiry; by default the refresh-token lifetime of an offline
    /// client, or the access-token lifetime of an online one.
    pub expires_at: Option<Timestamp>,
    /// The grant type it is made through; `authorization_code` by default.
    pub grant_type: GrantType,
}

impl AuthorizeRequest {
    /// A request for `user_id` to grant `scopes` on `resource_id` to `client_id`,
    /// through provider `default`.
    pub fn new<S: Into<String>>(
        client_id: impl Into<String>,
        user_id: impl Into<String>,
        resource_id: impl Into<String>,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        AuthorizeRequest {
            client_id: client_id.into(),
            user_id: user_id.into(),
            resource_id: resource_id.into(),
            provider_id: "default".into(),
            organization_id: None,
            scopes: scopes.into_iter().map(Into::into).collect(),
            expires_at: None,
            grant_type: GrantType::AuthorizationCode,
        }
    }

    /// Sets the grant's expiry.
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// A refresh request (RFC 6749 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRequest {
    /// The client presenting the token.
    pub client_id: String,
    /// The refresh token, as presented.
    pub refresh_token: Secret,
    /// The scopes asked for; the grant's when `None`.
    pub scopes: Option<Vec<String>>,
}

impl RefreshRequest {
    /// A refresh of `refresh_token` by `client_id` for the grant's scopes.
    pub fn new(client_id: impl Into<String>, refresh_token: &Secret) -> Self {
        RefreshRequest {
            client_id: client_id.into(),
            refresh_token: refresh_token.clone(),
            scopes: None,
        }
    }

    /// Asks for these scopes.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }
}

/// Tokens just issued, with their plaintexts, shown this once.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The grant they carry, as it now reads.
    pub grant: Grant,
    /// The access token.
    pub access_token: Secret,
    /// The refresh token, when one was issued.
    pub refresh_token: Option<Secret>,
    /// The access token's scopes.
    pub scopes: Vec<String>,
    /// The access token's expiry.
    pub access_expires_at: Timestamp,
    /// The time of issue.
    pub issued_at: Timestamp,
}

impl Issued {
    /// Seconds until the access token expires (`expires_in`).
    pub fn expires_in(&self) -> i64 {
        (self.access_expires_at - self.issued_at).num_seconds()
    }
}

/// A listing request, as the seed API has it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListGrants {
    /// Only this user's grants.
    pub user_id: Option<String>,
    /// Only grants on this resource.
    pub resource_id: Option<String>,
    /// Only grants to this client.
    pub client_id: Option<String>,
    /// Only grants with this status, as it reads now.
    pub status: Option<GrantStatus>,
    /// `active=true`: only active grants. Combined with `status`, both must hold.
    pub active: bool,
    /// The order; newest first by default.
    pub order: SortOrder,
    /// Items after this cursor.
    pub after: Option<String>,
    /// Items immediately before this cursor, in the same order.
    pub before: Option<String>,
    /// Page size, 1 to 100; 50 by default.
    pub limit: Option<usize>,
    /// Whether to count every matching grant.
    pub total_count: bool,
}

/// A page of grants with its cursors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// The grants, as they read now.
    pub items: Vec<Grant>,
    /// Present when more items follow: pass it as `after`.
    pub after_cursor: Option<String>,
    /// Present when items precede: pass it as `before`.
    pub before_cursor: Option<String>,
    /// Every matching grant, when asked for.
    pub total_count: Option<u64>,
}

/// Whose grants a bulk revocation takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantsOf {
    /// Every grant a user made.
    User(String),
    /// Every grant to a client.
    Client(String),
    /// Every grant on a resource.
    Resource(String),
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepReport {
    /// Grants whose expiry was persisted.
    pub expired: usize,
    /// Expired tokens deleted.
    pub tokens_removed: usize,
    /// Expired device authorizations deleted.
    pub devices_removed: usize,
    /// Expired authorization codes deleted.
    pub codes_removed: usize,
    /// Whether expired grants or tokens remain beyond the batch.
    pub more: bool,
}

/// The versions of the records a rule decided on, which the commit expects.
#[derive(Debug, Default)]
struct Read {
    /// The zone.
    zone_id: String,
    /// The grant's id and version, if one was read.
    grant: Option<(String, u64)>,
    /// The versions of the tokens read.
    tokens: HashMap<Digest, u64>,
    /// The client's version, if it was read.
    client: Option<u64>,
    /// A device authorization to write, at the version it was read at.
    device: Option<(crate::device::DeviceAuthorization, u64)>,
    /// An authorization code to write, at the version it was read at.
    code: Option<(AuthorizationCode, u64)>,
}

impl Read {
    fn zone(zone_id: &str) -> Read {
        Read {
            zone_id: zone_id.to_owned(),
            ..Read::default()
        }
    }

    fn grant(mut self, grant: &Versioned<Grant>) -> Read {
        self.grant = Some((grant.record.id.clone(), grant.version));
        self
    }

    fn token(mut self, token: &Versioned<Token>) -> Read {
        self.tokens.insert(token.record.digest, token.version);
        self
    }
}

impl Engine {
    /// An engine over `storage` with the system clock and default settings.
    pub fn new(storage: impl Storage) -> Engine {
        Engine::builder(Arc::new(storage)).build()
    }

    /// A builder over `storage`.
    pub fn builder(storage: Arc<dyn Storage>) -> EngineBuilder {
        EngineBuilder {
            storage,
            clock: Arc::new(SystemClock),
            config: EngineConfig::default(),
            subscribers: Vec::new(),
            resolver: Arc::new(GrantsNothing),
            cursor_key: CursorKey::default(),
            sleep: retry::RetrySleep::default(),
        }
    }

    /// The zones of the store (those holding a client or a grant), in byte order,
    /// after `after`, at most `limit` (1 to 1,000): what a background sweeper
    /// visits. A cheap read, so it also tells whether the store answers.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn zones(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let result = async {
            if !(1..=1000).contains(&limit) {
                return Err(Error::invalid_input("limit", "must be between 1 and 1000"));
            }
            if let Some(a) = after {
                validate::reference("after", a)?;
            }
            self.inner.storage.zones(after, limit).await
        }
        .await;
        observe::finish_ok("zones", result)
    }

    /// Describes every metric the engine records (see [Metrics](Engine#metrics)) to
    /// the installed `metrics` recorder, with its unit. Call it once, after
    /// installing the recorder; without one it does nothing.
    pub fn describe_metrics() {
        observe::describe();
    }

    /// The store under the engine.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// The current time, to the millisecond.
    pub fn now(&self) -> Timestamp {
        to_millis(self.inner.clock.now())
    }

    fn new_id(&self, now: Timestamp) -> String {
        let ctx = self.inner.ids.lock().unwrap_or_else(|e| e.into_inner());
        let secs = u64::try_from(now.timestamp()).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(&*ctx, secs, now.timestamp_subsec_nanos());
        uuid::Uuid::new_v7(ts).to_string()
    }

    fn publish(&self, events: &[Event]) {
        for event in events {
            observe::committed(event);
            for subscriber in &self.inner.subscribers {
                subscriber.notify(event);
            }
        }
    }

    /// Runs `attempt` until its write set commits, at most
    /// [`EngineConfig::max_attempts`] times, waiting between attempts as the retry
    /// policy says, and records the number of attempts in the current span's
    /// `attempt` field. Only [`Error::Conflict`] is retried.
    async fn retrying<T, F, Fut>(&self, operation: &'static str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let config = &self.inner.config;
        let max = config.max_attempts.max(1);
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            match attempt().await {
                Err(Error::Conflict) if attempts < max => {
                    let delay =
                        retry::delay(attempts, config.retry_base_delay, config.retry_max_delay);
                    observe::conflict_retry(operation, attempts, delay);
                    self.inner.sleep.sleep(delay).await;
                }
                other => break other,
            }
        };
        tracing::Span::current().record("attempt", attempts);
        result
    }

    /// Applies a write set, timing it.
    async fn apply(&self, set: WriteSet) -> Result<()> {
        let started = std::time::Instant::now();
        let result = self.inner.storage.apply(set).await;
        observe::apply_took(started.elapsed());
        result
    }

    /// Commits the changes a rule decided, expecting every record it read at the
    /// version it was read at. A grant that was read but is not written is checked
    /// ([`Write::Check`]) rather than rewritten.
    async fn commit(&self, changes: &Changes, read: Read) -> Result<()> {
        if changes.is_empty() && read.device.is_none() && read.code.is_none() {
            return Ok(());
        }
        let mut set = WriteSet::new();
        if let Some((code, version)) = read.code {
            set.push(Write::PutAuthorizationCode {
                code,
                expect: Expect::Version(version),
            });
        }
        if let Some((device, version)) = read.device {
            set.push(Write::PutDeviceAuthorization {
                device,
                expect: Expect::Version(version),
            });
        }
        if let Some(client) = &changes.client {
            set.push(Write::PutClient {
                client: client.clone(),
                expect: Expect::Version(read.client.ok_or(Error::Conflict)?),
            });
        }
        match (&changes.grant, &read.grant) {
            (Some(grant), read_grant) => {
                let expect = read_grant
                    .as_ref()
                    .map_or(Expect::Absent, |(_, v)| Expect::Version(*v));
                set.push(Write::PutGrant {
                    grant: grant.clone(),
                    expect,
                });
            }
            (None, Some((id, version))) => {
                set.push(Write::Check {
                    record: RecordKey::Grant {
                        zone_id: read.zone_id.clone(),
                        id: id.clone(),
                    },
                    expect: Expect::Version(*version),
                });
            }
            (None, None) => {}
        }
        for token in &changes.updated_tokens {
            let version = read
                .tokens
                .get(&token.digest)
                .copied()
                .ok_or(Error::Conflict)?;
            set.push(Write::PutToken {
                token: token.clone(),
                expect: Expect::Version(version),
            });
        }
        for token in &changes.issued_tokens {
            set.push(Write::PutToken {
                token: token.clone(),
                expect: Expect::Absent,
            });
        }
        for digest in &changes.removed_tokens {
            let version = read.tokens.get(digest).copied().ok_or(Error::Conflict)?;
            set.push(Write::DeleteToken {
                zone_id: read.zone_id.clone(),
                digest: *digest,
                expect: version,
            });
        }
        for t in &changes.transitions {
            set.push(Write::AppendTransition(t.clone()));
        }
        self.apply(set).await
    }

    fn fresh(&self, now: Timestamp) -> Result<Fresh> {
        let [access, refresh, family] = SecretBytes::generate_many::<3>()?;
        Ok(Fresh {
            grant_id: self.new_id(now),
            access,
            refresh,
            family,
        })
    }

    // ----- grants -----

    /// Creates a grant and issues its access token, and a refresh token when the
    /// client is offline-access and allows `refresh_token`.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            client_id = request.client_id.as_str(),
            grant_id = Empty,
            attempt = Empty
        )
    )]
    pub async fn authorize(&self, zone_id: &str, request: AuthorizeRequest) -> Result<Issued> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            validate::record_id("client_id", &request.client_id)?;
            validate::reference("user_id", &request.user_id)?;
            validate::reference("resource_id", &request.resource_id)?;
            validate::provider("provider_id", &request.provider_id)?;
            if let Some(org) = &request.organization_id {
                validate::reference("organization_id", org)?;
            }
            if request.grant_type == GrantType::ClientCredentials {
                // A client's own tokens come from `client_credentials` alone, under
                // its rules (confidential clients, no refresh token).
                return Err(Error::invalid_input(
                    "grant_type",
                    "client_credentials grants are made by Engine::client_credentials",
                ));
            }
            let scopes = validate::scopes("scopes", &request.scopes)?;
            let expires_at = request.expires_at.map(to_millis);
            self.retrying("authorize", || async {
                let stored = self.load_client(zone_id, &request.client_id).await?;
                let client = stored.record;
                let now = self.now();
                let allowed = self
                    .allowed_scopes(&client, &request.user_id, &scopes)
                    .await?;
                let fresh = self.fresh(now)?;
                let (grant, mut changes) = lifecycle::authorize(
                    &client,
                    &allowed,
                    NewGrant {
                        zone_id: zone_id.to_owned(),
                        organization_id: request
                            .organization_id
                            .clone()
                            .unwrap_or_else(|| client.organization_id.clone()),
                        user_id: request.user_id.clone(),
                        resource_id: request.resource_id.clone(),
                        provider_id: request.provider_id.clone(),
                        scopes: scopes.clone(),
                        expires_at,
                        grant_type: request.grant_type,
                        actor: Actor::User {
                            id: request.user_id.clone(),
                        },
                    },
                    &fresh,
                    now,
                )?;
                changes.client =
                    lifecycle::record_use(&client, now, self.inner.config.last_used_period);
                let read = Read {
                    client: Some(stored.version),
                    ..Read::zone(zone_id)
                };
                self.commit(&changes, read).await?;
                self.publish(&changes.events);
                Ok(issued(grant, &mut changes, now))
            })
            .await
        }
        .await;
        if let Ok(issued) = &result {
            tracing::Span::current().record("grant_id", issued.grant.id.as_str());
        }
        observe::finish_ok("authorize", result)
    }

    async fn load_grant(&self, zone_id: &str, id: &str) -> Result<Versioned<Grant>> {
        validate::reference("zone_id", zone_id)?;
        validate::record_id("grant_id", id)?;
        self.inner
            .storage
            .get_grant(zone_id, id)
            .await?
            .ok_or_else(|| Error::not_found(RecordKind::Grant, id))
    }

    /// A grant, as it reads now: one whose expiry has passed reads as expired even
    /// before a sweep has written it.
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id, grant_id = id))]
    pub async fn get_grant(&self, zone_id: &str, id: &str) -> Result<Grant> {
        let result = async {
            let grant = self.load_grant(zone_id, id).await?;
            Ok(grant.record.as_of(self.now()))
        }
        .await;
        observe::finish_ok("get_grant", result)
    }

    /// A grant's transitions, oldest first: its changes of state, its latest refresh,
    /// and an expiry not yet swept (see [`lifecycle::history`]).
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id, grant_id = id))]
    pub async fn grant_history(&self, zone_id: &str, id: &str) -> Result<Vec<Transition>> {
        let result = async {
            let grant = self.load_grant(zone_id, id).await?.record;
            let stored = self.inner.storage.grant_history(zone_id, id).await?;
            Ok(lifecycle::history(&grant, stored, self.now()))
        }
        .await;
        observe::finish_ok("grant_history", result)
    }

    /// The client a refresh token's standing depends on (a withdrawn refresh grant
    /// stops it); `None` for an access token, whose hot path needs no third read, or
    /// for a client that is gone.
    async fn client_of_refresh_token(
        &self,
        zone_id: &str,
        token: &Token,
    ) -> Result<Option<Client>> {
        match token.kind {
            TokenKind::Refresh => Ok(self
                .inner
                .storage
                .get_client(zone_id, &token.client_id)
                .await?
                .map(|c| c.record)),
            TokenKind::Access => Ok(None),
        }
    }

    /// What a token is worth now (RFC 7662). Unknown, expired, spent or revoked
    /// tokens, and tokens of grants that are no longer active, are all just inactive.
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id))]
    pub async fn introspect(&self, zone_id: &str, token: &str) -> Result<Introspection> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            let storage = &self.inner.storage;
            let Some((token, Some(grant))) = storage
                .get_token_and_grant_facts(zone_id, &Digest::of(token))
                .await?
            else {
                return Ok(Introspection::Inactive);
            };
            let client = self.client_of_refresh_token(zone_id, &token.record).await?;
            Ok(lifecycle::introspect_owned(
                token.record,
                grant,
                client.as_ref(),
                self.now(),
            ))
        }
        .await;
        observe::finish_ok("introspect", result)
    }

    /// Exchanges a refresh token for new tokens, rotating it (RFC 6749 §6).
    ///
    /// Presenting a spent refresh token is reuse: the grant is revoked and
    /// [`Error::RefreshTokenReused`] returned.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            client_id = request.client_id.as_str(),
            grant_id = Empty,
            attempt = Empty
        )
    )]
    pub async fn refresh(&self, zone_id: &str, request: RefreshRequest) -> Result<Issued> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            validate::record_id("client_id", &request.client_id)?;
            let scopes = match &request.scopes {
                Some(s) => Some(validate::scopes("scope", s)?),
                None => None,
            };
            let digest = request.refresh_token.digest();
            let reference = request.refresh_token.refresh_reference();
            let storage = &self.inner.storage;
            let (outcome, now) = self
                .retrying("refresh", || async {
                    // The token by its digest with its grant; a spent refresh token's
                    // record is gone, and its text names its grant instead.
                    let (record, grant) =
                        match storage.get_token_and_grant(zone_id, &digest).await? {
                            Some((token, Some(grant))) => (Some(token), grant),
                            Some((_, None)) => {
                                return Err(Error::InvalidGrant {
                                    reason: InvalidGrantReason::UnknownToken,
                                });
                            }
                            None => {
                                let grant = match &reference {
                                    Some(r) => storage.get_grant(zone_id, &r.grant_id).await?,
                                    None => None,
                                };
                                let Some(grant) = grant else {
                                    return Err(Error::InvalidGrant {
                                        reason: InvalidGrantReason::UnknownToken,
                                    });
                                };
                                (None, grant)
                            }
                        };
                    tracing::Span::current().record("grant_id", grant.record.id.as_str());
                    let Some(Versioned {
                        record: client,
                        version: client_version,
                    }) = storage.get_client(zone_id, &request.client_id).await?
                    else {
                        // The rules check the token's kind before its client.
                        let reason = match &record {
                            Some(t) if t.record.kind == TokenKind::Access => {
                                InvalidGrantReason::NotARefreshToken
                            }
                            _ => InvalidGrantReason::ClientMismatch,
                        };
                        return Err(Error::InvalidGrant { reason });
                    };
                    let now = self.now();
                    let wanted = scopes.as_deref().unwrap_or(&grant.record.scopes);
                    let allowed = self
                        .allowed_scopes(&client, &grant.record.user_id, wanted)
                        .await?;
                    let fresh = self.fresh(now)?;
                    let outcome = lifecycle::refresh(
                        &grant.record,
                        lifecycle::Presented {
                            digest,
                            record: record.as_ref().map(|t| &t.record),
                            reference: reference.as_ref(),
                        },
                        &client,
                        &lifecycle::Refresh {
                            client_id: &request.client_id,
                            allowed: &allowed,
                            scopes: scopes.as_deref(),
                            reuse_grace: self.inner.config.reuse_grace,
                        },
                        &fresh,
                        now,
                    )?;
                    let mut read = Read::zone(zone_id).grant(&grant);
                    let outcome = match outcome {
                        RefreshOutcome::Rotated(grant, mut changes) => {
                            changes.client = lifecycle::record_use(
                                &client,
                                now,
                                self.inner.config.last_used_period,
                            );
                            read.client = Some(client_version);
                            if let Some(token) = &record {
                                read = read.token(token);
                            }
                            // The current token's record, unless it was the one presented:
                            // a redemption inside the grace window spends it unseen.
                            let unread: Vec<Digest> = changes
                                .removed_tokens
                                .iter()
                                .filter(|d| !read.tokens.contains_key(d))
                                .copied()
                                .collect();
                            for removed in unread {
                                match storage.get_token(zone_id, &removed).await? {
                                    Some(token) => read = read.token(&token),
                                    None => changes.removed_tokens.retain(|d| *d != removed),
                                }
                            }
                            RefreshOutcome::Rotated(grant, changes)
                        }
                        reused => reused,
                    };
                    let changes = match &outcome {
                        RefreshOutcome::Rotated(_, c) | RefreshOutcome::Reused(c) => c,
                    };
                    self.commit(changes, read).await?;
                    Ok((outcome, now))
                })
                .await?;
            match outcome {
                RefreshOutcome::Rotated(grant, mut changes) => {
                    self.publish(&changes.events);
                    Ok(issued(*grant, &mut changes, now))
                }
                RefreshOutcome::Reused(changes) => {
                    self.publish(&changes.events);
                    Err(Error::RefreshTokenReused {
                        grant_id: changes
                            .events
                            .iter()
                            .find_map(|e| match e {
                                Event::RefreshTokenReused { grant_id, .. } => {
                                    Some(grant_id.clone())
                                }
                                _ => None,
                            })
                            .unwrap_or_default(),
                    })
                }
            }
        }
        .await;
        observe::finish("refresh", result, |_| Outcome::Rotated)
    }

    /// Revokes a grant and every token under it. Revoking a revoked grant succeeds and
    /// changes nothing; revoking an expired one is an [`Error::InvalidTransition`].
    #[tracing::instrument(skip_all, fields(zone = zone_id, grant_id = id, attempt = Empty))]
    pub async fn revoke_grant(&self, zone_id: &str, id: &str, actor: Actor) -> Result<Grant> {
        let result = async {
            self.retrying("revoke_grant", || async {
                let grant = self.load_grant(zone_id, id).await?;
                let now = self.now();
                match lifecycle::revoke(
                    &grant.record,
                    TransitionReason::Revoked,
                    actor.clone(),
                    now,
                )? {
                    None => Ok((grant.record.as_of(now), false)),
                    Some(changes) => {
                        self.commit(&changes, Read::zone(zone_id).grant(&grant))
                            .await?;
                        self.publish(&changes.events);
                        Ok((changes.grant.unwrap_or(grant.record), true))
                    }
                }
            })
            .await
        }
        .await;
        observe::finish("revoke_grant", result, |(_, revoked)| {
            Outcome::revoked_if(*revoked)
        })
        .map(|(grant, _)| grant)
    }

    /// Revokes one token (RFC 7009). A refresh token takes its grant and every
    /// access token of it along. Unknown and already unusable tokens change nothing;
    /// the answer says whether anything was revoked.
    ///
    /// When `client_id` is given, a token issued to another client is refused with
    /// [`InvalidGrantReason::ClientMismatch`].
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            client_id = client_id,
            grant_id = Empty,
            attempt = Empty
        )
    )]
    pub async fn revoke_token(
        &self,
        zone_id: &str,
        token: &str,
        client_id: Option<&str>,
    ) -> Result<bool> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            if let Some(c) = client_id {
                validate::record_id("client_id", c)?;
            }
            let digest = Digest::of(token);
            let storage = &self.inner.storage;
            self.retrying("revoke_token", || async {
                let Some((token, grant)) = storage.get_token_and_grant(zone_id, &digest).await?
                else {
                    return Ok(false);
                };
                if client_id.is_some_and(|c| c != token.record.client_id) {
                    return Err(Error::InvalidGrant {
                        reason: InvalidGrantReason::ClientMismatch,
                    });
                }
                let Some(grant) = grant else {
                    return Ok(false);
                };
                tracing::Span::current().record("grant_id", grant.record.id.as_str());
                let actor = Actor::Client {
                    id: token.record.client_id.clone(),
                };
                let client = self.client_of_refresh_token(zone_id, &token.record).await?;
                let changes = lifecycle::revoke_token(
                    &token.record,
                    &grant.record,
                    client.as_ref(),
                    actor,
                    self.now(),
                );
                if changes.is_empty() {
                    return Ok(false);
                }
                // A lone access-token revocation leaves the grant as it is; the commit
                // still checks its version, so it cannot race a deletion of the grant.
                self.commit(&changes, Read::zone(zone_id).grant(&grant).token(&token))
                    .await?;
                self.publish(&changes.events);
                Ok(true)
            })
            .await
        }
        .await;
        observe::finish("revoke_token", result, |revoked| {
            Outcome::revoked_if(*revoked)
        })
    }

    /// Deletes a grant and every trace of it: its tokens and its history.
    #[tracing::instrument(skip_all, fields(zone = zone_id, grant_id = id, attempt = Empty))]
    pub async fn delete_grant(&self, zone_id: &str, id: &str) -> Result<()> {
        let result = async {
            let storage = &self.inner.storage;
            let now = self
                .retrying("delete_grant", || async {
                    let grant = self.load_grant(zone_id, id).await?;
                    let tokens = storage.grant_tokens(zone_id, id).await?;
                    let mut set = WriteSet::new();
                    for t in &tokens {
                        set.push(Write::DeleteToken {
                            zone_id: zone_id.to_owned(),
                            digest: t.record.digest,
                            expect: t.version,
                        });
                    }
                    set.push(Write::DeleteGrant {
                        zone_id: zone_id.to_owned(),
                        id: id.to_owned(),
                        expect: grant.version,
                    });
                    self.apply(set).await?;
                    Ok(self.now())
                })
                .await?;
            self.publish(&[Event::GrantDeleted {
                zone_id: zone_id.to_owned(),
                grant_id: id.to_owned(),
                at: now,
            }]);
            Ok(())
        }
        .await;
        observe::finish_ok("delete_grant", result)
    }

    /// One page of a zone's grants, with cursors.
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id))]
    pub async fn list_grants(&self, zone_id: &str, request: &ListGrants) -> Result<Page> {
        observe::finish_ok("list_grants", self.grants_page(zone_id, request).await)
    }

    /// [`Engine::list_grants`] uncounted, for the engine's own listings.
    async fn grants_page(&self, zone_id: &str, request: &ListGrants) -> Result<Page> {
        validate::reference("zone_id", zone_id)?;
        let limit = validate::limit(request.limit.unwrap_or(validate::DEFAULT_PAGE_LIMIT))?;
        for (field, value) in [
            ("user_id", &request.user_id),
            ("resource_id", &request.resource_id),
        ] {
            if let Some(v) = value {
                validate::reference(field, v)?;
            }
        }
        if let Some(c) = &request.client_id {
            validate::record_id("client_id", c)?;
        }
        let status = match (request.status, request.active) {
            (Some(s), true) if s != GrantStatus::Active => None,
            (_, true) => Some(GrantStatus::Active),
            (s, false) => s,
        };
        let contradictory = request.active && status.is_none();
        let filter = GrantFilter {
            user_id: request.user_id.clone(),
            resource_id: request.resource_id.clone(),
            client_id: request.client_id.clone(),
            status,
        };
        let key = &self.inner.cursor_key;
        let position = match (&request.after, &request.before) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_input(
                    "before",
                    "after and before cannot be used together",
                ));
            }
            (Some(c), None) => Position::After(cursor::decode(
                key,
                Listing::Grants,
                zone_id,
                &filter,
                request.order,
                c,
            )?),
            (None, Some(c)) => Position::Before(cursor::decode(
                key,
                Listing::Grants,
                zone_id,
                &filter,
                request.order,
                c,
            )?),
            (None, None) => Position::First,
        };
        let now = self.now();
        if contradictory {
            // `status` other than active together with `active=true`: nothing matches.
            return Ok(Page {
                total_count: request.total_count.then_some(0),
                ..Page::default()
            });
        }
        let query = GrantQuery {
            zone_id: zone_id.to_owned(),
            filter,
            order: request.order,
            position,
            limit,
            now,
        };
        let GrantPage {
            items,
            more_before,
            more_after,
        } = self.inner.storage.list_grants(&query).await?;
        let cursor_at =
            |grant: Option<&Versioned<Grant>>, wanted: bool| -> Result<Option<String>> {
                match grant {
                    Some(g) if wanted => Ok(Some(cursor::encode(
                        key,
                        Listing::Grants,
                        zone_id,
                        &query.filter,
                        query.order,
                        &Keyset::of(&g.record),
                    )?)),
                    _ => Ok(None),
                }
            };
        let after_cursor = cursor_at(items.last(), more_after)?;
        let before_cursor = match (&query.position, items.first()) {
            // A page after the listing's end (what followed `k` was deleted since
            // the cursor was issued) still leads back, to everything at or before
            // `k`: the cursor stands at the edge of `k`'s millisecond on the far
            // side (ids are never empty), and nothing on that millisecond past `k`
            // matched, or this page would hold it.
            (Position::After(k), None) if more_before => {
                let edge = match query.order {
                    SortOrder::Ascending => {
                        k.created_at.checked_add_signed(Duration::milliseconds(1))
                    }
                    SortOrder::Descending => Some(k.created_at),
                };
                match edge {
                    Some(created_at) => Some(cursor::encode(
                        key,
                        Listing::Grants,
                        zone_id,
                        &query.filter,
                        query.order,
                        &Keyset {
                            created_at,
                            id: String::new(),
                        },
                    )?),
                    None => None,
                }
            }
            (_, first) => cursor_at(first, more_before)?,
        };
        let total_count = if request.total_count {
            Some(
                self.inner
                    .storage
                    .count_grants(zone_id, &query.filter, now)
                    .await?,
            )
        } else {
            None
        };
        Ok(Page {
            items: items.into_iter().map(|g| g.record.as_of(now)).collect(),
            after_cursor,
            before_cursor,
            total_count,
        })
    }

    /// Persists the expiry of up to `limit` grants whose expiry has passed, oldest
    /// expiry first, deletes up to `limit` expired tokens (through the token expiry
    /// index) and up to `limit` expired device authorizations. Its cost grows with the
    /// number of expired records, not with the size of the zone.
    #[tracing::instrument(skip_all, fields(zone = zone_id, limit))]
    pub async fn sweep_expired(&self, zone_id: &str, limit: usize) -> Result<SweepReport> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            if limit == 0 {
                return Err(Error::invalid_input("limit", "must be positive"));
            }
            let storage = &self.inner.storage;
            let now = self.now();
            // One more than asked tells whether more remain.
            let due = storage
                .expired_grants(zone_id, now, limit.saturating_add(1))
                .await?;
            let more = due.len() > limit;
            let mut expired = 0;
            for candidate in due.into_iter().take(limit) {
                let id = candidate.record.id;
                let done = self
                    .retrying("sweep_expired", || async {
                        let Some(grant) = storage.get_grant(zone_id, &id).await? else {
                            return Ok(false);
                        };
                        let Some(changes) = lifecycle::expire(&grant.record, now) else {
                            return Ok(false);
                        };
                        self.commit(&changes, Read::zone(zone_id).grant(&grant))
                            .await?;
                        self.publish(&changes.events);
                        Ok(true)
                    })
                    .await?;
                if done {
                    expired += 1;
                }
            }
            observe::swept(observe::SWEEP_EXPIRED_TOTAL, expired);
            let (tokens_removed, more_tokens) = self.sweep_tokens(zone_id, now, limit).await?;
            observe::swept(observe::SWEEP_TOKENS_REMOVED_TOTAL, tokens_removed);
            let devices_removed = self.sweep_devices(zone_id, now, limit).await?;
            observe::swept(observe::SWEEP_DEVICES_REMOVED_TOTAL, devices_removed);
            let (codes_removed, more_codes) = self.sweep_codes(zone_id, now, limit).await?;
            observe::swept(observe::SWEEP_CODES_REMOVED_TOTAL, codes_removed);
            if expired + tokens_removed + devices_removed + codes_removed > 0 {
                tracing::info!(
                    zone = zone_id,
                    expired,
                    tokens_removed,
                    devices_removed,
                    codes_removed,
                    "swept expired records"
                );
            }
            Ok(SweepReport {
                expired,
                tokens_removed,
                devices_removed,
                codes_removed,
                more: more || more_tokens || more_codes,
            })
        }
        .await;
        observe::finish_ok("sweep_expired", result)
    }

    /// Deletes up to `limit` tokens whose expiry has passed, found through the token
    /// expiry index, in one write set. Returns how many, and whether more remain.
    async fn sweep_tokens(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<(usize, bool)> {
        let storage = &self.inner.storage;
        self.retrying("sweep_expired", || async {
            let mut due = storage
                .expired_tokens(zone_id, now, limit.saturating_add(1))
                .await?;
            let more = due.len() > limit;
            due.truncate(limit);
            if due.is_empty() {
                return Ok((0, more));
            }
            let mut set = WriteSet::new();
            for token in &due {
                set.push(Write::DeleteToken {
                    zone_id: zone_id.to_owned(),
                    digest: token.record.digest,
                    expect: token.version,
                });
            }
            self.apply(set).await?;
            Ok((due.len(), more))
        })
        .await
    }

    /// Revokes every active grant of a user, a client or a resource in a zone, with
    /// every token under them. Returns how many were revoked.
    #[tracing::instrument(skip_all, fields(zone = zone_id, of = ?of))]
    pub async fn revoke_grants_of(
        &self,
        zone_id: &str,
        of: &GrantsOf,
        actor: Actor,
    ) -> Result<usize> {
        let result = self.revoke_every_grant_of(zone_id, of, actor).await;
        observe::finish("revoke_grants_of", result, |n| Outcome::revoked_if(*n > 0))
    }

    /// [`Engine::revoke_grants_of`] unrecorded, for the engine's own operations.
    async fn revoke_every_grant_of(
        &self,
        zone_id: &str,
        of: &GrantsOf,
        actor: Actor,
    ) -> Result<usize> {
        let mut request = ListGrants {
            status: Some(GrantStatus::Active),
            order: SortOrder::Ascending,
            limit: Some(validate::MAX_PAGE_LIMIT),
            ..ListGrants::default()
        };
        match of {
            GrantsOf::User(id) => request.user_id = Some(id.clone()),
            GrantsOf::Client(id) => request.client_id = Some(id.clone()),
            GrantsOf::Resource(id) => request.resource_id = Some(id.clone()),
        }
        let mut revoked = 0;
        loop {
            // Revoked grants leave the `active` listing, so the first page is always
            // the next batch.
            let page = self.grants_page(zone_id, &request).await?;
            if page.items.is_empty() {
                return Ok(revoked);
            }
            for grant in &page.items {
                match self.revoke_grant(zone_id, &grant.id, actor.clone()).await {
                    Ok(g) if g.status == GrantStatus::Revoked => revoked += 1,
                    Ok(_) | Err(Error::NotFound { .. }) | Err(Error::InvalidTransition { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if page.after_cursor.is_none() {
                return Ok(revoked);
            }
        }
    }
}

/// The answer to a caller who was just issued tokens, with their plaintexts moved
/// out of the changes.
fn issued(grant: Grant, changes: &mut Changes, now: Timestamp) -> Issued {
    let access_token = changes
        .issued_tokens
        .iter()
        .find(|t| t.kind == TokenKind::Access);
    let scopes = access_token.map(|t| t.scopes.clone()).unwrap_or_default();
    let access_expires_at = access_token.map_or(now, |t| t.expires_at);
    Issued {
        grant,
        scopes,
        access_expires_at,
        access_token: changes
            .access_token
            .take()
            .unwrap_or_else(|| Secret::from_presented(String::new())),
        refresh_token: changes.refresh_token.take(),
        issued_at: now,
    }
}
