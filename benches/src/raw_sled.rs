//! The raw baseline of the sled backend: plain sled 0.34 trees written by hand,
//! every write operation one multi-tree transaction followed by a flush (as the
//! engine's store does with its default, immediate durability).
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `clients` | client id | [`RawClient`] |
//! | `grants` | grant id | [`RawGrant`] |
//! | `tokens` | 32-byte digest | [`RawToken`] |
//! | `by_user` | user `\0` created (ms) id | empty |
//! | `expiry` | expires (ms) id, active grants only | empty |
//! | `token_expiry` | expires (ms) digest, every token | empty |
//! | `history` | grant id `\0` at (ms) `\0` reason | [`RawTransition`] |
//!
//! Times in keys are big-endian milliseconds with the sign bit flipped, so byte
//! order is time order. Values are postcard encodings of this module's own plain
//! structs (times as milliseconds, enums as bytes): postcard cannot round-trip the
//! core's records, whose serde shape is JSON's. sled's calls run inline in the
//! async methods.

use std::convert::Infallible;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, Transactional};
use sled::{Batch, Db, Tree};
use tempfile::TempDir;
use tenure::{
    AccessType, Actor, Client, ClientType, Digest, Grant, GrantStatus, GrantType, ScopePolicy,
    Timestamp, Token, TokenKind, Transition, TransitionReason,
};

use crate::fixture::{self, Family};
use crate::{OrDie, RawStore};

/// A grant as the raw store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawGrant {
    /// Id.
    pub id: String,
    /// Zone.
    pub zone_id: String,
    /// Organization.
    pub organization_id: String,
    /// User.
    pub user_id: String,
    /// Resource.
    pub resource_id: String,
    /// Provider.
    pub provider_id: String,
    /// Client.
    pub client_id: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// [`status`] byte.
    pub status: u8,
    /// Creation, ms.
    pub created_ms: i64,
    /// Last change, ms.
    pub updated_ms: i64,
    /// Expiry, ms.
    pub expires_ms: i64,
    /// Last refresh, ms.
    pub refreshed_ms: Option<i64>,
    /// Whether a refresh token is held.
    pub refresh_token_set: bool,
    /// The refresh generation.
    pub generation: u64,
    /// The digest of the refresh tokens' family secret.
    pub family: Option<[u8; 32]>,
    /// The digest of the current refresh token.
    pub current: Option<[u8; 32]>,
    /// The digest of the refresh token the last rotation spent.
    pub previous: Option<[u8; 32]>,
}

/// A token as the raw store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawToken {
    /// SHA-256 of the secret.
    pub digest: [u8; 32],
    /// Zone.
    pub zone_id: String,
    /// Grant.
    pub grant_id: String,
    /// Client.
    pub client_id: String,
    /// User.
    pub user_id: String,
    /// [`kind`] byte.
    pub kind: u8,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Issue, ms.
    pub issued_ms: i64,
    /// Expiry, ms.
    pub expires_ms: i64,
    /// The grant's refresh generation it was issued at.
    pub generation: u64,
    /// Revoked, ms.
    pub revoked_ms: Option<i64>,
}

/// A client as the raw store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawClient {
    /// Id.
    pub id: String,
    /// Zone.
    pub zone_id: String,
    /// Organization.
    pub organization_id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Public 0, confidential 1.
    pub client_type: u8,
    /// Owning account.
    pub owner_account_id: Option<String>,
    /// Scopes it may be given.
    pub allowed_scopes: Vec<String>,
    /// Grant types it may use, as bytes.
    pub allowed_grants: Vec<u8>,
    /// Explicit 0, inherit 1.
    pub scope_policy: u8,
    /// Online 0, offline 1.
    pub access_type: u8,
    /// Access token lifetime.
    pub access_token_ttl_seconds: u32,
    /// Refresh token lifetime.
    pub refresh_token_ttl_seconds: u32,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Enabled.
    pub enabled: bool,
    /// Secret digest.
    pub secret_digest: Option<[u8; 32]>,
    /// Creation, ms.
    pub created_ms: i64,
    /// Last change, ms.
    pub updated_ms: i64,
    /// Refresh grant withdrawn, ms.
    pub refresh_stopped_ms: Option<i64>,
    /// Last use, ms.
    pub last_used_ms: Option<i64>,
}

