//! Registering and updating clients, and the scope policy that decides what a
//! client may be given.

use std::fmt;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::{AccessType, Client, ClientType, GrantType, ScopePolicy};
use crate::secret::Secret;
use crate::validate;

/// The longest name or description a client may have.
pub const MAX_TEXT_LEN: usize = 2048;

/// What an account may grant, as the host's [`PermissionResolver`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantable {
    /// Every scope (an administrator).
    All,
    /// Only these scopes.
    Only(Vec<String>),
}

impl Grantable {
    /// Of `wanted`, the scopes that may be granted, in `wanted`'s order.
    pub fn filter(&self, wanted: &[String]) -> Vec<String> {
        match self {
            Grantable::All => wanted.to_vec(),
            Grantable::Only(allowed) => wanted
                .iter()
                .filter(|s| allowed.contains(s))
                .cloned()
                .collect(),
        }
    }
}

/// Supplied by the host: which scopes an account can grant. Used for clients with
/// the `inherit` scope policy, at the moment of issuance.
#[async_trait]
pub trait PermissionResolver: fmt::Debug + Send + Sync + 'static {
    /// What `account_id` of `zone_id` can grant now.
    async fn grantable_scopes(&self, zone_id: &str, account_id: &str) -> Result<Grantable>;
}

/// The resolver an engine has when the host supplies none: no account can grant
/// anything, so `inherit` clients get no scopes until the host says otherwise.
#[derive(Debug, Default, Clone, Copy)]
pub struct GrantsNothing;

#[async_trait]
impl PermissionResolver for GrantsNothing {
    async fn grantable_scopes(&self, _zone_id: &str, _account_id: &str) -> Result<Grantable> {
        Ok(Grantable::Only(Vec::new()))
    }
}

/// A client to register. [`ClientRegistration::new`] gives the usual defaults: a
/// public, enabled, offline-access client allowed `authorization_code` and
/// `refresh_token`, with explicit scopes, one-hour access tokens and thirty-day
/// refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRegistration {
    /// The id to register under; a fresh UUIDv7 when `None`.
    pub id: Option<String>,
    /// The organization.
    pub organization_id: String,
    /// Human-readable name.
    pub name: String,
    /// Human-readable description.
    pub description: Option<String>,
    /// Public or confidential; a confidential client gets a secret.
    pub client_type: ClientType,
    /// The owning account; `None` for a built-in first-party client.
    pub owner_account_id: Option<String>,
    /// Scopes under the explicit policy.
    pub allowed_scopes: Vec<String>,
    /// Grant types.
    pub allowed_grants: Vec<GrantType>,
    /// Explicit or inherit.
    pub scope_policy: ScopePolicy,
    /// Online or offline.
    pub access_type: AccessType,
    /// Access-token lifetime, positive.
    pub access_token_ttl_seconds: u32,
    /// Refresh-token lifetime, positive.
    pub refresh_token_ttl_seconds: u32,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Enabled.
    pub enabled: bool,
}

impl ClientRegistration {
    /// A registration with the defaults described above.
    pub fn new(name: impl Into<String>) -> Self {
        ClientRegistration {
            id: None,
            organization_id: "default".into(),
            name: name.into(),
            description: None,
            client_type: ClientType::Public,
            owner_account_id: None,
            allowed_scopes: Vec::new(),
            allowed_grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope_policy: ScopePolicy::Explicit,
            access_type: AccessType::Offline,
            access_token_ttl_seconds: 3600,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            redirect_uris: Vec::new(),
            enabled: true,
        }
    }

    /// Registers under this id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the allowed scopes.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.allowed_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the allowed grant types.
    pub fn grants(mut self, grants: impl IntoIterator<Item = GrantType>) -> Self {
        self.allowed_grants = grants.into_iter().collect();
        self
    }

    /// Sets the access type.
    pub fn access_type(mut self, access_type: AccessType) -> Self {
        self.access_type = access_type;
        self
    }

    /// Sets both token lifetimes, in seconds.
    pub fn lifetimes(mut self, access_seconds: u32, refresh_seconds: u32) -> Self {
        self.access_token_ttl_seconds = access_seconds;
        self.refresh_token_ttl_seconds = refresh_seconds;
        self
    }

    /// Makes the client confidential; it gets a secret at registration.
    pub fn confidential(mut self) -> Self {
        self.client_type = ClientType::Confidential;
        self
    }

    /// Sets the organization.
    pub fn organization(mut self, organization_id: impl Into<String>) -> Self {
        self.organization_id = organization_id.into();
        self
    }

    /// Sets the owning account.
    pub fn owner(mut self, account_id: impl Into<String>) -> Self {
        self.owner_account_id = Some(account_id.into());
        self
    }

