//! Storyden's admin OAuth API (seed 004), `/zones/{zone_id}/admin/oauth/…`, so
//! that a Storyden admin client whose base URL is `http://HOST/zones/ZONE` works
//! unchanged.
//!
//! A thin translation over the engine: clients are registered, read and merged
//! ([`Engine::merge_client`](tenure::Engine::merge_client)) by the same rules as
//! tenure's own `/clients` (an owned client may only be allowed scopes its account
//! can grant; a change affects future issuance only). Storyden's client fields are
//! tenure's own names, except `id` and `client_id` (both the tenure id),
//! `account_id` (the owner; a built-in client has none) and `type`.
//!
//! - `PATCH` is a merge: absent fields stay, arrays are replaced whole. `type`,
//!   `id`, `client_id` and `account_id` cannot change: a body that gives them
//!   another value is refused (the same value is accepted). `null` is refused:
//!   Storyden's fields are not nullable.
//! - `client_secret_hash` is refused: tenure draws a confidential client's secret
//!   itself, answered once at creation as `client_secret`, and rotates it with
//!   `POST /clients/{id}/secret`.
//! - `DELETE` of a client answers 204, as Storyden's OpenAPI document says. The
//!   engine revokes every active grant of the client first, so its refresh
//!   chains stop, and, unlike Storyden's self-contained JWTs, its access tokens
//!   too; its pending device authorisations and codes can no longer be
//!   redeemed, their client being gone.
//! - A device authorisation's `id` is the hex SHA-256 digest of its device code
//!   (the engine's key for it), never the code; tenure adds its `state`. The
//!   engine keeps no times of approval, denial or redemption, so those fields are
//!   absent.
//! - A "refresh token" is a live refresh chain: an active grant that holds a
//!   refresh token. Its `id` is the grant's, `account_id` the granting user,
//!   `last_used_at` the last refresh, `expires_at` the grant's expiry (no token
//!   of the chain outlives it). Deleting one revokes the grant through the
//!   engine: the chain and every access token of the grant stop at once, since
//!   tenure's tokens are introspected rather than self-contained. Pages are
//!   numbered (`page`, from 1, 50 a page) as Storyden's are, so each is found by
//!   reading the zone's active grants from the first.
//!
//! Callers: administrators. Errors carry seed 004's body `{error, message,
//! suggested, metadata}`, with 400 where tenure's own routes answer 409 or 422.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tenure::device::display_user_code;
use tenure::time::format_rfc3339;
use tenure::{
    Actor, Client, ClientRegistration, ClientType, DeviceAuthorization, DeviceState, Grant,
    GrantStatus, GrantType, ListGrants, ScopePolicy, SortOrder,
};
use utoipa::ToSchema;

use crate::dialect::{all_clients, vendor_status};
use crate::extract::{BodyError, Params, QueryPairs, RawBody};
use crate::no_store::NoStore;
use crate::problem::{ApiError, ErrorBody};
use crate::state::AppState;

/// Refresh tokens a page (Storyden's page size).
const REFRESH_TOKEN_PAGE_SIZE: usize = 50;

/// The routes, to nest under `/zones/{zone_id}`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/oauth/clients", get(list).post(create))
        .route(
            "/admin/oauth/clients/{oauth_client_id}",
            get(read).patch(update).delete(delete),
        )
        .route(
            "/admin/oauth/device-authorizations",
            get(device_authorizations),
        )
        .route("/admin/oauth/refresh-tokens", get(refresh_tokens))
        .route(
            "/admin/oauth/refresh-tokens/{oauth_refresh_token_id}",
            axum::routing::delete(revoke_refresh_token),
        )
}

/// An error answered as Storyden does: seed 004's body, 400 for refused content.
#[derive(Debug)]
pub(crate) struct StorydenError(ApiError);

impl From<ApiError> for StorydenError {
    fn from(e: ApiError) -> Self {
        StorydenError(e)
    }
}

impl From<tenure::Error> for StorydenError {
    fn from(e: tenure::Error) -> Self {
        StorydenError(e.into())
    }
}

