//! `/zones/{zone_id}/clients`: registration, reading, patching, and the dry-run
//! impact of a patch (seeds 003, 004).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tenure::time::format_rfc3339;
use tenure::{
    AccessType, Client, ClientChange, ClientRegistration, ClientType, GrantType, ScopePolicy,
};
use utoipa::ToSchema;

use crate::extract::{BodyKind, Params, QueryPairs, RawBody, parse_json};
use crate::grants::Pagination;
use crate::list_query;
use crate::no_store::NoStore;
use crate::problem::{ApiError, ErrorBody};
use crate::state::AppState;

/// A client as the API shows it; never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientBody {
    /// Unique within the zone.
    pub id: String,
    /// The zone.
    pub zone_id: String,
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
    /// The homepage of the client's owner, an absolute http or https URL.
    #[schema(pattern = "^[Hh][Tt][Tt][Pp][Ss]?://")]
    pub homepage_url: Option<String>,
    /// `public` or `confidential`.
    #[schema(value_type = String, pattern = "^(public|confidential)$")]
    pub client_type: ClientType,
    /// Whether the client serves the host's own internal requests; set at
    /// registration.
    pub internal: bool,
    /// The owning account; null for a built-in client.
    pub owner_account_id: Option<String>,
    /// Scopes under the explicit policy.
    pub allowed_scopes: Vec<String>,
    /// Grant types.
    #[schema(value_type = Vec<String>)]
    pub allowed_grants: Vec<GrantType>,
    /// `explicit` or `inherit`.
    #[schema(value_type = String, pattern = "^(explicit|inherit)$")]
    pub scope_policy: ScopePolicy,
    /// `online` or `offline`.
    #[schema(value_type = String, pattern = "^(online|offline)$")]
    pub access_type: AccessType,
    /// Lifetime of access tokens issued from now on.
    pub access_token_ttl_seconds: u32,
    /// Lifetime of refresh tokens issued from now on.
    pub refresh_token_ttl_seconds: u32,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Whether the client may authorize and refresh.
    pub enabled: bool,
    /// Whether the client supports strong authentication.
    pub strong_auth_supported: bool,
    /// Whether the client supports SAML claims with the authorization-code flow.
    pub claims_supported: bool,
    /// Whether a client secret is configured.
    pub client_secret_set: bool,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Last change.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Last use, kept at most once a day.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

impl From<&Client> for ClientBody {
    fn from(c: &Client) -> Self {
        ClientBody {
            id: c.id.clone(),
            zone_id: c.zone_id.clone(),
            organization_id: c.organization_id.clone(),
            tenant: c.tenant.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            business_name: c.business_name.clone(),
            homepage_url: c.homepage_url.clone(),
            client_type: c.client_type,
            internal: c.internal,
            owner_account_id: c.owner_account_id.clone(),
            allowed_scopes: c.allowed_scopes.clone(),
            allowed_grants: c.allowed_grants.clone(),
            scope_policy: c.scope_policy,
            access_type: c.access_type,
            access_token_ttl_seconds: c.access_token_ttl_seconds,
            refresh_token_ttl_seconds: c.refresh_token_ttl_seconds,
            redirect_uris: c.redirect_uris.clone(),
            enabled: c.enabled,
            strong_auth_supported: c.strong_auth_supported,
            claims_supported: c.claims_supported,
            client_secret_set: c.secret_digest.is_some(),
            created_at: format_rfc3339(&c.created_at),
            updated_at: format_rfc3339(&c.updated_at),
            last_used_at: c.last_used_at.as_ref().map(format_rfc3339),
        }
    }
}

/// A client to register; absent fields take the defaults of
/// [`ClientRegistration::new`].
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientBody {
    /// The id; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Human-readable name.
    pub name: String,
    /// Human-readable description.
    #[serde(default)]
    pub description: Option<String>,
    /// The organization; `default` when absent.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// `public` (default) or `confidential`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(public|confidential)$")]
    pub client_type: Option<ClientType>,
    /// Scopes under the explicit policy.
    #[serde(default)]
    pub allowed_scopes: Option<Vec<String>>,
    /// Grant types: `authorization_code`, `refresh_token`, `client_credentials`,
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_grants: Option<Vec<GrantType>>,
    /// `explicit` (default) or `inherit`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(explicit|inherit)$")]
    pub scope_policy: Option<ScopePolicy>,
    /// `online` or `offline` (default).
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(online|offline)$")]
    pub access_type: Option<AccessType>,
    /// Access-token lifetime; 3600 by default.
    #[serde(default)]
    pub access_token_ttl_seconds: Option<u32>,
    /// Refresh-token lifetime; 30 days by default.
    #[serde(default)]
    pub refresh_token_ttl_seconds: Option<u32>,
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    /// Enabled; true by default.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The owning account; none for a built-in client.
    #[serde(default)]
    pub owner_account_id: Option<String>,
    /// The host's tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The name of the business the client belongs to.
    #[serde(default)]
    pub business_name: Option<String>,
    /// The homepage of the client's owner, an absolute http or https URL.
    #[serde(default)]
    #[schema(pattern = "^[Hh][Tt][Tt][Pp][Ss]?://")]
    pub homepage_url: Option<String>,
    /// Serves the host's own internal requests; false by default, and fixed once
    /// registered.
    #[serde(default)]
    pub internal: Option<bool>,
    /// Supports strong authentication; false by default.
    #[serde(default)]
    pub strong_auth_supported: Option<bool>,
    /// Supports SAML claims with the authorization-code flow; false by default.
    #[serde(default)]
    pub claims_supported: Option<bool>,
}

