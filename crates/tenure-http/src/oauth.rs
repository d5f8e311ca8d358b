//! The OAuth endpoints: token (RFC 6749 §4.1.3, §4.4, §6, RFC 8628 §3.4),
//! introspection (RFC 7662), revocation (RFC 7009), device authorization (RFC 8628
//! §3.1), and the user's side of the device flow.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tenure::{
    DevicePoll, DeviceRequest, GrantType, Introspection, Issued, RefreshRequest, Secret, TokenKind,
};
use utoipa::ToSchema;

use crate::client_auth::{authenticate, client_credentials, require_client};
use crate::extract::{BodyKind, Params, RawBody, bearer, parse_json};
use crate::no_store::NoStore;
use crate::problem::{ApiError, ErrorBody, OAuthError, OAuthErrorBody};
use crate::state::AppState;
use crate::{codes, machine};

/// A form: each parameter at most once (RFC 6749 §3.2), except `resource`, which
/// RFC 8707 §2 lets a client repeat.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    fn read(body: &RawBody) -> Result<Form, OAuthError> {
        let pairs = body.form().ok_or_else(OAuthError::unsupported_media_type)?;
        for (i, (key, _)) in pairs.iter().enumerate() {
            if key != "resource" && pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(OAuthError::invalid_request(format!(
                    "{key} is given more than once"
                )));
            }
        }
        Ok(Form(pairs))
    }

    /// The value of `key`; a parameter sent without a value is treated as omitted
    /// (RFC 6749 §3.1, §3.2).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn require(&self, key: &str) -> Result<&str, OAuthError> {
        self.get(key)
            .ok_or_else(|| OAuthError::invalid_request(format!("{key} is required")))
    }

    /// The one `resource` (RFC 8707 §2). RFC 8707 lets a client name several, so
    /// several are not a malformed request; but a token here has a single
    /// audience, so they are `invalid_target`, RFC 8707's error for resources the
    /// server does not accept.
    pub(crate) fn resource(&self) -> Result<Option<&str>, OAuthError> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, v)| k == "resource" && !v.is_empty())
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(OAuthError::new(
                "invalid_target",
                "name one resource: a token here has a single audience",
            ));
        }
        Ok(first)
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The rotated refresh token, when one was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The access token's scopes, space-separated.
    pub scope: String,
}

pub(crate) fn token_response(issued: &Issued) -> Response {
    let body = TokenResponse {
        access_token: issued.access_token.expose().to_owned(),
        token_type: "Bearer".to_owned(),
        expires_in: issued.expires_in(),
        refresh_token: issued.refresh_token.as_ref().map(|t| t.expose().to_owned()),
        scope: issued.scopes.join(" "),
    };
    NoStore(Json(body)).into_response()
}

/// The grant types the token endpoint takes; the discovery document lists these.
pub(crate) const TOKEN_GRANT_TYPES: [GrantType; 4] = [
    GrantType::AuthorizationCode,
    GrantType::RefreshToken,
    GrantType::ClientCredentials,
    GrantType::DeviceCode,
];

/// The token endpoint's form, for the API document.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenForm {
    /// `authorization_code`, `refresh_token`, `client_credentials` or
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    grant_type: String,
    /// The authorization code (authorization-code grant).
    code: Option<String>,
    /// The redirect URI of the authorization request, exactly (authorization-code
    /// grant).
    redirect_uri: Option<String>,
    /// The PKCE code verifier (authorization-code grant, RFC 7636 §4.5): required
    /// when the authorization request sent a challenge.
    code_verifier: Option<String>,
    /// The refresh token (refresh grant).
    refresh_token: Option<String>,
    /// The device code (device-code grant).
    device_code: Option<String>,
    /// The client, for public clients and `client_secret_post`; with Basic, the
    /// same id as the header's if given.
    client_id: Option<String>,
    /// The secret, for `client_secret_post`; never together with Basic.
    client_secret: Option<String>,
    /// Space-separated scopes: to narrow to (refresh), or to ask for (client
    /// credentials; all the client may have when absent).
    scope: Option<String>,
    /// The resource the token is for, an absolute URI without a fragment (client
    /// credentials, RFC 8707); the client itself when absent. One only: several are
    /// `invalid_target`.
    resource: Option<String>,
}

