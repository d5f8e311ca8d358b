//! Authorization codes (RFC 6749 §4.1, RFC 7636): the host, having signed the user
//! in and asked for consent on its own authorization endpoint, has tenure issue
//! the code (`POST /authorization-codes`); the client redeems it at the token
//! endpoint.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tenure::{CodeRequest, Issued};
use utoipa::ToSchema;

use crate::extract::{Params, RawBody};
use crate::oauth::Form;
use crate::problem::{ApiError, ErrorBody, OAuthError};
use crate::state::AppState;

/// What the user approved on the host's consent screen.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCodeBody {
    /// The client of the authorization request.
    pub client_id: String,
    /// The user who approved.
    pub user_id: String,
    /// The resource the grant will be for.
    pub resource_id: String,
    /// The provider; `default` when absent.
    #[serde(default)]
    pub provider_id: Option<String>,
    /// The organization; the client's when absent.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// The scopes approved.
    pub scopes: Vec<String>,
    /// The authorization request's `redirect_uri`: exactly one of the client's.
    pub redirect_uri: String,
    /// The authorization request's `code_challenge` (RFC 7636 §4.3): required of
    /// public clients.
    #[serde(default)]
    pub code_challenge: Option<String>,
    /// Its `code_challenge_method`: only `S256`.
    #[serde(default)]
    #[schema(pattern = "^S256$")]
    pub code_challenge_method: Option<String>,
}

/// An issued authorization code, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedCodeBody {
    /// The code, for the host's redirect back to the client.
    pub code: String,
    /// Seconds until it can no longer be redeemed.
    pub expires_in: i64,
}

/// Issue an authorization code for what a user approved (for the host's
/// authorization endpoint).
#[utoipa::path(
    post,
    operation_id = "create_authorization_code",
    path = "/zones/{zone_id}/authorization-codes",
    tag = "oauth",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = CreateCodeBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The code, once", body = IssuedCodeBody,
            headers(("cache-control" = String, description = "no-store"))),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "Unknown client", body = ErrorBody),
        (status = 409, description = "The client is disabled", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid, the redirect URI is not the client's, the challenge is missing or not S256, the scopes or the grant type are not allowed", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Response, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let b: CreateCodeBody = body.json()?;
    let request = CodeRequest {
        client_id: b.client_id,
        user_id: b.user_id,
        resource_id: b.resource_id,
        provider_id: b.provider_id.unwrap_or_else(|| "default".to_owned()),
        organization_id: b.organization_id,
        scopes: b.scopes,
        redirect_uri: b.redirect_uri,
        code_challenge: b.code_challenge,
        code_challenge_method: b.code_challenge_method,
    };
    let issued = state.engine.issue_code(&zone_id, request).await?;
    let body = IssuedCodeBody {
        code: issued.code.expose().to_owned(),
        expires_in: issued.expires_in,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The token endpoint's `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636
/// §4.5) for `client_id`, already authenticated.
pub(crate) async fn redeem(
    state: &AppState,
    zone_id: &str,
    client_id: &str,
    form: &Form,
) -> Result<Issued, OAuthError> {
    let code = form.require("code")?;
    Ok(state
        .engine
        .redeem_code(
            zone_id,
            client_id,
            code,
            form.get("redirect_uri"),
            form.get("code_verifier"),
        )
        .await?)
}
