//! The records tenure keeps: clients, grants, tokens and grant transitions.

use std::fmt;
use std::str::FromStr;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use crate::secret::Digest;
use crate::time::{Timestamp, rfc3339};

/// The state of a grant. `Expired` and `Revoked` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantStatus {
    /// In force.
    Active,
    /// Its `expires_at` has passed.
    Expired,
    /// Revoked by someone or by reuse detection.
    Revoked,
}

impl GrantStatus {
    /// The wire name: `active`, `expired` or `revoked`.
    pub const fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Active => "active",
            GrantStatus::Expired => "expired",
            GrantStatus::Revoked => "revoked",
        }
    }

    /// Whether no transition leads out of this state.
    pub const fn is_final(self) -> bool {
        !matches!(self, GrantStatus::Active)
    }
}

impl fmt::Display for GrantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantStatus {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(GrantStatus::Active),
            "expired" => Ok(GrantStatus::Expired),
            "revoked" => Ok(GrantStatus::Revoked),
            _ => Err(crate::Error::invalid_input(
                "status",
                "expected active, expired or revoked",
            )),
        }
    }
}

/// An OAuth grant type a client may be allowed to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GrantType {
    /// RFC 6749 §4.1.
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// RFC 6749 §6.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// RFC 6749 §4.4.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 8628.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

impl GrantType {
    /// The wire name, as in a token request's `grant_type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a client authenticates at the token, introspection and revocation endpoints
/// (RFC 6749 §2.3, the names of RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form.
    ClientSecretPost,
    /// A public client: `client_id` only.
    None,
}

impl ClientAuthMethod {
    /// The RFC 7591 name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::None => "none",
        }
    }
}

/// Whether a client keeps a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Cannot keep a secret (a browser or native app).
    Public,
    /// Holds a client secret.
    Confidential,
}

/// Which scopes a client may be given (seed 004).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopePolicy {
    /// The client's listed `allowed_scopes`.
    Explicit,
    /// Whatever the owning account may grant, decided at issuance.
    Inherit,
}

/// Whether a client gets refresh tokens (seed 003).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessType {
    /// Access tokens only.
    Online,
    /// Refresh tokens as well.
    Offline,
}

/// A registered application and its policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// Unique within the zone.
    pub id: String,
    /// The zone the client lives in.
    pub zone_id: String,
    /// The organization that owns the zone.
    pub organization_id: String,
    /// The host's tenant the client belongs to, if the host has tenants (seed 003).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Human-readable name.
    pub name: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The name of the business the client belongs to (seed 003).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    /// The homepage of the client's owner: an absolute `http` or `https` URL
    /// (seed 003).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage_url: Option<String>,
    /// Public or confidential.
    pub client_type: ClientType,
    /// Whether the client serves the host's own internal requests (seed 003); set
    /// at registration, never patched.
    #[serde(default)]
    pub internal: bool,
    /// The account that owns the client; `None` for a built-in first-party client,
    /// whose grants belong to the approving account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_account_id: Option<String>,
    /// Scopes the client may be given under the explicit policy.
    pub allowed_scopes: Vec<String>,
    /// Grant types the client may use.
    pub allowed_grants: Vec<GrantType>,
    /// Explicit or inherited scopes.
    pub scope_policy: ScopePolicy,
    /// Online (no refresh tokens) or offline.
    pub access_type: AccessType,
    /// Lifetime of the access tokens issued from now on.
    pub access_token_ttl_seconds: u32,
    /// Lifetime of the refresh tokens issued from now on.
    pub refresh_token_ttl_seconds: u32,
    /// Redirect URIs for the authorization-code flow.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// A disabled client can neither authorize nor refresh.
    pub enabled: bool,
    /// Whether the client supports strong authentication (seed 003). Recorded for
    /// the host; tenure's rules do not read it.
    #[serde(default)]
    pub strong_auth_supported: bool,
    /// Whether the client supports SAML claims with the authorization-code flow
    /// (seed 003). Recorded for the host; tenure's rules do not read it.
    #[serde(default)]
    pub claims_supported: bool,
    /// The digest of a confidential client's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_digest: Option<Digest>,
    /// The secret a rotation replaced, still accepted until its deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<RetiringSecret>,
    /// Creation time.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// Last change.
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
    /// When `refresh_token` was last taken out of `allowed_grants`: refresh tokens
    /// issued before then never work again, even if it is put back.
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_stopped_at: Option<Timestamp>,
    /// When the client last issued a token, kept at most once a period.
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_used_at: Option<Timestamp>,
}

impl Client {
    /// Whether the client may use `grant_type`.
    pub fn allows(&self, grant_type: GrantType) -> bool {
        self.allowed_grants.contains(&grant_type)
    }

