//! Records as they are kept on disk: one format byte, then the record in postcard.
//!
//! The core's records are shaped for JSON (RFC 3339 strings for times, fields
//! skipped when empty, an internally tagged `Actor`), and a non-self-describing
//! format like postcard cannot read those back: a skipped field is simply missing
//! and the next field is misread in its place. So the disk format is its own set of
//! plain structs below, converted from and to the core's records: every field always
//! written, times as seconds and nanoseconds, digests as 32 bytes, enums as this
//! module's own enums. The disk format therefore changes only when this file does,
//! never because the core renamed or reordered something.
//!
//! Each struct is one *layout* of one kind of record, and its [`Layout::FORMAT`] is
//! the byte its records start with. A layout is never changed: a change is a new
//! struct with the next format byte, and the old struct stays, for reading only, so
//! that records written before can still be read. Format 2 is the grant with its
//! refresh chain ([`GrantV2`]), the token with its refresh generation ([`TokenV2`])
//! and the client with the secret a rotation replaced and seed 003's descriptive
//! fields ([`ClientV2`]); every other kind is in format 1, authorization codes
//! ([`AuthorizationCodeV1`]) included. Grants and tokens of format 1 are rewritten
//! by [`crate::migrate`] when a store of format 1 is opened; a client of format 1
//! is read as it is, with no previous secret and the descriptive fields at their
//! defaults ([`decode_client`]), and written in format 2 when it is next put.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tenure::{
    AccessType, Actor, AuthorizationCode, Client, ClientType, DeviceAuthorization, DeviceState,
    Digest, Grant, GrantFacts, GrantStatus, GrantType, PersonalGrant, RefreshChain, RetiringSecret,
    ScopePolicy, Timestamp, Token, TokenKind, Transition, TransitionReason, Versioned,
};

use crate::error::StoreError;

/// The struct one kind of record is stored as, and the byte that names it.
pub(crate) trait Layout: Serialize + DeserializeOwned {
    /// The first byte of every record stored in this layout.
    const FORMAT: u8;
}

/// The highest format byte this build knows.
const LATEST_FORMAT: u8 = 2;

/// Encodes a record behind its layout's format byte.
pub(crate) fn encode<T: Layout>(record: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(record, vec![T::FORMAT]).map_err(StoreError::Encode)
}

/// Decodes a record written by [`encode`] in layout `T`; `what` names it in errors.
pub(crate) fn decode<T: Layout>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    decode_as(what, T::FORMAT, bytes)
}

/// Decodes a record stored in layout `format` as `T`: the layout itself, or a view
/// of it that borrows from `bytes`.
fn decode_as<'a, T: Deserialize<'a>>(
    what: &'static str,
    format: u8,
    bytes: &'a [u8],
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&found, body)) if found == format => {
            let (value, rest) = postcard::take_from_bytes(body)
                .map_err(|source| StoreError::Decode { what, source })?;
            if rest.is_empty() {
                Ok(value)
            } else {
                Err(StoreError::Corrupt {
                    what,
                    detail: format!("{} trailing bytes", rest.len()),
                })
            }
        }
        Some((&found, _)) => Err(StoreError::UnknownRecordFormat { what, found }),
        None => Err(StoreError::Corrupt {
            what,
            detail: "empty value".to_owned(),
        }),
    }
}

/// The format byte of a stored record; `what` names it in errors.
pub(crate) fn format_of(what: &'static str, bytes: &[u8]) -> Result<u8, StoreError> {
    bytes.first().copied().ok_or_else(|| StoreError::Corrupt {
        what,
        detail: "empty value".to_owned(),
    })
}

/// Only the version of a stored record: the first field of every versioned layout,
/// in every format.
pub(crate) fn decode_version(what: &'static str, bytes: &[u8]) -> Result<u64, StoreError> {
    match bytes.split_first() {
        Some((&found, body)) if (1..=LATEST_FORMAT).contains(&found) => {
            postcard::take_from_bytes::<u64>(body)
                .map(|(v, _)| v)
                .map_err(|source| StoreError::Decode { what, source })
        }
        Some((&found, _)) => Err(StoreError::UnknownRecordFormat { what, found }),
        None => Err(StoreError::Corrupt {
            what,
            detail: "empty value".to_owned(),
        }),
    }
}

/// A time, exactly: seconds since the epoch and nanoseconds (chrono's own split).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Time(i64, u32);

impl From<Timestamp> for Time {
    fn from(t: Timestamp) -> Self {
        Time(t.timestamp(), t.timestamp_subsec_nanos())
    }
}

impl Time {
    fn to_timestamp(self) -> Result<Timestamp, StoreError> {
        DateTime::<Utc>::from_timestamp(self.0, self.1).ok_or_else(|| StoreError::Corrupt {
            what: "time",
            detail: format!("{}s {}ns is out of range", self.0, self.1),
        })
    }
}