/// The token endpoint: the authorization-code grant (with PKCE), refresh (with
/// rotation), client credentials, and the device-code grant.
#[utoipa::path(
    post,
    operation_id = "token",
    path = "/zones/{zone_id}/oauth/token",
    tag = "oauth",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "New tokens", body = TokenResponse,
            headers(("cache-control" = String, description = "no-store"), ("pragma" = String, description = "no-cache"))),
        (status = 400, description = "RFC 6749 §5.2 error", body = OAuthErrorBody),
        (status = 401, description = "Client authentication failed", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not a form", body = OAuthErrorBody),
        (status = 429, description = "Too many attempts", body = OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable: concurrent changes outlasted the retries, or the store is unavailable", body = OAuthErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Response, OAuthError> {
    let form = Form::read(&body)?;
    let grant_type = form.require("grant_type")?;
    let Some(grant) = TOKEN_GRANT_TYPES
        .into_iter()
        .find(|g| g.as_str() == grant_type)
    else {
        return Err(OAuthError::new(
            "unsupported_grant_type",
            format!("{grant_type:?} is not supported here"),
        ));
    };
    let credentials = require_client(&headers, &form)?;
    let client = authenticate(&state, &zone_id, &credentials).await?;
    let issued = match grant {
        GrantType::AuthorizationCode => codes::redeem(&state, &zone_id, &client.id, &form).await?,
        GrantType::ClientCredentials => machine::issue(&state, &zone_id, &client.id, &form).await?,
        GrantType::RefreshToken => {
            let refresh_token = form.require("refresh_token")?;
            let mut request =
                RefreshRequest::new(client.id.clone(), &Secret::from_presented(refresh_token));
            if let Some(scope) = form.get("scope") {
                request.scopes = Some(scope.split(' ').map(str::to_owned).collect());
            }
            state.engine.refresh(&zone_id, request).await?
        }
        GrantType::DeviceCode => {
            let device_code = form.require("device_code")?;
            match state
                .engine
                .poll_device(&zone_id, &client.id, device_code)
                .await?
            {
                DevicePoll::Issued(issued) => *issued,
                DevicePoll::Pending => {
                    return Err(OAuthError::new(
                        "authorization_pending",
                        "the user has not decided yet",
                    ));
                }
                DevicePoll::SlowDown { interval_seconds } => {
                    return Err(OAuthError::new(
                        "slow_down",
                        format!("poll at most every {interval_seconds} seconds"),
                    ));
                }
                DevicePoll::Denied => {
                    return Err(OAuthError::new(
                        "access_denied",
                        "the user denied the request",
                    ));
                }
                DevicePoll::Expired => {
                    return Err(OAuthError::new(
                        "expired_token",
                        "the device code has expired",
                    ));
                }
            }
        }
    };
    Ok(token_response(&issued))
}

/// An introspection answer (RFC 7662 §2.2); an inactive token is exactly
/// `{"active": false}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct IntrospectionBody {
    /// Whether the token is active.
    pub active: bool,
    /// Its scopes, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client it was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user who granted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The resource it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issuance, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// `Bearer` for access tokens, `refresh_token` for refresh tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// The grant it carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

/// The introspection form, for the API document.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenHintForm {
    /// The token.
    token: String,
    /// `access_token` or `refresh_token`; a hint only.
    token_type_hint: Option<String>,
}