    /// Whether grants of this client get refresh tokens.
    pub fn issues_refresh_tokens(&self) -> bool {
        self.access_type == AccessType::Offline && self.allows(GrantType::RefreshToken)
    }

    /// Whether `presented` is one of the client's secrets at `now`: its current one,
    /// or the one a rotation replaced, before that one's deadline. Both are compared
    /// in constant time, and both are always compared, so the answer takes as long
    /// whichever matches.
    pub fn secret_matches(&self, presented: &str, now: Timestamp) -> bool {
        let current = self.secret_digest.is_some_and(|d| d.verify(presented));
        let previous = self
            .previous_secret
            .as_ref()
            .is_some_and(|p| p.verify(presented) && now < p.valid_until);
        current | previous
    }

    /// Whether a refresh token issued at `issued_at` was stopped by a later removal
    /// of `refresh_token` from the client's grant types.
    pub fn stopped_refresh_token(&self, issued_at: Timestamp) -> bool {
        self.refresh_stopped_at.is_some_and(|at| issued_at < at)
    }
}

/// A client secret that a rotation replaced: accepted beside the new one until
/// `valid_until`, then never again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiringSecret {
    /// The digest of the replaced secret.
    pub digest: Digest,
    /// When it stops working.
    #[serde(with = "rfc3339")]
    pub valid_until: Timestamp,
}

impl RetiringSecret {
    fn verify(&self, presented: &str) -> bool {
        self.digest.verify(presented)
    }
}

/// One user's delegation of scopes on a resource to a client (seeds 000, 001).
///
/// Its JSON is the seed's Grant plus `client_id`: the deprecated `active` is derived
/// from `status` on output and ignored on input, `refreshed_at` is omitted until the
/// first refresh, and times are RFC 3339 with milliseconds and `Z`. The seed's
/// deprecated expansions (`provider`, `resource`, `user`) belong to records tenure
/// does not keep and are never written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Grant {
    /// Unique, time-ordered (UUIDv7).
    pub id: String,
    /// The zone the grant lives in.
    pub zone_id: String,
    /// The organization that owns the grant.
    pub organization_id: String,
    /// The user who granted permission.
    pub user_id: String,
    /// The resource receiving the grant.
    pub resource_id: String,
    /// The provider that issued the grant.
    pub provider_id: String,
    /// The client the grant was made to.
    pub client_id: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// The stored state; see [`Grant::as_of`] for the state as it reads at a time.
    pub status: GrantStatus,
    /// Creation time.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// Last change; never goes backwards.
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
    /// When the grant expires.
    #[serde(with = "rfc3339")]
    pub expires_at: Timestamp,
    /// The last refresh; absent until the first.
    #[serde(default, with = "rfc3339::option")]
    pub refreshed_at: Option<Timestamp>,
    /// Whether a live refresh token is held for the grant.
    pub refresh_token_set: bool,
    /// Where the grant's refresh-token rotation stands. Not part of the seed's
    /// Grant: it is never serialized with it, and reads as the default from it.
    #[serde(skip)]
    pub refresh: RefreshChain,
}

/// Where a grant's refresh-token rotation stands: what tells its current refresh
/// token from every spent one, in constant space however often it rotated.
///
/// Each rotation increments `generation`; a refresh token is current only if it
/// carries the grant's generation. Every refresh token a grant issues also carries
/// the grant's *family secret* (see [`crate::secret::RefreshReference`]), of which
/// the grant keeps only the digest, so that a spent token whose record is long gone
/// still proves it belongs to the grant, and its reuse is caught. Digests only:
/// no plaintext secret is stored here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct RefreshChain {
    /// The generation of the current refresh token: 0 before the first is issued,
    /// then 1, incremented by every rotation.
    pub generation: u64,
    /// The digest of the family secret the grant's refresh tokens carry; `None` for
    /// a grant that has issued none since it was last upgraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Digest>,
    /// The digest of the current refresh token, whose record a rotation deletes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Digest>,
    /// The digest of the refresh token the last rotation spent: the only spent token
    /// the reuse grace window can accept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Digest>,
}

impl RefreshChain {
    /// The chain of a grant written by a version of tenure that kept every spent
    /// refresh token instead: generation 1, which the live refresh token of such a
    /// grant carries, and no family yet (the next rotation draws one). See
    /// [`Token::legacy_generation`].
    pub const LEGACY: RefreshChain = RefreshChain {
        generation: 1,
        family: None,
        current: None,
        previous: None,
    };
}

/// The status a grant stored as `status` with expiry `expires_at` has at `now`.
fn status_at(status: GrantStatus, expires_at: Timestamp, now: Timestamp) -> GrantStatus {
    match status {
        GrantStatus::Active if expires_at <= now => GrantStatus::Expired,
        status => status,
    }
}

