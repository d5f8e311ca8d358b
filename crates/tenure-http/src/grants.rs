//! `/zones/{zone_id}/delegated-grants`: the seed's grant API (000, 001).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tenure::time::format_rfc3339;
use tenure::{Actor, AuthorizeRequest, Grant, GrantStatus, ListGrants, SortOrder, Transition};
use utoipa::{IntoParams, ToSchema};

use crate::extract::{Params, QueryPairs, RawBody};
use crate::list_query;
use crate::no_store::NoStore;
use crate::problem::{ApiError, ErrorBody};
use crate::state::AppState;

/// A grant as the seed returns it, plus `client_id`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantBody {
    /// Unique identifier of the delegated grant.
    pub id: String,
    /// Zone this grant belongs to.
    pub zone_id: String,
    /// Organization that owns this grant.
    pub organization_id: String,
    /// Reference to the user granting permission.
    pub user_id: String,
    /// ID of resource receiving grant.
    pub resource_id: String,
    /// ID of the provider that issued this grant.
    pub provider_id: String,
    /// The client the grant was made to.
    pub client_id: String,
    /// Granted OAuth scopes.
    pub scopes: Vec<String>,
    /// `active`, `expired` or `revoked`.
    #[schema(value_type = String, pattern = "^(active|expired|revoked)$")]
    pub status: GrantStatus,
    /// Deprecated: whether the status is active.
    pub active: bool,
    /// Entity creation timestamp.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Entity update timestamp.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Date when grant expires.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// When the grant's tokens were last refreshed; omitted if never.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub refreshed_at: Option<String>,
    /// Whether a refresh token is stored for this grant.
    pub refresh_token_set: bool,
}

impl From<&Grant> for GrantBody {
    fn from(g: &Grant) -> Self {
        GrantBody {
            id: g.id.clone(),
            zone_id: g.zone_id.clone(),
            organization_id: g.organization_id.clone(),
            user_id: g.user_id.clone(),
            resource_id: g.resource_id.clone(),
            provider_id: g.provider_id.clone(),
            client_id: g.client_id.clone(),
            scopes: g.scopes.clone(),
            status: g.status,
            active: g.is_active(),
            created_at: format_rfc3339(&g.created_at),
            updated_at: format_rfc3339(&g.updated_at),
            expires_at: format_rfc3339(&g.expires_at),
            refreshed_at: g.refreshed_at.as_ref().map(format_rfc3339),
            refresh_token_set: g.refresh_token_set,
        }
    }
}

/// Cursors and counts of a listing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Pagination {
    /// Present when more items follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_cursor: Option<String>,
    /// Present when items precede.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_cursor: Option<String>,
    /// Present when asked for with `expand[]=total_count`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
}

/// A page of grants.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantList {
    /// The grants.
    pub items: Vec<GrantBody>,
    /// Cursors and counts.
    pub pagination: Pagination,
}

/// The listing's query parameters (seed 001).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListQuery {
    /// Filter by user ID.
    user_id: Option<String>,
    /// Filter by resource ID.
    resource_id: Option<String>,
    /// Filter by client ID.
    client_id: Option<String>,
    /// `active`, `expired` or `revoked`.
    #[param(pattern = "^(active|expired|revoked)$")]
    status: Option<String>,
    /// `true`: only active grants (the one value seed 001 documents; use `status`
    /// for the others).
    #[param(pattern = "^true$")]
    active: Option<String>,
    /// Cursor for forward pagination.
    #[param(min_length = 1, max_length = 255)]
    after: Option<String>,
    /// Cursor for backward pagination.
    #[param(min_length = 1, max_length = 255)]
    before: Option<String>,
    /// Maximum number of items to return, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `total_count` to count every matching grant.
    #[param(rename = "expand[]")]
    expand: Option<Vec<String>>,
    /// `created_at` or `-created_at` (the default).
    #[param(pattern = "^-?created_at$")]
    sort: Option<String>,
}

/// Parses the query string of `GET /delegated-grants` (without the `?`) as the
/// route does: a listing request, or the 4xx answer the route would give.
pub fn parse_list_query(query: &str) -> Result<ListGrants, ApiError> {
    parse_list(&QueryPairs::parse(query))
}

/// The query parameters of `GET /delegated-grants` that the engine checks too.
const LIST_PARAMETERS: &[&str] = &[
    "user_id",
    "resource_id",
    "client_id",
    "after",
    "before",
    "limit",
];