impl From<BodyError> for StorydenError {
    fn from(e: BodyError) -> Self {
        StorydenError(e.into())
    }
}

impl IntoResponse for StorydenError {
    fn into_response(self) -> Response {
        let (status, body, headers) = self.0.into_parts();
        (vendor_status(status), headers, Json(body)).into_response()
    }
}

/// An OAuth client as Storyden shows it (`OAuthClient`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorydenClient {
    /// The client's id.
    pub id: String,
    /// Creation.
    #[serde(rename = "createdAt")]
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Last change.
    #[serde(rename = "updatedAt")]
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The owning account; absent for a built-in client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The OAuth `client_id`: the same as `id`.
    pub client_id: String,
    /// Human-readable name.
    pub name: String,
    /// `public` or `confidential`.
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(public|confidential)$")]
    pub client_type: ClientType,
    /// `explicit` or `inherit`.
    #[schema(value_type = String, pattern = "^(explicit|inherit)$")]
    pub scope_policy: ScopePolicy,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Scopes under the explicit policy.
    pub allowed_scopes: Vec<String>,
    /// Grant types, as a token request names them.
    #[schema(value_type = Vec<String>)]
    pub allowed_grants: Vec<GrantType>,
}

impl From<&Client> for StorydenClient {
    fn from(c: &Client) -> Self {
        StorydenClient {
            id: c.id.clone(),
            created_at: format_rfc3339(&c.created_at),
            updated_at: format_rfc3339(&c.updated_at),
            account_id: c.owner_account_id.clone(),
            client_id: c.id.clone(),
            name: c.name.clone(),
            client_type: c.client_type,
            scope_policy: c.scope_policy,
            redirect_uris: c.redirect_uris.clone(),
            allowed_scopes: c.allowed_scopes.clone(),
            allowed_grants: c.allowed_grants.clone(),
        }
    }
}

/// A client just created, with a confidential client's secret this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorydenCreatedClient {
    /// The client.
    #[serde(flatten)]
    pub client: StorydenClient,
    /// A confidential client's secret, shown only here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Every client of the zone (`OAuthClientListResult`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorydenClientList {
    /// The clients, by id.
    pub clients: Vec<StorydenClient>,
}

/// A client to create (`OAuthClientCreateProps`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorydenCreateBody {
    /// The owning account; none for a built-in client.
    #[serde(default)]
    pub account_id: Option<String>,
    /// The OAuth `client_id`; generated when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Refused: tenure draws the secret itself.
    #[serde(default)]
    pub client_secret_hash: Option<String>,
    /// Human-readable name.
    pub name: String,
    /// `public` or `confidential`.
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(public|confidential)$")]
    pub client_type: ClientType,
    /// `explicit` (the default) or `inherit`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(explicit|inherit)$")]
    pub scope_policy: Option<ScopePolicy>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Scopes under the explicit policy.
    pub allowed_scopes: Vec<String>,
    /// Grant types: `authorization_code`, `refresh_token`, `client_credentials`,
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    #[schema(value_type = Vec<String>)]
    pub allowed_grants: Vec<GrantType>,
}

/// A merge update (`OAuthClientUpdateProps`): absent fields stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorydenUpdateBody {
    /// New name.
    pub name: Option<String>,
    /// `explicit` or `inherit`.
    #[schema(pattern = "^(explicit|inherit)$")]
    pub scope_policy: Option<String>,
    /// New redirect URIs, replacing the old.
    pub redirect_uris: Option<Vec<String>>,
    /// New scopes, replacing the old.
    pub allowed_scopes: Option<Vec<String>>,
    /// New grant types, replacing the old.
    pub allowed_grants: Option<Vec<String>>,
}

fn refused(field: &str, message: String, suggested: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_field",
        message,
        suggested,
        json!({"field": field}),
    )
}

fn no_secret_hash() -> ApiError {
    refused(
        "client_secret_hash",
        "tenure draws client secrets itself and takes no hash".to_owned(),
        "Leave client_secret_hash out: a confidential client's secret is answered once at creation, and rotated with POST /clients/{id}/secret.",
    )
}