/// What introspection needs of a token's grant: what decides whether the token is
/// good, and the resource its answer names. The token's record carries the rest
/// (zone, grant id, client, user, scopes), so a backend that keeps grants compact
/// reads these few fields instead of rebuilding the whole record on every request
/// (see [`Storage::get_token_and_grant_facts`](crate::Storage::get_token_and_grant_facts)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFacts {
    /// The status as stored.
    pub status: GrantStatus,
    /// When the grant expires.
    pub expires_at: Timestamp,
    /// The generation of its current refresh token ([`RefreshChain::generation`]).
    pub refresh_generation: u64,
    /// The resource it is for (`aud`).
    pub resource_id: String,
}

impl GrantFacts {
    /// The same rule as [`Grant::status_at`].
    pub fn status_at(&self, now: Timestamp) -> GrantStatus {
        status_at(self.status, self.expires_at, now)
    }
}

impl From<Grant> for GrantFacts {
    fn from(grant: Grant) -> GrantFacts {
        GrantFacts {
            status: grant.status,
            expires_at: grant.expires_at,
            refresh_generation: grant.refresh.generation,
            resource_id: grant.resource_id,
        }
    }
}

impl Grant {
    /// The status the grant has at `now`: an active grant whose expiry has passed
    /// reads as expired, whether or not a sweep has written it yet.
    pub fn status_at(&self, now: Timestamp) -> GrantStatus {
        status_at(self.status, self.expires_at, now)
    }

    /// The grant as it reads at `now`: if it has expired unswept, exactly the record
    /// a sweep would write (status expired, `updated_at` at the expiry, no refresh
    /// token held).
    pub fn as_of(&self, now: Timestamp) -> Grant {
        let mut grant = self.clone();
        if grant.status_at(now) != grant.status {
            crate::lifecycle::mark_expired(&mut grant);
        }
        grant
    }

    /// The deprecated `active` field of the seed: whether the stored status is active.
    pub fn is_active(&self) -> bool {
        self.status == GrantStatus::Active
    }
}

impl Serialize for Grant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Time<'a>(&'a Timestamp);
        impl Serialize for Time<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                rfc3339::serialize(self.0, s)
            }
        }
        let fields = if self.refreshed_at.is_some() { 15 } else { 14 };
        let mut out = s.serialize_struct("Grant", fields)?;
        out.serialize_field("id", &self.id)?;
        out.serialize_field("zone_id", &self.zone_id)?;
        out.serialize_field("organization_id", &self.organization_id)?;
        out.serialize_field("user_id", &self.user_id)?;
        out.serialize_field("resource_id", &self.resource_id)?;
        out.serialize_field("provider_id", &self.provider_id)?;
        out.serialize_field("client_id", &self.client_id)?;
        out.serialize_field("scopes", &self.scopes)?;
        out.serialize_field("status", &self.status)?;
        out.serialize_field("active", &self.is_active())?;
        out.serialize_field("created_at", &Time(&self.created_at))?;
        out.serialize_field("updated_at", &Time(&self.updated_at))?;
        out.serialize_field("expires_at", &Time(&self.expires_at))?;
        match &self.refreshed_at {
            Some(t) => out.serialize_field("refreshed_at", &Time(t))?,
            None => out.skip_field("refreshed_at")?,
        }
        out.serialize_field("refresh_token_set", &self.refresh_token_set)?;
        out.end()
    }
}

/// Access or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Short-lived; presented to resource servers.
    Access,
    /// Long-lived; rotated at every refresh.
    Refresh,
}

impl TokenKind {
    /// The RFC 7009 `token_type_hint` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access_token",
            TokenKind::Refresh => "refresh_token",
        }
    }
}

/// A token issued under a grant, kept as the digest of its secret and a snapshot of
/// the scopes and expiry it was issued with.
///
/// Its JSON also reads the form older versions wrote, with a `spent_at` time and no
/// `generation` (see [`Token::legacy_generation`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TokenWire")]
pub struct Token {
    /// The SHA-256 digest of the secret; the token's key.
    pub digest: Digest,
    /// The zone of the grant.
    pub zone_id: String,
    /// The grant the token carries.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user who granted it.
    pub user_id: String,
    /// Access or refresh.
    pub kind: TokenKind,
    /// The scopes it carries, fixed at issuance.
    pub scopes: Vec<String>,
    /// Issuance time.
    #[serde(with = "rfc3339")]
    pub issued_at: Timestamp,
    /// Expiry, fixed at issuance; never later than the grant's.
    #[serde(with = "rfc3339")]
    pub expires_at: Timestamp,
    /// The grant's refresh generation when the token was issued. A refresh token is
    /// current only while its grant is still at this generation (see
    /// [`RefreshChain`]); an access token outlives rotations to its own expiry.
    pub generation: u64,
    /// When the token alone was revoked (RFC 7009); revoking its grant does not
    /// write it.
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<Timestamp>,
}

