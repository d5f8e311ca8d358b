//! Registering and updating clients, and the scope policy that decides what a
//! client may be given.

use std::fmt;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::{AccessType, Client, ClientType, GrantType, ScopePolicy};
use crate::secret::Secret;
use crate::validate;

/// The longest name, description, business name or homepage URL a client may have.
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
/// refresh tokens; no tenant, business name or homepage, not internal, and neither
/// strong authentication nor claims supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRegistration {
    /// The id to register under; a fresh UUIDv7 when `None`.
    pub id: Option<String>,
    /// The organization.
    pub organization_id: String,
    /// The host's tenant.
    pub tenant: Option<String>,
    /// Human-readable name.
    pub name: String,
    /// Human-readable description.
    pub description: Option<String>,
    /// The name of the business the client belongs to.
    pub business_name: Option<String>,
    /// The owner's homepage, an absolute `http` or `https` URL.
    pub homepage_url: Option<String>,
    /// Public or confidential; a confidential client gets a secret.
    pub client_type: ClientType,
    /// Serves the host's own internal requests; fixed at registration.
    pub internal: bool,
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
    /// Supports strong authentication.
    pub strong_auth_supported: bool,
    /// Supports SAML claims with the authorization-code flow.
    pub claims_supported: bool,
}

impl ClientRegistration {
    /// A registration with the defaults described above.
    pub fn new(name: impl Into<String>) -> Self {
        ClientRegistration {
            id: None,
            organization_id: "default".into(),
            tenant: None,
            name: name.into(),
            description: None,
            business_name: None,
            homepage_url: None,
            client_type: ClientType::Public,
            internal: false,
            owner_account_id: None,
            allowed_scopes: Vec::new(),
            allowed_grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope_policy: ScopePolicy::Explicit,
            access_type: AccessType::Offline,
            access_token_ttl_seconds: 3600,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            redirect_uris: Vec::new(),
            enabled: true,
            strong_auth_supported: false,
            claims_supported: false,
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
    /// New tenant; `Some(None)` clears it.
    pub tenant: Option<Option<String>>,
    /// New business name; `Some(None)` clears it.
    pub business_name: Option<Option<String>>,
    /// New homepage URL; `Some(None)` clears it.
    pub homepage_url: Option<Option<String>>,
    /// Whether strong authentication is supported.
    pub strong_auth_supported: Option<bool>,
    /// Whether SAML claims are supported.
    pub claims_supported: Option<bool>,
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
        if let Some(v) = &self.tenant {
            next.tenant = v.clone();
        }
        if let Some(v) = &self.business_name {
            next.business_name = v.clone();
        }
        if let Some(v) = &self.homepage_url {
            next.homepage_url = v.clone();
        }
        if let Some(v) = self.strong_auth_supported {
            next.strong_auth_supported = v;
        }
        if let Some(v) = self.claims_supported {
            next.claims_supported = v;
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
    if let Some(tenant) = &client.tenant {
        validate::reference("tenant", tenant)?;
    }
    text("name", &client.name, false)?;
    if let Some(d) = &client.description {
        text("description", d, true)?;
    }
    if let Some(b) = &client.business_name {
        text("business_name", b, false)?;
    }
    if let Some(url) = &client.homepage_url {
        validate_homepage_url(url)?;
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

/// A homepage must be an absolute `http` or `https` URL, kept as given. Control
/// characters and surrounding whitespace are refused before parsing, because the
/// URL parser would silently drop them and the stored text would not be the URL.
fn validate_homepage_url(value: &str) -> Result<()> {
    let bad = |reason: String| Err(Error::invalid_input("homepage_url", reason));
    if value.len() > MAX_TEXT_LEN {
        return bad(format!("must be at most {MAX_TEXT_LEN} bytes"));
    }
    if value.chars().any(char::is_control) {
        return bad("must not contain control characters".into());
    }
    if value.trim() != value {
        return bad("must not begin or end with whitespace".into());
    }
    match url::Url::parse(value) {
        Err(e) => bad(format!("not an absolute URL ({e})")),
        Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => bad(format!(
            "must be an http or https URL, not {:?}",
            parsed.scheme()
        )),
        Ok(_) => Ok(()),
    }
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

/// The client fields a patch or merge may change, as the JSON names them: seed
/// 003's patchable list in tenure's names, and seed 004's scope fields. Never
/// `id`, `zone_id`, `organization_id`, `client_type`, `internal`,
/// `owner_account_id`, `created_at`, `updated_at` or `last_used_at`.
pub const PATCHABLE_FIELDS: [&str; 15] = [
    "tenant",
    "business_name",
    "homepage_url",
    "name",
    "description",
    "redirect_uris",
    "allowed_grants",
    "allowed_scopes",
    "scope_policy",
    "access_type",
    "access_token_ttl_seconds",
    "refresh_token_ttl_seconds",
    "enabled",
    "strong_auth_supported",
    "claims_supported",
];

/// The fields a patch's `test` may read besides the patchable ones.
const READABLE_FIELDS: [&str; 9] = [
    "id",
    "zone_id",
    "organization_id",
    "client_type",
    "internal",
    "owner_account_id",
    "created_at",
    "updated_at",
    "last_used_at",
];

fn patchable(field: &str) -> Option<&'static str> {
    PATCHABLE_FIELDS.iter().copied().find(|f| *f == field)
}

/// A client as JSON: what patches are applied to. Holds the patchable and the
/// readable fields, never the secret's digest.
pub fn client_view(client: &Client) -> serde_json::Value {
    let mut view = serde_json::json!({
        "id": client.id,
        "zone_id": client.zone_id,
        "organization_id": client.organization_id,
        "tenant": client.tenant,
        "client_type": client.client_type,
        "internal": client.internal,
        "owner_account_id": client.owner_account_id,
        "name": client.name,
        "description": client.description,
        "business_name": client.business_name,
        "homepage_url": client.homepage_url,
        "redirect_uris": client.redirect_uris,
        "allowed_grants": client.allowed_grants,
        "allowed_scopes": client.allowed_scopes,
        "scope_policy": client.scope_policy,
        "access_type": client.access_type,
        "access_token_ttl_seconds": client.access_token_ttl_seconds,
        "refresh_token_ttl_seconds": client.refresh_token_ttl_seconds,
        "enabled": client.enabled,
        "strong_auth_supported": client.strong_auth_supported,
        "claims_supported": client.claims_supported,
        "created_at": crate::time::format_rfc3339(&client.created_at),
        "updated_at": crate::time::format_rfc3339(&client.updated_at),
        "last_used_at": client.last_used_at.as_ref().map(crate::time::format_rfc3339),
    });
    if let Some(map) = view.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    view
}

/// The top-level field a JSON pointer names, if any.
fn top_field(pointer: &json_patch::jsonptr::Pointer) -> Option<String> {
    pointer.first().map(|t| t.decoded().into_owned())
}

/// Reads the patchable fields of `view` into a copy of `client`. `field_error`
/// turns a field and a reason into the caller's error.
fn read_view(
    client: &Client,
    view: &serde_json::Value,
    field_error: &dyn Fn(&'static str, String) -> Error,
) -> Result<Client> {
    fn take<T: serde::de::DeserializeOwned>(
        view: &serde_json::Value,
        field: &'static str,
        field_error: &dyn Fn(&'static str, String) -> Error,
    ) -> Result<Option<T>> {
        match view.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| field_error(field, e.to_string())),
        }
    }
    let required = |field: &'static str| field_error(field, "is required".to_owned());
    if !view.is_object() {
        return Err(field_error(
            "name",
            "the client must stay a JSON object".into(),
        ));
    }
    Ok(Client {
        name: take(view, "name", field_error)?.ok_or_else(|| required("name"))?,
        tenant: take(view, "tenant", field_error)?,
        description: take(view, "description", field_error)?,
        business_name: take(view, "business_name", field_error)?,
        homepage_url: take(view, "homepage_url", field_error)?,
        redirect_uris: take(view, "redirect_uris", field_error)?.unwrap_or_default(),
        allowed_grants: take(view, "allowed_grants", field_error)?
            .ok_or_else(|| required("allowed_grants"))?,
        allowed_scopes: take(view, "allowed_scopes", field_error)?
            .ok_or_else(|| required("allowed_scopes"))?,
        scope_policy: take(view, "scope_policy", field_error)?
            .ok_or_else(|| required("scope_policy"))?,
        access_type: take(view, "access_type", field_error)?
            .ok_or_else(|| required("access_type"))?,
        access_token_ttl_seconds: take(view, "access_token_ttl_seconds", field_error)?
            .ok_or_else(|| required("access_token_ttl_seconds"))?,
        refresh_token_ttl_seconds: take(view, "refresh_token_ttl_seconds", field_error)?
            .ok_or_else(|| required("refresh_token_ttl_seconds"))?,
        enabled: take(view, "enabled", field_error)?.ok_or_else(|| required("enabled"))?,
        strong_auth_supported: take(view, "strong_auth_supported", field_error)?
            .ok_or_else(|| required("strong_auth_supported"))?,
        claims_supported: take(view, "claims_supported", field_error)?
            .ok_or_else(|| required("claims_supported"))?,
        ..client.clone()
    })
}

/// Applies an RFC 6902 JSON Patch to a copy of `client` and validates the result.
///
/// Only [`PATCHABLE_FIELDS`] may be changed (`test` may also read the other fields
/// of [`client_view`]). The whole patch applies or nothing does: a failed `test` is
/// [`Error::PatchTestFailed`], anything else [`Error::InvalidPatch`], each naming
/// the operation's index and path; a result that is not a valid client names the
/// last operation that touched the offending field.
pub fn apply_patch(client: &Client, patch: &json_patch::Patch) -> Result<Client> {
    use json_patch::PatchOperation as Op;
    let invalid = |index: usize, path: &str, reason: String| Error::InvalidPatch {
        index,
        path: path.to_owned(),
        reason,
    };
    // Which operation last wrote each field, to name it when validation fails.
    let mut last_writer: Vec<(&'static str, usize)> = Vec::new();
    for (index, op) in patch.0.iter().enumerate() {
        let path = op.path();
        let field = top_field(path);
        let writes = !matches!(op, Op::Test(_));
        match (field.as_deref(), writes) {
            (None, true) => {
                return Err(invalid(
                    index,
                    path.as_str(),
                    "the whole client cannot be replaced".into(),
                ));
            }
            (Some(f), true) => match patchable(f) {
                Some(f) => last_writer.push((f, index)),
                None => {
                    return Err(invalid(
                        index,
                        path.as_str(),
                        format!("{f:?} is not a patchable field"),
                    ));
                }
            },
            (Some(f), false) if patchable(f).is_none() && !READABLE_FIELDS.contains(&f) => {
                return Err(invalid(
                    index,
                    path.as_str(),
                    format!("{f:?} is not a field of the client"),
                ));
            }
            _ => {}
        }
        if let Op::Move(m) = op {
            match top_field(&m.from).as_deref().map(patchable) {
                Some(Some(f)) => last_writer.push((f, index)),
                _ => {
                    return Err(invalid(
                        index,
                        m.from.as_str(),
                        "a move may only take from a patchable field".into(),
                    ));
                }
            }
        }
    }
    let mut view = client_view(client);
    json_patch::patch(&mut view, &patch.0).map_err(|e| match e.kind {
        json_patch::PatchErrorKind::TestFailed => Error::PatchTestFailed {
            index: e.operation,
            path: e.path.to_string(),
        },
        kind => invalid(e.operation, e.path.as_str(), kind.to_string()),
    })?;
    let writer_of = |field: &str| {
        last_writer
            .iter()
            .rev()
            .find(|(f, _)| *f == field)
            .map_or(0, |(_, i)| *i)
    };
    let field_error = |field: &'static str, reason: String| {
        invalid(writer_of(field), &format!("/{field}"), reason)
    };
    let next = read_view(client, &view, &field_error)?;
    validate_client(next).map_err(|e| match e {
        Error::InvalidInput { field, reason } => field_error(field, reason),
        other => other,
    })
}

/// Applies an RFC 7396 merge patch (a partial client object, as the seed 004
/// update takes) to a copy of `client` and validates the result. Only
/// [`PATCHABLE_FIELDS`] may appear; `null` removes an optional field.
pub fn apply_merge(client: &Client, merge: &serde_json::Value) -> Result<Client> {
    let Some(fields) = merge.as_object() else {
        return Err(Error::invalid_input(
            "body",
            "a merge update must be a JSON object",
        ));
    };
    for key in fields.keys() {
        if patchable(key).is_none() {
            return Err(Error::invalid_input(
                "body",
                format!("{key:?} is not a patchable field"),
            ));
        }
    }
    let mut view = client_view(client);
    json_patch::merge(&mut view, merge);
    let next = read_view(client, &view, &|field, reason| Error::InvalidInput {
        field,
        reason,
    })?;
    validate_client(next)
}

/// A policy change as the rules see it: `after` with `updated_at` bumped and, when
/// the change takes refresh tokens away (refresh grant withdrawn or access made
/// online), the time from which older refresh tokens never work again.
pub fn apply_policy_change(before: &Client, mut after: Client, now: crate::Timestamp) -> Client {
    if before.issues_refresh_tokens() && !after.issues_refresh_tokens() {
        after.refresh_stopped_at = Some(now);
    }
    after.updated_at = before.updated_at.max(now);
    after
}

/// What a client policy change would do to the grants already made to the client;
/// see [`Engine::client_change_impact`](crate::Engine::client_change_impact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Impact {
    /// Active grants of the client now.
    pub active_grants: u64,
    /// Active grants that hold a live refresh chain now.
    pub refresh_chains: u64,
    /// Active grants whose next refresh would carry fewer scopes.
    pub narrowed_grants: u64,
    /// Refresh chains that could no longer be refreshed.
    pub stopped_refresh_chains: u64,
    /// Whether new authorizations would be refused (the client disabled).
    pub stops_authorization: bool,
}