/// List every OAuth client of the zone.
#[utoipa::path(
    get,
    operation_id = "storyden_admin_oauth_client_list",
    path = "/zones/{zone_id}/admin/oauth/clients",
    tag = "storyden",
    params(("zone_id" = String, Path, description = "The zone")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every client of the zone", body = StorydenClientList),
        (status = 400, description = "The zone id is invalid", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    params: Result<Params<String>, ApiError>,
    headers: HeaderMap,
) -> Result<Json<StorydenClientList>, StorydenError> {
    let Params(zone_id) = params?;
    state.require_admin(&headers, &zone_id).await?;
    let clients = all_clients(&state.engine, &zone_id).await?;
    Ok(Json(StorydenClientList {
        clients: clients.iter().map(StorydenClient::from).collect(),
    }))
}

/// Create an OAuth client; a confidential client's secret is in this answer only.
#[utoipa::path(
    post,
    operation_id = "storyden_admin_oauth_client_create",
    path = "/zones/{zone_id}/admin/oauth/clients",
    tag = "storyden",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = StorydenCreateBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client, with its secret once", body = StorydenCreatedClient,
            headers(("cache-control" = String, description = "no-store"), ("pragma" = String, description = "no-cache"))),
        (status = 400, description = "Malformed or invalid body, a scope the owner cannot grant, or a taken client_id", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    params: Result<Params<String>, ApiError>,
    headers: HeaderMap,
    body: Result<RawBody, BodyError>,
) -> Result<NoStore<Json<StorydenCreatedClient>>, StorydenError> {
    let Params(zone_id) = params?;
    state.require_admin(&headers, &zone_id).await?;
    let b: StorydenCreateBody = body?.json()?;
    if b.client_secret_hash.is_some() {
        return Err(no_secret_hash().into());
    }
    let registration = ClientRegistration {
        id: b.client_id,
        owner_account_id: b.account_id,
        client_type: b.client_type,
        scope_policy: b.scope_policy.unwrap_or(ScopePolicy::Explicit),
        redirect_uris: b.redirect_uris,
        allowed_scopes: b.allowed_scopes,
        allowed_grants: b.allowed_grants,
        access_token_ttl_seconds: state.config.default_access_token_ttl_seconds,
        refresh_token_ttl_seconds: state.config.default_refresh_token_ttl_seconds,
        ..ClientRegistration::new(b.name)
    };
    let registered = state.engine.register_client(&zone_id, registration).await?;
    Ok(NoStore(Json(StorydenCreatedClient {
        client: StorydenClient::from(&registered.client),
        client_secret: registered.secret.as_ref().map(|s| s.expose().to_owned()),
    })))
}

/// Read an OAuth client.
#[utoipa::path(
    get,
    operation_id = "storyden_admin_oauth_client_get",
    path = "/zones/{zone_id}/admin/oauth/clients/{oauth_client_id}",
    tag = "storyden",
    params(("zone_id" = String, Path, description = "The zone"), ("oauth_client_id" = String, Path, description = "The client")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client", body = StorydenClient),
        (status = 400, description = "An id is invalid", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such client in this zone", body = ErrorBody),
    )
)]
pub(crate) async fn read(
    State(state): State<AppState>,
    params: Result<Params<(String, String)>, ApiError>,
    headers: HeaderMap,
) -> Result<Json<StorydenClient>, StorydenError> {
    let Params((zone_id, id)) = params?;
    state.require_admin(&headers, &zone_id).await?;
    let client = state.engine.get_client(&zone_id, &id).await?;
    Ok(Json(StorydenClient::from(&client)))
}

/// Fields of an update that merge into the client, in tenure's names (the same).
const MERGED: [&str; 5] = [
    "name",
    "scope_policy",
    "redirect_uris",
    "allowed_scopes",
    "allowed_grants",
];

