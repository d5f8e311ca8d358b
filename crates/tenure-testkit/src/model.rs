//! A model-based test of the engine: random operations run against the engine and a
//! plain reference model side by side, and every answer and every observable state
//! must agree.
//!
//! The pieces, each public so that any backend (and later a fuzz target) can use them:
//!
//! - [`Model`]: the lifecycle rules written a second time, independently of the
//!   engine, over plain vectors. It knows two zones, clients, grants (by creation
//!   index), tokens (by issue index) and a manual clock, and never asks the engine
//!   anything. Engine grant ids are kept only as opaque labels, to order listings.
//! - [`Op`] and [`ops_strategy`]: the operations and a proptest strategy for them.
//!   Operations refer to clients, grants and tokens by small indices taken modulo
//!   what exists, so most of them hit real records.
//! - [`run_ops`]: drives an engine over a [`Backend`]'s store and the model through
//!   the same operations, compares every outcome, and after every operation compares
//!   every client, grant, history and token the model knows of.
//!
//! A backend plugs in through [`Backend`]; an in-memory one can use [`Volatile`]:
//!
//! ```
//! use std::sync::Arc;
//! use tenure_testkit::model::{Op, Volatile, run_ops};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut backend = Volatile(|| Arc::new(tenure_memory::MemoryStorage::new()) as Arc<dyn tenure::Storage>);
//! run_ops(&mut backend, &[Op::Reopen]).await.unwrap();
//! # }
//! ```
//!
//! What the model holds to, in the engine's terms: times are kept to the millisecond
//! (the clock may also step back, and `updated_at` must not follow it); a grant whose
//! expiry has passed reads as expired before any sweep; refresh rotates, prunes the
//! grant's expired tokens and never changes the grant's scopes; presenting a spent
//! refresh token revokes the grant (the reuse grace window is left at zero);
//! withdrawing a client's refresh tokens (refresh grant dropped or access made
//! online) stops those issued before, for good; a client's `last_used_at` is written
//! at most once a day; revoking a token revokes only an access token, but a refresh
//! token takes its grant along; sweeping writes exactly what a read showed and
//! deletes the grant's tokens; deleting a grant deletes its tokens and history. Only
//! the explicit scope policy is modelled.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration};
use proptest::prelude::*;
use tenure::{
    AccessType, Actor, AuthorizeRequest, Client, ClientRegistration, ClientUpdate, Digest, Engine,
    Error, Grant, GrantStatus, GrantType, Introspection, InvalidGrantReason, ListGrants,
    ManualClock, RecordKind, RefreshRequest, Secret, SortOrder, Storage, Timestamp, TokenKind,
    TransitionReason,
};

// ----- the model's vocabulary -----

/// Milliseconds since the Unix epoch: the model's time.
pub type Millis = i64;

const NANOS_PER_MILLI: i64 = 1_000_000;

/// Where the model's clock starts, 2030-01-01T00:00:00Z, in milliseconds.
pub const EPOCH_MS: Millis = 1_893_456_000_000;

/// How often a client's `last_used_at` is written at most: the engine's default
/// period, one day.
pub const LAST_USED_PERIOD_MS: Millis = 86_400_000;

/// The resource every modelled grant is for.
pub const RESOURCE: &str = "calendar";

/// A token no one was ever issued; presenting it finds nothing.
pub const UNKNOWN_TOKEN: &str = "tnr_rt_never-issued";

/// A well-formed grant id no grant has.
pub const UNKNOWN_GRANT: &str = "00000000-0000-7000-8000-000000000000";

/// A client id the operations never register.
pub const UNKNOWN_CLIENT: &str = "client-unregistered";

/// One of the two zones the model keeps, to check that nothing crosses between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Zone {
    /// `zone-a`, where most operations happen.
    A,
    /// `zone-b`.
    B,
}

impl Zone {
    /// The zone id the engine is given.
    pub const fn id(self) -> &'static str {
        match self {
            Zone::A => "zone-a",
            Zone::B => "zone-b",
        }
    }

    /// The other zone.
    pub const fn other(self) -> Zone {
        match self {
            Zone::A => Zone::B,
            Zone::B => Zone::A,
        }
    }

    /// This zone, or the other one when `swap` is set.
    pub const fn or_other(self, swap: bool) -> Zone {
        if swap { self.other() } else { self }
    }
}

/// A scope of the small universe the operations draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `read`.
    Read,
    /// `write`.
    Write,
    /// `admin`.
    Admin,
}

impl Scope {
    /// The scope's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

/// The scope names, in the order given (duplicates kept: the engine removes them).
pub fn scope_names(scopes: &[Scope]) -> Vec<String> {
    scopes.iter().map(|s| s.as_str().to_owned()).collect()
}

fn dedup(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

fn seconds(s: u32) -> Millis {
    Millis::from(s) * 1000
}

/// A client's policy, as the model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPolicy {
    /// Scopes the client may be given, without duplicates.
    pub allowed_scopes: Vec<String>,
    /// Grant types the client may use.
    pub allowed_grants: Vec<GrantType>,
    /// Online or offline.
    pub access_type: AccessType,
    /// Access-token lifetime in seconds.
    pub access_ttl: u32,
    /// Refresh-token lifetime in seconds.
    pub refresh_ttl: u32,
    /// Whether the client may authorize and refresh.
    pub enabled: bool,
}

impl ClientPolicy {
    /// Whether the client may use `grant_type`.
    pub fn allows(&self, grant_type: GrantType) -> bool {
        self.allowed_grants.contains(&grant_type)
    }

    /// Whether the client's grants get refresh tokens: offline and allowed
    /// `refresh_token`.
    pub fn issues_refresh_tokens(&self) -> bool {
        self.access_type == AccessType::Offline && self.allows(GrantType::RefreshToken)
    }
}

/// A change to a client's policy, as [`Op::UpdateClientPolicy`] makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyChange {
    /// Replaces the allowed scopes (narrowing or widening them).
    Scopes(Vec<Scope>),
    /// Enables or disables the client.
    Enabled(bool),
    /// Restores (`true`) or drops (`false`) the `refresh_token` grant type.
    RefreshGrant(bool),
    /// Restores (`true`) or drops (`false`) the `authorization_code` grant type.
    AuthorizationCodeGrant(bool),
    /// Sets the access type.
    AccessType(AccessType),
    /// Sets both token lifetimes, in seconds (zero is refused).
    Lifetimes {
        /// Access-token lifetime.
        access: u32,
        /// Refresh-token lifetime.
        refresh: u32,
    },
}

fn toggle(grants: &[GrantType], grant_type: GrantType, on: bool) -> Vec<GrantType> {
    let mut out: Vec<GrantType> = grants
        .iter()
        .copied()
        .filter(|g| *g != grant_type)
        .collect();
    if on {
        if grants.contains(&grant_type) {
            return grants.to_vec();
        }
        out.push(grant_type);
    }
    out
}

impl PolicyChange {
    /// `policy` with the change applied (lifetimes are not checked here).
    pub fn apply_to(&self, policy: &ClientPolicy) -> ClientPolicy {
        let mut next = policy.clone();
        match self {
            PolicyChange::Scopes(s) => next.allowed_scopes = dedup(&scope_names(s)),
            PolicyChange::Enabled(on) => next.enabled = *on,
            PolicyChange::RefreshGrant(on) => {
                next.allowed_grants = toggle(&policy.allowed_grants, GrantType::RefreshToken, *on);
            }
            PolicyChange::AuthorizationCodeGrant(on) => {
                next.allowed_grants =
                    toggle(&policy.allowed_grants, GrantType::AuthorizationCode, *on);
            }
            PolicyChange::AccessType(t) => next.access_type = *t,
            PolicyChange::Lifetimes { access, refresh } => {
                next.access_ttl = *access;
                next.refresh_ttl = *refresh;
            }
        }
        next
    }
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelClient {
    /// Its zone.
    pub zone: Zone,
    /// Its id, unique in the zone.
    pub id: String,
    /// Its current policy.
    pub policy: ClientPolicy,
    /// Registration time.
    pub created_at: Millis,
    /// Last policy change.
    pub updated_at: Millis,
    /// Last issuance, written at most once per [`LAST_USED_PERIOD_MS`].
    pub last_used_at: Option<Millis>,
    /// When the client last stopped issuing refresh tokens (refresh grant withdrawn
    /// or access made online): refresh tokens issued before then never work again.
    pub refresh_stopped_at: Option<Millis>,
}

impl ModelClient {
    /// Whether a refresh token issued at `issued_at` was stopped by a later policy
    /// change.
    pub fn stopped(&self, issued_at: Millis) -> bool {
        self.refresh_stopped_at.is_some_and(|at| issued_at < at)
    }

    fn record_use(&mut self, now: Millis) {
        if self
            .last_used_at
            .is_none_or(|last| now - last >= LAST_USED_PERIOD_MS)
        {
            self.last_used_at = Some(now);
        }
    }
}

/// A grant as the model stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelGrant {
    /// The engine's id for it: an opaque label, used to address the grant and to break
    /// ties in orderings by `(time, id)`.
    pub id: String,
    /// Its zone.
    pub zone: Zone,
    /// The client it was made to.
    pub client_id: String,
    /// The user who made it.
    pub user_id: String,
    /// Its scopes; they never change.
    pub scopes: Vec<String>,
    /// The stored status (see [`ModelGrant::view_at`] for the status as read).
    pub status: GrantStatus,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// Expiry.
    pub expires_at: Millis,
    /// Last refresh.
    pub refreshed_at: Option<Millis>,
    /// Whether a refresh token is held, as stored.
    pub refresh_token_set: bool,
    /// The stored history: `(reason, to)` per transition. A refresh is not stored:
    /// the history shows the latest one from `refreshed_at`.
    pub history: Vec<(TransitionReason, GrantStatus)>,
    /// The refresh generation: bumped by every issuance of tokens; a refresh token
    /// is current only while its generation is the grant's.
    pub generation: u64,
    /// The current refresh token, whose record the next rotation deletes.
    pub current: Option<usize>,
    /// Whether the grant was deleted.
    pub deleted: bool,
    /// The tokens issued under it, by issue index.
    pub tokens: Vec<usize>,
}