    /// Sets the scope policy.
    pub fn scope_policy(mut self, policy: ScopePolicy) -> Self {
        self.scope_policy = policy;
        self
    }
}

/// A typed change to a client's policy or details; `None` leaves a field as it is.
/// Changes apply to future authorization and refresh only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// New allowed scopes.
    pub allowed_scopes: Option<Vec<String>>,
    /// New allowed grant types.
    pub allowed_grants: Option<Vec<GrantType>>,
    /// New scope policy.
    pub scope_policy: Option<ScopePolicy>,
    /// New access type.
    pub access_type: Option<AccessType>,
    /// New access-token lifetime.
    pub access_token_ttl_seconds: Option<u32>,
    /// New refresh-token lifetime.
    pub refresh_token_ttl_seconds: Option<u32>,
    /// New redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

impl ClientUpdate {
    /// Applies the update to a copy of `client`.
    pub fn apply_to(&self, client: &Client) -> Client {
        let mut next = client.clone();
        if let Some(v) = &self.name {
            next.name = v.clone();
        }
        if let Some(v) = &self.description {
            next.description = v.clone();
        }
        if let Some(v) = &self.allowed_scopes {
            next.allowed_scopes = v.clone();
        }
        if let Some(v) = &self.allowed_grants {
            next.allowed_grants = v.clone();
        }
        if let Some(v) = self.scope_policy {
            next.scope_policy = v;
        }
        if let Some(v) = self.access_type {
            next.access_type = v;
        }
        if let Some(v) = self.access_token_ttl_seconds {
            next.access_token_ttl_seconds = v;
        }
        if let Some(v) = self.refresh_token_ttl_seconds {
            next.refresh_token_ttl_seconds = v;
        }
        if let Some(v) = &self.redirect_uris {
            next.redirect_uris = v.clone();
        }
        if let Some(v) = self.enabled {
            next.enabled = v;
        }
        next
    }
}

/// A client just registered, with its secret, shown this once.
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    /// The client.
    pub client: Client,
    /// A confidential client's secret; `None` for a public client.
    pub secret: Option<Secret>,
}

fn text(field: &'static str, value: &str, allow_empty: bool) -> Result<()> {
    if !allow_empty && value.trim().is_empty() {
        return Err(Error::invalid_input(field, "must not be empty"));
    }
    if value.len() > MAX_TEXT_LEN {
        return Err(Error::invalid_input(
            field,
            format!("must be at most {MAX_TEXT_LEN} bytes"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid_input(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks a client record as a whole: every field a caller can set.
/// Returns the client with its scopes and grant types de-duplicated.
pub fn validate_client(mut client: Client) -> Result<Client> {
    validate::record_id("id", &client.id)?;
    validate::reference("zone_id", &client.zone_id)?;
    validate::reference("organization_id", &client.organization_id)?;
    text("name", &client.name, false)?;
    if let Some(d) = &client.description {
        text("description", d, true)?;
    }
    if let Some(owner) = &client.owner_account_id {
        validate::reference("owner_account_id", owner)?;
    }
    client.allowed_scopes = validate::scopes("allowed_scopes", &client.allowed_scopes)?;
    let mut grants = Vec::with_capacity(client.allowed_grants.len());
    for g in &client.allowed_grants {
        if !grants.contains(g) {
            grants.push(*g);
        }
    }
    client.allowed_grants = grants;
    if client.access_token_ttl_seconds == 0 {
        return Err(Error::invalid_input(
            "access_token_ttl_seconds",
            "must be positive",
        ));
    }
    if client.refresh_token_ttl_seconds == 0 {
        return Err(Error::invalid_input(
            "refresh_token_ttl_seconds",
            "must be positive",
        ));
    }
    for uri in &client.redirect_uris {
        validate_redirect_uri(uri)?;
    }
    Ok(client)
}

/// A redirect URI must be an absolute URI without a fragment (RFC 6749 §3.1.2).
fn validate_redirect_uri(uri: &str) -> Result<()> {
    let bad = |reason: String| {
        Err(Error::invalid_input(
            "redirect_uris",
            format!("{:?}: {reason}", uri.escape_debug().to_string()),
        ))
    };
    if uri.len() > MAX_TEXT_LEN {
        return bad(format!("must be at most {MAX_TEXT_LEN} bytes"));
    }
    match url::Url::parse(uri) {
        Err(e) => bad(format!("not an absolute URI ({e})")),
        Ok(parsed) if parsed.fragment().is_some() => bad("must not contain a fragment".into()),
        Ok(_) => Ok(()),
    }
}
