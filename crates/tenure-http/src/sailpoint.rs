//! SailPoint's OAuth client API (seed 003), `/zones/{zone_id}/oauth-clients/v1`,
//! so that a SailPoint client whose base URL is `http://HOST/zones/ZONE` works
//! unchanged.
//!
//! A thin translation over the engine's client operations: registration, reading,
//! and [`Engine::patch_client`](tenure::Engine::patch_client), whose JSON Patch
//! rules (all or nothing, patchable fields only) apply as they do to tenure's own
//! `/clients`. This module only renames: SailPoint's camelCase paths and
//! upper-case values to tenure's field names and values, and back.
//!
//! - `grantTypes` are `CLIENT_CREDENTIALS`, `AUTHORIZATION_CODE`, `REFRESH_TOKEN`,
//!   and `DEVICE_CODE` for tenure's RFC 8628 grant, which SailPoint does not have:
//!   shown rather than hidden, so that a client read and written back keeps it.
//! - `scope` is the explicit scope list; `null` means the `inherit` policy, the
//!   owner's rights, as SailPoint's own default scope (`sp:scopes:all`) does. A
//!   client created without `scope` inherits.
//! - `tenant` is patchable (seed 003) but, as in SailPoint, not shown.
//! - A client is created `CONFIDENTIAL` unless `type` says otherwise; its secret
//!   is in the answer to its creation only, as `secret`. A public client's answer
//!   has no `secret`.
//! - `DELETE` answers 204 once the client is deleted, as SailPoint's does; the
//!   engine revokes every active grant of the client first, so its tokens stop.
//!
//! Callers: an administrator (the router's [`Authenticator`](crate::Authenticator)),
//! or any live access token of the zone carrying the scope
//! `sp:oauth-client:manage`, such as a client-credentials token from
//! `/zones/{zone_id}/oauth/token`. Errors carry SailPoint's body
//! `{detailCode, trackingId, messages, causes}`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenure::time::format_rfc3339;
use tenure::{
    AccessType, Client, ClientRegistration, ClientType, GrantType, Introspection, ScopePolicy,
    TokenKind,
};
use utoipa::ToSchema;

use crate::dialect::{all_clients, vendor_status};
use crate::extract::{BodyError, BodyKind, Params, RawBody, bearer, parse_json};
use crate::no_store::NoStore;
use crate::problem::ApiError;
use crate::state::AppState;

/// The scope an access token needs for these routes (seed 003).
pub const MANAGE_SCOPE: &str = "sp:oauth-client:manage";

/// The routes, to nest under `/zones/{zone_id}`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth-clients/v1", get(list).post(create))
        .route(
            "/oauth-clients/v1/{id}",
            get(read).patch(patch).delete(delete),
        )
}

/// Seed 003's patchable fields, SailPoint's name first, tenure's second.
const PATCHABLE: [(&str, &str); 13] = [
    ("tenant", "tenant"),
    ("businessName", "business_name"),
    ("homepageUrl", "homepage_url"),
    ("name", "name"),
    ("description", "description"),
    ("accessTokenValiditySeconds", "access_token_ttl_seconds"),
    ("refreshTokenValiditySeconds", "refresh_token_ttl_seconds"),
    ("redirectUris", "redirect_uris"),
    ("grantTypes", "allowed_grants"),
    ("accessType", "access_type"),
    ("enabled", "enabled"),
    ("strongAuthSupported", "strong_auth_supported"),
    ("claimsSupported", "claims_supported"),
];

/// SailPoint's name of a tenure field, for errors the engine words in its own.
fn sailpoint_field(tenure: &str) -> &str {
    match tenure {
        "allowed_scopes" | "scope_policy" => "scope",
        "client_type" => "type",
        "internal" => "internal",
        other => PATCHABLE
            .iter()
            .find(|(_, t)| *t == other)
            .map_or(other, |(s, _)| s),
    }
}

/// A grant type as SailPoint spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SailPointGrantType {
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §4.1.
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 8628; tenure's, not SailPoint's.
    DeviceCode,
}