/// A grant as it reads at some time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantView {
    /// The grant's index.
    pub grant: usize,
    /// Its zone.
    pub zone: Zone,
    /// Its client.
    pub client_id: String,
    /// Its user.
    pub user_id: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// The status as read.
    pub status: GrantStatus,
    /// Creation time.
    pub created_at: Millis,
    /// Last change, as read.
    pub updated_at: Millis,
    /// Expiry.
    pub expires_at: Millis,
    /// Last refresh.
    pub refreshed_at: Option<Millis>,
    /// Whether a refresh token is held, as read.
    pub refresh_token_set: bool,
}

impl ModelGrant {
    /// The status at `now`: stored active with its expiry passed reads expired.
    pub fn status_at(&self, now: Millis) -> GrantStatus {
        match self.status {
            GrantStatus::Active if self.expires_at <= now => GrantStatus::Expired,
            s => s,
        }
    }

    /// Whether the grant is stored active but has expired by `now` (not yet swept).
    pub fn expired_unswept(&self, now: Millis) -> bool {
        self.status == GrantStatus::Active && self.expires_at <= now
    }

    /// The grant as read at `now`; `index` is its creation index.
    pub fn view_at(&self, index: usize, now: Millis) -> GrantView {
        let mut view = GrantView {
            grant: index,
            zone: self.zone,
            client_id: self.client_id.clone(),
            user_id: self.user_id.clone(),
            scopes: self.scopes.clone(),
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            refreshed_at: self.refreshed_at,
            refresh_token_set: self.refresh_token_set,
        };
        if self.expired_unswept(now) {
            view.status = GrantStatus::Expired;
            view.updated_at = self.updated_at.max(self.expires_at);
            view.refresh_token_set = false;
        }
        view
    }
}

/// A token as the model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelToken {
    /// Its zone.
    pub zone: Zone,
    /// The grant it carries, by index.
    pub grant: usize,
    /// The client it was issued to.
    pub client_id: String,
    /// The user of its grant.
    pub user_id: String,
    /// Access or refresh.
    pub kind: TokenKind,
    /// Its scope snapshot.
    pub scopes: Vec<String>,
    /// Issue time.
    pub issued_at: Millis,
    /// Its own expiry.
    pub expires_at: Millis,
    /// Its grant's generation when it was issued.
    pub generation: u64,
    /// When it was revoked alone (RFC 7009).
    pub revoked_at: Option<Millis>,
    /// Whether its record was deleted: the current refresh token's at the rotation
    /// that spends it, any token's once expired and swept, and every token's with
    /// its grant. A deleted access token is unknown; a deleted refresh token is
    /// still recognised by the reference its text carries while its grant exists.
    pub deleted: bool,
    /// The digest of its text, once the engine issued it (the sweep's tie-break).
    pub digest: Option<Digest>,
}

impl ModelToken {
    /// Whether the token itself is usable at `now` (its grant aside): not expired,
    /// not revoked alone.
    pub fn is_live(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// What introspection of an active token shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenView {
    /// Access or refresh.
    pub kind: TokenKind,
    /// The scope snapshot.
    pub scopes: Vec<String>,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// The grant, by index.
    pub grant: usize,
    /// The zone.
    pub zone: Zone,
    /// Issue time.
    pub issued_at: Millis,
    /// Expiry.
    pub expires_at: Millis,
}

/// What an authorization or a refresh issued, by index into the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuance {
    /// The grant.
    pub grant: usize,
    /// The new access token.
    pub access: usize,
    /// The new refresh token, if one was issued.
    pub refresh: Option<usize>,
    /// The access token's scopes.
    pub scopes: Vec<String>,
    /// The access token's expiry.
    pub access_expires_at: Millis,
    /// The time of issue.
    pub issued_at: Millis,
}

/// What a sweep did, in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// How many grants it expired.
    pub expired: usize,
    /// How many expired tokens it deleted.
    pub tokens_removed: usize,
    /// Whether expired grants or tokens remained.
    pub more: bool,
}

/// The error the model expects, mirroring the engine's [`Error`] variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such record in the zone addressed.
    NotFound(RecordKind),
    /// The id is taken in the zone.
    AlreadyExists(RecordKind),
    /// A field is invalid; the field's API name.
    InvalidInput(&'static str),
    /// The grant cannot move between these states.
    InvalidTransition {
        /// The state it is in.
        from: GrantStatus,
        /// The state asked for.
        to: GrantStatus,
    },
    /// These scopes were refused.
    InvalidScope(Vec<String>),
    /// This client is disabled.
    ClientDisabled(String),
    /// This client may not use this grant type.
    GrantTypeNotAllowed(String, GrantType),
    /// A spent refresh token was presented; this grant (by index).
    RefreshTokenReused(usize),
    /// The presented token cannot be used, for this reason.
    InvalidGrant(InvalidGrantReason),
}