/// A transition as the raw store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawTransition {
    /// Zone.
    pub zone_id: String,
    /// Grant.
    pub grant_id: String,
    /// From status byte.
    pub from: Option<u8>,
    /// To status byte.
    pub to: u8,
    /// [`reason`] byte.
    pub reason: u8,
    /// System 0, admin 1, user 2, client 3.
    pub actor_kind: u8,
    /// The user's or client's id.
    pub actor_id: Option<String>,
    /// When, ms.
    pub at_ms: i64,
}

/// Status bytes.
pub const ACTIVE: u8 = 0;
/// Status bytes.
pub const EXPIRED: u8 = 1;
/// Status bytes.
pub const REVOKED: u8 = 2;

/// A grant status as a byte.
pub fn status(s: GrantStatus) -> u8 {
    match s {
        GrantStatus::Active => ACTIVE,
        GrantStatus::Expired => EXPIRED,
        GrantStatus::Revoked => REVOKED,
    }
}

/// Token kind bytes.
pub const ACCESS: u8 = 0;
/// Token kind bytes.
pub const REFRESH: u8 = 1;

/// A token kind as a byte.
pub fn kind(k: TokenKind) -> u8 {
    match k {
        TokenKind::Access => ACCESS,
        _ => REFRESH,
    }
}

/// A transition reason as a byte.
pub fn reason(r: TransitionReason) -> u8 {
    match r {
        TransitionReason::Created => 0,
        TransitionReason::Refreshed => 1,
        TransitionReason::Revoked => 2,
        TransitionReason::RefreshTokenRevoked => 3,
        TransitionReason::ReuseDetected => 4,
        TransitionReason::Expired => 5,
        _ => 255,
    }
}

/// An actor as a kind byte and an id.
pub fn actor(a: &Actor) -> (u8, Option<String>) {
    match a {
        Actor::System => (0, None),
        Actor::Admin => (1, None),
        Actor::User { id } => (2, Some(id.clone())),
        Actor::Client { id } => (3, Some(id.clone())),
        _ => (255, None),
    }
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

impl RawGrant {
    /// From the core's record.
    pub fn of(g: &Grant) -> Self {
        RawGrant {
            id: g.id.clone(),
            zone_id: g.zone_id.clone(),
            organization_id: g.organization_id.clone(),
            user_id: g.user_id.clone(),
            resource_id: g.resource_id.clone(),
            provider_id: g.provider_id.clone(),
            client_id: g.client_id.clone(),
            scopes: g.scopes.clone(),
            status: status(g.status),
            created_ms: ms(g.created_at),
            updated_ms: ms(g.updated_at),
            expires_ms: ms(g.expires_at),
            refreshed_ms: g.refreshed_at.map(ms),
            refresh_token_set: g.refresh_token_set,
            generation: g.refresh.generation,
            family: g.refresh.family.map(|d| *d.as_bytes()),
            current: g.refresh.current.map(|d| *d.as_bytes()),
            previous: g.refresh.previous.map(|d| *d.as_bytes()),
        }
    }

    /// Whether it is active at `now_ms`.
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.status == ACTIVE && now_ms < self.expires_ms
    }

    /// Rotates grant `i` at `now_ms`, spending the refresh token `presented`: moves
    /// it to its next generation and returns the access token (for an hour) and
    /// refresh token (to the grant's expiry) it issues, with the refresh token's
    /// text.
    pub fn rotate(&mut self, i: u64, presented: [u8; 32], now_ms: i64) -> ([RawToken; 2], String) {
        self.generation += 1;
        self.refreshed_ms = Some(now_ms);
        self.updated_ms = now_ms;
        let refresh = fixture::refresh_secret(
            i,
            self.generation,
            chrono::DateTime::from_timestamp_millis(self.expires_ms).unwrap_or_default(),
        );
        let token = |kind: u8, secret: &str, expires_ms: i64| RawToken {
            digest: *Digest::of(secret).as_bytes(),
            zone_id: self.zone_id.clone(),
            grant_id: self.id.clone(),
            client_id: self.client_id.clone(),
            user_id: self.user_id.clone(),
            kind,
            scopes: self.scopes.clone(),
            issued_ms: now_ms,
            expires_ms,
            generation: self.generation,
            revoked_ms: None,
        };
        let tokens = [
            token(
                ACCESS,
                &fixture::access_secret(i, self.generation),
                now_ms + 3_600_000,
            ),
            token(REFRESH, &refresh, self.expires_ms),
        ];
        self.previous = Some(presented);
        self.current = Some(tokens[1].digest);
        (tokens, refresh)
    }
}