impl From<GrantType> for SailPointGrantType {
    fn from(g: GrantType) -> Self {
        match g {
            GrantType::ClientCredentials => SailPointGrantType::ClientCredentials,
            GrantType::AuthorizationCode => SailPointGrantType::AuthorizationCode,
            GrantType::RefreshToken => SailPointGrantType::RefreshToken,
            GrantType::DeviceCode => SailPointGrantType::DeviceCode,
        }
    }
}

impl From<SailPointGrantType> for GrantType {
    fn from(g: SailPointGrantType) -> Self {
        match g {
            SailPointGrantType::ClientCredentials => GrantType::ClientCredentials,
            SailPointGrantType::AuthorizationCode => GrantType::AuthorizationCode,
            SailPointGrantType::RefreshToken => GrantType::RefreshToken,
            SailPointGrantType::DeviceCode => GrantType::DeviceCode,
        }
    }
}

/// `ONLINE` (no refresh tokens) or `OFFLINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SailPointAccessType {
    /// Access tokens only.
    Online,
    /// Refresh tokens as well.
    Offline,
}

impl From<AccessType> for SailPointAccessType {
    fn from(a: AccessType) -> Self {
        match a {
            AccessType::Online => SailPointAccessType::Online,
            AccessType::Offline => SailPointAccessType::Offline,
        }
    }
}

impl From<SailPointAccessType> for AccessType {
    fn from(a: SailPointAccessType) -> Self {
        match a {
            SailPointAccessType::Online => AccessType::Online,
            SailPointAccessType::Offline => AccessType::Offline,
        }
    }
}

/// `CONFIDENTIAL` or `PUBLIC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SailPointClientType {
    /// Holds a secret.
    Confidential,
    /// Holds none.
    Public,
}

impl From<ClientType> for SailPointClientType {
    fn from(t: ClientType) -> Self {
        match t {
            ClientType::Confidential => SailPointClientType::Confidential,
            ClientType::Public => SailPointClientType::Public,
        }
    }
}

impl From<SailPointClientType> for ClientType {
    fn from(t: SailPointClientType) -> Self {
        match t {
            SailPointClientType::Confidential => ClientType::Confidential,
            SailPointClientType::Public => ClientType::Public,
        }
    }
}

/// An OAuth client as SailPoint shows it (`GetOAuthClientResponse`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SailPointClient {
    /// The client's id, as used at the token endpoint.
    pub id: String,
    /// The business the client belongs to.
    pub business_name: Option<String>,
    /// The owner's homepage.
    pub homepage_url: Option<String>,
    /// Human-readable name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Lifetime of access tokens issued from now on.
    pub access_token_validity_seconds: u32,
    /// Lifetime of refresh tokens issued from now on.
    pub refresh_token_validity_seconds: u32,
    /// Redirect URIs for the authorization-code flow.
    pub redirect_uris: Option<Vec<String>>,
    /// Grant types.
    pub grant_types: Vec<SailPointGrantType>,
    /// Online or offline.
    pub access_type: SailPointAccessType,
    /// Confidential or public.
    #[serde(rename = "type")]
    pub client_type: SailPointClientType,
    /// Serves the host's internal requests.
    pub internal: bool,
    /// Whether the client may authorize and refresh.
    pub enabled: bool,
    /// Supports strong authentication.
    pub strong_auth_supported: bool,
    /// Supports SAML claims with the authorization-code flow.
    pub claims_supported: bool,
    /// Creation, RFC 3339 with milliseconds.
    #[schema(format = DateTime)]
    pub created: String,
    /// Last change, RFC 3339 with milliseconds.
    #[schema(format = DateTime)]
    pub modified: String,
    /// Last use to issue a token, kept at most once a day.
    #[schema(format = DateTime)]
    pub last_used: Option<String>,
    /// The explicit scopes; null when the client inherits its owner's rights.
    pub scope: Option<Vec<String>>,
}

