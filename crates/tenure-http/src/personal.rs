//! Personal grants (seed 002), for the user whose access token is presented.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tenure::time::format_rfc3339;
use tenure::{NewPersonalGrant, PersonalGrant, PersonalGrantUpdate};
use utoipa::ToSchema;

use crate::extract::{Params, RawBody};
use crate::grants::parse_time;
use crate::problem::{ApiError, ErrorBody};
use crate::state::AppState;

/// The header carrying the cursor of the next page of `POST /profile/auth-grants`.
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

/// A personal grant as seed 002 shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthGrantBody {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `auth-grant:…`, 10 to 100 characters.
    #[schema(min_length = 10, max_length = 100, pattern = "^auth-grant:.*")]
    pub challenge: String,
    /// `active`, `expired` or `revoked`.
    #[schema(pattern = "^(active|expired|revoked)$")]
    pub status: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Creation time.
    #[serde(rename = "createdAt")]
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Expiry; null never expires.
    #[serde(rename = "expiresAt")]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

impl From<&PersonalGrant> for AuthGrantBody {
    fn from(g: &PersonalGrant) -> Self {
        AuthGrantBody {
            id: g.id.clone(),
            name: g.name.clone(),
            description: g.description.clone(),
            challenge: g.challenge.clone(),
            status: g.status.as_str().to_owned(),
            scope: g.scope(),
            created_at: format_rfc3339(&g.created_at),
            expires_at: g.expires_at.as_ref().map(format_rfc3339),
        }
    }
}

/// A personal grant to create.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAuthGrantBody {
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// Expiry, RFC 3339; null or absent: never.
    #[serde(default, rename = "expiresAt")]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// Add a personal grant to the caller's profile; answers its id.
#[utoipa::path(
    post,
    operation_id = "create_auth_grant",
    path = "/zones/{zone_id}/auth-grant/create",
    tag = "auth-grants",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = CreateAuthGrantBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new grant's id", body = String),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No live access token of this zone", body = ErrorBody),
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
) -> Result<Json<String>, ApiError> {
    let user_id = state.require_user(&headers, &zone_id).await?;
    let b: CreateAuthGrantBody = body.json()?;
    let expires_at = b
        .expires_at
        .as_deref()
        .map(|t| parse_time("expiresAt", t))
        .transpose()?;
    let grant = state
        .engine
        .create_personal_grant(
            &zone_id,
            &user_id,
            NewPersonalGrant {
                name: b.name,
                description: b.description,
                scope: b.scope,
                expires_at,
            },
        )
        .await?;
    Ok(Json(grant.id))
}

/// Get one of the caller's personal grants.
#[utoipa::path(
    get,
    operation_id = "get_auth_grant",
    path = "/zones/{zone_id}/auth-grant/{id}",
    tag = "auth-grants",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The grant")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The grant", body = AuthGrantBody),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No live access token of this zone", body = ErrorBody),
        (status = 404, description = "Not one of the caller's grants", body = ErrorBody),
        (status = 422, description = "An id is invalid", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Params((zone_id, id)): Params<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<AuthGrantBody>, ApiError> {
    let user_id = state.require_user(&headers, &zone_id).await?;
    let grant = state
        .engine
        .get_personal_grant(&zone_id, &user_id, &id)
        .await?;
    Ok(Json(AuthGrantBody::from(&grant)))
}

/// Delete one of the caller's personal grants: the record is gone.
#[utoipa::path(
    delete,
    operation_id = "delete_auth_grant",
    path = "/zones/{zone_id}/auth-grant/{id}",
    tag = "auth-grants",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The grant")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted", body = bool),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No live access token of this zone", body = ErrorBody),
        (status = 404, description = "Not one of the caller's grants", body = ErrorBody),
        (status = 409, description = "Changed concurrently; retry", body = ErrorBody),
        (status = 422, description = "An id is invalid", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Params((zone_id, id)): Params<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<bool>, ApiError> {
    let user_id = state.require_user(&headers, &zone_id).await?;
    state
        .engine
        .delete_personal_grant(&zone_id, &user_id, &id)
        .await?;
    Ok(Json(true))
}

/// A page request of the caller's personal grants.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAuthGrantsBody {
    /// 1 to 100; 50 by default.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// The `x-next-cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// The caller's personal grants, newest first. The next page's cursor comes in the
/// `x-next-cursor` header.
#[utoipa::path(
    post,
    operation_id = "list_auth_grants",
    path = "/zones/{zone_id}/profile/auth-grants",
    tag = "auth-grants",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = ListAuthGrantsBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page, newest first", body = Vec<AuthGrantBody>,
            headers(("x-next-cursor" = String, description = "Present when more follow"))),
        (status = 400, description = "Malformed body or cursor", body = ErrorBody),
        (status = 401, description = "No live access token of this zone", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Response, ApiError> {
    let user_id = state.require_user(&headers, &zone_id).await?;
    let b: ListAuthGrantsBody = if body.bytes.is_empty() {
        ListAuthGrantsBody::default()
    } else {
        body.json()?
    };
    let limit = match b.limit {
        Some(l) => Some(
            usize::try_from(l)
                .map_err(|_| ApiError::invalid_field("limit", "must be between 1 and 100"))?,
        ),
        None => None,
    };
    let page = state
        .engine
        .list_personal_grants(&zone_id, &user_id, b.cursor.as_deref(), limit)
        .await?;
    let items: Vec<AuthGrantBody> = page.items.iter().map(AuthGrantBody::from).collect();
    let mut response = Json(items).into_response();
    if let Some(cursor) = page
        .next_cursor
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response.headers_mut().insert(NEXT_CURSOR_HEADER, cursor);
    }
    Ok(response)
}

/// New name or description.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAuthGrantBody {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
}

/// Change the name or description of one of the caller's personal grants.
#[utoipa::path(
    post,
    operation_id = "update_auth_grant",
    path = "/zones/{zone_id}/auth-grant/update/{id}",
    tag = "auth-grants",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The grant")),
    request_body(content = UpdateAuthGrantBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = bool),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No live access token of this zone", body = ErrorBody),
        (status = 404, description = "Not one of the caller's grants", body = ErrorBody),
        (status = 409, description = "Changed concurrently; retry", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Params((zone_id, id)): Params<(String, String)>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<bool>, ApiError> {
    let user_id = state.require_user(&headers, &zone_id).await?;
    let b: UpdateAuthGrantBody = body.json()?;
    let update = PersonalGrantUpdate {
        name: b.name,
        description: b.description.map(Some),
    };
    state
        .engine
        .update_personal_grant(&zone_id, &user_id, &id, &update)
        .await?;
    Ok(Json(true))
}

/// Revoke one of the caller's personal grants: the record stays, revoked.
#[utoipa::path(
    post,
    operation_id = "revoke_auth_grant",
    path = "/zones/{zone_id}/auth-grant/{id}/revoke",
    tag = "auth-grants",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The grant")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked (also when it already was)", body = bool),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No live access token of this zone", body = ErrorBody),
        (status = 404, description = "Not one of the caller's grants", body = ErrorBody),
        (status = 409, description = "The grant has expired", body = ErrorBody),
        (status = 422, description = "An id is invalid", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Params((zone_id, id)): Params<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<bool>, ApiError> {
    let user_id = state.require_user(&headers, &zone_id).await?;
    state
        .engine
        .revoke_personal_grant(&zone_id, &user_id, &id)
        .await?;
    Ok(Json(true))
}