/// The reference model: the lifecycle rules over plain vectors.
///
/// Grants and tokens are never removed from the vectors, so their indices stay
/// valid; deleted ones are marked so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    clock_nanos: i64,
    /// Registered clients, in registration order.
    pub clients: Vec<ModelClient>,
    /// Grants, in creation order.
    pub grants: Vec<ModelGrant>,
    /// Tokens, in issue order.
    pub tokens: Vec<ModelToken>,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Model {
    /// An empty model with its clock at [`EPOCH_MS`].
    pub fn new() -> Self {
        Model {
            clock_nanos: EPOCH_MS * NANOS_PER_MILLI,
            clients: Vec::new(),
            grants: Vec::new(),
            tokens: Vec::new(),
        }
    }

    /// The manual clock, in nanoseconds since the Unix epoch.
    pub fn clock_nanos(&self) -> i64 {
        self.clock_nanos
    }

    /// The current time, to the millisecond (truncated, as the engine keeps it).
    pub fn now(&self) -> Millis {
        self.clock_nanos.div_euclid(NANOS_PER_MILLI)
    }

    /// Moves the clock forward by `nanos`.
    pub fn advance(&mut self, nanos: i64) {
        self.clock_nanos += nanos;
    }

    /// Sets the clock to `nanos`.
    pub fn set_clock(&mut self, nanos: i64) {
        self.clock_nanos = nanos;
    }

    /// A client by zone and id.
    pub fn client(&self, zone: Zone, id: &str) -> Option<&ModelClient> {
        self.clients.iter().find(|c| c.zone == zone && c.id == id)
    }

    fn client_mut(&mut self, zone: Zone, id: &str) -> Option<&mut ModelClient> {
        self.clients
            .iter_mut()
            .find(|c| c.zone == zone && c.id == id)
    }

    fn token_in(&self, zone: Zone, token: Option<usize>) -> Option<usize> {
        token.filter(|&t| {
            self.tokens
                .get(t)
                .is_some_and(|tok| !tok.deleted && tok.zone == zone)
        })
    }

    fn grant_in(&self, zone: Zone, grant: Option<usize>) -> Option<usize> {
        grant.filter(|&g| {
            self.grants
                .get(g)
                .is_some_and(|gr| !gr.deleted && gr.zone == zone)
        })
    }

    /// Registers a client.
    pub fn register_client(
        &mut self,
        zone: Zone,
        id: &str,
        policy: ClientPolicy,
    ) -> Result<(), Refusal> {
        check_lifetimes(&policy)?;
        if self.client(zone, id).is_some() {
            return Err(Refusal::AlreadyExists(RecordKind::Client));
        }
        let policy = ClientPolicy {
            allowed_scopes: dedup(&policy.allowed_scopes),
            ..policy
        };
        let now = self.now();
        self.clients.push(ModelClient {
            zone,
            id: id.to_owned(),
            policy,
            created_at: now,
            updated_at: now,
            last_used_at: None,
            refresh_stopped_at: None,
        });
        Ok(())
    }

    /// Changes a client's policy; issued grants and tokens are untouched.
    pub fn update_client(
        &mut self,
        zone: Zone,
        id: &str,
        change: &PolicyChange,
    ) -> Result<(), Refusal> {
        let now = self.now();
        let client = self
            .client_mut(zone, id)
            .ok_or(Refusal::NotFound(RecordKind::Client))?;
        let next = change.apply_to(&client.policy);
        check_lifetimes(&next)?;
        if next != client.policy {
            if client.policy.issues_refresh_tokens() && !next.issues_refresh_tokens() {
                client.refresh_stopped_at = Some(now);
            }
            client.updated_at = client.updated_at.max(now);
            client.policy = next;
        }
        Ok(())
    }

    fn issue(
        &mut self,
        grant: usize,
        kind: TokenKind,
        scopes: Vec<String>,
        ttl: u32,
        now: Millis,
    ) -> usize {
        let g = &mut self.grants[grant];
        let token = ModelToken {
            zone: g.zone,
            grant,
            client_id: g.client_id.clone(),
            user_id: g.user_id.clone(),
            kind,
            scopes,
            issued_at: now,
            expires_at: (now + seconds(ttl)).min(g.expires_at),
            generation: g.generation,
            revoked_at: None,
            deleted: false,
            digest: None,
        };
        if kind == TokenKind::Refresh {
            g.current = Some(self.tokens.len());
        }
        g.tokens.push(self.tokens.len());
        self.tokens.push(token);
        self.tokens.len() - 1
    }

    /// Authorizes `user_id` for `scopes` through a client, creating a grant and its
    /// tokens. The grant's engine id is set afterwards with [`Model::bind_grant`].
    pub fn authorize(
        &mut self,
        zone: Zone,
        client_id: &str,
        user_id: &str,
        scopes: &[String],
        expires_at: Option<Millis>,
    ) -> Result<Issuance, Refusal> {
        let now = self.now();
        let policy = self
            .client(zone, client_id)
            .ok_or(Refusal::NotFound(RecordKind::Client))?
            .policy
            .clone();
        if !policy.enabled {
            return Err(Refusal::ClientDisabled(client_id.to_owned()));
        }
        if !policy.allows(GrantType::AuthorizationCode) {
            return Err(Refusal::GrantTypeNotAllowed(
                client_id.to_owned(),
                GrantType::AuthorizationCode,
            ));
        }
        let scopes = dedup(scopes);
        if scopes.is_empty() {
            return Err(Refusal::InvalidInput("scopes"));
        }
        let refused: Vec<String> = scopes
            .iter()
            .filter(|s| !policy.allowed_scopes.contains(s))
            .cloned()
            .collect();
        if !refused.is_empty() {
            return Err(Refusal::InvalidScope(refused));
        }
        let issues_refresh = policy.issues_refresh_tokens();
        let expires_at = match expires_at {
            Some(at) if at <= now => return Err(Refusal::InvalidInput("expires_at")),
            Some(at) => at,
            None if issues_refresh => now + seconds(policy.refresh_ttl.max(policy.access_ttl)),
            None => now + seconds(policy.access_ttl),
        };
        let grant = self.grants.len();
        self.grants.push(ModelGrant {
            id: String::new(),
            zone,
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            scopes: scopes.clone(),
            status: GrantStatus::Active,
            created_at: now,
            updated_at: now,
            expires_at,
            refreshed_at: None,
            refresh_token_set: issues_refresh,
            history: vec![(TransitionReason::Created, GrantStatus::Active)],
            generation: 1,
            current: None,
            deleted: false,
            tokens: Vec::new(),
        });
        let access = self.issue(
            grant,
            TokenKind::Access,
            scopes.clone(),
            policy.access_ttl,
            now,
        );
        let refresh = issues_refresh.then(|| {
            self.issue(
                grant,
                TokenKind::Refresh,
                scopes.clone(),
                policy.refresh_ttl,
                now,
            )
        });
        if let Some(client) = self.client_mut(zone, client_id) {
            client.record_use(now);
        }
        Ok(Issuance {
            grant,
            access,
            refresh,
            scopes,
            access_expires_at: self.tokens[access].expires_at,
            issued_at: now,
        })
    }

    /// Records the engine's id for a grant the model created.
    pub fn bind_grant(&mut self, grant: usize, id: &str) {
        if let Some(g) = self.grants.get_mut(grant) {
            g.id = id.to_owned();
        }
    }

    fn revoke(&mut self, grant: usize, reason: TransitionReason, now: Millis) {
        let g = &mut self.grants[grant];
        g.status = GrantStatus::Revoked;
        g.updated_at = g.updated_at.max(now);
        g.refresh_token_set = false;
        g.history.push((reason, GrantStatus::Revoked));
    }

    /// Exchanges a refresh token (by issue index; `None` for one never issued),
    /// presented in `zone` by `client_id`, asking for `scopes` (the grant's if `None`).
    pub fn refresh(
        &mut self,
        zone: Zone,
        client_id: &str,
        token: Option<usize>,
        scopes: Option<&[String]>,
    ) -> Result<Issuance, Refusal> {
        let invalid = |reason| Err(Refusal::InvalidGrant(reason));
        let now = self.now();
        // A token is found by its record, or, a refresh token whose record is gone,
        // by the reference its text carries, while its grant exists.
        let found = token.filter(|&t| {
            self.tokens.get(t).is_some_and(|tok| {
                tok.zone == zone
                    && (!tok.deleted
                        || (tok.kind == TokenKind::Refresh && !self.grants[tok.grant].deleted))
            })
        });
        let Some(t) = found else {
            return invalid(InvalidGrantReason::UnknownToken);
        };
        let presented = self.tokens[t].clone();
        if presented.kind != TokenKind::Refresh {
            return invalid(InvalidGrantReason::NotARefreshToken);
        }
        if presented.client_id != client_id {
            return invalid(InvalidGrantReason::ClientMismatch);
        }
        if now >= presented.expires_at {
            return invalid(InvalidGrantReason::TokenExpired);
        }
        let grant = presented.grant;
        let generation = self.grants[grant].generation;
        if presented.generation > generation
            || (presented.generation == generation && presented.deleted)
        {
            return invalid(InvalidGrantReason::UnknownToken);
        }
        let status = self.grants[grant].status_at(now);
        if presented.generation < generation {
            if status == GrantStatus::Active {
                self.revoke(grant, TransitionReason::ReuseDetected, now);
            }
            return Err(Refusal::RefreshTokenReused(grant));
        }
        if presented.revoked_at.is_some() || status == GrantStatus::Revoked {
            return invalid(InvalidGrantReason::TokenRevoked);
        }
        if status != GrantStatus::Active {
            return invalid(InvalidGrantReason::GrantInactive);
        }
        let Some(client) = self.client(zone, client_id) else {
            return invalid(InvalidGrantReason::ClientMismatch);
        };
        let policy = client.policy.clone();
        if !policy.enabled {
            return Err(Refusal::ClientDisabled(client_id.to_owned()));
        }
        if !policy.allows(GrantType::RefreshToken) {
            return Err(Refusal::GrantTypeNotAllowed(
                client_id.to_owned(),
                GrantType::RefreshToken,
            ));
        }
        if client.stopped(presented.issued_at) {
            return invalid(InvalidGrantReason::RefreshStopped);
        }
        let held = self.grants[grant].scopes.clone();
        let asked = scopes.map_or_else(|| held.clone(), dedup);
        let beyond: Vec<String> = asked
            .iter()
            .filter(|s| !held.contains(s))
            .cloned()
            .collect();
        if !beyond.is_empty() {
            return Err(Refusal::InvalidScope(beyond));
        }
        let effective: Vec<String> = asked
            .iter()
            .filter(|s| policy.allowed_scopes.contains(s))
            .cloned()
            .collect();
        if effective.is_empty() {
            return Err(Refusal::InvalidScope(asked));
        }

        if let Some(current) = self.grants[grant].current.take() {
            self.tokens[current].deleted = true;
        }
        self.grants[grant].generation += 1;
        let access = self.issue(
            grant,
            TokenKind::Access,
            effective.clone(),
            policy.access_ttl,
            now,
        );
        let issues_refresh = policy.issues_refresh_tokens();
        let refresh = issues_refresh.then(|| {
            self.issue(
                grant,
                TokenKind::Refresh,
                effective.clone(),
                policy.refresh_ttl,
                now,
            )
        });
        let g = &mut self.grants[grant];
        g.refreshed_at = Some(now);
        g.updated_at = g.updated_at.max(now);
        g.refresh_token_set = issues_refresh;
        if let Some(client) = self.client_mut(zone, client_id) {
            client.record_use(now);
        }
        Ok(Issuance {
            grant,
            access,
            refresh,
            scopes: effective,
            access_expires_at: self.tokens[access].expires_at,
            issued_at: now,
        })
    }

    /// Revokes a grant addressed in `zone` (`None`: one that never existed).
    pub fn revoke_grant(&mut self, zone: Zone, grant: Option<usize>) -> Result<GrantView, Refusal> {
        let g = self
            .grant_in(zone, grant)
            .ok_or(Refusal::NotFound(RecordKind::Grant))?;
        let now = self.now();
        match self.grants[g].status_at(now) {
            GrantStatus::Revoked => {}
            GrantStatus::Expired => {
                return Err(Refusal::InvalidTransition {
                    from: GrantStatus::Expired,
                    to: GrantStatus::Revoked,
                });
            }
            GrantStatus::Active => self.revoke(g, TransitionReason::Revoked, now),
        }
        Ok(self.grants[g].view_at(g, now))
    }

    /// Revokes a token presented in `zone` (RFC 7009); whether anything was revoked.
    pub fn revoke_token(&mut self, zone: Zone, token: Option<usize>) -> bool {
        let now = self.now();
        let Some(t) = self.token_in(zone, token) else {
            return false;
        };
        let grant = self.tokens[t].grant;
        if !self.tokens[t].is_live(now)
            || !self.is_current(t)
            || self.grants[grant].status_at(now) != GrantStatus::Active
        {
            return false;
        }
        // A refresh token its client stopped is already unusable: nothing to revoke.
        let tok = &self.tokens[t];
        if tok.kind == TokenKind::Refresh
            && self
                .client(tok.zone, &tok.client_id)
                .is_none_or(|c| c.stopped(tok.issued_at))
        {
            return false;
        }
        match self.tokens[t].kind {
            TokenKind::Access => self.tokens[t].revoked_at = Some(now),
            TokenKind::Refresh => self.revoke(grant, TransitionReason::RefreshTokenRevoked, now),
        }
        true
    }

    /// Deletes a grant addressed in `zone`, with its tokens and history.
    pub fn delete_grant(&mut self, zone: Zone, grant: Option<usize>) -> Result<(), Refusal> {
        let g = self
            .grant_in(zone, grant)
            .ok_or(Refusal::NotFound(RecordKind::Grant))?;
        self.grants[g].deleted = true;
        for &t in &self.grants[g].tokens {
            self.tokens[t].deleted = true;
        }
        Ok(())
    }

    /// Persists up to `limit` expirations in `zone`, oldest expiry first.
    pub fn sweep(&mut self, zone: Zone, limit: usize) -> Result<Swept, Refusal> {
        if limit == 0 {
            return Err(Refusal::InvalidInput("limit"));
        }
        let now = self.now();
        let mut due: Vec<usize> = (0..self.grants.len())
            .filter(|&g| {
                let gr = &self.grants[g];
                !gr.deleted && gr.zone == zone && gr.expired_unswept(now)
            })
            .collect();
        due.sort_by(|&a, &b| {
            let (a, b) = (&self.grants[a], &self.grants[b]);
            (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id))
        });
        let more = due.len() > limit;
        due.truncate(limit);
        for &g in &due {
            let gr = &mut self.grants[g];
            gr.status = GrantStatus::Expired;
            gr.updated_at = gr.updated_at.max(gr.expires_at);
            gr.refresh_token_set = false;
            gr.history
                .push((TransitionReason::Expired, GrantStatus::Expired));
        }
        // Expired tokens go through their own expiry index, in (expires_at, digest)
        // order, up to the same limit.
        let mut tokens: Vec<usize> = (0..self.tokens.len())
            .filter(|&t| {
                let tok = &self.tokens[t];
                !tok.deleted && tok.zone == zone && tok.expires_at <= now
            })
            .collect();
        tokens.sort_by_key(|&t| (self.tokens[t].expires_at, self.tokens[t].digest));
        let more = more || tokens.len() > limit;
        tokens.truncate(limit);
        for &t in &tokens {
            self.tokens[t].deleted = true;
        }
        Ok(Swept {
            expired: due.len(),
            tokens_removed: tokens.len(),
            more,
        })
    }

    /// Every grant of `zone` matching the filters at the current time, in the listing
    /// order by `(created_at, id)`.
    pub fn list(
        &self,
        zone: Zone,
        user_id: Option<&str>,
        status: Option<GrantStatus>,
        order: SortOrder,
    ) -> Vec<usize> {
        let now = self.now();
        let mut out: Vec<usize> = (0..self.grants.len())
            .filter(|&g| {
                let gr = &self.grants[g];
                !gr.deleted
                    && gr.zone == zone
                    && user_id.is_none_or(|u| u == gr.user_id)
                    && status.is_none_or(|s| s == gr.status_at(now))
            })
            .collect();
        out.sort_by(|&a, &b| {
            let (a, b) = (&self.grants[a], &self.grants[b]);
            (a.created_at, &a.id).cmp(&(b.created_at, &b.id))
        });
        if order == SortOrder::Descending {
            out.reverse();
        }
        out
    }

    /// A grant as read now; `None` once deleted.
    pub fn view(&self, grant: usize) -> Option<GrantView> {
        let g = self.grants.get(grant).filter(|g| !g.deleted)?;
        Some(g.view_at(grant, self.now()))
    }

    /// A grant's history as read now, `(reason, to)` per entry, with an expiry not yet
    /// swept shown last; `None` once deleted.
    pub fn history(&self, grant: usize) -> Option<Vec<(TransitionReason, GrantStatus)>> {
        let g = self.grants.get(grant).filter(|g| !g.deleted)?;
        let mut history = g.history.clone();
        if g.refreshed_at.is_some() {
            let at = history
                .iter()
                .position(|(_, to)| *to != GrantStatus::Active)
                .unwrap_or(history.len());
            history.insert(at, (TransitionReason::Refreshed, GrantStatus::Active));
        }
        if g.expired_unswept(self.now()) {
            history.push((TransitionReason::Expired, GrantStatus::Expired));
        }
        Some(history)
    }

    /// Introspection of a token presented in `zone`: `None` when inactive.
    pub fn introspect(&self, zone: Zone, token: Option<usize>) -> Option<TokenView> {
        let now = self.now();
        let t = self.token_in(zone, token)?;
        let tok = &self.tokens[t];
        if !tok.is_live(now)
            || !self.is_current(t)
            || self.grants[tok.grant].status_at(now) != GrantStatus::Active
        {
            return None;
        }
        // A refresh token also stops working when its client stopped refreshing.
        if tok.kind == TokenKind::Refresh
            && self
                .client(tok.zone, &tok.client_id)
                .is_none_or(|c| c.stopped(tok.issued_at))
        {
            return None;
        }
        Some(TokenView {
            kind: tok.kind,
            scopes: tok.scopes.clone(),
            client_id: tok.client_id.clone(),
            user_id: tok.user_id.clone(),
            grant: tok.grant,
            zone: tok.zone,
            issued_at: tok.issued_at,
            expires_at: tok.expires_at,
        })
    }

    /// The latest token of `kind` issued under a grant.
    pub fn latest_token(&self, grant: usize, kind: TokenKind) -> Option<usize> {
        self.grants
            .get(grant)?
            .tokens
            .iter()
            .rev()
            .copied()
            .find(|&t| self.tokens[t].kind == kind)
    }

    /// The refresh tokens of a grant that a rotation has spent, oldest first.
    pub fn spent_refresh_tokens(&self, grant: usize) -> Vec<usize> {
        self.grants.get(grant).map_or_else(Vec::new, |g| {
            g.tokens
                .iter()
                .copied()
                .filter(|&t| {
                    let tok = &self.tokens[t];
                    tok.kind == TokenKind::Refresh && tok.generation < g.generation
                })
                .collect()
        })
    }

    /// Whether a token is its grant's current one: any access token, and a refresh
    /// token of the grant's generation.
    pub fn is_current(&self, token: usize) -> bool {
        let tok = &self.tokens[token];
        tok.kind == TokenKind::Access || tok.generation == self.grants[tok.grant].generation
    }

    /// Records the digest of the text the engine issued for a token.
    pub fn bind_token(&mut self, token: usize, digest: Digest) {
        if let Some(t) = self.tokens.get_mut(token) {
            t.digest = Some(digest);
        }
    }
}