impl From<&Client> for SailPointClient {
    fn from(c: &Client) -> Self {
        SailPointClient {
            id: c.id.clone(),
            business_name: c.business_name.clone(),
            homepage_url: c.homepage_url.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            access_token_validity_seconds: c.access_token_ttl_seconds,
            refresh_token_validity_seconds: c.refresh_token_ttl_seconds,
            redirect_uris: Some(c.redirect_uris.clone()),
            grant_types: c.allowed_grants.iter().copied().map(Into::into).collect(),
            access_type: c.access_type.into(),
            client_type: c.client_type.into(),
            internal: c.internal,
            enabled: c.enabled,
            strong_auth_supported: c.strong_auth_supported,
            claims_supported: c.claims_supported,
            created: format_rfc3339(&c.created_at),
            modified: format_rfc3339(&c.updated_at),
            last_used: c.last_used_at.as_ref().map(format_rfc3339),
            scope: match c.scope_policy {
                ScopePolicy::Explicit => Some(c.allowed_scopes.clone()),
                ScopePolicy::Inherit => None,
            },
        }
    }
}

/// A client just created (`CreateOAuthClientResponse`): every required field
/// non-null (an absent text is empty), and the secret this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SailPointCreatedClient {
    /// The client's id.
    pub id: String,
    /// A confidential client's secret, shown only here; absent for a public one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The business the client belongs to; empty when none.
    pub business_name: String,
    /// The owner's homepage; empty when none.
    pub homepage_url: String,
    /// Human-readable name.
    pub name: String,
    /// Description; empty when none.
    pub description: String,
    /// Lifetime of access tokens.
    pub access_token_validity_seconds: u32,
    /// Lifetime of refresh tokens.
    pub refresh_token_validity_seconds: u32,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Grant types.
    pub grant_types: Vec<SailPointGrantType>,
    /// Online or offline.
    pub access_type: SailPointAccessType,
    /// Confidential or public.
    #[serde(rename = "type")]
    pub client_type: SailPointClientType,
    /// Serves the host's internal requests.
    pub internal: bool,
    /// Enabled.
    pub enabled: bool,
    /// Supports strong authentication.
    pub strong_auth_supported: bool,
    /// Supports SAML claims.
    pub claims_supported: bool,
    /// Creation.
    #[schema(format = DateTime)]
    pub created: String,
    /// Last change.
    #[schema(format = DateTime)]
    pub modified: String,
    /// The explicit scopes; null when the client inherits its owner's rights.
    pub scope: Option<Vec<String>>,
}

impl SailPointCreatedClient {
    fn new(client: &Client, secret: Option<String>) -> Self {
        let shown = SailPointClient::from(client);
        SailPointCreatedClient {
            id: shown.id,
            secret,
            business_name: shown.business_name.unwrap_or_default(),
            homepage_url: shown.homepage_url.unwrap_or_default(),
            name: shown.name,
            description: shown.description.unwrap_or_default(),
            access_token_validity_seconds: shown.access_token_validity_seconds,
            refresh_token_validity_seconds: shown.refresh_token_validity_seconds,
            redirect_uris: shown.redirect_uris.unwrap_or_default(),
            grant_types: shown.grant_types,
            access_type: shown.access_type,
            client_type: shown.client_type,
            internal: shown.internal,
            enabled: shown.enabled,
            strong_auth_supported: shown.strong_auth_supported,
            claims_supported: shown.claims_supported,
            created: shown.created,
            modified: shown.modified,
            scope: shown.scope,
        }
    }
}

/// A client to create (`CreateOAuthClientRequest`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SailPointCreateBody {
    /// The business the client belongs to.
    #[serde(default)]
    pub business_name: Option<String>,
    /// The owner's homepage, an absolute http or https URL.
    #[serde(default)]
    pub homepage_url: Option<String>,
    /// Human-readable name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Lifetime of access tokens, positive.
    pub access_token_validity_seconds: u32,
    /// Lifetime of refresh tokens, positive; the server's default when absent.
    #[serde(default)]
    pub refresh_token_validity_seconds: Option<u32>,
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    /// Grant types.
    pub grant_types: Vec<SailPointGrantType>,
    /// Online or offline.
    pub access_type: SailPointAccessType,
    /// `CONFIDENTIAL` (the default) or `PUBLIC`.
    #[serde(default, rename = "type")]
    pub client_type: Option<SailPointClientType>,
    /// Serves the host's internal requests; fixed at creation.
    #[serde(default)]
    pub internal: Option<bool>,
    /// Enabled.
    pub enabled: bool,
    /// Supports strong authentication.
    #[serde(default)]
    pub strong_auth_supported: Option<bool>,
    /// Supports SAML claims.
    #[serde(default)]
    pub claims_supported: Option<bool>,
    /// Explicit scopes; absent or null: the owner's rights (`inherit`).
    #[serde(default)]
    pub scope: Option<Vec<String>>,
}