fn opt_time(t: Option<Time>) -> Result<Option<Timestamp>, StoreError> {
    t.map(Time::to_timestamp).transpose()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum StatusV1 {
    Active,
    Expired,
    Revoked,
}

impl From<GrantStatus> for StatusV1 {
    fn from(s: GrantStatus) -> Self {
        match s {
            GrantStatus::Active => StatusV1::Active,
            GrantStatus::Expired => StatusV1::Expired,
            GrantStatus::Revoked => StatusV1::Revoked,
        }
    }
}

impl From<StatusV1> for GrantStatus {
    fn from(s: StatusV1) -> Self {
        match s {
            StatusV1::Active => GrantStatus::Active,
            StatusV1::Expired => GrantStatus::Expired,
            StatusV1::Revoked => GrantStatus::Revoked,
        }
    }
}

/// The byte a status is indexed under.
pub(crate) fn status_tag(s: GrantStatus) -> u8 {
    match s {
        GrantStatus::Active => 0,
        GrantStatus::Expired => 1,
        GrantStatus::Revoked => 2,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum GrantTypeV1 {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    DeviceCode,
}

impl From<GrantType> for GrantTypeV1 {
    fn from(g: GrantType) -> Self {
        match g {
            GrantType::AuthorizationCode => GrantTypeV1::AuthorizationCode,
            GrantType::RefreshToken => GrantTypeV1::RefreshToken,
            GrantType::ClientCredentials => GrantTypeV1::ClientCredentials,
            GrantType::DeviceCode => GrantTypeV1::DeviceCode,
        }
    }
}

impl From<GrantTypeV1> for GrantType {
    fn from(g: GrantTypeV1) -> Self {
        match g {
            GrantTypeV1::AuthorizationCode => GrantType::AuthorizationCode,
            GrantTypeV1::RefreshToken => GrantType::RefreshToken,
            GrantTypeV1::ClientCredentials => GrantType::ClientCredentials,
            GrantTypeV1::DeviceCode => GrantType::DeviceCode,
        }
    }
}

/// A client as format 1 stored it, before clients kept the secret a rotation
/// replaced. Read only: [`decode_client`] reads it as a [`ClientV2`] without a
/// previous secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClientV1 {
    version: u64,
    id: String,
    zone_id: String,
    organization_id: String,
    name: String,
    description: Option<String>,
    confidential: bool,
    owner_account_id: Option<String>,
    allowed_scopes: Vec<String>,
    allowed_grants: Vec<GrantTypeV1>,
    inherit_scopes: bool,
    offline: bool,
    access_token_ttl_seconds: u32,
    refresh_token_ttl_seconds: u32,
    redirect_uris: Vec<String>,
    enabled: bool,
    secret_digest: Option<[u8; 32]>,
    created_at: Time,
    updated_at: Time,
    refresh_stopped_at: Option<Time>,
    last_used_at: Option<Time>,
}

impl Layout for ClientV1 {
    const FORMAT: u8 = 1;
}

impl ClientV1 {
    /// The client, with no previous secret and none of seed 003's descriptive
    /// fields: none was kept before format 2.
    fn upgrade(self) -> ClientV2 {
        ClientV2 {
            version: self.version,
            id: self.id,
            zone_id: self.zone_id,
            organization_id: self.organization_id,
            name: self.name,
            description: self.description,
            confidential: self.confidential,
            owner_account_id: self.owner_account_id,
            allowed_scopes: self.allowed_scopes,
            allowed_grants: self.allowed_grants,
            inherit_scopes: self.inherit_scopes,
            offline: self.offline,
            access_token_ttl_seconds: self.access_token_ttl_seconds,
            refresh_token_ttl_seconds: self.refresh_token_ttl_seconds,
            redirect_uris: self.redirect_uris,
            enabled: self.enabled,
            secret_digest: self.secret_digest,
            previous_secret: None,
            created_at: self.created_at,
            updated_at: self.updated_at,
            refresh_stopped_at: self.refresh_stopped_at,
            last_used_at: self.last_used_at,
            tenant: None,
            business_name: None,
            homepage_url: None,
            internal: false,
            strong_auth_supported: false,
            claims_supported: false,
        }
    }
}

/// The secret a rotation replaced, and when it stops working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct RetiringSecretV2 {
    digest: [u8; 32],
    valid_until: Time,
}

impl From<&RetiringSecret> for RetiringSecretV2 {
    fn from(p: &RetiringSecret) -> Self {
        RetiringSecretV2 {
            digest: *p.digest.as_bytes(),
            valid_until: p.valid_until.into(),
        }
    }
}

impl RetiringSecretV2 {
    fn into_record(self) -> Result<RetiringSecret, StoreError> {
        Ok(RetiringSecret {
            digest: Digest::from_bytes(self.digest),
            valid_until: self.valid_until.to_timestamp()?,
        })
    }
}

/// A client, with the secret a rotation replaced and seed 003's descriptive fields
/// (tenant, business name, homepage, internal, strong authentication, claims).
///
/// The descriptive fields were added to this layout in place, at its end, rather
/// than in a format 3: format 2 had not been released when they came, so no store
/// holds a format-2 client without them. Once released, this layout is frozen
/// like every other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClientV2 {
    version: u64,
    id: String,
    zone_id: String,
    organization_id: String,
    name: String,
    description: Option<String>,
    confidential: bool,
    owner_account_id: Option<String>,
    allowed_scopes: Vec<String>,
    allowed_grants: Vec<GrantTypeV1>,
    inherit_scopes: bool,
    offline: bool,
    access_token_ttl_seconds: u32,
    refresh_token_ttl_seconds: u32,
    redirect_uris: Vec<String>,
    enabled: bool,
    secret_digest: Option<[u8; 32]>,
    previous_secret: Option<RetiringSecretV2>,
    created_at: Time,
    updated_at: Time,
    refresh_stopped_at: Option<Time>,
    last_used_at: Option<Time>,
    tenant: Option<String>,
    business_name: Option<String>,
    homepage_url: Option<String>,
    internal: bool,
    strong_auth_supported: bool,
    claims_supported: bool,
}

impl Layout for ClientV2 {
    const FORMAT: u8 = 2;
}

impl ClientV2 {
    pub(crate) fn new(c: &Client, version: u64) -> Self {
        ClientV2 {
            version,
            id: c.id.clone(),
            zone_id: c.zone_id.clone(),
            organization_id: c.organization_id.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            confidential: c.client_type == ClientType::Confidential,
            owner_account_id: c.owner_account_id.clone(),
            allowed_scopes: c.allowed_scopes.clone(),
            allowed_grants: c.allowed_grants.iter().copied().map(Into::into).collect(),
            inherit_scopes: c.scope_policy == ScopePolicy::Inherit,
            offline: c.access_type == AccessType::Offline,
            access_token_ttl_seconds: c.access_token_ttl_seconds,
            refresh_token_ttl_seconds: c.refresh_token_ttl_seconds,
            redirect_uris: c.redirect_uris.clone(),
            enabled: c.enabled,
            secret_digest: c.secret_digest.map(|d| *d.as_bytes()),
            previous_secret: c.previous_secret.as_ref().map(Into::into),
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
            refresh_stopped_at: c.refresh_stopped_at.map(Into::into),
            last_used_at: c.last_used_at.map(Into::into),
            tenant: c.tenant.clone(),
            business_name: c.business_name.clone(),
            homepage_url: c.homepage_url.clone(),
            internal: c.internal,
            strong_auth_supported: c.strong_auth_supported,
            claims_supported: c.claims_supported,
        }
    }

    pub(crate) fn into_record(self) -> Result<Versioned<Client>, StoreError> {
        Ok(Versioned {
            version: self.version,
            record: Client {
                id: self.id,
                zone_id: self.zone_id,
                organization_id: self.organization_id,
                tenant: self.tenant,
                name: self.name,
                description: self.description,
                business_name: self.business_name,
                homepage_url: self.homepage_url,
                client_type: if self.confidential {
                    ClientType::Confidential
                } else {
                    ClientType::Public
                },
                internal: self.internal,
                owner_account_id: self.owner_account_id,
                allowed_scopes: self.allowed_scopes,
                allowed_grants: self.allowed_grants.into_iter().map(Into::into).collect(),
                scope_policy: if self.inherit_scopes {
                    ScopePolicy::Inherit
                } else {
                    ScopePolicy::Explicit
                },
                access_type: if self.offline {
                    AccessType::Offline
                } else {
                    AccessType::Online
                },
                access_token_ttl_seconds: self.access_token_ttl_seconds,
                refresh_token_ttl_seconds: self.refresh_token_ttl_seconds,
                redirect_uris: self.redirect_uris,
                enabled: self.enabled,
                strong_auth_supported: self.strong_auth_supported,
                claims_supported: self.claims_supported,
                secret_digest: self.secret_digest.map(Digest::from_bytes),
                previous_secret: self
                    .previous_secret
                    .map(RetiringSecretV2::into_record)
                    .transpose()?,
                created_at: self.created_at.to_timestamp()?,
                updated_at: self.updated_at.to_timestamp()?,
                refresh_stopped_at: opt_time(self.refresh_stopped_at)?,
                last_used_at: opt_time(self.last_used_at)?,
            },
        })
    }
}