impl RawToken {
    /// From the core's record.
    pub fn of(t: &Token) -> Self {
        RawToken {
            digest: *t.digest.as_bytes(),
            zone_id: t.zone_id.clone(),
            grant_id: t.grant_id.clone(),
            client_id: t.client_id.clone(),
            user_id: t.user_id.clone(),
            kind: kind(t.kind),
            scopes: t.scopes.clone(),
            issued_ms: ms(t.issued_at),
            expires_ms: ms(t.expires_at),
            generation: t.generation,
            revoked_ms: t.revoked_at.map(ms),
        }
    }

    /// Whether it can be used at `now_ms` under `grant`: not revoked alone, not
    /// expired, its grant active, and, for a refresh token, of the grant's current
    /// generation.
    pub fn live_under(&self, grant: &RawGrant, now_ms: i64) -> bool {
        self.revoked_ms.is_none()
            && now_ms < self.expires_ms
            && (self.kind == ACCESS || self.generation == grant.generation)
            && grant.active_at(now_ms)
    }

    /// Whether `client` may rotate this refresh token of `grant` at `now_ms`.
    pub fn rotatable(&self, grant: &RawGrant, client: &RawClient, now_ms: i64) -> bool {
        self.kind == REFRESH && self.live_under(grant, now_ms) && client.id == self.client_id
    }
}

impl RawClient {
    /// Whether its daily `last_used_at` write is due at `now_ms`, as the engine
    /// writes it: at most once a day.
    pub fn use_due(&self, now_ms: i64) -> bool {
        self.last_used_ms
            .is_none_or(|last| now_ms - last >= 86_400_000)
    }

    /// Records a use at `now_ms` if one is due: the client's key and new value.
    pub(crate) fn record_use(&mut self, now_ms: i64) -> Option<Encoded> {
        self.use_due(now_ms).then(|| {
            self.last_used_ms = Some(now_ms);
            Encoded {
                key: self.id.as_bytes().to_vec(),
                value: encode(self),
            }
        })
    }

    /// From the core's record.
    pub fn of(c: &Client) -> Self {
        RawClient {
            id: c.id.clone(),
            zone_id: c.zone_id.clone(),
            organization_id: c.organization_id.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            client_type: match c.client_type {
                ClientType::Public => 0,
                _ => 1,
            },
            owner_account_id: c.owner_account_id.clone(),
            allowed_scopes: c.allowed_scopes.clone(),
            allowed_grants: c
                .allowed_grants
                .iter()
                .map(|g| match g {
                    GrantType::AuthorizationCode => 0,
                    GrantType::RefreshToken => 1,
                    GrantType::ClientCredentials => 2,
                    _ => 3,
                })
                .collect(),
            scope_policy: match c.scope_policy {
                ScopePolicy::Explicit => 0,
                _ => 1,
            },
            access_type: match c.access_type {
                AccessType::Online => 0,
                _ => 1,
            },
            access_token_ttl_seconds: c.access_token_ttl_seconds,
            refresh_token_ttl_seconds: c.refresh_token_ttl_seconds,
            redirect_uris: c.redirect_uris.clone(),
            enabled: c.enabled,
            secret_digest: c.secret_digest.map(|d| *d.as_bytes()),
            created_ms: ms(c.created_at),
            updated_ms: ms(c.updated_at),
            refresh_stopped_ms: c.refresh_stopped_at.map(ms),
            last_used_ms: c.last_used_at.map(ms),
        }
    }
}

impl RawTransition {
    /// From the core's record.
    pub fn of(t: &Transition) -> Self {
        let (actor_kind, actor_id) = actor(&t.actor);
        RawTransition {
            zone_id: t.zone_id.clone(),
            grant_id: t.grant_id.clone(),
            from: t.from.map(status),
            to: status(t.to),
            reason: reason(t.reason),
            actor_kind,
            actor_id,
            at_ms: ms(t.at),
        }
    }
}

/// A time in a key: big-endian, sign bit flipped.
pub(crate) fn time_key(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn by_user_key(user: &str, created_ms: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(user.len() + 9 + id.len());
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k.extend_from_slice(&time_key(created_ms));
    k.extend_from_slice(id.as_bytes());
    k
}

pub(crate) fn expiry_key(expires_ms: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + id.len());
    k.extend_from_slice(&time_key(expires_ms));
    k.extend_from_slice(id.as_bytes());
    k
}

pub(crate) fn token_expiry_key(expires_ms: i64, digest: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(40);
    k.extend_from_slice(&time_key(expires_ms));
    k.extend_from_slice(digest);
    k
}

