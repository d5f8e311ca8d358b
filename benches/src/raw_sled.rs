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
//! | `grant_tokens` | grant id `\0` digest | empty |
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
    /// Spent (rotated), ms.
    pub spent_ms: Option<i64>,
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

fn ms(t: Timestamp) -> i64 {
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
        }
    }

    /// Whether it is active at `now_ms`.
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.status == ACTIVE && now_ms < self.expires_ms
    }

    /// The access token (for an hour) and refresh token (to the grant's expiry) a
    /// rotation of grant `i` issues at `now_ms`.
    pub fn rotated_tokens(&self, i: u64, now_ms: i64) -> [RawToken; 2] {
        let token = |kind: u8, secret: String, expires_ms: i64| RawToken {
            digest: *Digest::of(&secret).as_bytes(),
            zone_id: self.zone_id.clone(),
            grant_id: self.id.clone(),
            client_id: self.client_id.clone(),
            user_id: self.user_id.clone(),
            kind,
            scopes: self.scopes.clone(),
            issued_ms: now_ms,
            expires_ms,
            spent_ms: None,
            revoked_ms: None,
        };
        [
            token(
                ACCESS,
                fixture::secret(TokenKind::Access, i, 1_000),
                now_ms + 3_600_000,
            ),
            token(
                REFRESH,
                fixture::secret(TokenKind::Refresh, i, 1_000),
                self.expires_ms,
            ),
        ]
    }

    /// The transition a rotation by `client_id` at `now_ms` records.
    pub fn refreshed(&self, client_id: String, now_ms: i64) -> RawTransition {
        RawTransition {
            zone_id: self.zone_id.clone(),
            grant_id: self.id.clone(),
            from: Some(ACTIVE),
            to: ACTIVE,
            reason: reason(TransitionReason::Refreshed),
            actor_kind: 3,
            actor_id: Some(client_id),
            at_ms: now_ms,
        }
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
            spent_ms: t.spent_at.map(ms),
            revoked_ms: t.revoked_at.map(ms),
        }
    }

    /// Whether it can be used at `now_ms`.
    pub fn live_at(&self, now_ms: i64) -> bool {
        self.spent_ms.is_none() && self.revoked_ms.is_none() && now_ms < self.expires_ms
    }

    /// Whether `client` may rotate this refresh token of `grant` at `now_ms`.
    pub fn rotatable(&self, grant: &RawGrant, client: &RawClient, now_ms: i64) -> bool {
        self.kind == REFRESH
            && self.live_at(now_ms)
            && grant.active_at(now_ms)
            && client.id == self.client_id
    }
}

impl RawClient {
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
fn time_key(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

fn by_user_key(user: &str, created_ms: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(user.len() + 9 + id.len());
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k.extend_from_slice(&time_key(created_ms));
    k.extend_from_slice(id.as_bytes());
    k
}

fn expiry_key(expires_ms: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + id.len());
    k.extend_from_slice(&time_key(expires_ms));
    k.extend_from_slice(id.as_bytes());
    k
}

fn grant_prefix(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 33);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k
}

fn grant_token_key(grant: &str, digest: &[u8; 32]) -> Vec<u8> {
    let mut k = grant_prefix(grant);
    k.extend_from_slice(digest);
    k
}

fn history_key(grant: &str, at_ms: i64, reason: u8) -> Vec<u8> {
    let mut k = grant_prefix(grant);
    k.extend_from_slice(&time_key(at_ms));
    k.push(0);
    k.push(reason);
    k
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).or_die("encoding a record")
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> T {
    postcard::from_bytes(bytes).or_die("decoding a record")
}

/// What every transaction closure returns.
type Tx = Result<(), ConflictableTransactionError<Infallible>>;

/// A record's key and value, encoded ahead of a transaction (whose closure sled
/// may run more than once).
struct Encoded {
    key: Vec<u8>,
    value: Vec<u8>,
}

/// A token's record and its `grant_tokens` entry, encoded ahead of a transaction.
struct EncodedToken {
    digest: [u8; 32],
    value: Vec<u8>,
    link: Vec<u8>,
}