/// The engine's merge patch for a Storyden update of `client`: the mergeable
/// fields; the immutable ones checked unchanged and dropped.
fn merge_of(client: &Client, body: Map<String, Value>) -> Result<Value, ApiError> {
    let mut merge = Map::new();
    for (field, value) in body {
        if value.is_null() {
            return Err(refused(
                &field,
                format!("{field} must not be null"),
                "Leave a field out to keep it.",
            ));
        }
        if MERGED.contains(&field.as_str()) {
            merge.insert(field, value);
            continue;
        }
        let current = match field.as_str() {
            "type" => Some(json!(client.client_type)),
            "id" | "client_id" => Some(json!(client.id)),
            "account_id" => Some(json!(client.owner_account_id)),
            "client_secret_hash" => return Err(no_secret_hash()),
            _ => None,
        };
        match current {
            Some(current) if current == value => {}
            Some(_) => {
                return Err(refused(
                    &field,
                    format!("{field} cannot be changed"),
                    "Leave the field out, or give its current value; register a new client to change it.",
                ));
            }
            None => {
                return Err(refused(
                    &field,
                    format!("{field} is not a field of an OAuth client update"),
                    "Send only name, scope_policy, redirect_uris, allowed_scopes and allowed_grants.",
                ));
            }
        }
    }
    Ok(Value::Object(merge))
}