/// Token introspection, for resource servers holding the administrator token.
#[utoipa::path(
    post,
    operation_id = "introspect",
    path = "/zones/{zone_id}/oauth/introspect",
    tag = "oauth",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = TokenHintForm, content_type = "application/x-www-form-urlencoded"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the token is worth now", body = IntrospectionBody,
            headers(("cache-control" = String, description = "no-store"), ("pragma" = String, description = "no-cache"))),
        (status = 400, description = "Malformed request", body = OAuthErrorBody),
        (status = 401, description = "No or wrong administrator token", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not a form", body = OAuthErrorBody),
    )
)]
pub async fn introspect(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<NoStore<Json<IntrospectionBody>>, OAuthError> {
    match bearer(&headers) {
        Some(t) if state.auth.is_admin(&zone_id, t).await => {}
        Some(_) => return Err(OAuthError::invalid_token()),
        None => return Err(OAuthError::unauthorized()),
    }
    let form = Form::read(&body)?;
    let token = form.require("token")?;
    let answer = match state.engine.introspect(&zone_id, token).await {
        Ok(a) => a,
        // A zone that cannot exist has no active tokens.
        Err(tenure::Error::InvalidInput { .. }) => Introspection::Inactive,
        Err(e) => return Err(e.into()),
    };
    Ok(NoStore(Json(match answer {
        Introspection::Inactive => IntrospectionBody::default(),
        Introspection::Active(t) => IntrospectionBody {
            active: true,
            scope: Some(t.scopes.join(" ")),
            client_id: Some(t.client_id),
            sub: Some(t.user_id),
            aud: Some(t.resource_id),
            exp: Some(t.expires_at.timestamp()),
            iat: Some(t.issued_at.timestamp()),
            token_type: Some(match t.kind {
                TokenKind::Access => "Bearer".to_owned(),
                TokenKind::Refresh => "refresh_token".to_owned(),
            }),
            grant_id: Some(t.grant_id),
        },
    })))
}

/// Token revocation: 200 for unknown tokens too.
#[utoipa::path(
    post,
    operation_id = "revoke_token",
    path = "/zones/{zone_id}/oauth/revoke",
    tag = "oauth",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = TokenHintForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "Malformed request", body = OAuthErrorBody),
        (status = 401, description = "Client authentication failed", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not a form", body = OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable: concurrent changes outlasted the retries, or the store is unavailable", body = OAuthErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<StatusCode, OAuthError> {
    let form = Form::read(&body)?;
    let token = form.require("token")?;
    if let Some(hint) = form.get("token_type_hint") {
        if hint != "access_token" && hint != "refresh_token" {
            return Err(OAuthError::new(
                "unsupported_token_type",
                format!("{hint:?} is not a token type"),
            ));
        }
    }
    // A request that names no client may revoke the token it presents: holding the
    // token is the proof. One that names a client must authenticate it (RFC 7009
    // §2.1), and may then revoke only that client's tokens.
    let client = match client_credentials(&headers, &form)? {
        Some(credentials) => Some(authenticate(&state, &zone_id, &credentials).await?),
        None => None,
    };
    match state
        .engine
        .revoke_token(&zone_id, token, client.as_ref().map(|c| c.id.as_str()))
        .await
    {
        Ok(_) => Ok(StatusCode::OK),
        Err(tenure::Error::InvalidGrant { .. }) => Err(OAuthError::new(
            "unauthorized_client",
            "the token was issued to another client",
        )),
        Err(tenure::Error::InvalidInput { .. }) => Ok(StatusCode::OK),
        Err(e) => Err(e.into()),
    }
}

/// The device authorization form, for the API document.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct DeviceAuthorizationForm {
    /// The client.
    client_id: String,
    /// Space-separated scopes.
    scope: String,
    /// The resource the grant will be for; `default` when absent.
    resource: Option<String>,
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceAuthorizationBody {
    /// The device code, shown once.
    pub device_code: String,
    /// The code the user types: `XXXX-XXXX`.
    pub user_code: String,
    /// Where the user types it.
    pub verification_uri: String,
    /// The same, with the code filled in.
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds between polls.
    pub interval: u32,
}

/// Start a device authorization.
#[utoipa::path(
    post,
    operation_id = "device_authorization",
    path = "/zones/{zone_id}/oauth/device_authorization",
    tag = "oauth",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = DeviceAuthorizationForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The codes", body = DeviceAuthorizationBody,
            headers(("cache-control" = String, description = "no-store"), ("pragma" = String, description = "no-cache"))),
        (status = 400, description = "RFC 6749 §5.2 error", body = OAuthErrorBody),
        (status = 401, description = "Client authentication failed", body = OAuthErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not a form", body = OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable: concurrent changes outlasted the retries, or the store is unavailable", body = OAuthErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn device_authorization(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Response, OAuthError> {
    let form = Form::read(&body)?;
    let client = authenticate(&state, &zone_id, &require_client(&headers, &form)?).await?;
    let scope = form.require("scope")?;
    let request = DeviceRequest {
        client_id: client.id,
        scopes: scope.split(' ').map(str::to_owned).collect(),
        resource_id: form.resource()?.unwrap_or("default").to_owned(),
    };
    let started = state
        .engine
        .start_device_authorization(&zone_id, request)
        .await?;
    let uri = &state.config.verification_uri;
    let body = DeviceAuthorizationBody {
        device_code: started.device_code.expose().to_owned(),
        verification_uri_complete: format!(
            "{uri}?user_code={}",
            url::form_urlencoded::byte_serialize(started.user_code.as_bytes()).collect::<String>()
        ),
        user_code: started.user_code,
        verification_uri: uri.clone(),
        expires_in: started.expires_in,
        interval: started.interval,
    };
    Ok(NoStore(Json(body)).into_response())
}

/// The user's decision on a device's request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceDecisionBody {
    /// The code shown on the device, in any case, with or without punctuation.
    pub user_code: String,
    /// `approve` or `deny`.
    #[schema(pattern = "^(approve|deny)$")]
    pub action: String,
}

/// What the decision did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceDecisionResult {
    /// `approved` or `denied`.
    pub status: String,
    /// The grant approval created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

/// The signed-in user approves or denies a device (JSON or form body).
#[utoipa::path(
    post,
    operation_id = "device_approve",
    path = "/zones/{zone_id}/device/approve",
    tag = "oauth",
    params(("zone_id" = String, Path, description = "The zone")),
    request_body(content = DeviceDecisionBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Decided", body = DeviceDecisionResult),
        (status = 400, description = "Malformed body or wrong user code", body = ErrorBody),
        (status = 401, description = "No live access token of this zone", body = ErrorBody),
        (status = 409, description = "The client is disabled, or a concurrent change", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
        (status = 429, description = "Too many wrong codes", body = ErrorBody),
    )
)]
pub async fn device_approve(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<DeviceDecisionResult>, ApiError> {
    let user_id = state.require_user(&headers, &zone_id).await?;
    let decision: DeviceDecisionBody = match body.kind {
        BodyKind::Json => parse_json(&body.bytes)?,
        BodyKind::Form => {
            let pairs = body.form().unwrap_or_default();
            let get = |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
            };
            DeviceDecisionBody {
                user_code: get("user_code")
                    .ok_or_else(|| ApiError::invalid_field("user_code", "is required"))?,
                action: get("action")
                    .ok_or_else(|| ApiError::invalid_field("action", "is required"))?,
            }
        }
        _ => {
            return Err(ApiError::unsupported_media_type(&[
                "application/json",
                "application/x-www-form-urlencoded",
            ]));
        }
    };
    match decision.action.as_str() {
        "approve" => {
            let grant = state
                .engine
                .approve_device(&zone_id, &user_id, &decision.user_code)
                .await?;
            Ok(Json(DeviceDecisionResult {
                status: "approved".to_owned(),
                grant_id: Some(grant.id),
            }))
        }
        "deny" => {
            state
                .engine
                .deny_device(&zone_id, &user_id, &decision.user_code)
                .await?;
            Ok(Json(DeviceDecisionResult {
                status: "denied".to_owned(),
                grant_id: None,
            }))
        }
        _ => Err(ApiError::invalid_field(
            "action",
            "expected approve or deny",
        )),
    }
}