/// One JSON Patch operation on a SailPoint client.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SailPointPatchOperation {
    /// `add`, `remove`, `replace`, `move`, `copy` or `test`.
    #[schema(pattern = "^(add|remove|replace|move|copy|test)$")]
    pub op: String,
    /// A JSON Pointer into one of the patchable fields, such as `/grantTypes`.
    pub path: String,
    /// The source of `move` and `copy`, also a patchable field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The value of `add`, `replace` and `test`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub value: Option<Value>,
}

/// One message of a SailPoint error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SailPointErrorMessage {
    /// The message's locale, `en-US`.
    pub locale: Option<String>,
    /// `DEFAULT`: the server's locale, not one the request asked for.
    pub locale_origin: Option<String>,
    /// The text.
    pub text: String,
}

/// SailPoint's error body (`ErrorResponseDto`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SailPointErrorBody {
    /// The status and a short reason, such as `400.1 Bad Request Content`.
    pub detail_code: String,
    /// A unique id of this answer, also logged.
    pub tracking_id: String,
    /// What went wrong.
    pub messages: Vec<SailPointErrorMessage>,
    /// What to do about it.
    pub causes: Vec<SailPointErrorMessage>,
    /// On a 401 only, the text again, as SailPoint's 401 body `{error}` has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An error answered in SailPoint's words.
#[derive(Debug)]
pub(crate) struct SailPointError(ApiError);

impl From<ApiError> for SailPointError {
    fn from(e: ApiError) -> Self {
        SailPointError(e)
    }
}

impl From<tenure::Error> for SailPointError {
    fn from(e: tenure::Error) -> Self {
        SailPointError(refused_field(e))
    }
}

impl From<BodyError> for SailPointError {
    fn from(e: BodyError) -> Self {
        SailPointError(e.into())
    }
}

/// An engine refusal of a field, renamed to SailPoint's name of it.
fn refused_field(e: tenure::Error) -> ApiError {
    match e {
        tenure::Error::InvalidInput { field, reason } => {
            ApiError::invalid_field(sailpoint_field(field), reason)
        }
        other => other.into(),
    }
}

fn detail_code(status: StatusCode) -> String {
    match status.as_u16() {
        400 => "400.1 Bad Request Content".to_owned(),
        404 => "404 Not found".to_owned(),
        500 => "500.0 Internal Fault".to_owned(),
        _ => format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        ),
    }
}

fn english(text: String) -> SailPointErrorMessage {
    SailPointErrorMessage {
        locale: Some("en-US".to_owned()),
        locale_origin: Some("DEFAULT".to_owned()),
        text,
    }
}

impl IntoResponse for SailPointError {
    fn into_response(self) -> Response {
        let (status, body, headers) = self.0.into_parts();
        let status = vendor_status(status);
        let tracking_id = uuid::Uuid::now_v7().simple().to_string();
        tracing::debug!(
            tracking_id = tracking_id.as_str(),
            status = status.as_u16(),
            error = body.error.as_str(),
            "sailpoint error"
        );
        let answer = SailPointErrorBody {
            detail_code: detail_code(status),
            tracking_id,
            error: (status == StatusCode::UNAUTHORIZED).then(|| body.message.clone()),
            messages: vec![english(body.message)],
            causes: vec![english(body.suggested)],
        };
        (status, headers, Json(answer)).into_response()
    }
}

/// An administrator, or a live access token of the zone carrying
/// [`MANAGE_SCOPE`].
async fn require_manager(
    state: &AppState,
    headers: &HeaderMap,
    zone_id: &str,
) -> Result<(), ApiError> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::unauthorized("a bearer token is required"));
    };
    if state.auth.is_admin(zone_id, token).await {
        return Ok(());
    }
    match state.engine.introspect(zone_id, token).await {
        Ok(Introspection::Active(t)) if t.kind == TokenKind::Access => {
            if t.scopes.iter().any(|s| s == MANAGE_SCOPE) {
                Ok(())
            } else {
                Err(ApiError::forbidden(format!(
                    "the access token does not carry the scope {MANAGE_SCOPE}"
                )))
            }
        }
        Ok(_) | Err(tenure::Error::InvalidInput { .. }) => Err(ApiError::invalid_token(
            "the bearer token is neither an administrator's nor a live access token of this zone",
        )),
        Err(e) => Err(e.into()),
    }
}