fn check_lifetimes(policy: &ClientPolicy) -> Result<(), Refusal> {
    if policy.access_ttl == 0 {
        return Err(Refusal::InvalidInput("access_token_ttl_seconds"));
    }
    if policy.refresh_ttl == 0 {
        return Err(Refusal::InvalidInput("refresh_token_ttl_seconds"));
    }
    Ok(())
}

/// Checks a page size the way the engine does: 1 to 100.
pub fn check_page_limit(limit: usize) -> Result<(), Refusal> {
    if (1..=100).contains(&limit) {
        Ok(())
    } else {
        Err(Refusal::InvalidInput("limit"))
    }
}

// ----- operations -----

/// Which token an operation presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPick {
    /// The latest access token of a grant (by index modulo the grants).
    LatestAccess {
        /// The grant.
        grant: u8,
    },
    /// The latest refresh token of a grant, or its latest access token if it has none.
    LatestRefresh {
        /// The grant.
        grant: u8,
    },
    /// Any token issued so far, by issue index modulo the tokens: old, spent, revoked
    /// or deleted ones included.
    Issued {
        /// The issue index.
        nth: u8,
    },
}

/// Which client presents a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientPick {
    /// The client the grant was made to.
    Own,
    /// A client registered in the grant's zone, by index modulo those clients.
    Other(u8),
}

/// Where the clock goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Forward by less than a millisecond.
    Nanos(u32),
    /// Forward by milliseconds.
    Millis(u32),
    /// Forward by seconds.
    Seconds(u32),
    /// Forward by hours.
    Hours(u32),
    /// Forward by days.
    Days(u32),
    /// Back by milliseconds, as a system clock stepped back would; `updated_at`
    /// must still never go backwards.
    BackMillis(u32),
    /// To an expiry of a grant (by index), plus `offset_ms`; nothing if that is not
    /// ahead of the clock.
    ToExpiry {
        /// The grant.
        grant: u8,
        /// Which expiry.
        of: ExpiryOf,
        /// Milliseconds after it (negative: before).
        offset_ms: i8,
    },
}

/// Which expiry [`Step::ToExpiry`] moves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryOf {
    /// The grant's.
    Grant,
    /// Its latest access token's.
    Access,
    /// Its latest refresh token's.
    Refresh,
}

/// The expiry an authorization asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantExpiry {
    /// The client's default.
    Default,
    /// `millis` from now (zero or negative is refused), plus a sub-millisecond
    /// fraction the engine truncates.
    In {
        /// Milliseconds from now.
        millis: i64,
        /// Nanoseconds added below the millisecond.
        nanos: u32,
    },
}

/// One operation of a model-based test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Registers `client-{client}` in a zone.
    RegisterClient {
        /// The zone.
        zone: Zone,
        /// The id's number (small, so ids collide).
        client: u8,
        /// Allowed scopes.
        scopes: Vec<Scope>,
        /// Whether `authorization_code` is allowed.
        authorization_code: bool,
        /// Whether `refresh_token` is allowed.
        refresh_token: bool,
        /// Offline or online.
        access_type: AccessType,
        /// Access-token lifetime, seconds.
        access_ttl: u32,
        /// Refresh-token lifetime, seconds.
        refresh_ttl: u32,
        /// Enabled.
        enabled: bool,
    },
    /// Changes a registered client's policy (by index modulo the clients).
    UpdateClientPolicy {
        /// The client.
        client: u8,
        /// The change.
        change: PolicyChange,
    },
    /// Authorizes a user through a client (by index modulo the clients).
    Authorize {
        /// The client.
        client: u8,
        /// Address the client through the other zone.
        wrong_zone: bool,
        /// The user's number.
        user: u8,
        /// Scopes asked for.
        scopes: Vec<Scope>,
        /// The grant's expiry.
        expires: GrantExpiry,
    },
    /// Introspects a token.
    Introspect {
        /// The token.
        token: TokenPick,
        /// Present it in the other zone.
        wrong_zone: bool,
    },
    /// Refreshes with the latest refresh token of a grant.
    RefreshCurrent {
        /// The grant.
        grant: u8,
        /// The client presenting it.
        client: ClientPick,
        /// Scopes asked for; the grant's when `None`.
        scopes: Option<Vec<Scope>>,
        /// Present it in the other zone.
        wrong_zone: bool,
    },
    /// Replays a spent refresh token (of the grant if it has one, else of any grant):
    /// in a long chain, one from anywhere in it.
    RefreshSpent {
        /// The grant.
        grant: u8,
        /// Which spent token.
        nth: u16,
    },
    /// Rotates a grant's refresh token over and over, as its own client, comparing
    /// every rotation: the long histories that constant-cost rotation is about.
    RotateMany {
        /// The grant.
        grant: u8,
        /// How many rotations.
        times: u16,
    },
    /// Presents any token to refresh, by the client it was issued to, in its zone:
    /// old access tokens, expired, pruned or swept tokens included.
    RefreshWith {
        /// The token.
        token: TokenPick,
    },
    /// Revokes a grant.
    RevokeGrant {
        /// The grant.
        grant: u8,
        /// Address it through the other zone.
        wrong_zone: bool,
    },
    /// Revokes a token (RFC 7009).
    RevokeToken {
        /// The token.
        token: TokenPick,
        /// Present it in the other zone.
        wrong_zone: bool,
    },
    /// Deletes a grant.
    DeleteGrant {
        /// The grant.
        grant: u8,
        /// Address it through the other zone.
        wrong_zone: bool,
    },
    /// Moves the manual clock.
    AdvanceClock(Step),
    /// Sweeps expired grants of a zone.
    Sweep {
        /// The zone.
        zone: Zone,
        /// The batch size (zero is refused).
        limit: usize,
    },
    /// Lists a zone's grants page by page and checks every page.
    ListPage {
        /// The zone.
        zone: Zone,
        /// Only this user's grants.
        user: Option<u8>,
        /// Only grants with this status as read now.
        status: Option<GrantStatus>,
        /// The order.
        order: SortOrder,
        /// The page size (zero is refused).
        limit: usize,
    },
    /// Closes and reopens the store (a no-op for [`Volatile`] backends).
    Reopen,
}

fn user_id(n: u8) -> String {
    format!("user-{}", n % 3)
}

fn scope_strategy() -> impl Strategy<Value = Scope> {
    prop_oneof![Just(Scope::Read), Just(Scope::Write), Just(Scope::Admin)]
}

/// Scopes a client is registered with: mostly `read write`, so that most
/// authorizations can succeed.
fn client_scopes_strategy() -> impl Strategy<Value = Vec<Scope>> {
    prop_oneof![
        5 => Just(vec![Scope::Read, Scope::Write]),
        2 => Just(vec![Scope::Read, Scope::Write, Scope::Admin]),
        2 => prop::collection::vec(scope_strategy(), 0..=3),
    ]
}