/// A stored client, in whichever of its layouts it was written: clients are
/// rewritten in format 2 only when they are next put, so format 1 is read as it is.
pub(crate) fn decode_client(bytes: &[u8]) -> Result<Versioned<Client>, StoreError> {
    let layout = match format_of("client", bytes)? {
        ClientV1::FORMAT => decode::<ClientV1>("client", bytes)?.upgrade(),
        _ => decode::<ClientV2>("client", bytes)?,
    };
    layout.into_record()
}

/// A grant's refresh chain: its generation and three optional digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ChainV2 {
    generation: u64,
    family: Option<[u8; 32]>,
    current: Option<[u8; 32]>,
    previous: Option<[u8; 32]>,
}

impl From<RefreshChain> for ChainV2 {
    fn from(c: RefreshChain) -> Self {
        ChainV2 {
            generation: c.generation,
            family: c.family.map(|d| *d.as_bytes()),
            current: c.current.map(|d| *d.as_bytes()),
            previous: c.previous.map(|d| *d.as_bytes()),
        }
    }
}

impl From<ChainV2> for RefreshChain {
    fn from(c: ChainV2) -> Self {
        RefreshChain {
            generation: c.generation,
            family: c.family.map(Digest::from_bytes),
            current: c.current.map(Digest::from_bytes),
            previous: c.previous.map(Digest::from_bytes),
        }
    }
}

/// A grant, with its refresh chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GrantV2 {
    version: u64,
    id: String,
    zone_id: String,
    organization_id: String,
    user_id: String,
    resource_id: String,
    provider_id: String,
    client_id: String,
    scopes: Vec<String>,
    status: StatusV1,
    created_at: Time,
    updated_at: Time,
    expires_at: Time,
    refreshed_at: Option<Time>,
    refresh_token_set: bool,
    refresh: ChainV2,
}

impl Layout for GrantV2 {
    const FORMAT: u8 = 2;
}

impl GrantV2 {
    pub(crate) fn new(g: &Grant, version: u64) -> Self {
        GrantV2 {
            version,
            id: g.id.clone(),
            zone_id: g.zone_id.clone(),
            organization_id: g.organization_id.clone(),
            user_id: g.user_id.clone(),
            resource_id: g.resource_id.clone(),
            provider_id: g.provider_id.clone(),
            client_id: g.client_id.clone(),
            scopes: g.scopes.clone(),
            status: g.status.into(),
            created_at: g.created_at.into(),
            updated_at: g.updated_at.into(),
            expires_at: g.expires_at.into(),
            refreshed_at: g.refreshed_at.map(Into::into),
            refresh_token_set: g.refresh_token_set,
            refresh: g.refresh.into(),
        }
    }

    pub(crate) fn into_record(self) -> Result<Versioned<Grant>, StoreError> {
        Ok(Versioned {
            version: self.version,
            record: Grant {
                id: self.id,
                zone_id: self.zone_id,
                organization_id: self.organization_id,
                user_id: self.user_id,
                resource_id: self.resource_id,
                provider_id: self.provider_id,
                client_id: self.client_id,
                scopes: self.scopes,
                status: self.status.into(),
                created_at: self.created_at.to_timestamp()?,
                updated_at: self.updated_at.to_timestamp()?,
                expires_at: self.expires_at.to_timestamp()?,
                refreshed_at: opt_time(self.refreshed_at)?,
                refresh_token_set: self.refresh_token_set,
                refresh: self.refresh.into(),
            },
        })
    }
}

/// What introspection reads of a grant stored as [`GrantV2`]: the same fields in
/// the same order (postcard knows fields only by their place), the text it does not
/// need borrowed from the stored bytes instead of copied into new strings.
#[derive(Deserialize)]
struct GrantFactsV2<'a> {
    _version: u64,
    _id: &'a str,
    _zone_id: &'a str,
    _organization_id: &'a str,
    _user_id: &'a str,
    resource_id: &'a str,
    _provider_id: &'a str,
    _client_id: &'a str,
    #[serde(borrow)]
    _scopes: Vec<&'a str>,
    status: StatusV1,
    _created_at: Time,
    _updated_at: Time,
    expires_at: Time,
    _refreshed_at: Option<Time>,
    _refresh_token_set: bool,
    refresh: ChainV2,
}

/// What introspection needs of a grant stored as [`GrantV2`], without decoding the
/// whole record.
pub(crate) fn decode_grant_facts(bytes: &[u8]) -> Result<GrantFacts, StoreError> {
    let view: GrantFactsV2<'_> = decode_as("grant", GrantV2::FORMAT, bytes)?;
    Ok(GrantFacts {
        status: view.status.into(),
        expires_at: view.expires_at.to_timestamp()?,
        refresh_generation: view.refresh.generation,
        resource_id: view.resource_id.to_owned(),
    })
}

/// A grant as format 1 stored it, before grants kept a refresh chain. Read only by
/// the migration, which rewrites it as a [`GrantV2`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GrantV1 {
    version: u64,
    id: String,
    zone_id: String,
    organization_id: String,
    user_id: String,
    resource_id: String,
    provider_id: String,
    client_id: String,
    scopes: Vec<String>,
    status: StatusV1,
    created_at: Time,
    updated_at: Time,
    expires_at: Time,
    refreshed_at: Option<Time>,
    refresh_token_set: bool,
}

impl Layout for GrantV1 {
    const FORMAT: u8 = 1;
}

impl GrantV1 {
    /// The grant, with the chain of a grant from before chains:
    /// [`RefreshChain::LEGACY`].
    pub(crate) fn upgrade(self) -> GrantV2 {
        GrantV2 {
            version: self.version,
            id: self.id,
            zone_id: self.zone_id,
            organization_id: self.organization_id,
            user_id: self.user_id,
            resource_id: self.resource_id,
            provider_id: self.provider_id,
            client_id: self.client_id,
            scopes: self.scopes,
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            refreshed_at: self.refreshed_at,
            refresh_token_set: self.refresh_token_set,
            refresh: RefreshChain::LEGACY.into(),
        }
    }
}