/// List the zone's OAuth clients, all of them, as a bare array.
#[utoipa::path(
    get,
    operation_id = "sailpoint_list_oauth_clients",
    path = "/zones/{zone_id}/oauth-clients/v1",
    tag = "sailpoint",
    params(("zone_id" = String, Path, description = "The zone")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every client of the zone", body = Vec<SailPointClient>),
        (status = 400, description = "The zone id is invalid", body = SailPointErrorBody),
        (status = 401, description = "No token, or one neither an administrator's nor live", body = SailPointErrorBody),
        (status = 403, description = "The access token lacks sp:oauth-client:manage", body = SailPointErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    params: Result<Params<String>, ApiError>,
    headers: HeaderMap,
) -> Result<Json<Vec<SailPointClient>>, SailPointError> {
    let Params(zone_id) = params?;
    require_manager(&state, &headers, &zone_id).await?;
    let clients = all_clients(&state.engine, &zone_id).await?;
    Ok(Json(clients.iter().map(SailPointClient::from).collect()))
}

/// Create an OAuth client; a confidential client's secret is in this answer only.
#[utoipa::path(
    post,
    operation_id = "sailpoint_create_oauth_client",
    path = "/zones/{zone_id}/oauth-clients/v1",
    tag = "sailpoint",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = SailPointCreateBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client, with its secret once", body = SailPointCreatedClient,
            headers(("cache-control" = String, description = "no-store"), ("pragma" = String, description = "no-cache"))),
        (status = 400, description = "Malformed or invalid body", body = SailPointErrorBody),
        (status = 401, description = "No token, or one neither an administrator's nor live", body = SailPointErrorBody),
        (status = 403, description = "The access token lacks sp:oauth-client:manage", body = SailPointErrorBody),
        (status = 413, description = "Body too large", body = SailPointErrorBody),
        (status = 415, description = "Not JSON", body = SailPointErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    params: Result<Params<String>, ApiError>,
    headers: HeaderMap,
    body: Result<RawBody, BodyError>,
) -> Result<NoStore<Json<SailPointCreatedClient>>, SailPointError> {
    let Params(zone_id) = params?;
    require_manager(&state, &headers, &zone_id).await?;
    let b: SailPointCreateBody = body?.json()?;
    let registration = ClientRegistration {
        business_name: b.business_name,
        homepage_url: b.homepage_url,
        description: b.description,
        client_type: b
            .client_type
            .unwrap_or(SailPointClientType::Confidential)
            .into(),
        internal: b.internal.unwrap_or(false),
        scope_policy: if b.scope.is_some() {
            ScopePolicy::Explicit
        } else {
            ScopePolicy::Inherit
        },
        allowed_scopes: b.scope.unwrap_or_default(),
        allowed_grants: b.grant_types.into_iter().map(Into::into).collect(),
        access_type: b.access_type.into(),
        access_token_ttl_seconds: b.access_token_validity_seconds,
        refresh_token_ttl_seconds: b
            .refresh_token_validity_seconds
            .unwrap_or(state.config.default_refresh_token_ttl_seconds),
        redirect_uris: b.redirect_uris.unwrap_or_default(),
        enabled: b.enabled,
        strong_auth_supported: b.strong_auth_supported.unwrap_or(false),
        claims_supported: b.claims_supported.unwrap_or(false),
        ..ClientRegistration::new(b.name)
    };
    let registered = state.engine.register_client(&zone_id, registration).await?;
    let secret = registered.secret.as_ref().map(|s| s.expose().to_owned());
    Ok(NoStore(Json(SailPointCreatedClient::new(
        &registered.client,
        secret,
    ))))
}