/// Scopes asked for: mostly within `read write`, sometimes anything, rarely none.
fn asked_scopes_strategy() -> impl Strategy<Value = Vec<Scope>> {
    prop_oneof![
        4 => Just(vec![Scope::Read]),
        3 => Just(vec![Scope::Read, Scope::Write]),
        2 => prop::collection::vec(scope_strategy(), 1..=3),
        1 => Just(Vec::new()),
    ]
}

fn zone_strategy() -> impl Strategy<Value = Zone> {
    prop_oneof![4 => Just(Zone::A), 1 => Just(Zone::B)]
}

fn wrong_zone_strategy() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.08)
}

/// Access-token lifetimes: mostly short, rarely zero (refused).
fn access_ttl_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![
        1 => Just(0u32),
        3 => Just(1u32),
        5 => Just(60u32),
        4 => Just(3600u32),
        1 => Just(86_400u32),
    ]
}

/// Refresh-token lifetimes: mostly longer than access tokens, sometimes shorter,
/// rarely zero (refused).
fn refresh_ttl_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![
        1 => Just(0u32),
        2 => Just(1u32),
        2 => Just(60u32),
        5 => Just(3600u32),
        4 => Just(86_400u32),
        3 => Just(30 * 86_400u32),
    ]
}

fn access_type_strategy() -> impl Strategy<Value = AccessType> {
    prop_oneof![4 => Just(AccessType::Offline), 1 => Just(AccessType::Online)]
}

fn token_pick_strategy() -> impl Strategy<Value = TokenPick> {
    prop_oneof![
        (0..8u8).prop_map(|grant| TokenPick::LatestAccess { grant }),
        (0..8u8).prop_map(|grant| TokenPick::LatestRefresh { grant }),
        (0..48u8).prop_map(|nth| TokenPick::Issued { nth }),
    ]
}

fn policy_change_strategy() -> impl Strategy<Value = PolicyChange> {
    prop_oneof![
        3 => prop::collection::vec(scope_strategy(), 0..=3).prop_map(PolicyChange::Scopes),
        2 => any::<bool>().prop_map(PolicyChange::Enabled),
        4 => any::<bool>().prop_map(PolicyChange::RefreshGrant),
        1 => any::<bool>().prop_map(PolicyChange::AuthorizationCodeGrant),
        2 => prop_oneof![Just(AccessType::Offline), Just(AccessType::Online)]
            .prop_map(PolicyChange::AccessType),
        2 => (access_ttl_strategy(), refresh_ttl_strategy())
            .prop_map(|(access, refresh)| PolicyChange::Lifetimes { access, refresh }),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (1..1_000_000u32).prop_map(Step::Nanos),
        2 => prop_oneof![Just(1u32), 1..2_000u32].prop_map(Step::Millis),
        4 => prop_oneof![1..120u32, 1..3_600u32].prop_map(Step::Seconds),
        1 => (1..48u32).prop_map(Step::Hours),
        1 => prop_oneof![3 => Just(1u32), 1 => 1..40u32].prop_map(Step::Days),
        1 => (1..5_000u32).prop_map(Step::BackMillis),
        4 => (
            0..8u8,
            prop_oneof![Just(ExpiryOf::Grant), Just(ExpiryOf::Access), Just(ExpiryOf::Refresh)],
            -1..=1i8,
        )
            .prop_map(|(grant, of, offset_ms)| Step::ToExpiry { grant, of, offset_ms }),
    ]
}

fn grant_expiry_strategy() -> impl Strategy<Value = GrantExpiry> {
    let millis = prop_oneof![
        Just(-1_000i64),
        Just(0i64),
        Just(1i64),
        Just(500i64),
        Just(30_000i64),
        Just(3_600_000i64),
        Just(7_200_000i64),
        Just(10 * 86_400_000i64),
    ];
    let nanos = prop_oneof![3 => Just(0u32), 1 => 1..1_000_000u32];
    prop_oneof![
        3 => Just(GrantExpiry::Default),
        1 => (millis, nanos).prop_map(|(millis, nanos)| GrantExpiry::In { millis, nanos }),
    ]
}

fn status_strategy() -> impl Strategy<Value = Option<GrantStatus>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(GrantStatus::Active)),
        1 => Just(Some(GrantStatus::Expired)),
        1 => Just(Some(GrantStatus::Revoked)),
    ]
}

fn register_strategy() -> impl Strategy<Value = Op> {
    (
        zone_strategy(),
        0..4u8,
        client_scopes_strategy(),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.85),
        access_type_strategy(),
        access_ttl_strategy(),
        refresh_ttl_strategy(),
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(
                zone,
                client,
                scopes,
                authorization_code,
                refresh_token,
                access_type,
                access_ttl,
                refresh_ttl,
                enabled,
            )| Op::RegisterClient {
                zone,
                client,
                scopes,
                authorization_code,
                refresh_token,
                access_type,
                access_ttl,
                refresh_ttl,
                enabled,
            },
        )
}

fn authorize_strategy() -> impl Strategy<Value = Op> {
    (
        0..8u8,
        wrong_zone_strategy(),
        0..3u8,
        asked_scopes_strategy(),
        grant_expiry_strategy(),
    )
        .prop_map(
            |(client, wrong_zone, user, scopes, expires)| Op::Authorize {
                client,
                wrong_zone,
                user,
                scopes,
                expires,
            },
        )
}

/// One operation, weighted towards authorizing, refreshing and moving the clock.
pub fn op_strategy() -> impl Strategy<Value = Op> {
    let update = (0..8u8, policy_change_strategy())
        .prop_map(|(client, change)| Op::UpdateClientPolicy { client, change });
    let introspect = (token_pick_strategy(), wrong_zone_strategy())
        .prop_map(|(token, wrong_zone)| Op::Introspect { token, wrong_zone });
    let client_pick =
        prop_oneof![6 => Just(ClientPick::Own), 1 => (0..4u8).prop_map(ClientPick::Other)];
    let refresh_scopes = prop_oneof![
        4 => Just(None),
        1 => prop::collection::vec(scope_strategy(), 0..=3).prop_map(Some),
    ];
    let refresh = (0..8u8, client_pick, refresh_scopes, wrong_zone_strategy()).prop_map(
        |(grant, client, scopes, wrong_zone)| Op::RefreshCurrent {
            grant,
            client,
            scopes,
            wrong_zone,
        },
    );
    let replay = (0..8u8, any::<u16>()).prop_map(|(grant, nth)| Op::RefreshSpent { grant, nth });
    let rotate_many = (0..8u8, prop_oneof![3 => 1..=20u16, 1 => 100..=300u16])
        .prop_map(|(grant, times)| Op::RotateMany { grant, times });
    let revoke_grant = (0..8u8, wrong_zone_strategy())
        .prop_map(|(grant, wrong_zone)| Op::RevokeGrant { grant, wrong_zone });
    let revoke_token = (token_pick_strategy(), wrong_zone_strategy())
        .prop_map(|(token, wrong_zone)| Op::RevokeToken { token, wrong_zone });
    let delete = (0..8u8, wrong_zone_strategy())
        .prop_map(|(grant, wrong_zone)| Op::DeleteGrant { grant, wrong_zone });
    let sweep = (
        zone_strategy(),
        prop_oneof![1 => Just(0usize), 8 => 1..5usize],
    )
        .prop_map(|(zone, limit)| Op::Sweep { zone, limit });
    let list = (
        zone_strategy(),
        prop::option::of(0..3u8),
        status_strategy(),
        prop_oneof![Just(SortOrder::Ascending), Just(SortOrder::Descending)],
        prop_oneof![1 => Just(0usize), 8 => 1..5usize],
    )
        .prop_map(|(zone, user, status, order, limit)| Op::ListPage {
            zone,
            user,
            status,
            order,
            limit,
        });
    prop_oneof![
        3 => register_strategy(),
        3 => update,
        6 => authorize_strategy(),
        2 => introspect,
        6 => refresh,
        2 => replay,
        1 => rotate_many,
        2 => token_pick_strategy().prop_map(|token| Op::RefreshWith { token }),
        2 => revoke_grant,
        2 => revoke_token,
        1 => delete,
        5 => step_strategy().prop_map(Op::AdvanceClock),
        2 => sweep,
        2 => list,
        1 => Just(Op::Reopen),
    ]
}

/// A registration in zone A of an enabled offline client allowed everything, with
/// positive lifetimes: one that can authorize and refresh.
fn working_client_strategy() -> impl Strategy<Value = Op> {
    (
        0..4u8,
        prop_oneof![Just(60u32), Just(3600u32)],
        prop_oneof![Just(3600u32), Just(86_400u32), Just(30 * 86_400u32)],
    )
        .prop_map(|(client, access_ttl, refresh_ttl)| Op::RegisterClient {
            zone: Zone::A,
            client,
            scopes: vec![Scope::Read, Scope::Write],
            authorization_code: true,
            refresh_token: true,
            access_type: AccessType::Offline,
            access_ttl,
            refresh_ttl,
            enabled: true,
        })
}

/// An authorization through the first registered client that it allows.
fn working_authorization_strategy() -> impl Strategy<Value = Op> {
    (
        0..3u8,
        prop_oneof![
            Just(vec![Scope::Read]),
            Just(vec![Scope::Read, Scope::Write])
        ],
    )
        .prop_map(|(user, scopes)| Op::Authorize {
            client: 0,
            wrong_zone: false,
            user,
            scopes,
            expires: GrantExpiry::Default,
        })
}

/// A run of operations. It starts with a working client, up to two more
/// registrations of any kind and one to three authorizations through the working
/// client, so that most later operations find something to act on; up to 60
/// operations of any kind follow.
pub fn ops_strategy() -> impl Strategy<Value = Vec<Op>> {
    (
        working_client_strategy(),
        prop::collection::vec(register_strategy(), 0..=2),
        prop::collection::vec(working_authorization_strategy(), 1..=3),
        prop::collection::vec(op_strategy(), 0..60),
    )
        .prop_map(|(first, registrations, authorizations, rest)| {
            let mut ops = vec![first];
            ops.extend(registrations);
            ops.extend(authorizations);
            ops.extend(rest);
            ops
        })
}

// ----- backends and the runner -----

/// How a run gets its store: a fresh one at the start, and the same data reopened
/// whenever an [`Op::Reopen`] comes.
pub trait Backend {
    /// A fresh, empty store.
    fn create(&mut self) -> impl Future<Output = tenure::Result<Arc<dyn Storage>>>;