pub(crate) fn history_key(grant: &str, at_ms: i64, reason: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(grant.len() + 11);
    k.extend_from_slice(grant.as_bytes());
    k.push(0);
    k.extend_from_slice(&time_key(at_ms));
    k.push(0);
    k.push(reason);
    k
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).or_die("encoding a record")
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> T {
    postcard::from_bytes(bytes).or_die("decoding a record")
}

/// What every transaction closure returns.
type Tx = Result<(), ConflictableTransactionError<Infallible>>;

/// A record's key and value, encoded ahead of a transaction (whose closure sled
/// may run more than once).
pub(crate) struct Encoded {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

/// A token's record and its `token_expiry` entry, encoded ahead of a transaction.
pub(crate) struct EncodedToken {
    pub(crate) digest: [u8; 32],
    pub(crate) value: Vec<u8>,
    pub(crate) expiry: Vec<u8>,
}

impl EncodedToken {
    pub(crate) fn of(t: &RawToken) -> Self {
        EncodedToken {
            digest: t.digest,
            value: encode(t),
            expiry: token_expiry_key(t.expires_ms, &t.digest),
        }
    }
}

/// The value of an index entry.
pub(crate) const EMPTY: &[u8] = &[];

impl Encoded {
    pub(crate) fn grant(g: &RawGrant) -> Self {
        Encoded {
            key: g.id.as_bytes().to_vec(),
            value: encode(g),
        }
    }

    pub(crate) fn transition(t: &RawTransition) -> Self {
        Encoded {
            key: history_key(&t.grant_id, t.at_ms, t.reason),
            value: encode(t),
        }
    }
}

/// A hand-written grant store on sled trees, in a temporary directory of its own.
#[derive(Debug)]
pub struct RawSled {
    db: Db,
    clients: Tree,
    grants: Tree,
    tokens: Tree,
    by_user: Tree,
    expiry: Tree,
    token_expiry: Tree,
    history: Tree,
    /// Removed after the database is closed.
    _dir: TempDir,
}

impl Default for RawSled {
    fn default() -> Self {
        RawSled::new()
    }
}

impl RawSled {
    /// Flushes and returns the bytes sled's files take on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.flush().or_die("flushing raw sled");
        self.db.size_on_disk().or_die("measuring raw sled")
    }

    /// An empty store, with sled's default settings (a 1 GiB cache and a
    /// background flush every 500 ms, as the engine's store has).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().or_die("creating a directory for raw sled");
        let db = sled::Config::new()
            .path(dir.path())
            .open()
            .or_die("opening raw sled");
        let tree = |name: &str| db.open_tree(name).or_die("opening a raw sled tree");
        RawSled {
            clients: tree("clients"),
            grants: tree("grants"),
            tokens: tree("tokens"),
            by_user: tree("by_user"),
            expiry: tree("expiry"),
            token_expiry: tree("token_expiry"),
            history: tree("history"),
            db,
            _dir: dir,
        }
    }

    fn flush(&self) {
        self.db.flush().or_die("flushing raw sled");
    }

    fn get<T: for<'a> Deserialize<'a>>(tree: &Tree, key: &[u8]) -> Option<T> {
        tree.get(key).or_die("reading raw sled").map(|v| decode(&v))
    }

    /// Writes families (not timed) with one batch per tree.
    fn put_families(&self, families: &[(RawGrant, Vec<RawToken>, Vec<RawTransition>)]) {
        let mut batches: [Batch; 6] = Default::default();
        let [grants, tokens, by_user, expiry, token_expiry, history] = &mut batches;
        for (g, ts, hs) in families {
            grants.insert(g.id.as_bytes(), encode(g));
            by_user.insert(by_user_key(&g.user_id, g.created_ms, &g.id), EMPTY);
            if g.status == ACTIVE {
                expiry.insert(expiry_key(g.expires_ms, &g.id), EMPTY);
            }
            for t in ts {
                tokens.insert(&t.digest[..], encode(t));
                token_expiry.insert(token_expiry_key(t.expires_ms, &t.digest), EMPTY);
            }
            for h in hs {
                let e = Encoded::transition(h);
                history.insert(e.key, e.value);
            }
        }
        let trees = [
            &self.grants,
            &self.tokens,
            &self.by_user,
            &self.expiry,
            &self.token_expiry,
            &self.history,
        ];
        for (tree, batch) in trees.into_iter().zip(batches) {
            tree.apply_batch(batch).or_die("loading raw sled");
        }
        self.flush();
    }
}