fn parse_list(q: &QueryPairs) -> Result<ListGrants, ApiError> {
    use GrantStatus::{Active, Expired, Revoked};
    let mut request = ListGrants {
        user_id: q.one("user_id")?.map(str::to_owned),
        resource_id: q.one("resource_id")?.map(str::to_owned),
        client_id: q.one("client_id")?.map(str::to_owned),
        after: q.one("after")?.map(str::to_owned),
        before: q.one("before")?.map(str::to_owned),
        status: list_query::one_of(
            q,
            "status",
            &[
                ("active", Active),
                ("expired", Expired),
                ("revoked", Revoked),
            ],
        )?,
        // Seed 001 documents `active` as the one value "true"; `false` is not a
        // filter for inactive grants there (use `status`), so it is refused.
        active: list_query::one_of(q, "active", &[("true", true)])?.unwrap_or(false),
        limit: list_query::limit(q)?,
        order: list_query::one_of(
            q,
            "sort",
            &[
                ("-created_at", SortOrder::Descending),
                ("created_at", SortOrder::Ascending),
            ],
        )?
        .unwrap_or(SortOrder::Descending),
        ..ListGrants::default()
    };
    for value in q.all("expand[]").chain(q.all("expand")) {
        match value {
            "total_count" => request.total_count = true,
            _ => {
                return Err(ApiError::invalid_parameter(
                    "expand[]",
                    "only total_count can be expanded",
                ));
            }
        }
    }
    Ok(request)
}

/// List delegated grants.
#[utoipa::path(
    get,
    operation_id = "list_grants",
    path = "/zones/{zone_id}/delegated-grants",
    tag = "delegated-grants",
    params(("zone_id" = String, Path, description = "The zone"), ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of grants", body = GrantList),
        (status = 400, description = "A query parameter is invalid (`invalid_parameter`, naming it), or a malformed request or cursor", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 422, description = "The zone id is invalid", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Json<GrantList>, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let request = parse_list(&query)?;
    let page = state
        .engine
        .list_grants(&zone_id, &request)
        .await
        .map_err(|e| list_query::refused(e, LIST_PARAMETERS))?;
    Ok(Json(GrantList {
        items: page.items.iter().map(GrantBody::from).collect(),
        pagination: Pagination {
            after_cursor: page.after_cursor,
            before_cursor: page.before_cursor,
            total_count: page.total_count,
        },
    }))
}

/// A grant to create, with its first tokens.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrantBody {
    /// The client the grant is made to.
    pub client_id: String,
    /// The user granting.
    pub user_id: String,
    /// The resource.
    pub resource_id: String,
    /// The provider; `default` when absent.
    #[serde(default)]
    pub provider_id: Option<String>,
    /// The organization; the client's when absent.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// The scopes.
    pub scopes: Vec<String>,
    /// The grant's expiry, RFC 3339; the client's default when absent.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// A created grant and its tokens (RFC 6749 §5.1 fields beside the grant).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedGrant {
    /// The grant.
    pub grant: GrantBody,
    /// The access token, shown once.
    pub access_token: String,
    /// The refresh token, shown once, when the client gets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The access token's scopes, space-separated.
    pub scope: String,
}

pub(crate) fn parse_time(field: &str, value: &str) -> Result<tenure::Timestamp, ApiError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| ApiError::invalid_field(field, format!("not an RFC 3339 time: {e}")))
}

/// Create a delegated grant (for hosts and tests).
#[utoipa::path(
    post,
    operation_id = "create_grant",
    path = "/zones/{zone_id}/delegated-grants",
    tag = "delegated-grants",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = CreateGrantBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The grant and its tokens", body = CreatedGrant,
            headers(("cache-control" = String, description = "no-store"), ("pragma" = String, description = "no-cache"))),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "Unknown client", body = ErrorBody),
        (status = 409, description = "The client is disabled", body = ErrorBody),
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
) -> Result<NoStore<(StatusCode, Json<CreatedGrant>)>, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let body: CreateGrantBody = body.json()?;
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|t| parse_time("expires_at", t))
        .transpose()?;
    let request = AuthorizeRequest {
        provider_id: body.provider_id.unwrap_or_else(|| "default".to_owned()),
        organization_id: body.organization_id,
        expires_at,
        ..AuthorizeRequest::new(body.client_id, body.user_id, body.resource_id, body.scopes)
    };
    let issued = state.engine.authorize(&zone_id, request).await?;
    let created = CreatedGrant {
        grant: GrantBody::from(&issued.grant),
        access_token: issued.access_token.expose().to_owned(),
        refresh_token: issued.refresh_token.as_ref().map(|t| t.expose().to_owned()),
        token_type: "Bearer".to_owned(),
        expires_in: issued.expires_in(),
        scope: issued.scopes.join(" "),
    };
    Ok(NoStore((StatusCode::CREATED, Json(created))))
}