/// Update an OAuth client: absent fields stay, arrays are replaced whole; a change
/// affects future authorisation and refresh only.
#[utoipa::path(
    patch,
    operation_id = "storyden_admin_oauth_client_update",
    path = "/zones/{zone_id}/admin/oauth/clients/{oauth_client_id}",
    tag = "storyden",
    params(("zone_id" = String, Path, description = "The zone"), ("oauth_client_id" = String, Path, description = "The client")),
    request_body(content = StorydenUpdateBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client as changed", body = StorydenClient),
        (status = 400, description = "Malformed or invalid body, an immutable field changed, or a scope the owner cannot grant; nothing changed", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such client in this zone", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    params: Result<Params<(String, String)>, ApiError>,
    headers: HeaderMap,
    body: Result<RawBody, BodyError>,
) -> Result<Json<StorydenClient>, StorydenError> {
    let Params((zone_id, id)) = params?;
    state.require_admin(&headers, &zone_id).await?;
    let body: Value = body?.json()?;
    let Value::Object(body) = body else {
        return Err(ApiError::malformed("an update must be a JSON object").into());
    };
    let client = state.engine.get_client(&zone_id, &id).await?;
    let merge = merge_of(&client, body)?;
    let client = state.engine.merge_client(&zone_id, &id, &merge).await?;
    Ok(Json(StorydenClient::from(&client)))
}

/// Delete an OAuth client: every active grant made to it is revoked first, so its
/// refresh chains and access tokens stop.
#[utoipa::path(
    delete,
    operation_id = "storyden_admin_oauth_client_delete",
    path = "/zones/{zone_id}/admin/oauth/clients/{oauth_client_id}",
    tag = "storyden",
    params(("zone_id" = String, Path, description = "The zone"), ("oauth_client_id" = String, Path, description = "The client")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted, its grants revoked"),
        (status = 400, description = "An id is invalid, or the client changed concurrently", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such client in this zone", body = ErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    params: Result<Params<(String, String)>, ApiError>,
    headers: HeaderMap,
) -> Result<StatusCode, StorydenError> {
    let Params((zone_id, id)) = params?;
    state.require_admin(&headers, &zone_id).await?;
    state.engine.delete_client(&zone_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A device authorisation (`OAuthDeviceAuthorisationRecord`); never its device
/// code.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorydenDeviceAuthorisation {
    /// The hex SHA-256 digest of the device code: the record's key, not the code.
    pub id: String,
    /// Creation.
    #[serde(rename = "createdAt")]
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The client that asked.
    pub client_id: String,
    /// The user code, as shown to people (`XXXX-XXXX`).
    pub user_code: String,
    /// The scopes asked for, space-separated.
    pub scope: String,
    /// When the codes expire.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The polling interval.
    pub poll_interval_seconds: u32,
    /// The last poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_polled_at: Option<String>,
    /// The account that approved, once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by_account_id: Option<String>,
    /// tenure's state: `pending`, `claimed`, `approved`, `denied` or `redeemed`.
    #[schema(pattern = "^(pending|claimed|approved|denied|redeemed)$")]
    pub state: String,
}

impl From<&DeviceAuthorization> for StorydenDeviceAuthorisation {
    fn from(d: &DeviceAuthorization) -> Self {
        let approved = matches!(d.state, DeviceState::Approved | DeviceState::Redeemed);
        StorydenDeviceAuthorisation {
            id: d.device_code.to_hex(),
            created_at: format_rfc3339(&d.created_at),
            client_id: d.client_id.clone(),
            user_code: display_user_code(&d.user_code),
            scope: d.scopes.join(" "),
            expires_at: format_rfc3339(&d.expires_at),
            poll_interval_seconds: d.interval_seconds,
            last_polled_at: d.last_polled_at.as_ref().map(format_rfc3339),
            approved_by_account_id: d.user_id.clone().filter(|_| approved),
            state: d.state.to_string(),
        }
    }
}

/// Every device authorisation of the zone (`OAuthDeviceAuthorisationListResult`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorydenDeviceAuthorisationList {
    /// Pending and decided alike, until the sweeper removes expired ones.
    pub device_authorisations: Vec<StorydenDeviceAuthorisation>,
}

/// List every device authorisation of the zone, pending and decided.
#[utoipa::path(
    get,
    operation_id = "storyden_admin_oauth_device_authorisation_list",
    path = "/zones/{zone_id}/admin/oauth/device-authorizations",
    tag = "storyden",
    params(("zone_id" = String, Path, description = "The zone")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every device authorisation of the zone", body = StorydenDeviceAuthorisationList),
        (status = 400, description = "The zone id is invalid", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
    )
)]
pub(crate) async fn device_authorizations(
    State(state): State<AppState>,
    params: Result<Params<String>, ApiError>,
    headers: HeaderMap,
) -> Result<Json<StorydenDeviceAuthorisationList>, StorydenError> {
    let Params(zone_id) = params?;
    state.require_admin(&headers, &zone_id).await?;
    let mut records = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state
            .engine
            .list_device_authorizations(
                &zone_id,
                after.as_deref(),
                tenure::validate::MAX_PAGE_LIMIT,
            )
            .await?;
        records.extend(page.items.iter().map(StorydenDeviceAuthorisation::from));
        match page.after_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    Ok(Json(StorydenDeviceAuthorisationList {
        device_authorisations: records,
    }))
}

/// A live refresh chain, as Storyden shows a refresh token (`OAuthRefreshToken`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorydenRefreshToken {
    /// The grant's id.
    pub id: String,
    /// When the grant was made.
    #[serde(rename = "createdAt")]
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The client's id.
    pub oauth_client_id: String,
    /// The client's OAuth `client_id`: the same.
    pub client_id: String,
    /// The client's name; its id if the client is gone.
    pub client_name: String,
    /// The granting user.
    pub account_id: String,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// The grant's expiry, which no token of the chain outlives.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The last refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

/// A numbered page of live refresh chains (`OAuthRefreshTokenListResult`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorydenRefreshTokenList {
    /// Chains a page: 50.
    pub page_size: u64,
    /// Live chains in the zone.
    pub results: u64,
    /// Pages in all; at least 1.
    pub total_pages: u64,
    /// This page's number.
    pub current_page: u64,
    /// The next page's number, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<u64>,
    /// The chains, oldest grant first.
    pub tokens: Vec<StorydenRefreshToken>,
}

/// Whether `grant` holds a live refresh chain.
fn holds_refresh_chain(grant: &Grant) -> bool {
    grant.status == GrantStatus::Active && grant.refresh_token_set
}