pub(crate) fn raw_family(f: &Family) -> (RawGrant, Vec<RawToken>, Vec<RawTransition>) {
    (
        RawGrant::of(&f.grant),
        f.tokens.iter().map(RawToken::of).collect(),
        f.transitions.iter().map(RawTransition::of).collect(),
    )
}

impl RawStore for RawSled {
    async fn put_client(&self, client: Client) {
        self.clients
            .insert(client.id.as_bytes(), encode(&RawClient::of(&client)))
            .or_die("writing raw sled");
        self.flush();
    }

    async fn load_families(&self, families: Vec<Family>) {
        let raw: Vec<_> = families.iter().map(raw_family).collect();
        self.put_families(&raw);
    }

    async fn load_grants(&self, grants: Vec<Grant>) {
        let raw: Vec<_> = grants
            .iter()
            .map(|g| (RawGrant::of(g), Vec::new(), Vec::new()))
            .collect();
        self.put_families(&raw);
    }

    async fn introspect(&self, presented: &str, now: Timestamp) -> bool {
        let digest = Digest::of(presented);
        let Some(token) = Self::get::<RawToken>(&self.tokens, digest.as_bytes()) else {
            return false;
        };
        let Some(grant) = Self::get::<RawGrant>(&self.grants, token.grant_id.as_bytes()) else {
            return false;
        };
        token.live_under(&grant, ms(now))
    }

    async fn authorize(&self, i: u64, now: Timestamp) {
        let Some(mut client) = Self::get::<RawClient>(&self.clients, fixture::CLIENT.as_bytes())
        else {
            return;
        };
        let mut f = fixture::family(i, 1);
        f.grant.client_id = client.id.clone();
        f.grant.created_at = now;
        let (grant, tokens, history) = raw_family(&f);
        let g = Encoded::grant(&grant);
        let user_key = by_user_key(&grant.user_id, grant.created_ms, &grant.id);
        let expiry_key = expiry_key(grant.expires_ms, &grant.id);
        let ts: Vec<EncodedToken> = tokens.iter().map(EncodedToken::of).collect();
        let hs: Vec<Encoded> = history.iter().map(Encoded::transition).collect();
        let used = client.record_use(ms(now));
        (
            &self.clients,
            &self.grants,
            &self.tokens,
            &self.by_user,
            &self.expiry,
            &self.token_expiry,
            &self.history,
        )
            .transaction(
                |(clients, grants, tokens, by_user, expiry, token_expiry, history)| -> Tx {
                    if let Some(c) = &used {
                        clients.insert(c.key.as_slice(), c.value.as_slice())?;
                    }
                    grants.insert(g.key.as_slice(), g.value.as_slice())?;
                    by_user.insert(user_key.as_slice(), EMPTY)?;
                    expiry.insert(expiry_key.as_slice(), EMPTY)?;
                    for t in &ts {
                        tokens.insert(&t.digest[..], t.value.as_slice())?;
                        token_expiry.insert(t.expiry.as_slice(), EMPTY)?;
                    }
                    for h in &hs {
                        history.insert(h.key.as_slice(), h.value.as_slice())?;
                    }
                    Ok(())
                },
            )
            .or_die("authorizing on raw sled");
        self.flush();
    }

    async fn refresh(&self, presented: &str, i: u64, now: Timestamp) -> Option<String> {
        let digest = *Digest::of(presented).as_bytes();
        let token = Self::get::<RawToken>(&self.tokens, &digest)?;
        let grant = Self::get::<RawGrant>(&self.grants, token.grant_id.as_bytes())?;
        let mut client = Self::get::<RawClient>(&self.clients, token.client_id.as_bytes())?;
        let now_ms = ms(now);
        if !token.rotatable(&grant, &client, now_ms) {
            return None;
        }
        // The spent token is the grant's current one, which is the one presented.
        let spent = (
            token.digest,
            token_expiry_key(token.expires_ms, &token.digest),
        );
        let mut next = grant;
        let (fresh, refresh) = next.rotate(i, digest, now_ms);
        let fresh = fresh.map(|t| EncodedToken::of(&t));
        let g = Encoded::grant(&next);
        let used = client.record_use(now_ms);
        (
            &self.clients,
            &self.grants,
            &self.tokens,
            &self.token_expiry,
        )
            .transaction(|(clients, grants, tokens, token_expiry)| -> Tx {
                grants.insert(g.key.as_slice(), g.value.as_slice())?;
                tokens.remove(&spent.0[..])?;
                token_expiry.remove(spent.1.as_slice())?;
                for t in &fresh {
                    tokens.insert(&t.digest[..], t.value.as_slice())?;
                    token_expiry.insert(t.expiry.as_slice(), EMPTY)?;
                }
                if let Some(c) = &used {
                    clients.insert(c.key.as_slice(), c.value.as_slice())?;
                }
                Ok(())
            })
            .or_die("refreshing on raw sled");
        self.flush();
        Some(refresh)
    }