/// A token, with the refresh generation it was issued at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenV2 {
    version: u64,
    digest: [u8; 32],
    zone_id: String,
    grant_id: String,
    client_id: String,
    user_id: String,
    refresh: bool,
    scopes: Vec<String>,
    issued_at: Time,
    expires_at: Time,
    generation: u64,
    revoked_at: Option<Time>,
}

impl Layout for TokenV2 {
    const FORMAT: u8 = 2;
}

impl TokenV2 {
    pub(crate) fn new(t: &Token, version: u64) -> Self {
        TokenV2 {
            version,
            digest: *t.digest.as_bytes(),
            zone_id: t.zone_id.clone(),
            grant_id: t.grant_id.clone(),
            client_id: t.client_id.clone(),
            user_id: t.user_id.clone(),
            refresh: t.kind == TokenKind::Refresh,
            scopes: t.scopes.clone(),
            issued_at: t.issued_at.into(),
            expires_at: t.expires_at.into(),
            generation: t.generation,
            revoked_at: t.revoked_at.map(Into::into),
        }
    }

    pub(crate) fn into_record(self) -> Result<Versioned<Token>, StoreError> {
        Ok(Versioned {
            version: self.version,
            record: Token {
                digest: Digest::from_bytes(self.digest),
                zone_id: self.zone_id,
                grant_id: self.grant_id,
                client_id: self.client_id,
                user_id: self.user_id,
                kind: if self.refresh {
                    TokenKind::Refresh
                } else {
                    TokenKind::Access
                },
                scopes: self.scopes,
                issued_at: self.issued_at.to_timestamp()?,
                expires_at: self.expires_at.to_timestamp()?,
                generation: self.generation,
                revoked_at: opt_time(self.revoked_at)?,
            },
        })
    }
}

/// A token as format 1 stored it, with the time a refresh spent it and no
/// generation. Read only by the migration, which rewrites it as a [`TokenV2`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenV1 {
    version: u64,
    digest: [u8; 32],
    zone_id: String,
    grant_id: String,
    client_id: String,
    user_id: String,
    refresh: bool,
    scopes: Vec<String>,
    issued_at: Time,
    expires_at: Time,
    spent_at: Option<Time>,
    revoked_at: Option<Time>,
}

impl Layout for TokenV1 {
    const FORMAT: u8 = 1;
}