/// Get an OAuth client.
#[utoipa::path(
    get,
    operation_id = "sailpoint_get_oauth_client",
    path = "/zones/{zone_id}/oauth-clients/v1/{id}",
    tag = "sailpoint",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The client")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client", body = SailPointClient),
        (status = 400, description = "An id is invalid", body = SailPointErrorBody),
        (status = 401, description = "No token, or one neither an administrator's nor live", body = SailPointErrorBody),
        (status = 403, description = "The access token lacks sp:oauth-client:manage", body = SailPointErrorBody),
        (status = 404, description = "No such client in this zone", body = SailPointErrorBody),
    )
)]
pub(crate) async fn read(
    State(state): State<AppState>,
    params: Result<Params<(String, String)>, ApiError>,
    headers: HeaderMap,
) -> Result<Json<SailPointClient>, SailPointError> {
    let Params((zone_id, id)) = params?;
    require_manager(&state, &headers, &zone_id).await?;
    let client = state.engine.get_client(&zone_id, &id).await?;
    Ok(Json(SailPointClient::from(&client)))
}

/// A JSON Pointer's first token, if it has one.
fn first_token(pointer: &str) -> Option<&str> {
    let rest = pointer.strip_prefix('/')?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// `pointer` with its first token, a SailPoint field, renamed to tenure's: `None`
/// unless the field is one of seed 003's patchable ones.
fn tenure_pointer(pointer: &str) -> Option<(&'static str, String)> {
    let field = first_token(pointer)?;
    let (_, tenure) = PATCHABLE.iter().find(|(s, _)| *s == field)?;
    let rest = &pointer[1 + field.len()..];
    Some((tenure, format!("/{tenure}{rest}")))
}

/// A SailPoint value written at `pointer` (already renamed) in tenure's words:
/// grant types and the access type are spelled differently. A value that is not
/// one SailPoint has is refused; one of the wrong type is left for the engine to
/// refuse.
fn tenure_value(field: &str, whole: bool, value: Value) -> Result<Value, String> {
    fn grant(v: Value) -> Result<Value, String> {
        match v {
            Value::String(s) => serde_json::from_value::<SailPointGrantType>(Value::String(s))
                .map(|g| json!(GrantType::from(g)))
                .map_err(|_| {
                    "expected CLIENT_CREDENTIALS, AUTHORIZATION_CODE, REFRESH_TOKEN or DEVICE_CODE"
                        .to_owned()
                }),
            other => Ok(other),
        }
    }
    match (field, value) {
        ("allowed_grants", Value::Array(items)) if whole => items
            .into_iter()
            .map(grant)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        ("allowed_grants", v) if !whole => grant(v),
        ("access_type", Value::String(s)) if whole => {
            serde_json::from_value::<SailPointAccessType>(Value::String(s))
                .map(|a| json!(AccessType::from(a)))
                .map_err(|_| "expected ONLINE or OFFLINE".to_owned())
        }
        (_, v) => Ok(v),
    }
}

/// A SailPoint JSON Patch in tenure's field names and values: refused whole,
/// naming the path, if any operation reaches outside seed 003's patchable fields.
fn translate_patch(ops: Vec<Value>) -> Result<json_patch::Patch, ApiError> {
    let refuse = |index: usize, path: &str, reason: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_patch",
            format!("operation {index} on {path:?}: {reason}"),
            "Patch only the fields seed 003 lists as patchable.",
            json!({"index": index, "path": path}),
        )
    };
    let mut translated = Vec::with_capacity(ops.len());
    for (index, op) in ops.into_iter().enumerate() {
        let Value::Object(mut op) = op else {
            return Err(refuse(index, "", "an operation must be an object".into()));
        };
        // The field the operation writes or tests, and whether it names it whole.
        let mut target = None;
        for key in ["path", "from"] {
            let Some(pointer) = op.get(key) else { continue };
            let Some(pointer) = pointer.as_str() else {
                return Err(refuse(index, "", format!("{key} must be a string")));
            };
            let Some((field, renamed)) = tenure_pointer(pointer) else {
                return Err(refuse(
                    index,
                    pointer,
                    "not a patchable field of an OAuth client".into(),
                ));
            };
            if key == "path" {
                target = Some((field, renamed.len() == 1 + field.len(), pointer.to_owned()));
            }
            op.insert(key.to_owned(), Value::String(renamed));
        }
        if let (Some((field, whole, pointer)), Some(value)) = (target, op.remove("value")) {
            let value = tenure_value(field, whole, value)
                .map_err(|reason| refuse(index, &pointer, reason))?;
            op.insert("value".to_owned(), value);
        }
        translated.push(Value::Object(op));
    }
    serde_json::from_value(Value::Array(translated))
        .map_err(|e| ApiError::malformed(format!("not a JSON Patch: {e}")))
}