    /// Closes `store` and opens the same data again. The runner holds no other
    /// reference to the store when it calls this.
    fn reopen(
        &mut self,
        store: Arc<dyn Storage>,
    ) -> impl Future<Output = tenure::Result<Arc<dyn Storage>>>;
}

/// A backend with nothing to reopen: `create` calls the closure and `reopen` hands the
/// same store back.
#[derive(Debug, Clone)]
pub struct Volatile<F>(pub F);

impl<F: FnMut() -> Arc<dyn Storage>> Backend for Volatile<F> {
    fn create(&mut self) -> impl Future<Output = tenure::Result<Arc<dyn Storage>>> {
        std::future::ready(Ok((self.0)()))
    }

    fn reopen(
        &mut self,
        store: Arc<dyn Storage>,
    ) -> impl Future<Output = tenure::Result<Arc<dyn Storage>>> {
        std::future::ready(Ok(store))
    }
}

/// Where the engine and the model parted ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The index of the operation (`None`: while setting up).
    pub step: Option<usize>,
    /// The operation, as `Debug` prints it.
    pub op: String,
    /// What differed.
    pub detail: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(step) => write!(f, "step {step} ({}): {}", self.op, self.detail),
            None => write!(f, "setup: {}", self.detail),
        }
    }
}

impl std::error::Error for Divergence {}

/// Runs `ops` against an engine over `backend`'s store and against the [`Model`],
/// comparing every outcome and, after every operation, every client, grant, history
/// and token. The engine reads a [`ManualClock`] that moves only with the model's.
pub async fn run_ops<B: Backend>(backend: &mut B, ops: &[Op]) -> Result<(), Divergence> {
    let store = backend.create().await.map_err(|e| Divergence {
        step: None,
        op: String::new(),
        detail: format!("creating the store failed: {e:?}"),
    })?;
    let mut run = Run::new(store);
    for (step, op) in ops.iter().enumerate() {
        let at = |detail: String| Divergence {
            step: Some(step),
            op: format!("{op:?}"),
            detail,
        };
        if *op == Op::Reopen {
            run = run.reopen(backend).await.map_err(at)?;
        } else {
            run.apply(op).await.map_err(at)?;
        }
        run.check_state().await.map_err(at)?;
    }
    Ok(())
}

/// Converts the model's milliseconds to a timestamp.
pub fn timestamp(ms: Millis) -> Timestamp {
    DateTime::from_timestamp_millis(ms).expect("model times are within chrono's range")
}

fn millis_of(what: &str, t: Timestamp) -> Result<Millis, String> {
    if t.timestamp_subsec_nanos() % 1_000_000 != 0 {
        return Err(format!("{what} {t:?} is not kept to the millisecond"));
    }
    Ok(t.timestamp_millis())
}

fn clock_time(nanos: i64) -> Timestamp {
    DateTime::from_timestamp_nanos(nanos)
}

struct Run {
    engine: Engine,
    clock: Arc<ManualClock>,
    model: Model,
    /// The plaintext of each model token, by issue index.
    secrets: Vec<Secret>,
    /// Which tokens were already seen inactive with their record gone.
    gone: Vec<bool>,
}

type Checked = Result<(), String>;

fn ensure(ok: bool, detail: impl FnOnce() -> String) -> Checked {
    if ok { Ok(()) } else { Err(detail()) }
}

impl Run {
    fn new(store: Arc<dyn Storage>) -> Run {
        let model = Model::new();
        let clock = Arc::new(ManualClock::new(clock_time(model.clock_nanos())));
        let engine = Engine::builder(store).clock(clock.clone()).build();
        Run {
            engine,
            clock,
            model,
            secrets: Vec::new(),
            gone: Vec::new(),
        }
    }

    async fn reopen<B: Backend>(self, backend: &mut B) -> Result<Run, String> {
        let Run {
            engine,
            clock,
            model,
            secrets,
            gone,
        } = self;
        let store = engine.storage().clone();
        drop(engine);
        let store = backend
            .reopen(store)
            .await
            .map_err(|e| format!("reopening the store failed: {e:?}"))?;
        let engine = Engine::builder(store).clock(clock.clone()).build();
        Ok(Run {
            engine,
            clock,
            model,
            secrets,
            gone,
        })
    }

    fn pick_client(&self, n: u8) -> (Zone, String) {
        match self.model.clients.len() {
            0 => (Zone::A, UNKNOWN_CLIENT.to_owned()),
            len => {
                let c = &self.model.clients[usize::from(n) % len];
                (c.zone, c.id.clone())
            }
        }
    }

    fn pick_grant(&self, n: u8) -> Option<usize> {
        match self.model.grants.len() {
            0 => None,
            len => Some(usize::from(n) % len),
        }
    }

    /// The grant's zone and engine id, or zone A and an id no grant has.
    fn grant_address(&self, grant: Option<usize>) -> (Zone, String) {
        grant.map_or((Zone::A, UNKNOWN_GRANT.to_owned()), |g| {
            (self.model.grants[g].zone, self.model.grants[g].id.clone())
        })
    }

    fn pick_token(&self, pick: TokenPick) -> Option<usize> {
        match pick {
            TokenPick::LatestAccess { grant } => self
                .pick_grant(grant)
                .and_then(|g| self.model.latest_token(g, TokenKind::Access)),
            TokenPick::LatestRefresh { grant } => self.pick_grant(grant).and_then(|g| {
                self.model
                    .latest_token(g, TokenKind::Refresh)
                    .or_else(|| self.model.latest_token(g, TokenKind::Access))
            }),
            TokenPick::Issued { nth } => match self.model.tokens.len() {
                0 => None,
                len => Some(usize::from(nth) % len),
            },
        }
    }

    /// The zone a token lives in (zone A for none) and its plaintext.
    fn token_address(&self, token: Option<usize>) -> (Zone, Secret) {
        token.map_or_else(
            || (Zone::A, Secret::from_presented(UNKNOWN_TOKEN)),
            |t| (self.model.tokens[t].zone, self.secrets[t].clone()),
        )
    }