/// List the zone's live refresh chains, 50 a page.
#[utoipa::path(
    get,
    operation_id = "storyden_admin_oauth_refresh_token_list",
    path = "/zones/{zone_id}/admin/oauth/refresh-tokens",
    tag = "storyden",
    params(
        ("zone_id" = String, Path, description = "The zone"),
        ("page" = Option<String>, Query, description = "The page number, from 1", pattern = "^[1-9][0-9]{0,8}$"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of live refresh chains", body = StorydenRefreshTokenList),
        (status = 400, description = "page is not a number from 1, or the zone id is invalid", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
    )
)]
pub(crate) async fn refresh_tokens(
    State(state): State<AppState>,
    params: Result<Params<String>, ApiError>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Json<StorydenRefreshTokenList>, StorydenError> {
    let Params(zone_id) = params?;
    state.require_admin(&headers, &zone_id).await?;
    let page = match query.one("page")? {
        None => 1,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if n >= 1 && p.bytes().all(|b| b.is_ascii_digit()) => u64::from(n),
            _ => {
                return Err(
                    ApiError::invalid_parameter("page", "expected a whole number from 1").into(),
                );
            }
        },
    };
    let size = REFRESH_TOKEN_PAGE_SIZE as u64;
    let first = (page - 1).saturating_mul(size);
    let mut results: u64 = 0;
    let mut chains = Vec::new();
    let mut request = ListGrants {
        status: Some(GrantStatus::Active),
        order: SortOrder::Ascending,
        limit: Some(tenure::validate::MAX_PAGE_LIMIT),
        ..ListGrants::default()
    };
    loop {
        let grants = state.engine.list_grants(&zone_id, &request).await?;
        for grant in grants.items.into_iter().filter(holds_refresh_chain) {
            if (first..first + size).contains(&results) {
                chains.push(grant);
            }
            results += 1;
        }
        match grants.after_cursor {
            Some(cursor) => request.after = Some(cursor),
            None => break,
        }
    }
    let mut names: Vec<(String, String)> = Vec::new();
    let mut tokens = Vec::with_capacity(chains.len());
    for grant in chains {
        let known = names.iter().find(|(id, _)| *id == grant.client_id);
        let client_name = match known {
            Some((_, name)) => name.clone(),
            None => {
                let name = match state.engine.get_client(&zone_id, &grant.client_id).await {
                    Ok(client) => client.name,
                    Err(tenure::Error::NotFound { .. }) => grant.client_id.clone(),
                    Err(e) => return Err(e.into()),
                };
                names.push((grant.client_id.clone(), name.clone()));
                name
            }
        };
        tokens.push(StorydenRefreshToken {
            id: grant.id,
            created_at: format_rfc3339(&grant.created_at),
            oauth_client_id: grant.client_id.clone(),
            client_id: grant.client_id,
            client_name,
            account_id: grant.user_id,
            scope: grant.scopes.join(" "),
            expires_at: format_rfc3339(&grant.expires_at),
            last_used_at: grant.refreshed_at.as_ref().map(format_rfc3339),
        });
    }
    let total_pages = results.div_ceil(size).max(1);
    Ok(Json(StorydenRefreshTokenList {
        page_size: size,
        results,
        total_pages,
        current_page: page,
        next_page: (page < total_pages).then_some(page + 1),
        tokens,
    }))
}

/// Revoke a live refresh chain: its grant is revoked, and with it every token of
/// the grant.
#[utoipa::path(
    delete,
    operation_id = "storyden_admin_oauth_refresh_token_delete",
    path = "/zones/{zone_id}/admin/oauth/refresh-tokens/{oauth_refresh_token_id}",
    tag = "storyden",
    params(("zone_id" = String, Path, description = "The zone"), ("oauth_refresh_token_id" = String, Path, description = "The grant holding the chain")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "An id is invalid", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No live refresh chain by this id in this zone", body = ErrorBody),
    )
)]
pub(crate) async fn revoke_refresh_token(
    State(state): State<AppState>,
    params: Result<Params<(String, String)>, ApiError>,
    headers: HeaderMap,
) -> Result<StatusCode, StorydenError> {
    let Params((zone_id, id)) = params?;
    state.require_admin(&headers, &zone_id).await?;
    let grant = state.engine.get_grant(&zone_id, &id).await?;
    if !holds_refresh_chain(&grant) {
        return Err(ApiError::not_found(format!("no live refresh token {id}")).into());
    }
    state
        .engine
        .revoke_grant(&zone_id, &id, Actor::Admin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