    async fn revoke(&self, grant_id: &str, now: Timestamp) -> bool {
        let Some(mut grant) = Self::get::<RawGrant>(&self.grants, grant_id.as_bytes()) else {
            return false;
        };
        let now_ms = ms(now);
        if !grant.active_at(now_ms) {
            return false;
        }
        grant.status = REVOKED;
        grant.refresh_token_set = false;
        grant.updated_ms = now_ms;
        let g = Encoded::grant(&grant);
        let expiry_key = expiry_key(grant.expires_ms, &grant.id);
        let transition = Encoded::transition(&RawTransition {
            zone_id: grant.zone_id.clone(),
            grant_id: grant.id.clone(),
            from: Some(ACTIVE),
            to: REVOKED,
            reason: reason(TransitionReason::Revoked),
            actor_kind: 1,
            actor_id: None,
            at_ms: now_ms,
        });
        (&self.grants, &self.expiry, &self.history)
            .transaction(|(grants, expiry, history)| -> Tx {
                grants.insert(g.key.as_slice(), g.value.as_slice())?;
                expiry.remove(expiry_key.as_slice())?;
                history.insert(transition.key.as_slice(), transition.value.as_slice())?;
                Ok(())
            })
            .or_die("revoking on raw sled");
        self.flush();
        true
    }

    async fn page(&self, user_id: &str, limit: usize) -> usize {
        let mut prefix = user_id.as_bytes().to_vec();
        prefix.push(0);
        let items: Vec<RawGrant> = self
            .by_user
            .scan_prefix(prefix)
            .keys()
            .rev()
            .take(limit + 1)
            .filter_map(|k| {
                let k = k.or_die("scanning raw sled");
                let id = &k[user_id.len() + 9..];
                Self::get::<RawGrant>(&self.grants, id)
            })
            .collect();
        items.len().min(limit)
    }

    async fn sweep(&self, now: Timestamp, limit: usize) -> usize {
        let end = time_key(ms(now).saturating_add(1));
        let due: Vec<sled::IVec> = self
            .expiry
            .range(..&end[..])
            .keys()
            .take(limit)
            .map(|k| k.or_die("scanning raw sled"))
            .collect();
        let mut swept = 0;
        for key in &due {
            let id = &key[8..];
            let Some(mut grant) = Self::get::<RawGrant>(&self.grants, id) else {
                continue;
            };
            grant.status = EXPIRED;
            grant.refresh_token_set = false;
            grant.updated_ms = grant.expires_ms;
            let g = Encoded::grant(&grant);
            let transition = Encoded::transition(&RawTransition {
                zone_id: grant.zone_id.clone(),
                grant_id: grant.id.clone(),
                from: Some(ACTIVE),
                to: EXPIRED,
                reason: reason(TransitionReason::Expired),
                actor_kind: 0,
                actor_id: None,
                at_ms: grant.expires_ms,
            });
            (&self.grants, &self.expiry, &self.history)
                .transaction(|(grants, expiry, history)| -> Tx {
                    grants.insert(g.key.as_slice(), g.value.as_slice())?;
                    expiry.remove(&key[..])?;
                    history.insert(transition.key.as_slice(), transition.value.as_slice())?;
                    Ok(())
                })
                .or_die("sweeping on raw sled");
            self.flush();
            swept += 1;
        }
        // Expired tokens, through their expiry index, in one transaction.
        let expired: Vec<sled::IVec> = self
            .token_expiry
            .range(..&end[..])
            .keys()
            .take(limit)
            .map(|k| k.or_die("scanning raw sled"))
            .collect();
        if !expired.is_empty() {
            (&self.tokens, &self.token_expiry)
                .transaction(|(tokens, token_expiry)| -> Tx {
                    for key in &expired {
                        tokens.remove(&key[8..])?;
                        token_expiry.remove(&key[..])?;
                    }
                    Ok(())
                })
                .or_die("pruning tokens on raw sled");
            self.flush();
        }
        swept
    }
}