    async fn apply(&mut self, op: &Op) -> Checked {
        match op {
            Op::RegisterClient {
                zone,
                client,
                scopes,
                authorization_code,
                refresh_token,
                access_type,
                access_ttl,
                refresh_ttl,
                enabled,
            } => {
                let id = format!("client-{client}");
                let mut grants = Vec::new();
                if *authorization_code {
                    grants.push(GrantType::AuthorizationCode);
                }
                if *refresh_token {
                    grants.push(GrantType::RefreshToken);
                }
                let mut registration = ClientRegistration::new(format!("Client {client}"))
                    .id(id.clone())
                    .scopes(scope_names(scopes))
                    .grants(grants.clone())
                    .access_type(*access_type)
                    .lifetimes(*access_ttl, *refresh_ttl);
                registration.enabled = *enabled;
                let got = self.engine.register_client(zone.id(), registration).await;
                let want = self.model.register_client(
                    *zone,
                    &id,
                    ClientPolicy {
                        allowed_scopes: scope_names(scopes),
                        allowed_grants: grants,
                        access_type: *access_type,
                        access_ttl: *access_ttl,
                        refresh_ttl: *refresh_ttl,
                        enabled: *enabled,
                    },
                );
                self.outcome(got, want, |run, got, ()| {
                    run.compare_client(&got.client, *zone, &id)
                })
            }
            Op::UpdateClientPolicy { client, change } => {
                let (zone, id) = self.pick_client(*client);
                let current = self.model.client(zone, &id).map(|c| c.policy.clone());
                let mut update = ClientUpdate::default();
                match change {
                    PolicyChange::Scopes(s) => update.allowed_scopes = Some(scope_names(s)),
                    PolicyChange::Enabled(on) => update.enabled = Some(*on),
                    PolicyChange::RefreshGrant(_) | PolicyChange::AuthorizationCodeGrant(_) => {
                        update.allowed_grants = Some(
                            current
                                .as_ref()
                                .map(|p| change.apply_to(p).allowed_grants)
                                .unwrap_or_default(),
                        );
                    }
                    PolicyChange::AccessType(t) => update.access_type = Some(*t),
                    PolicyChange::Lifetimes { access, refresh } => {
                        update.access_token_ttl_seconds = Some(*access);
                        update.refresh_token_ttl_seconds = Some(*refresh);
                    }
                }
                let got = self.engine.update_client(zone.id(), &id, &update).await;
                let want = self.model.update_client(zone, &id, change);
                self.outcome(got, want, |run, got, ()| {
                    run.compare_client(&got, zone, &id)
                })
            }
            Op::Authorize {
                client,
                wrong_zone,
                user,
                scopes,
                expires,
            } => {
                let (zone, client_id) = self.pick_client(*client);
                let zone = zone.or_other(*wrong_zone);
                let user = user_id(*user);
                let now = self.model.now();
                let mut request = AuthorizeRequest::new(
                    client_id.clone(),
                    user.clone(),
                    RESOURCE,
                    scope_names(scopes),
                );
                let expires_at = match expires {
                    GrantExpiry::Default => None,
                    GrantExpiry::In { millis, nanos } => {
                        request = request.expires_at(
                            timestamp(now + millis) + Duration::nanoseconds(i64::from(*nanos)),
                        );
                        Some(now + millis)
                    }
                };
                let got = self.engine.authorize(zone.id(), request).await;
                let want =
                    self.model
                        .authorize(zone, &client_id, &user, &scope_names(scopes), expires_at);
                if let (Ok(got), Ok(want)) = (&got, &want) {
                    let id = got.grant.id.clone();
                    ensure(!self.model.grants.iter().any(|g| g.id == id), || {
                        format!("grant id {id} was handed out twice")
                    })?;
                    self.model.bind_grant(want.grant, &id);
                }
                self.outcome(got, want, |run, got, want| run.record_issued(&got, &want))
            }
            Op::Introspect { token, wrong_zone } => {
                let token = self.pick_token(*token);
                let (zone, secret) = self.token_address(token);
                let zone = zone.or_other(*wrong_zone);
                self.compare_introspection(zone, &secret, token).await
            }
            Op::RefreshCurrent {
                grant,
                client,
                scopes,
                wrong_zone,
            } => {
                let grant = self.pick_grant(*grant);
                let token = grant.and_then(|g| {
                    self.model
                        .latest_token(g, TokenKind::Refresh)
                        .or_else(|| self.model.latest_token(g, TokenKind::Access))
                });
                let (zone, client_id) = match grant {
                    None => (Zone::A, UNKNOWN_CLIENT.to_owned()),
                    Some(g) => {
                        let gr = &self.model.grants[g];
                        let id = match client {
                            ClientPick::Own => gr.client_id.clone(),
                            ClientPick::Other(n) => {
                                let same_zone: Vec<&ModelClient> = self
                                    .model
                                    .clients
                                    .iter()
                                    .filter(|c| c.zone == gr.zone)
                                    .collect();
                                same_zone
                                    .get(usize::from(*n) % same_zone.len().max(1))
                                    .map_or_else(|| gr.client_id.clone(), |c| c.id.clone())
                            }
                        };
                        (gr.zone, id)
                    }
                };
                let zone = zone.or_other(*wrong_zone);
                let scopes = scopes.as_ref().map(|s| scope_names(s));
                self.refresh(zone, &client_id, token, scopes).await
            }
            Op::RefreshSpent { grant, nth } => {
                let grant = self.pick_grant(*grant);
                let nth = usize::from(*nth);
                let of_grant = grant.map(|g| self.model.spent_refresh_tokens(g));
                let token = match of_grant {
                    Some(spent) if !spent.is_empty() => Some(spent[nth % spent.len()]),
                    _ => {
                        let spent: Vec<usize> = (0..self.model.grants.len())
                            .flat_map(|g| self.model.spent_refresh_tokens(g))
                            .collect();
                        if spent.is_empty() {
                            grant.and_then(|g| self.model.latest_token(g, TokenKind::Refresh))
                        } else {
                            Some(spent[nth % spent.len()])
                        }
                    }
                };
                let (zone, client_id) = token.map_or((Zone::A, UNKNOWN_CLIENT.to_owned()), |t| {
                    let tok = &self.model.tokens[t];
                    (tok.zone, tok.client_id.clone())
                });
                self.refresh(zone, &client_id, token, None).await
            }
            Op::RotateMany { grant, times } => {
                let Some(grant) = self.pick_grant(*grant) else {
                    return Ok(());
                };
                for _ in 0..*times {
                    let token = self
                        .model
                        .latest_token(grant, TokenKind::Refresh)
                        .or_else(|| self.model.latest_token(grant, TokenKind::Access));
                    let gr = &self.model.grants[grant];
                    let (zone, client_id) = (gr.zone, gr.client_id.clone());
                    let before = self.secrets.len();
                    self.refresh(zone, &client_id, token, None).await?;
                    if self.secrets.len() == before {
                        // Refused, as the model agreed: the rest would be refused too.
                        break;
                    }
                }
                Ok(())
            }
            Op::RefreshWith { token } => {
                let token = self.pick_token(*token);
                let (zone, client_id) = token.map_or((Zone::A, UNKNOWN_CLIENT.to_owned()), |t| {
                    let tok = &self.model.tokens[t];
                    (tok.zone, tok.client_id.clone())
                });
                self.refresh(zone, &client_id, token, None).await
            }
            Op::RevokeGrant { grant, wrong_zone } => {
                let grant = self.pick_grant(*grant);
                let (zone, id) = self.grant_address(grant);
                let zone = zone.or_other(*wrong_zone);
                let got = self.engine.revoke_grant(zone.id(), &id, Actor::Admin).await;
                let want = self.model.revoke_grant(zone, grant);
                self.outcome(got, want, |run, got, want| run.compare_grant(&got, &want))
            }
            Op::RevokeToken { token, wrong_zone } => {
                let token = self.pick_token(*token);
                let (zone, secret) = self.token_address(token);
                let zone = zone.or_other(*wrong_zone);
                let got = self
                    .engine
                    .revoke_token(zone.id(), secret.expose(), None)
                    .await;
                let want = self.model.revoke_token(zone, token);
                self.outcome(got, Ok(want), |_, got, want| {
                    ensure(got == want, || {
                        format!("revoke_token answered {got}, the model {want}")
                    })
                })
            }
            Op::DeleteGrant { grant, wrong_zone } => {
                let grant = self.pick_grant(*grant);
                let (zone, id) = self.grant_address(grant);
                let zone = zone.or_other(*wrong_zone);
                let got = self.engine.delete_grant(zone.id(), &id).await;
                let want = self.model.delete_grant(zone, grant);
                self.outcome(got, want, |_, (), ()| Ok(()))
            }
            Op::AdvanceClock(step) => {
                self.advance(*step);
                Ok(())
            }
            Op::Sweep { zone, limit } => {
                let got = self.engine.sweep_expired(zone.id(), *limit).await;
                let want = self.model.sweep(*zone, *limit);
                self.outcome(got, want, |_, got, want| {
                    let same = got.expired == want.expired
                        && got.tokens_removed == want.tokens_removed
                        && got.more == want.more;
                    ensure(same, || {
                        format!("sweep reported {got:?}, the model {want:?}")
                    })
                })
            }
            Op::ListPage {
                zone,
                user,
                status,
                order,
                limit,
            } => {
                self.walk_listing(*zone, user.map(user_id), *status, *order, *limit)
                    .await
            }
            Op::Reopen => Ok(()),
        }
    }

    fn advance(&mut self, step: Step) {
        let nanos = match step {
            Step::Nanos(n) => i64::from(n),
            Step::Millis(n) => i64::from(n) * NANOS_PER_MILLI,
            Step::Seconds(n) => i64::from(n) * 1000 * NANOS_PER_MILLI,
            Step::Hours(n) => i64::from(n) * 3_600_000 * NANOS_PER_MILLI,
            Step::Days(n) => i64::from(n) * 86_400_000 * NANOS_PER_MILLI,
            Step::BackMillis(n) => -i64::from(n) * NANOS_PER_MILLI,
            Step::ToExpiry {
                grant,
                of,
                offset_ms,
            } => {
                let Some(g) = self.pick_grant(grant) else {
                    return;
                };
                let expiry = match of {
                    ExpiryOf::Grant => Some(self.model.grants[g].expires_at),
                    ExpiryOf::Access => self
                        .model
                        .latest_token(g, TokenKind::Access)
                        .map(|t| self.model.tokens[t].expires_at),
                    ExpiryOf::Refresh => self
                        .model
                        .latest_token(g, TokenKind::Refresh)
                        .map(|t| self.model.tokens[t].expires_at),
                };
                let Some(expiry) = expiry else {
                    return;
                };
                let target = (expiry + Millis::from(offset_ms)) * NANOS_PER_MILLI;
                // Only ever forward: a boundary already passed is left alone.
                (target - self.model.clock_nanos()).max(0)
            }
        };
        if nanos != 0 {
            self.model.advance(nanos);
            self.clock.set(clock_time(self.model.clock_nanos()));
        }
    }

    async fn refresh(
        &mut self,
        zone: Zone,
        client_id: &str,
        token: Option<usize>,
        scopes: Option<Vec<String>>,
    ) -> Checked {
        let (_, secret) = self.token_address(token);
        let mut request = RefreshRequest::new(client_id, &secret);
        if let Some(s) = &scopes {
            request = request.scopes(s.clone());
        }
        let got = self.engine.refresh(zone.id(), request).await;
        let want = self
            .model
            .refresh(zone, client_id, token, scopes.as_deref());
        self.outcome(got, want, |run, got, want| run.record_issued(&got, &want))
    }

    /// Compares an outcome: both succeeded (then `same` compares the values) or both
    /// failed the same way.
    fn outcome<T, U>(
        &mut self,
        got: tenure::Result<T>,
        want: Result<U, Refusal>,
        same: impl FnOnce(&mut Run, T, U) -> Checked,
    ) -> Checked {
        match (got, want) {
            (Ok(got), Ok(want)) => same(self, got, want),
            (Err(got), Err(want)) => ensure(self.same_refusal(&got, &want), || {
                format!("the engine failed with {got:?}, the model with {want:?}")
            }),
            (Ok(_), Err(want)) => Err(format!(
                "the engine succeeded, the model failed with {want:?}"
            )),
            (Err(got), Ok(_)) => Err(format!(
                "the engine failed with {got:?}, the model succeeded"
            )),
        }
    }

    fn same_refusal(&self, got: &Error, want: &Refusal) -> bool {
        match (want, got) {
            (Refusal::NotFound(k), Error::NotFound { kind, .. })
            | (Refusal::AlreadyExists(k), Error::AlreadyExists { kind, .. }) => k == kind,
            (Refusal::InvalidInput(f), Error::InvalidInput { field, .. }) => f == field,
            (
                Refusal::InvalidTransition { from, to },
                Error::InvalidTransition { from: f, to: t },
            ) => from == f && to == t,
            (Refusal::InvalidScope(want), Error::InvalidScope { scopes }) => want == scopes,
            (Refusal::ClientDisabled(want), Error::ClientDisabled { client_id }) => {
                want == client_id
            }
            (
                Refusal::GrantTypeNotAllowed(want, want_type),
                Error::GrantTypeNotAllowed {
                    client_id,
                    grant_type,
                },
            ) => want == client_id && want_type == grant_type,
            (Refusal::RefreshTokenReused(g), Error::RefreshTokenReused { grant_id }) => {
                self.model.grants[*g].id == *grant_id
            }
            (Refusal::InvalidGrant(want), Error::InvalidGrant { reason }) => want == reason,
            _ => false,
        }
    }

    /// Checks what an authorization or refresh returned and keeps the plaintexts.
    fn record_issued(&mut self, got: &tenure::Issued, want: &Issuance) -> Checked {
        ensure(self.secrets.len() == want.access, || {
            "the model's token indices are out of step".to_owned()
        })?;
        self.secrets.push(got.access_token.clone());
        self.model
            .bind_token(want.access, got.access_token.digest());
        match (&got.refresh_token, want.refresh) {
            (Some(secret), Some(refresh)) => {
                self.secrets.push(secret.clone());
                self.model.bind_token(refresh, secret.digest());
            }
            (None, None) => {}
            (got, want) => {
                return Err(format!(
                    "refresh token issued: engine {}, model {}",
                    got.is_some(),
                    want.is_some()
                ));
            }
        }
        ensure(got.scopes == want.scopes, || {
            format!("issued scopes {:?}, model {:?}", got.scopes, want.scopes)
        })?;
        let access_expires_at = millis_of("access_expires_at", got.access_expires_at)?;
        ensure(access_expires_at == want.access_expires_at, || {
            format!(
                "access token expires at {access_expires_at}, model {}",
                want.access_expires_at
            )
        })?;
        let issued_at = millis_of("issued_at", got.issued_at)?;
        ensure(issued_at == want.issued_at, || {
            format!("issued at {issued_at}, model {}", want.issued_at)
        })?;
        let view = self
            .model
            .view(want.grant)
            .ok_or("the model lost the grant it issued for")?;
        self.compare_grant(&got.grant, &view)
    }