/// A registered client, with its secret this once when confidential.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedClient {
    /// The client.
    #[serde(flatten)]
    pub client: ClientBody,
    /// The secret of a confidential client, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Register a client.
#[utoipa::path(
    post,
    operation_id = "create_client",
    path = "/zones/{zone_id}/clients",
    tag = "clients",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = CreateClientBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The client, and its secret once", body = CreatedClient,
            headers(("cache-control" = String, description = "no-store"), ("pragma" = String, description = "no-cache"))),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<NoStore<(StatusCode, Json<CreatedClient>)>, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let b: CreateClientBody = body.json()?;
    let defaults = ClientRegistration::new(b.name.clone());
    let registration = ClientRegistration {
        id: b.id,
        organization_id: b.organization_id.unwrap_or(defaults.organization_id),
        tenant: b.tenant,
        name: b.name,
        description: b.description,
        business_name: b.business_name,
        homepage_url: b.homepage_url,
        client_type: b.client_type.unwrap_or(defaults.client_type),
        internal: b.internal.unwrap_or(defaults.internal),
        owner_account_id: b.owner_account_id,
        allowed_scopes: b.allowed_scopes.unwrap_or(defaults.allowed_scopes),
        allowed_grants: b.allowed_grants.unwrap_or(defaults.allowed_grants),
        scope_policy: b.scope_policy.unwrap_or(defaults.scope_policy),
        access_type: b.access_type.unwrap_or(defaults.access_type),
        access_token_ttl_seconds: b
            .access_token_ttl_seconds
            .unwrap_or(state.config.default_access_token_ttl_seconds),
        refresh_token_ttl_seconds: b
            .refresh_token_ttl_seconds
            .unwrap_or(state.config.default_refresh_token_ttl_seconds),
        redirect_uris: b.redirect_uris.unwrap_or_default(),
        enabled: b.enabled.unwrap_or(true),
        strong_auth_supported: b
            .strong_auth_supported
            .unwrap_or(defaults.strong_auth_supported),
        claims_supported: b.claims_supported.unwrap_or(defaults.claims_supported),
    };
    let registered = state.engine.register_client(&zone_id, registration).await?;
    let created = CreatedClient {
        client: ClientBody::from(&registered.client),
        client_secret: registered.secret.as_ref().map(|s| s.expose().to_owned()),
    };
    Ok(NoStore((StatusCode::CREATED, Json(created))))
}

/// A page of clients.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientList {
    /// The clients, by id.
    pub items: Vec<ClientBody>,
    /// `after_cursor` when more follow.
    pub pagination: Pagination,
}

/// List a zone's clients, by id.
#[utoipa::path(
    get,
    operation_id = "list_clients",
    path = "/zones/{zone_id}/clients",
    tag = "clients",
    params(
        ("zone_id" = String, Path, description = "The zone"),
        ("after" = Option<String>, Query, description = "The `after_cursor` of the previous page (its last id)", min_length = 1, max_length = 128),
        ("limit" = Option<i64>, Query, description = "1 to 100, default 50", minimum = 1, maximum = 100),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of clients", body = ClientList),
        (status = 400, description = "A query parameter is invalid (`invalid_parameter`, naming it), or a malformed request", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 422, description = "The zone id is invalid", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Json<ClientList>, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let limit = list_query::limit(&query)?.unwrap_or(tenure::validate::DEFAULT_PAGE_LIMIT);
    let after = query.one("after")?;
    let page = state
        .engine
        .list_clients_page(&zone_id, after, limit)
        .await
        .map_err(|e| list_query::refused(e, &["after", "limit"]))?;
    Ok(Json(ClientList {
        items: page.items.iter().map(ClientBody::from).collect(),
        pagination: Pagination {
            after_cursor: page.after_cursor,
            before_cursor: None,
            total_count: None,
        },
    }))
}

/// Get a client.
#[utoipa::path(
    get,
    operation_id = "get_client",
    path = "/zones/{zone_id}/clients/{id}",
    tag = "clients",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The client")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client", body = ClientBody),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such client in this zone", body = ErrorBody),
        (status = 422, description = "An id is invalid", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Params((zone_id, id)): Params<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<ClientBody>, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let client = state.engine.get_client(&zone_id, &id).await?;
    Ok(Json(ClientBody::from(&client)))
}