impl TokenV1 {
    /// The token, at the generation [`Token::legacy_generation`] gives it: spent if
    /// it was spent, current under a grant at [`RefreshChain::LEGACY`] if not.
    pub(crate) fn upgrade(self) -> TokenV2 {
        TokenV2 {
            version: self.version,
            digest: self.digest,
            zone_id: self.zone_id,
            grant_id: self.grant_id,
            client_id: self.client_id,
            user_id: self.user_id,
            refresh: self.refresh,
            scopes: self.scopes,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            generation: Token::legacy_generation(self.spent_at.is_some()),
            revoked_at: self.revoked_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum ReasonV1 {
    Created,
    Refreshed,
    Revoked,
    RefreshTokenRevoked,
    ReuseDetected,
    Expired,
    // Added after the first six: postcard stores a variant's index, so appending
    // keeps every stored reason as it reads.
    CodeReused,
    ClientDisabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum ActorV1 {
    System,
    Admin,
    User(String),
    Client(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TransitionV1 {
    zone_id: String,
    grant_id: String,
    from: Option<StatusV1>,
    to: StatusV1,
    reason: ReasonV1,
    actor: ActorV1,
    at: Time,
}

impl Layout for TransitionV1 {
    const FORMAT: u8 = 1;
}

impl TransitionV1 {
    /// Refuses a reason or an actor this format has no place for (both core enums are
    /// non-exhaustive) rather than storing something else in its place.
    pub(crate) fn new(t: &Transition) -> Result<Self, StoreError> {
        let reason = match t.reason {
            TransitionReason::Created => ReasonV1::Created,
            TransitionReason::Refreshed => ReasonV1::Refreshed,
            TransitionReason::Revoked => ReasonV1::Revoked,
            TransitionReason::RefreshTokenRevoked => ReasonV1::RefreshTokenRevoked,
            TransitionReason::ReuseDetected => ReasonV1::ReuseDetected,
            TransitionReason::Expired => ReasonV1::Expired,
            TransitionReason::CodeReused => ReasonV1::CodeReused,
            TransitionReason::ClientDisabled => ReasonV1::ClientDisabled,
            other => return Err(StoreError::Unrepresentable(format!("reason {other:?}"))),
        };
        let actor = match &t.actor {
            Actor::System => ActorV1::System,
            Actor::Admin => ActorV1::Admin,
            Actor::User { id } => ActorV1::User(id.clone()),
            Actor::Client { id } => ActorV1::Client(id.clone()),
            other => return Err(StoreError::Unrepresentable(format!("actor {other:?}"))),
        };
        Ok(TransitionV1 {
            zone_id: t.zone_id.clone(),
            grant_id: t.grant_id.clone(),
            from: t.from.map(Into::into),
            to: t.to.into(),
            reason,
            actor,
            at: t.at.into(),
        })
    }

    pub(crate) fn into_record(self) -> Result<Transition, StoreError> {
        Ok(Transition {
            zone_id: self.zone_id,
            grant_id: self.grant_id,
            from: self.from.map(Into::into),
            to: self.to.into(),
            reason: match self.reason {
                ReasonV1::Created => TransitionReason::Created,
                ReasonV1::Refreshed => TransitionReason::Refreshed,
                ReasonV1::Revoked => TransitionReason::Revoked,
                ReasonV1::RefreshTokenRevoked => TransitionReason::RefreshTokenRevoked,
                ReasonV1::ReuseDetected => TransitionReason::ReuseDetected,
                ReasonV1::Expired => TransitionReason::Expired,
                ReasonV1::CodeReused => TransitionReason::CodeReused,
                ReasonV1::ClientDisabled => TransitionReason::ClientDisabled,
            },
            actor: match self.actor {
                ActorV1::System => Actor::System,
                ActorV1::Admin => Actor::Admin,
                ActorV1::User(id) => Actor::User { id },
                ActorV1::Client(id) => Actor::Client { id },
            },
            at: self.at.to_timestamp()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PersonalGrantV1 {
    version: u64,
    id: String,
    zone_id: String,
    user_id: String,
    name: String,
    description: Option<String>,
    scopes: Vec<String>,
    challenge: String,
    status: StatusV1,
    created_at: Time,
    updated_at: Time,
    expires_at: Option<Time>,
}

impl Layout for PersonalGrantV1 {
    const FORMAT: u8 = 1;
}

impl PersonalGrantV1 {
    pub(crate) fn new(p: &PersonalGrant, version: u64) -> Self {
        PersonalGrantV1 {
            version,
            id: p.id.clone(),
            zone_id: p.zone_id.clone(),
            user_id: p.user_id.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            scopes: p.scopes.clone(),
            challenge: p.challenge.clone(),
            status: p.status.into(),
            created_at: p.created_at.into(),
            updated_at: p.updated_at.into(),
            expires_at: p.expires_at.map(Into::into),
        }
    }

    pub(crate) fn into_record(self) -> Result<Versioned<PersonalGrant>, StoreError> {
        Ok(Versioned {
            version: self.version,
            record: PersonalGrant {
                id: self.id,
                zone_id: self.zone_id,
                user_id: self.user_id,
                name: self.name,
                description: self.description,
                scopes: self.scopes,
                challenge: self.challenge,
                status: self.status.into(),
                created_at: self.created_at.to_timestamp()?,
                updated_at: self.updated_at.to_timestamp()?,
                expires_at: opt_time(self.expires_at)?,
            },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum DeviceStateV1 {
    Pending,
    Claimed,
    Approved,
    Denied,
    Redeemed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeviceV1 {
    version: u64,
    device_code: [u8; 32],
    zone_id: String,
    user_code: String,
    client_id: String,
    scopes: Vec<String>,
    resource_id: String,
    state: DeviceStateV1,
    user_id: Option<String>,
    grant_id: Option<String>,
    created_at: Time,
    expires_at: Time,
    interval_seconds: u32,
    last_polled_at: Option<Time>,
}

impl Layout for DeviceV1 {
    const FORMAT: u8 = 1;
}

impl DeviceV1 {
    pub(crate) fn new(d: &DeviceAuthorization, version: u64) -> Self {
        DeviceV1 {
            version,
            device_code: *d.device_code.as_bytes(),
            zone_id: d.zone_id.clone(),
            user_code: d.user_code.clone(),
            client_id: d.client_id.clone(),
            scopes: d.scopes.clone(),
            resource_id: d.resource_id.clone(),
            state: match d.state {
                DeviceState::Pending => DeviceStateV1::Pending,
                DeviceState::Claimed => DeviceStateV1::Claimed,
                DeviceState::Approved => DeviceStateV1::Approved,
                DeviceState::Denied => DeviceStateV1::Denied,
                DeviceState::Redeemed => DeviceStateV1::Redeemed,
            },
            user_id: d.user_id.clone(),
            grant_id: d.grant_id.clone(),
            created_at: d.created_at.into(),
            expires_at: d.expires_at.into(),
            interval_seconds: d.interval_seconds,
            last_polled_at: d.last_polled_at.map(Into::into),
        }
    }

    pub(crate) fn into_record(self) -> Result<Versioned<DeviceAuthorization>, StoreError> {
        Ok(Versioned {
            version: self.version,
            record: DeviceAuthorization {
                device_code: Digest::from_bytes(self.device_code),
                zone_id: self.zone_id,
                user_code: self.user_code,
                client_id: self.client_id,
                scopes: self.scopes,
                resource_id: self.resource_id,
                state: match self.state {
                    DeviceStateV1::Pending => DeviceState::Pending,
                    DeviceStateV1::Claimed => DeviceState::Claimed,
                    DeviceStateV1::Approved => DeviceState::Approved,
                    DeviceStateV1::Denied => DeviceState::Denied,
                    DeviceStateV1::Redeemed => DeviceState::Redeemed,
                },
                user_id: self.user_id,
                grant_id: self.grant_id,
                created_at: self.created_at.to_timestamp()?,
                expires_at: self.expires_at.to_timestamp()?,
                interval_seconds: self.interval_seconds,
                last_polled_at: opt_time(self.last_polled_at)?,
            },
        })
    }
}

/// An authorization code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuthorizationCodeV1 {
    version: u64,
    code: [u8; 32],
    zone_id: String,
    client_id: String,
    user_id: String,
    resource_id: String,
    provider_id: String,
    organization_id: Option<String>,
    scopes: Vec<String>,
    redirect_uri: String,
    code_challenge: Option<[u8; 32]>,
    created_at: Time,
    expires_at: Time,
    grant_id: Option<String>,
}

impl Layout for AuthorizationCodeV1 {
    const FORMAT: u8 = 1;
}

impl AuthorizationCodeV1 {
    pub(crate) fn new(c: &AuthorizationCode, version: u64) -> Self {
        AuthorizationCodeV1 {
            version,
            code: *c.code.as_bytes(),
            zone_id: c.zone_id.clone(),
            client_id: c.client_id.clone(),
            user_id: c.user_id.clone(),
            resource_id: c.resource_id.clone(),
            provider_id: c.provider_id.clone(),
            organization_id: c.organization_id.clone(),
            scopes: c.scopes.clone(),
            redirect_uri: c.redirect_uri.clone(),
            code_challenge: c.code_challenge.map(|d| *d.as_bytes()),
            created_at: c.created_at.into(),
            expires_at: c.expires_at.into(),
            grant_id: c.grant_id.clone(),
        }
    }

    pub(crate) fn into_record(self) -> Result<Versioned<AuthorizationCode>, StoreError> {
        Ok(Versioned {
            version: self.version,
            record: AuthorizationCode {
                code: Digest::from_bytes(self.code),
                zone_id: self.zone_id,
                client_id: self.client_id,
                user_id: self.user_id,
                resource_id: self.resource_id,
                provider_id: self.provider_id,
                organization_id: self.organization_id,
                scopes: self.scopes,
                redirect_uri: self.redirect_uri,
                code_challenge: self.code_challenge.map(Digest::from_bytes),
                created_at: self.created_at.to_timestamp()?,
                expires_at: self.expires_at.to_timestamp()?,
                grant_id: self.grant_id,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn time() -> impl Strategy<Value = Timestamp> {
        // chrono's whole range, sub-millisecond and leap-second nanoseconds included.
        (
            -8_334_601_228_800i64..8_210_266_876_799,
            0u32..2_000_000_000,
        )
            .prop_filter_map("a valid time", |(s, n)| DateTime::from_timestamp(s, n))
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "\\PC{0,12}", "[\0a-z]{1,4}"]
    }

    fn texts() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(text(), 0..4)
    }

    fn status() -> impl Strategy<Value = GrantStatus> {
        prop::sample::select(vec![
            GrantStatus::Active,
            GrantStatus::Expired,
            GrantStatus::Revoked,
        ])
    }

    fn client() -> impl Strategy<Value = Client> {
        (
            (
                text(),
                text(),
                text(),
                text(),
                prop::option::of(text()),
                any::<bool>(),
                prop::option::of(text()),
            ),
            (
                texts(),
                prop::collection::vec(
                    prop::sample::select(vec![
                        GrantType::AuthorizationCode,
                        GrantType::RefreshToken,
                        GrantType::ClientCredentials,
                        GrantType::DeviceCode,
                    ]),
                    0..5,
                ),
                any::<bool>(),
                any::<bool>(),
                any::<u32>(),
                any::<u32>(),
                texts(),
            ),
            (
                any::<bool>(),
                prop::option::of(any::<[u8; 32]>()),
                prop::option::of((any::<[u8; 32]>(), time())),
                time(),
                time(),
                prop::option::of(time()),
                prop::option::of(time()),
            ),
            (
                prop::option::of(text()),
                prop::option::of(text()),
                prop::option::of(text()),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            ),
        )
            .prop_map(
                |(
                    (
                        id,
                        zone_id,
                        organization_id,
                        name,
                        description,
                        confidential,
                        owner_account_id,
                    ),
                    (
                        allowed_scopes,
                        allowed_grants,
                        inherit,
                        offline,
                        access_ttl,
                        refresh_ttl,
                        redirect_uris,
                    ),
                    (
                        enabled,
                        secret,
                        previous,
                        created_at,
                        updated_at,
                        refresh_stopped_at,
                        last_used_at,
                    ),
                    (
                        tenant,
                        business_name,
                        homepage_url,
                        internal,
                        strong_auth_supported,
                        claims_supported,
                    ),
                )| Client {
                    id,
                    zone_id,
                    organization_id,
                    tenant,
                    name,
                    description,
                    business_name,
                    homepage_url,
                    client_type: if confidential {
                        ClientType::Confidential
                    } else {
                        ClientType::Public
                    },
                    internal,
                    owner_account_id,
                    allowed_scopes,
                    allowed_grants,
                    scope_policy: if inherit {
                        ScopePolicy::Inherit
                    } else {
                        ScopePolicy::Explicit
                    },
                    access_type: if offline {
                        AccessType::Offline
                    } else {
                        AccessType::Online
                    },
                    access_token_ttl_seconds: access_ttl,
                    refresh_token_ttl_seconds: refresh_ttl,
                    redirect_uris,
                    enabled,
                    strong_auth_supported,
                    claims_supported,
                    secret_digest: secret.map(Digest::from_bytes),
                    previous_secret: previous.map(|(digest, valid_until)| RetiringSecret {
                        digest: Digest::from_bytes(digest),
                        valid_until,
                    }),
                    created_at,
                    updated_at,
                    refresh_stopped_at,
                    last_used_at,
                },
            )
    }

    fn digest() -> impl Strategy<Value = Option<Digest>> {
        prop::option::of(any::<[u8; 32]>().prop_map(Digest::from_bytes))
    }

    fn chain() -> impl Strategy<Value = RefreshChain> {
        (any::<u64>(), digest(), digest(), digest()).prop_map(
            |(generation, family, current, previous)| RefreshChain {
                generation,
                family,
                current,
                previous,
            },
        )
    }

    fn grant() -> impl Strategy<Value = Grant> {
        (
            (text(), text(), text(), text(), text(), text(), text()),
            (
                texts(),
                status(),
                time(),
                time(),
                time(),
                prop::option::of(time()),
                any::<bool>(),
                chain(),
            ),
        )
            .prop_map(
                |(
                    (id, zone_id, organization_id, user_id, resource_id, provider_id, client_id),
                    (
                        scopes,
                        status,
                        created_at,
                        updated_at,
                        expires_at,
                        refreshed_at,
                        refresh_token_set,
                        refresh,
                    ),
                )| Grant {
                    id,
                    zone_id,
                    organization_id,
                    user_id,
                    resource_id,
                    provider_id,
                    client_id,
                    scopes,
                    status,
                    created_at,
                    updated_at,
                    expires_at,
                    refreshed_at,
                    refresh_token_set,
                    refresh,
                },
            )
    }

    fn token() -> impl Strategy<Value = Token> {
        (
            (
                any::<[u8; 32]>(),
                text(),
                text(),
                text(),
                text(),
                any::<bool>(),
            ),
            (
                texts(),
                time(),
                time(),
                any::<u64>(),
                prop::option::of(time()),
            ),
        )
            .prop_map(
                |(
                    (digest, zone_id, grant_id, client_id, user_id, refresh),
                    (scopes, issued_at, expires_at, generation, revoked_at),
                )| Token {
                    digest: Digest::from_bytes(digest),
                    zone_id,
                    grant_id,
                    client_id,
                    user_id,
                    kind: if refresh {
                        TokenKind::Refresh
                    } else {
                        TokenKind::Access
                    },
                    scopes,
                    issued_at,
                    expires_at,
                    generation,
                    revoked_at,
                },
            )
    }

    /// A grant as format 1 stored it: everything but the chain.
    fn legacy_grant(g: &Grant, version: u64) -> GrantV1 {
        GrantV1 {
            version,
            id: g.id.clone(),
            zone_id: g.zone_id.clone(),
            organization_id: g.organization_id.clone(),
            user_id: g.user_id.clone(),
            resource_id: g.resource_id.clone(),
            provider_id: g.provider_id.clone(),
            client_id: g.client_id.clone(),
            scopes: g.scopes.clone(),
            status: g.status.into(),
            created_at: g.created_at.into(),
            updated_at: g.updated_at.into(),
            expires_at: g.expires_at.into(),
            refreshed_at: g.refreshed_at.map(Into::into),
            refresh_token_set: g.refresh_token_set,
        }
    }

    /// A token as format 1 stored it: everything but the generation, and the time
    /// it was spent.
    fn legacy_token(t: &Token, version: u64, spent_at: Option<Timestamp>) -> TokenV1 {
        TokenV1 {
            version,
            digest: *t.digest.as_bytes(),
            zone_id: t.zone_id.clone(),
            grant_id: t.grant_id.clone(),
            client_id: t.client_id.clone(),
            user_id: t.user_id.clone(),
            refresh: t.kind == TokenKind::Refresh,
            scopes: t.scopes.clone(),
            issued_at: t.issued_at.into(),
            expires_at: t.expires_at.into(),
            spent_at: spent_at.map(Into::into),
            revoked_at: t.revoked_at.map(Into::into),
        }
    }

    /// A client as format 1 stored it: everything but the previous secret and seed
    /// 003's descriptive fields.
    fn legacy_client(c: &Client, version: u64) -> ClientV1 {
        ClientV1 {
            version,
            id: c.id.clone(),
            zone_id: c.zone_id.clone(),
            organization_id: c.organization_id.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            confidential: c.client_type == ClientType::Confidential,
            owner_account_id: c.owner_account_id.clone(),
            allowed_scopes: c.allowed_scopes.clone(),
            allowed_grants: c.allowed_grants.iter().copied().map(Into::into).collect(),
            inherit_scopes: c.scope_policy == ScopePolicy::Inherit,
            offline: c.access_type == AccessType::Offline,
            access_token_ttl_seconds: c.access_token_ttl_seconds,
            refresh_token_ttl_seconds: c.refresh_token_ttl_seconds,
            redirect_uris: c.redirect_uris.clone(),
            enabled: c.enabled,
            secret_digest: c.secret_digest.map(|d| *d.as_bytes()),
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
            refresh_stopped_at: c.refresh_stopped_at.map(Into::into),
            last_used_at: c.last_used_at.map(Into::into),
        }
    }

    fn transition() -> impl Strategy<Value = Transition> {
        let reason = prop::sample::select(vec![
            TransitionReason::Created,
            TransitionReason::Refreshed,
            TransitionReason::Revoked,
            TransitionReason::RefreshTokenRevoked,
            TransitionReason::ReuseDetected,
            TransitionReason::Expired,
            TransitionReason::CodeReused,
            TransitionReason::ClientDisabled,
        ]);
        let actor = prop_oneof![
            Just(Actor::System),
            Just(Actor::Admin),
            text().prop_map(|id| Actor::User { id }),
            text().prop_map(|id| Actor::Client { id }),
        ];
        (
            text(),
            text(),
            prop::option::of(status()),
            status(),
            reason,
            actor,
            time(),
        )
            .prop_map(
                |(zone_id, grant_id, from, to, reason, actor, at)| Transition {
                    zone_id,
                    grant_id,
                    from,
                    to,
                    reason,
                    actor,
                    at,
                },
            )
    }

    fn personal() -> impl Strategy<Value = PersonalGrant> {
        (
            (
                text(),
                text(),
                text(),
                text(),
                prop::option::of(text()),
                texts(),
            ),
            (text(), status(), time(), time(), prop::option::of(time())),
        )
            .prop_map(
                |(
                    (id, zone_id, user_id, name, description, scopes),
                    (challenge, status, created_at, updated_at, expires_at),
                )| PersonalGrant {
                    id,
                    zone_id,
                    user_id,
                    name,
                    description,
                    scopes,
                    challenge,
                    status,
                    created_at,
                    updated_at,
                    expires_at,
                },
            )
    }

    fn device() -> impl Strategy<Value = DeviceAuthorization> {
        let state = prop::sample::select(vec![
            DeviceState::Pending,
            DeviceState::Claimed,
            DeviceState::Approved,
            DeviceState::Denied,
            DeviceState::Redeemed,
        ]);
        (
            (
                any::<[u8; 32]>(),
                text(),
                text(),
                text(),
                texts(),
                text(),
                state,
            ),
            (
                prop::option::of(text()),
                prop::option::of(text()),
                time(),
                time(),
                any::<u32>(),
                prop::option::of(time()),
            ),
        )
            .prop_map(
                |(
                    (code, zone_id, user_code, client_id, scopes, resource_id, state),
                    (user_id, grant_id, created_at, expires_at, interval_seconds, last_polled_at),
                )| {
                    DeviceAuthorization {
                        device_code: Digest::from_bytes(code),
                        zone_id,
                        user_code,
                        client_id,
                        scopes,
                        resource_id,
                        state,
                        user_id,
                        grant_id,
                        created_at,
                        expires_at,
                        interval_seconds,
                        last_polled_at,
                    }
                },
            )
    }

    fn authorization_code() -> impl Strategy<Value = AuthorizationCode> {
        (
            (
                any::<[u8; 32]>(),
                text(),
                text(),
                text(),
                text(),
                text(),
                prop::option::of(text()),
            ),
            (
                texts(),
                text(),
                prop::option::of(any::<[u8; 32]>()),
                time(),
                time(),
                prop::option::of(text()),
            ),
        )
            .prop_map(
                |(
                    (code, zone_id, client_id, user_id, resource_id, provider_id, organization_id),
                    (scopes, redirect_uri, code_challenge, created_at, expires_at, grant_id),
                )| AuthorizationCode {
                    code: Digest::from_bytes(code),
                    zone_id,
                    client_id,
                    user_id,
                    resource_id,
                    provider_id,
                    organization_id,
                    scopes,
                    redirect_uri,
                    code_challenge: code_challenge.map(Digest::from_bytes),
                    created_at,
                    expires_at,
                    grant_id,
                },
            )
    }

    proptest! {
        #[test]
        fn clients_round_trip(record in client(), version in any::<u64>()) {
            let bytes = encode(&ClientV2::new(&record, version)).unwrap();
            prop_assert_eq!(bytes[0], 2);
            prop_assert_eq!(decode_version("client", &bytes).unwrap(), version);
            let back = decode_client(&bytes).unwrap();
            prop_assert_eq!(back, Versioned { record, version });
        }

        #[test]
        fn format_1_clients_read_without_a_previous_secret(record in client(), version in any::<u64>()) {
            let bytes = encode(&legacy_client(&record, version)).unwrap();
            prop_assert_eq!(bytes[0], 1);
            prop_assert_eq!(decode_version("client", &bytes).unwrap(), version);
            let refused = matches!(
                decode::<ClientV2>("client", &bytes),
                Err(StoreError::UnknownRecordFormat { found: 1, .. })
            );
            prop_assert!(refused, "format 1 is not read as format 2");
            let back = decode_client(&bytes).unwrap();
            let expected = Client {
                previous_secret: None,
                tenant: None,
                business_name: None,
                homepage_url: None,
                internal: false,
                strong_auth_supported: false,
                claims_supported: false,
                ..record
            };
            prop_assert_eq!(back, Versioned { record: expected, version });
        }

        #[test]
        fn grants_round_trip(record in grant(), version in any::<u64>()) {
            let bytes = encode(&GrantV2::new(&record, version)).unwrap();
            prop_assert_eq!(decode_version("grant", &bytes).unwrap(), version);
            let back = decode::<GrantV2>("grant", &bytes).unwrap().into_record().unwrap();
            prop_assert_eq!(&back, &Versioned { record: record.clone(), version });
            // The facts read, field by field, agrees with the whole record.
            prop_assert_eq!(decode_grant_facts(&bytes).unwrap(), GrantFacts::from(record));
        }

        #[test]
        fn tokens_round_trip(record in token(), version in any::<u64>()) {
            let bytes = encode(&TokenV2::new(&record, version)).unwrap();
            prop_assert_eq!(decode_version("token", &bytes).unwrap(), version);
            let back = decode::<TokenV2>("token", &bytes).unwrap().into_record().unwrap();
            prop_assert_eq!(back, Versioned { record, version });
        }

        #[test]
        fn format_1_grants_upgrade_to_the_legacy_chain(record in grant(), version in any::<u64>()) {
            let bytes = encode(&legacy_grant(&record, version)).unwrap();
            prop_assert_eq!(bytes[0], 1);
            prop_assert_eq!(decode_version("grant", &bytes).unwrap(), version);
            let refused = matches!(
                decode::<GrantV2>("grant", &bytes),
                Err(StoreError::UnknownRecordFormat { found: 1, .. })
            );
            prop_assert!(refused, "format 1 is not read as format 2");
            let back = decode::<GrantV1>("grant", &bytes).unwrap().upgrade();
            let upgraded = decode::<GrantV2>("grant", &encode(&back).unwrap())
                .unwrap()
                .into_record()
                .unwrap();
            let expected = Grant { refresh: RefreshChain::LEGACY, ..record };
            prop_assert_eq!(upgraded, Versioned { record: expected, version });
        }

        #[test]
        fn format_1_tokens_upgrade_to_the_legacy_generation(
            record in token(),
            version in any::<u64>(),
            spent_at in prop::option::of(time()),
        ) {
            let bytes = encode(&legacy_token(&record, version, spent_at)).unwrap();
            prop_assert_eq!(bytes[0], 1);
            prop_assert_eq!(decode_version("token", &bytes).unwrap(), version);
            let back = decode::<TokenV1>("token", &bytes).unwrap().upgrade().into_record().unwrap();
            let generation = if spent_at.is_some() { 0 } else { 1 };
            prop_assert_eq!(back, Versioned { record: Token { generation, ..record }, version });
        }

        #[test]
        fn transitions_round_trip(record in transition()) {
            let bytes = encode(&TransitionV1::new(&record).unwrap()).unwrap();
            let back = decode::<TransitionV1>("transition", &bytes).unwrap().into_record().unwrap();
            prop_assert_eq!(back, record);
        }

        #[test]
        fn personal_grants_round_trip(record in personal(), version in any::<u64>()) {
            let bytes = encode(&PersonalGrantV1::new(&record, version)).unwrap();
            let back = decode::<PersonalGrantV1>("personal grant", &bytes).unwrap().into_record().unwrap();
            prop_assert_eq!(back, Versioned { record, version });
        }

        #[test]
        fn device_authorizations_round_trip(record in device(), version in any::<u64>()) {
            let bytes = encode(&DeviceV1::new(&record, version)).unwrap();
            let back = decode::<DeviceV1>("device authorization", &bytes).unwrap().into_record().unwrap();
            prop_assert_eq!(back, Versioned { record, version });
        }

        #[test]
        fn authorization_codes_round_trip(record in authorization_code(), version in any::<u64>()) {
            let bytes = encode(&AuthorizationCodeV1::new(&record, version)).unwrap();
            prop_assert_eq!(bytes[0], 1);
            prop_assert_eq!(decode_version("authorization code", &bytes).unwrap(), version);
            let back = decode::<AuthorizationCodeV1>("authorization code", &bytes)
                .unwrap()
                .into_record()
                .unwrap();
            prop_assert_eq!(back, Versioned { record, version });
        }

        #[test]
        fn truncated_or_padded_records_are_refused(record in grant(), cut in any::<prop::sample::Index>()) {
            let bytes = encode(&GrantV2::new(&record, 3)).unwrap();
            let cut = cut.index(bytes.len());
            prop_assert!(decode::<GrantV2>("grant", &bytes[..cut]).is_err());
            let mut padded = bytes.clone();
            padded.push(0);
            prop_assert!(decode::<GrantV2>("grant", &padded).is_err());
        }
    }

    #[test]
    fn the_first_byte_is_the_record_format() {
        let bytes = encode(&ClientV2::new(&client_fixture(), 1)).unwrap();
        assert_eq!(bytes[0], ClientV2::FORMAT);
        let mut other = bytes.clone();
        other[0] = ClientV2::FORMAT + 1;
        assert!(matches!(
            decode::<ClientV2>("client", &other),
            Err(StoreError::UnknownRecordFormat { found: 3, .. })
        ));
        for unknown in [0, LATEST_FORMAT + 1] {
            other[0] = unknown;
            assert!(matches!(
                decode_client(&other),
                Err(StoreError::UnknownRecordFormat { found, .. }) if found == unknown
            ));
            assert!(matches!(
                decode_version("client", &other),
                Err(StoreError::UnknownRecordFormat { found, .. }) if found == unknown
            ));
        }
        assert_eq!(format_of("client", &bytes).unwrap(), 2);
        assert!(format_of("client", &[]).is_err());
        assert!(decode_client(&[]).is_err());
    }

    #[test]
    fn an_authorization_code_of_an_unknown_format_is_refused() {
        let code = AuthorizationCode {
            code: Digest::from_bytes([7; 32]),
            zone_id: "z".into(),
            client_id: "c".into(),
            user_id: "u".into(),
            resource_id: "r".into(),
            provider_id: "p".into(),
            organization_id: None,
            scopes: vec!["read".into()],
            redirect_uri: "https://app.example/cb".into(),
            code_challenge: None,
            created_at: DateTime::UNIX_EPOCH,
            expires_at: DateTime::UNIX_EPOCH,
            grant_id: None,
        };
        let mut bytes = encode(&AuthorizationCodeV1::new(&code, 1)).unwrap();
        assert_eq!(bytes[0], AuthorizationCodeV1::FORMAT);
        bytes[0] = AuthorizationCodeV1::FORMAT + 1;
        assert!(matches!(
            decode::<AuthorizationCodeV1>("authorization code", &bytes),
            Err(StoreError::UnknownRecordFormat { found: 2, .. })
        ));
    }

    #[test]
    fn reasons_keep_their_stored_indices() {
        // postcard stores a variant as its index: appending a reason must leave
        // every stored one reading as it was written.
        let stored = [
            ReasonV1::Created,
            ReasonV1::Refreshed,
            ReasonV1::Revoked,
            ReasonV1::RefreshTokenRevoked,
            ReasonV1::ReuseDetected,
            ReasonV1::Expired,
            ReasonV1::CodeReused,
            ReasonV1::ClientDisabled,
        ];
        for (index, reason) in (0u8..).zip(stored) {
            assert_eq!(postcard::to_allocvec(&reason).unwrap(), [index]);
        }
    }

    fn client_fixture() -> Client {
        Client {
            id: "c".into(),
            zone_id: "z".into(),
            organization_id: "o".into(),
            tenant: None,
            name: "n".into(),
            description: None,
            business_name: None,
            homepage_url: None,
            client_type: ClientType::Public,
            internal: false,
            owner_account_id: None,
            allowed_scopes: vec![],
            allowed_grants: vec![],
            scope_policy: ScopePolicy::Explicit,
            access_type: AccessType::Online,
            access_token_ttl_seconds: 1,
            refresh_token_ttl_seconds: 1,
            redirect_uris: vec![],
            enabled: true,
            strong_auth_supported: false,
            claims_supported: false,
            secret_digest: None,
            previous_secret: None,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
            refresh_stopped_at: None,
            last_used_at: None,
        }
    }
}