    fn compare_client(&self, got: &Client, zone: Zone, id: &str) -> Checked {
        let want = self
            .model
            .client(zone, id)
            .ok_or_else(|| format!("the model has no client {id} in {zone:?}"))?;
        let got_policy = ClientPolicy {
            allowed_scopes: got.allowed_scopes.clone(),
            allowed_grants: got.allowed_grants.clone(),
            access_type: got.access_type,
            access_ttl: got.access_token_ttl_seconds,
            refresh_ttl: got.refresh_token_ttl_seconds,
            enabled: got.enabled,
        };
        let times = |created: Millis,
                     updated: Millis,
                     used: Option<Millis>,
                     stopped: Option<Millis>| (created, updated, used, stopped);
        let got_times = times(
            millis_of("created_at", got.created_at)?,
            millis_of("updated_at", got.updated_at)?,
            got.last_used_at
                .map(|t| millis_of("last_used_at", t))
                .transpose()?,
            got.refresh_stopped_at
                .map(|t| millis_of("refresh_stopped_at", t))
                .transpose()?,
        );
        let want_times = times(
            want.created_at,
            want.updated_at,
            want.last_used_at,
            want.refresh_stopped_at,
        );
        ensure(got_times == want_times, || {
            format!(
                "client {id} in {zone:?}: (created, updated, last used, refresh stopped) \
                 engine {got_times:?}, model {want_times:?}"
            )
        })?;
        let mut got_grants = got_policy.allowed_grants.clone();
        let mut want_grants = want.policy.allowed_grants.clone();
        got_grants.sort();
        want_grants.sort();
        ensure(
            got.id == id
                && got.zone_id == zone.id()
                && got_grants == want_grants
                && ClientPolicy {
                    allowed_grants: Vec::new(),
                    ..got_policy.clone()
                } == ClientPolicy {
                    allowed_grants: Vec::new(),
                    ..want.policy.clone()
                },
            || {
                format!(
                    "client {id} in {zone:?}: engine {got_policy:?}, model {:?}",
                    want.policy
                )
            },
        )
    }

    fn compare_grant(&self, got: &Grant, want: &GrantView) -> Checked {
        let engine_id = &self.model.grants[want.grant].id;
        let view = GrantView {
            grant: want.grant,
            zone: if got.zone_id == Zone::A.id() {
                Zone::A
            } else {
                Zone::B
            },
            client_id: got.client_id.clone(),
            user_id: got.user_id.clone(),
            scopes: got.scopes.clone(),
            status: got.status,
            created_at: millis_of("created_at", got.created_at)?,
            updated_at: millis_of("updated_at", got.updated_at)?,
            expires_at: millis_of("expires_at", got.expires_at)?,
            refreshed_at: got
                .refreshed_at
                .map(|t| millis_of("refreshed_at", t))
                .transpose()?,
            refresh_token_set: got.refresh_token_set,
        };
        ensure(
            got.id == *engine_id
                && got.zone_id == want.zone.id()
                && got.resource_id == RESOURCE
                && view == *want,
            || format!("grant {}: engine {view:?}, model {want:?}", want.grant),
        )
    }

    async fn compare_introspection(
        &self,
        zone: Zone,
        secret: &Secret,
        token: Option<usize>,
    ) -> Checked {
        let got = self
            .engine
            .introspect(zone.id(), secret.expose())
            .await
            .map_err(|e| format!("introspection failed: {e:?}"))?;
        let want = self.model.introspect(zone, token);
        match (got, want) {
            (Introspection::Inactive, None) => Ok(()),
            (Introspection::Active(got), Some(want)) => {
                let engine_id = &self.model.grants[want.grant].id;
                let same = got.kind == want.kind
                    && got.scopes == want.scopes
                    && got.client_id == want.client_id
                    && got.user_id == want.user_id
                    && got.resource_id == RESOURCE
                    && got.zone_id == want.zone.id()
                    && got.grant_id == *engine_id
                    && millis_of("iat", got.issued_at)? == want.issued_at
                    && millis_of("exp", got.expires_at)? == want.expires_at;
                ensure(same, || {
                    format!("token {token:?} introspects as {got:?}, model {want:?}")
                })
            }
            (got, want) => Err(format!(
                "token {token:?} in {zone:?} introspects as {got:?}, model {want:?}"
            )),
        }
    }

    async fn walk_listing(
        &self,
        zone: Zone,
        user: Option<String>,
        status: Option<GrantStatus>,
        order: SortOrder,
        limit: usize,
    ) -> Checked {
        let request = ListGrants {
            user_id: user.clone(),
            status,
            order,
            limit: Some(limit),
            ..ListGrants::default()
        };
        let first = self.engine.list_grants(zone.id(), &request).await;
        if let Err(want) = check_page_limit(limit) {
            return self.outcome_ref(first.map(|_| ()), want);
        }
        let want = self.model.list(zone, user.as_deref(), status, order);
        let mut page = first.map_err(|e| format!("listing failed: {e:?}"))?;
        let mut seen: Vec<usize> = Vec::new();
        for pages in 0.. {
            ensure(pages <= want.len(), || {
                "the listing does not end".to_owned()
            })?;
            ensure(page.items.len() <= limit, || {
                format!("a page of {} items for limit {limit}", page.items.len())
            })?;
            ensure(!page.items.is_empty() || want.is_empty(), || {
                "an empty page inside a non-empty listing".to_owned()
            })?;
            let start = seen.len();
            for item in &page.items {
                let index = self
                    .model
                    .grants
                    .iter()
                    .position(|g| g.id == item.id)
                    .ok_or_else(|| format!("listed grant {} is unknown to the model", item.id))?;
                let view = self
                    .model
                    .view(index)
                    .ok_or_else(|| format!("listed grant {index} was deleted"))?;
                self.compare_grant(item, &view)?;
                seen.push(index);
            }
            ensure(
                seen.len() <= want.len() && seen[..] == want[..seen.len()],
                || format!("listed {seen:?}, model {want:?}"),
            )?;
            // A page after the first points back at the items before it.
            match (&page.before_cursor, start) {
                (None, 0) => {}
                (Some(before), start) if start > 0 => {
                    let back = self
                        .engine
                        .list_grants(
                            zone.id(),
                            &ListGrants {
                                before: Some(before.clone()),
                                after: None,
                                ..request.clone()
                            },
                        )
                        .await
                        .map_err(|e| format!("listing before a page failed: {e:?}"))?;
                    let back: Vec<String> = back.items.into_iter().map(|g| g.id).collect();
                    let expected: Vec<String> = want[start.saturating_sub(limit)..start]
                        .iter()
                        .map(|&g| self.model.grants[g].id.clone())
                        .collect();
                    ensure(back == expected, || {
                        format!("the page before item {start} is {back:?}, model {expected:?}")
                    })?;
                }
                (cursor, start) => {
                    return Err(format!(
                        "a page starting at item {start} has before_cursor {:?}",
                        cursor.is_some()
                    ));
                }
            }
            match &page.after_cursor {
                None => break,
                Some(after) => {
                    page = self
                        .engine
                        .list_grants(
                            zone.id(),
                            &ListGrants {
                                after: Some(after.clone()),
                                ..request.clone()
                            },
                        )
                        .await
                        .map_err(|e| format!("listing the next page failed: {e:?}"))?;
                }
            }
        }
        ensure(seen == want, || format!("listed {seen:?}, model {want:?}"))
    }

    fn outcome_ref(&self, got: tenure::Result<()>, want: Refusal) -> Checked {
        match got {
            Err(got) if self.same_refusal(&got, &want) => Ok(()),
            got => Err(format!("the engine answered {got:?}, the model {want:?}")),
        }
    }

    /// Compares everything the model knows with what the engine shows.
    async fn check_state(&mut self) -> Checked {
        ensure(self.secrets.len() == self.model.tokens.len(), || {
            "the model's tokens and the plaintexts are out of step".to_owned()
        })?;
        for client in &self.model.clients {
            let got = self
                .engine
                .get_client(client.zone.id(), &client.id)
                .await
                .map_err(|e| format!("client {} is gone: {e:?}", client.id))?;
            self.compare_client(&got, client.zone, &client.id)?;
        }
        for (index, grant) in self.model.grants.iter().enumerate() {
            let zone = grant.zone.id();
            let got = self.engine.get_grant(zone, &grant.id).await;
            let history = self.engine.grant_history(zone, &grant.id).await;
            match (self.model.view(index), self.model.history(index)) {
                (Some(view), Some(want_history)) => {
                    let got = got.map_err(|e| format!("grant {index} is gone: {e:?}"))?;
                    self.compare_grant(&got, &view)?;
                    let history =
                        history.map_err(|e| format!("history of grant {index} is gone: {e:?}"))?;
                    let got_history: Vec<(TransitionReason, GrantStatus)> =
                        history.iter().map(|t| (t.reason, t.to)).collect();
                    ensure(got_history == want_history, || {
                        format!(
                            "history of grant {index}: engine {got_history:?}, model {want_history:?}"
                        )
                    })?;
                }
                _ => {
                    let found = (got.is_ok(), history.is_ok());
                    ensure(
                        matches!(
                            (&got, &history),
                            (
                                Err(Error::NotFound {
                                    kind: RecordKind::Grant,
                                    ..
                                }),
                                Err(Error::NotFound {
                                    kind: RecordKind::Grant,
                                    ..
                                })
                            )
                        ),
                        || {
                            format!(
                                "deleted grant {index}: found (grant, history) = {found:?}, \
                                 answers {:?} / {:?}",
                                got.as_ref().err(),
                                history.as_ref().err()
                            )
                        },
                    )?;
                }
            }
        }
        for (index, token) in self.model.tokens.iter().enumerate() {
            // A token whose record is gone never comes back: once seen inactive, it
            // need not be asked again after every later operation.
            if self.gone.get(index).copied().unwrap_or(false) {
                continue;
            }
            self.compare_introspection(token.zone, &self.secrets[index], Some(index))
                .await?;
        }
        let gone: Vec<bool> = self.model.tokens.iter().map(|t| t.deleted).collect();
        self.gone = gone;
        Ok(())
    }
}