/// An engine refusal of a patch, naming the operation's SailPoint path.
fn patch_refused(e: tenure::Error, ops: &[Value]) -> SailPointError {
    let path_of = |index: usize| {
        ops.get(index)
            .and_then(|op| op.get("path"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    match e {
        tenure::Error::InvalidPatch { index, reason, .. } => {
            let path = path_of(index);
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_patch",
                format!("operation {index} on {path:?}: {reason}"),
                "Correct the operation; the client is unchanged.",
                json!({"index": index, "path": path}),
            )
            .into()
        }
        tenure::Error::PatchTestFailed { index, .. } => {
            let path = path_of(index);
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "patch_test_failed",
                format!("operation {index} on {path:?}: the test failed"),
                "Read the client again and rebase the patch on it; it is unchanged.",
                json!({"index": index, "path": path}),
            )
            .into()
        }
        other => other.into(),
    }
}

/// Patch an OAuth client with a JSON Patch over seed 003's patchable fields: all
/// of it applies, or nothing does.
#[utoipa::path(
    patch,
    operation_id = "sailpoint_patch_oauth_client",
    path = "/zones/{zone_id}/oauth-clients/v1/{id}",
    tag = "sailpoint",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The client")),
    request_body(content = Vec<SailPointPatchOperation>, content_type = "application/json-patch+json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client as changed", body = SailPointClient),
        (status = 400, description = "Malformed patch, a path outside the patchable fields, a failed test, or an invalid result; nothing changed", body = SailPointErrorBody),
        (status = 401, description = "No token, or one neither an administrator's nor live", body = SailPointErrorBody),
        (status = 403, description = "The access token lacks sp:oauth-client:manage", body = SailPointErrorBody),
        (status = 404, description = "No such client in this zone", body = SailPointErrorBody),
        (status = 413, description = "Body too large", body = SailPointErrorBody),
        (status = 415, description = "Not application/json-patch+json", body = SailPointErrorBody),
    )
)]
pub(crate) async fn patch(
    State(state): State<AppState>,
    params: Result<Params<(String, String)>, ApiError>,
    headers: HeaderMap,
    body: Result<RawBody, BodyError>,
) -> Result<Json<SailPointClient>, SailPointError> {
    let Params((zone_id, id)) = params?;
    require_manager(&state, &headers, &zone_id).await?;
    let body = body?;
    if body.kind != BodyKind::JsonPatch {
        return Err(ApiError::unsupported_media_type(&["application/json-patch+json"]).into());
    }
    let ops: Vec<Value> = parse_json(&body.bytes)?;
    let patch = translate_patch(ops.clone())?;
    let client = state
        .engine
        .patch_client(&zone_id, &id, &patch)
        .await
        .map_err(|e| patch_refused(e, &ops))?;
    Ok(Json(SailPointClient::from(&client)))
}

/// Delete an OAuth client: every active grant made to it is revoked first.
#[utoipa::path(
    delete,
    operation_id = "sailpoint_delete_oauth_client",
    path = "/zones/{zone_id}/oauth-clients/v1/{id}",
    tag = "sailpoint",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The client")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted, its grants revoked"),
        (status = 400, description = "An id is invalid, or the client changed concurrently", body = SailPointErrorBody),
        (status = 401, description = "No token, or one neither an administrator's nor live", body = SailPointErrorBody),
        (status = 403, description = "The access token lacks sp:oauth-client:manage", body = SailPointErrorBody),
        (status = 404, description = "No such client in this zone", body = SailPointErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    params: Result<Params<(String, String)>, ApiError>,
    headers: HeaderMap,
) -> Result<StatusCode, SailPointError> {
    let Params((zone_id, id)) = params?;
    require_manager(&state, &headers, &zone_id).await?;
    state.engine.delete_client(&zone_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