/// Delete a client: every active grant made to it is revoked first, so its tokens
/// stop at once; its grants stay, revoked, with their history.
#[utoipa::path(
    delete,
    operation_id = "delete_client",
    path = "/zones/{zone_id}/clients/{id}",
    tag = "clients",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The client")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted, its grants revoked"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such client in this zone", body = ErrorBody),
        (status = 409, description = "Changed concurrently; retry", body = ErrorBody),
        (status = 422, description = "An id is invalid", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Params((zone_id, id)): Params<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    state.engine.delete_client(&zone_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One JSON Patch operation (RFC 6902), for the API document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PatchOperationBody {
    /// `add`, `remove`, `replace`, `move`, `copy` or `test`.
    #[schema(pattern = "^(add|remove|replace|move|copy|test)$")]
    pub op: String,
    /// A JSON Pointer to a patchable field, such as `/allowed_scopes`.
    pub path: String,
    /// The source of `move` and `copy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The value of `add`, `replace` and `test`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub value: Option<serde_json::Value>,
}

/// A merge update: any of the patchable fields.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientMergeBody {
    /// New tenant; null clears it.
    pub tenant: Option<String>,
    /// New business name; null clears it.
    pub business_name: Option<String>,
    /// New homepage URL, absolute http or https; null clears it.
    #[schema(pattern = "^[Hh][Tt][Tt][Pp][Ss]?://")]
    pub homepage_url: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// New description; null clears it.
    pub description: Option<String>,
    /// New redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// New grant types.
    pub allowed_grants: Option<Vec<String>>,
    /// New scopes.
    pub allowed_scopes: Option<Vec<String>>,
    /// `explicit` or `inherit`.
    pub scope_policy: Option<String>,
    /// `online` or `offline`.
    pub access_type: Option<String>,
    /// New access-token lifetime.
    pub access_token_ttl_seconds: Option<u32>,
    /// New refresh-token lifetime.
    pub refresh_token_ttl_seconds: Option<u32>,
    /// Enabled.
    pub enabled: Option<bool>,
    /// Whether strong authentication is supported.
    pub strong_auth_supported: Option<bool>,
    /// Whether SAML claims are supported.
    pub claims_supported: Option<bool>,
}

fn change_from(body: &RawBody) -> Result<ClientChange, ApiError> {
    match body.kind {
        BodyKind::JsonPatch => Ok(ClientChange::Patch(parse_json(&body.bytes)?)),
        BodyKind::Json => Ok(ClientChange::Merge(parse_json(&body.bytes)?)),
        _ => Err(ApiError::unsupported_media_type(&[
            "application/json-patch+json",
            "application/json",
        ])),
    }
}

/// Patch a client: a JSON Patch (`application/json-patch+json`) or a merge
/// (`application/json`). All of it applies, or nothing does.
#[utoipa::path(
    patch,
    operation_id = "patch_client",
    path = "/zones/{zone_id}/clients/{id}",
    tag = "clients",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The client")),
    request_body(content(
        (Vec<PatchOperationBody> = "application/json-patch+json"),
        (ClientMergeBody = "application/json"),
    )),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client as changed", body = ClientBody),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such client in this zone", body = ErrorBody),
        (status = 409, description = "A test operation failed", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Neither a JSON Patch nor JSON", body = ErrorBody),
        (status = 422, description = "An operation or the result is invalid", body = ErrorBody),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    Params((zone_id, id)): Params<(String, String)>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<ClientBody>, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let change = change_from(&body)?;
    let client = state.engine.change_client(&zone_id, &id, &change).await?;
    Ok(Json(ClientBody::from(&client)))
}

/// What a change would do to the client's existing grants.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImpactBody {
    /// Active grants of the client now.
    pub active_grants: u64,
    /// Active grants holding a refresh chain.
    pub refresh_chains: u64,
    /// Grants whose next refresh would carry fewer scopes.
    pub narrowed_grants: u64,
    /// Refresh chains that would stop.
    pub stopped_refresh_chains: u64,
    /// Whether new authorizations would be refused.
    pub stops_authorization: bool,
}

/// The dry-run impact of a patch: nothing changes.
#[utoipa::path(
    post,
    operation_id = "client_impact",
    path = "/zones/{zone_id}/clients/{id}/impact",
    tag = "clients",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The client")),
    request_body(content(
        (Vec<PatchOperationBody> = "application/json-patch+json"),
        (ClientMergeBody = "application/json"),
    )),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the change would do", body = ImpactBody),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such client in this zone", body = ErrorBody),
        (status = 409, description = "A test operation failed", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Neither a JSON Patch nor JSON", body = ErrorBody),
        (status = 422, description = "An operation or the result is invalid", body = ErrorBody),
    )
)]
pub async fn impact(
    State(state): State<AppState>,
    Params((zone_id, id)): Params<(String, String)>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<ImpactBody>, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let change = change_from(&body)?;
    let i = state
        .engine
        .client_change_impact(&zone_id, &id, &change)
        .await?;
    Ok(Json(ImpactBody {
        active_grants: i.active_grants,
        refresh_chains: i.refresh_chains,
        narrowed_grants: i.narrowed_grants,
        stopped_refresh_chains: i.stopped_refresh_chains,
        stops_authorization: i.stops_authorization,
    }))
}