impl EncodedToken {
    fn of(t: &RawToken) -> Self {
        EncodedToken {
            digest: t.digest,
            value: encode(t),
            link: grant_token_key(&t.grant_id, &t.digest),
        }
    }
}

/// The value of an index entry.
const EMPTY: &[u8] = &[];

impl Encoded {
    fn grant(g: &RawGrant) -> Self {
        Encoded {
            key: g.id.as_bytes().to_vec(),
            value: encode(g),
        }
    }

    fn transition(t: &RawTransition) -> Self {
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
    grant_tokens: Tree,
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
            grant_tokens: tree("grant_tokens"),
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

    /// The digests a grant's tokens are kept under.
    fn token_digests(&self, grant_id: &str) -> Vec<[u8; 32]> {
        self.grant_tokens
            .scan_prefix(grant_prefix(grant_id))
            .keys()
            .map(|k| {
                let k = k.or_die("scanning raw sled");
                let mut digest = [0; 32];
                digest.copy_from_slice(&k[k.len() - 32..]);
                digest
            })
            .collect()
    }

    /// Writes families (not timed) with one batch per tree.
    fn put_families(&self, families: &[(RawGrant, Vec<RawToken>, Vec<RawTransition>)]) {
        let mut batches: [Batch; 6] = Default::default();
        let [grants, tokens, by_user, expiry, grant_tokens, history] = &mut batches;
        for (g, ts, hs) in families {
            grants.insert(g.id.as_bytes(), encode(g));
            by_user.insert(by_user_key(&g.user_id, g.created_ms, &g.id), EMPTY);
            if g.status == ACTIVE {
                expiry.insert(expiry_key(g.expires_ms, &g.id), EMPTY);
            }
            for t in ts {
                tokens.insert(&t.digest[..], encode(t));
                grant_tokens.insert(grant_token_key(&g.id, &t.digest), EMPTY);
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
            &self.grant_tokens,
            &self.history,
        ];
        for (tree, batch) in trees.into_iter().zip(batches) {
            tree.apply_batch(batch).or_die("loading raw sled");
        }
        self.flush();
    }
}

fn raw_family(f: &Family) -> (RawGrant, Vec<RawToken>, Vec<RawTransition>) {
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
        let now = ms(now);
        token.live_at(now) && grant.active_at(now)
    }

    async fn authorize(&self, i: u64, now: Timestamp) {
        let Some(client) = Self::get::<RawClient>(&self.clients, fixture::CLIENT.as_bytes()) else {
            return;
        };
        let mut f = fixture::family(i, 2);
        f.grant.client_id = client.id;
        f.grant.created_at = now;
        let (grant, tokens, history) = raw_family(&f);
        let g = Encoded::grant(&grant);
        let user_key = by_user_key(&grant.user_id, grant.created_ms, &grant.id);
        let expiry_key = expiry_key(grant.expires_ms, &grant.id);
        let ts: Vec<EncodedToken> = tokens.iter().map(EncodedToken::of).collect();
        let hs: Vec<Encoded> = history.iter().map(Encoded::transition).collect();
        (
            &self.grants,
            &self.tokens,
            &self.by_user,
            &self.expiry,
            &self.grant_tokens,
            &self.history,
        )
            .transaction(
                |(grants, tokens, by_user, expiry, grant_tokens, history)| -> Tx {
                    grants.insert(g.key.as_slice(), g.value.as_slice())?;
                    by_user.insert(user_key.as_slice(), EMPTY)?;
                    expiry.insert(expiry_key.as_slice(), EMPTY)?;
                    for t in &ts {
                        tokens.insert(&t.digest[..], t.value.as_slice())?;
                        grant_tokens.insert(t.link.as_slice(), EMPTY)?;
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

    async fn refresh(&self, presented: &str, i: u64, now: Timestamp) -> bool {
        let digest = Digest::of(presented);
        let Some(token) = Self::get::<RawToken>(&self.tokens, digest.as_bytes()) else {
            return false;
        };
        let Some(grant) = Self::get::<RawGrant>(&self.grants, token.grant_id.as_bytes()) else {
            return false;
        };
        let held: Vec<RawToken> = self
            .token_digests(&grant.id)
            .iter()
            .filter_map(|d| Self::get::<RawToken>(&self.tokens, d))
            .collect();
        let Some(client) = Self::get::<RawClient>(&self.clients, token.client_id.as_bytes()) else {
            return false;
        };
        let now_ms = ms(now);
        if !token.rotatable(&grant, &client, now_ms) {
            return false;
        }
        let expired: Vec<([u8; 32], Vec<u8>)> = held
            .iter()
            .filter(|t| t.expires_ms <= now_ms)
            .map(|t| (t.digest, grant_token_key(&t.grant_id, &t.digest)))
            .collect();
        let mut spent = token;
        spent.spent_ms = Some(now_ms);
        let spent = EncodedToken::of(&spent);
        let mut next = grant;
        next.refreshed_ms = Some(now_ms);
        next.updated_ms = now_ms;
        let fresh = next.rotated_tokens(i, now_ms).map(|t| EncodedToken::of(&t));
        let transition = Encoded::transition(&next.refreshed(client.id, now_ms));
        let g = Encoded::grant(&next);
        (
            &self.grants,
            &self.tokens,
            &self.grant_tokens,
            &self.history,
        )
            .transaction(|(grants, tokens, grant_tokens, history)| -> Tx {
                tokens.insert(&spent.digest[..], spent.value.as_slice())?;
                for (digest, link) in &expired {
                    tokens.remove(&digest[..])?;
                    grant_tokens.remove(link.as_slice())?;
                }
                for t in &fresh {
                    tokens.insert(&t.digest[..], t.value.as_slice())?;
                    grant_tokens.insert(t.link.as_slice(), EMPTY)?;
                }
                history.insert(transition.key.as_slice(), transition.value.as_slice())?;
                grants.insert(g.key.as_slice(), g.value.as_slice())?;
                Ok(())
            })
            .or_die("refreshing on raw sled");
        self.flush();
        true
    }

    async fn revoke(&self, grant_id: &str, now: Timestamp) -> bool {
        let Some(mut grant) = Self::get::<RawGrant>(&self.grants, grant_id.as_bytes()) else {
            return false;
        };
        let now_ms = ms(now);
        if !grant.active_at(now_ms) {
            return false;
        }
        let revoked: Vec<EncodedToken> = self
            .token_digests(grant_id)
            .iter()
            .filter_map(|d| Self::get::<RawToken>(&self.tokens, d))
            .filter(|t| t.spent_ms.is_none() && t.revoked_ms.is_none())
            .map(|mut t| {
                t.revoked_ms = Some(now_ms);
                EncodedToken::of(&t)
            })
            .collect();
        grant.status = REVOKED;
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
        (&self.grants, &self.tokens, &self.expiry, &self.history)
            .transaction(|(grants, tokens, expiry, history)| -> Tx {
                grants.insert(g.key.as_slice(), g.value.as_slice())?;
                expiry.remove(expiry_key.as_slice())?;
                for t in &revoked {
                    tokens.insert(&t.digest[..], t.value.as_slice())?;
                }
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
            let links: Vec<([u8; 32], Vec<u8>)> = self
                .token_digests(&grant.id)
                .into_iter()
                .map(|d| (d, grant_token_key(&grant.id, &d)))
                .collect();
            grant.status = EXPIRED;
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
            (
                &self.grants,
                &self.tokens,
                &self.expiry,
                &self.grant_tokens,
                &self.history,
            )
                .transaction(|(grants, tokens, expiry, grant_tokens, history)| -> Tx {
                    grants.insert(g.key.as_slice(), g.value.as_slice())?;
                    expiry.remove(&key[..])?;
                    for (digest, link) in &links {
                        tokens.remove(&digest[..])?;
                        grant_tokens.remove(link.as_slice())?;
                    }
                    history.insert(transition.key.as_slice(), transition.value.as_slice())?;
                    Ok(())
                })
                .or_die("sweeping on raw sled");
            self.flush();
            swept += 1;
        }
        swept
    }
}