/// A token's JSON as read: today's form, or the older one with `spent_at`.
#[derive(Deserialize)]
struct TokenWire {
    digest: Digest,
    zone_id: String,
    grant_id: String,
    client_id: String,
    user_id: String,
    kind: TokenKind,
    scopes: Vec<String>,
    #[serde(with = "rfc3339")]
    issued_at: Timestamp,
    #[serde(with = "rfc3339")]
    expires_at: Timestamp,
    #[serde(default)]
    generation: Option<u64>,
    #[serde(default, with = "rfc3339::option")]
    spent_at: Option<Timestamp>,
    #[serde(default, with = "rfc3339::option")]
    revoked_at: Option<Timestamp>,
}

impl From<TokenWire> for Token {
    fn from(w: TokenWire) -> Token {
        Token {
            generation: w
                .generation
                .unwrap_or_else(|| Token::legacy_generation(w.spent_at.is_some())),
            digest: w.digest,
            zone_id: w.zone_id,
            grant_id: w.grant_id,
            client_id: w.client_id,
            user_id: w.user_id,
            kind: w.kind,
            scopes: w.scopes,
            issued_at: w.issued_at,
            expires_at: w.expires_at,
            revoked_at: w.revoked_at,
        }
    }
}

impl Token {
    /// Whether the token can be used at `now`, leaving its grant aside: not expired
    /// and not revoked alone.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    /// Whether the token is its grant's current one: any access token, and a
    /// refresh token of the grant's current generation. A refresh token of an older
    /// generation was spent by a rotation.
    pub fn is_current(&self, grant: &Grant) -> bool {
        self.is_of_generation(grant.refresh.generation)
    }

    /// [`Token::is_current`] under a grant whose refresh generation is `generation`.
    pub fn is_of_generation(&self, generation: u64) -> bool {
        self.kind == TokenKind::Access || self.generation == generation
    }

    /// The generation of a refresh token written by a version of tenure that kept
    /// spent refresh tokens with a `spent_at` time: 0 if it was spent (so it reads
    /// as spent under a grant at [`RefreshChain::LEGACY`]), 1 if not.
    pub const fn legacy_generation(spent: bool) -> u64 {
        if spent { 0 } else { 1 }
    }
}

/// Why a grant changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransitionReason {
    /// The grant was created.
    Created,
    /// Its refresh token was rotated.
    Refreshed,
    /// Someone revoked it.
    Revoked,
    /// Its refresh token was revoked (RFC 7009), taking the grant with it.
    RefreshTokenRevoked,
    /// A spent refresh token was presented again (RFC 9700 §4.14.2).
    ReuseDetected,
    /// Its expiry passed.
    Expired,
    /// The authorization code it was created from was presented again (RFC 6749
    /// §4.1.2, RFC 9700 §4.5).
    CodeReused,
    /// Its client was disabled or lost the grant type it was issued under (a
    /// client's own client-credentials grant).
    ClientDisabled,
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransitionReason::Created => "created",
            TransitionReason::Refreshed => "refreshed",
            TransitionReason::Revoked => "revoked",
            TransitionReason::RefreshTokenRevoked => "refresh token revoked",
            TransitionReason::ReuseDetected => "reuse detected",
            TransitionReason::Expired => "expired",
            TransitionReason::CodeReused => "authorization code reused",
            TransitionReason::ClientDisabled => "client disabled",
        })
    }
}

/// Who caused a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Actor {
    /// tenure itself: expiry, reuse detection.
    System,
    /// An administrator of the zone.
    Admin,
    /// A user, by id.
    User {
        /// The user's id.
        id: String,
    },
    /// A client, by id.
    Client {
        /// The client's id.
        id: String,
    },
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Admin => f.write_str("admin"),
            Actor::User { id } => write!(f, "user {id}"),
            Actor::Client { id } => write!(f, "client {id}"),
        }
    }
}

/// One entry of a grant's history: "why was this grant revoked?" always has an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The zone of the grant.
    pub zone_id: String,
    /// The grant.
    pub grant_id: String,
    /// The state before; `None` at creation.
    pub from: Option<GrantStatus>,
    /// The state after.
    pub to: GrantStatus,
    /// Why.
    pub reason: TransitionReason,
    /// Who.
    pub actor: Actor,
    /// When.
    #[serde(with = "rfc3339")]
    pub at: Timestamp,
}