/// Get a delegated grant.
#[utoipa::path(
    get,
    operation_id = "get_grant",
    path = "/zones/{zone_id}/delegated-grants/{id}",
    tag = "delegated-grants",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The grant")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The grant", body = GrantBody),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such grant in this zone", body = ErrorBody),
        (status = 422, description = "An id is invalid", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Params((zone_id, id)): Params<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<GrantBody>, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let grant = state.engine.get_grant(&zone_id, &id).await?;
    Ok(Json(GrantBody::from(&grant)))
}

/// The only change the seed allows: `{"status": "revoked"}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGrantBody {
    /// Must be `revoked`.
    #[schema(pattern = "^revoked$")]
    pub status: String,
}

/// Revoke a delegated grant.
#[utoipa::path(
    patch,
    operation_id = "revoke_grant",
    path = "/zones/{zone_id}/delegated-grants/{id}",
    tag = "delegated-grants",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The grant")),
    request_body(content = UpdateGrantBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The grant, revoked (also when it already was)", body = GrantBody),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such grant in this zone", body = ErrorBody),
        (status = 409, description = "The grant has expired", body = ErrorBody),
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
) -> Result<Json<GrantBody>, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let body: UpdateGrantBody = body.json()?;
    if body.status != "revoked" {
        return Err(ApiError::invalid_field(
            "status",
            "the only change allowed is to revoked",
        ));
    }
    let grant = state
        .engine
        .revoke_grant(&zone_id, &id, Actor::Admin)
        .await?;
    Ok(Json(GrantBody::from(&grant)))
}

/// Delete a delegated grant and every trace of it.
#[utoipa::path(
    delete,
    operation_id = "delete_grant",
    path = "/zones/{zone_id}/delegated-grants/{id}",
    tag = "delegated-grants",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The grant")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such grant in this zone", body = ErrorBody),
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
    state.engine.delete_grant(&zone_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who caused a change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActorBody {
    /// `system`, `admin`, `user` or `client`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The user's or client's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// One entry of a grant's history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransitionBody {
    /// The status before; null at creation.
    pub from: Option<String>,
    /// The status after.
    pub to: String,
    /// `created`, `refreshed`, `revoked`, `refresh_token_revoked`, `reuse_detected`,
    /// `expired`, `code_reused` (its authorization code was presented again) or
    /// `client_disabled` (a client-credentials grant whose client was disabled or lost
    /// the grant type).
    pub reason: String,
    /// Who.
    pub actor: ActorBody,
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
}

impl From<&Transition> for TransitionBody {
    fn from(t: &Transition) -> Self {
        let (kind, id) = match &t.actor {
            Actor::System => ("system", None),
            Actor::Admin => ("admin", None),
            Actor::User { id } => ("user", Some(id.clone())),
            Actor::Client { id } => ("client", Some(id.clone())),
            _ => ("other", None),
        };
        TransitionBody {
            from: t.from.map(|s| s.as_str().to_owned()),
            to: t.to.as_str().to_owned(),
            reason: serde_json::to_value(t.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            actor: ActorBody {
                kind: kind.to_owned(),
                id,
            },
            at: format_rfc3339(&t.at),
        }
    }
}

/// A grant's history, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct History {
    /// The transitions.
    pub items: Vec<TransitionBody>,
}

/// A grant's transitions: why it is in the state it is in.
#[utoipa::path(
    get,
    operation_id = "grant_history",
    path = "/zones/{zone_id}/delegated-grants/{id}/history",
    tag = "delegated-grants",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The grant")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The transitions, oldest first", body = History),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such grant in this zone", body = ErrorBody),
        (status = 422, description = "An id is invalid", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    Params((zone_id, id)): Params<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<History>, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let history = state.engine.grant_history(&zone_id, &id).await?;
    Ok(Json(History {
        items: history.iter().map(TransitionBody::from).collect(),
    }))
}
