//! Error answers: the seed 004 body `{error, message, suggested, metadata}` for the
//! zone and personal APIs, and RFC 6749 §5.2 bodies for the OAuth endpoints.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use tenure::{ClientAuthMethod, Error};
use utoipa::ToSchema;

use crate::no_store::forbid_storing;

/// The `Retry-After` of a 503 answered because the store was unavailable
/// ([`Error::Unavailable`]): the backend has already waited its own timeout, so the
/// client may try again soon.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

/// The challenge of a 401 to a request without a bearer token (RFC 6750 §3.1: no
/// error code when the request had no authentication).
const BEARER_CHALLENGE: &str = "Bearer realm=\"tenure\"";

/// The challenge of a 401 to a request whose bearer token was refused (RFC 6750
/// §3.1: expired, revoked, malformed, or not one this route accepts).
const INVALID_TOKEN_CHALLENGE: &str = "Bearer realm=\"tenure\", error=\"invalid_token\"";

/// The challenge of a 401 to a client that tried HTTP Basic authentication.
const BASIC_CHALLENGE: &str = "Basic realm=\"tenure\"";

/// The seed 004 error body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// What to do about it.
    pub suggested: String,
    /// Details: the field, the states, the operation index.
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// An error answer of the zone and personal APIs.
#[derive(Debug, Clone)]
pub struct ApiError(Box<ApiErrorParts>);

#[derive(Debug, Clone)]
struct ApiErrorParts {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
    challenge: Option<&'static str>,
}

impl ApiError {
    /// An error with this status and body fields.
    pub fn new(
        status: StatusCode,
        error: &str,
        message: impl Into<String>,
        suggested: &str,
        metadata: Value,
    ) -> Self {
        ApiError(Box::new(ApiErrorParts {
            status,
            body: ErrorBody {
                error: error.to_owned(),
                message: message.into(),
                suggested: suggested.to_owned(),
                metadata,
            },
            retry_after: None,
            challenge: None,
        }))
    }

    /// 400: the request could not be read.
    pub fn malformed(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_request",
            message,
            "Check the request's syntax against the API document.",
            json!({}),
        )
    }

    /// 400 naming a query parameter whose value the API document does not allow.
    pub fn invalid_parameter(parameter: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("invalid {parameter}: {reason}"),
            "Correct the query parameter and try again.",
            json!({"parameter": parameter}),
        )
    }

    /// 401 for a request without a bearer token, with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            message,
            "Send a valid bearer token in the Authorization header.",
            json!({}),
        );
        e.0.challenge = Some(BEARER_CHALLENGE);
        e
    }

    /// 401 for a bearer token that was presented and refused, with
    /// `WWW-Authenticate: Bearer error="invalid_token"`.
    pub fn invalid_token(message: impl Into<String>) -> Self {
        let mut e = ApiError::unauthorized(message);
        e.0.challenge = Some(INVALID_TOKEN_CHALLENGE);
        e
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            what,
            "Check the id and the zone.",
            json!({}),
        )
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds {limit} bytes"),
            "Send a smaller body.",
            json!({"limit": limit}),
        )
    }

    /// 415.
    pub fn unsupported_media_type(expected: &[&str]) -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("expected a body of type {}", expected.join(" or ")),
            "Set the Content-Type header.",
            json!({"expected": expected}),
        )
    }

    /// 422 naming a field.
    pub fn invalid_field(field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("invalid {field}: {reason}"),
            "Correct the field and try again.",
            json!({"field": field}),
        )
    }

    /// 500: the store, or tenure itself, failed.
    fn internal(message: &str) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            message,
            "Retry later.",
            json!({}),
        )
    }

    /// 403: the caller is known but may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            message,
            "Use a token that carries the scope the route requires.",
            json!({}),
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The status, the body and the headers (challenge, `Retry-After`) of the
    /// answer, for a dialect that words the body its own way.
    pub(crate) fn into_parts(self) -> (StatusCode, ErrorBody, HeaderMap) {
        let ApiErrorParts {
            status,
            body,
            retry_after,
            challenge,
        } = *self.0;
        let mut headers = HeaderMap::new();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge.unwrap_or(BEARER_CHALLENGE)),
            );
        }
        if let Some(seconds) = retry_after {
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        (status, body, headers)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::NotFound { kind, id } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                message,
                "Check the id and the zone.",
                json!({"kind": kind.to_string(), "id": id}),
            ),
            Error::AlreadyExists { kind, id } => ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                message,
                "Use another id, or update the existing record.",
                json!({"kind": kind.to_string(), "id": id}),
            ),
            Error::InvalidTransition { from, to } => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_transition",
                message,
                "The grant is final; nothing can change its status.",
                json!({"from": from, "to": to}),
            ),
            Error::InvalidScope { scopes } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_scope",
                message,
                "Ask only for scopes the client and its owner allow.",
                json!({"field": "scopes", "scopes": scopes}),
            ),
            Error::ClientDisabled { client_id } => ApiError::new(
                StatusCode::CONFLICT,
                "client_disabled",
                message,
                "Enable the client first.",
                json!({"client_id": client_id}),
            ),
            Error::GrantTypeNotAllowed {
                client_id,
                grant_type,
            } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "grant_type_not_allowed",
                message,
                "Allow the grant type in the client's policy first.",
                json!({"client_id": client_id, "grant_type": grant_type}),
            ),
            Error::RefreshTokenReused { grant_id } => ApiError::new(
                StatusCode::CONFLICT,
                "refresh_token_reused",
                message,
                "The grant was revoked; authorize again.",
                json!({"grant_id": grant_id}),
            ),
            Error::InvalidGrant { reason } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_grant",
                message,
                "The token cannot be used; authorize again.",
                json!({"reason": format!("{reason:?}")}),
            ),
            Error::Conflict => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                message,
                "Retry the request.",
                json!({}),
            ),
            Error::InvalidCursor { reason } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_cursor",
                message,
                "Use a cursor from a previous page of the same listing, unchanged.",
                json!({"reason": reason}),
            ),
            Error::PatchTestFailed { index, path } => ApiError::new(
                StatusCode::CONFLICT,
                "patch_test_failed",
                message,
                "Read the client again and rebase the patch on it.",
                json!({"index": index, "path": path}),
            ),
            Error::InvalidPatch {
                index,
                path,
                reason,
            } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_patch",
                message,
                "Correct the operation; only patchable fields may change.",
                json!({"index": index, "path": path, "reason": reason}),
            ),
            Error::InvalidUserCode => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_user_code",
                message,
                "Check the code shown on the device.",
                json!({}),
            ),
            Error::TooManyAttempts {
                retry_after_seconds,
            } => {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    message,
                    "Wait before trying again.",
                    json!({"retry_after_seconds": retry_after_seconds}),
                );
                e.0.retry_after = Some(retry_after_seconds);
                e
            }
            Error::InvalidInput { field, reason } => ApiError::invalid_field(field, reason),
            Error::InvalidClient { .. } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                message,
                "Check the client id and secret.",
                json!({}),
            ),
            Error::Unavailable { .. } => {
                tracing::warn!(error = %e.chain(), "storage unavailable");
                let mut answer = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is unavailable",
                    "Retry shortly.",
                    json!({}),
                );
                answer.0.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECONDS);
                answer
            }
            Error::Backend { .. } => {
                tracing::error!(error = %e.chain(), "storage failure");
                ApiError::internal("the store failed")
            }
            other => {
                tracing::error!(error = %other.chain(), "unexpected error");
                ApiError::internal("the request failed")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body, headers) = self.into_parts();
        (status, headers, axum::Json(body)).into_response()
    }
}

/// The RFC 6749 §5.2 error body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// The error code.
    pub error: String,
    /// For people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// An error answer of the OAuth endpoints (RFC 6749 §5.2, RFC 8628 §3.5).
#[derive(Debug, Clone)]
pub struct OAuthError {
    status: StatusCode,
    body: OAuthErrorBody,
    challenge: &'static str,
    retry_after: Option<u64>,
}

impl OAuthError {
    /// A 400 with this code.
    pub fn new(code: &str, description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            body: OAuthErrorBody {
                error: code.to_owned(),
                error_description: Some(description.into()),
            },
            challenge: BEARER_CHALLENGE,
            retry_after: None,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::new("invalid_request", description)
    }

    /// 401 `invalid_client`; with a Basic challenge when the client tried Basic.
    pub fn invalid_client(basic: bool) -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            body: OAuthErrorBody {
                error: "invalid_client".to_owned(),
                error_description: Some("client authentication failed".to_owned()),
            },
            challenge: if basic {
                BASIC_CHALLENGE
            } else {
                BEARER_CHALLENGE
            },
            retry_after: None,
        }
    }

    /// A 413 for an oversized form.
    pub fn too_large(limit: usize) -> Self {
        OAuthError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            ..OAuthError::invalid_request(format!("the body exceeds {limit} bytes"))
        }
    }

    /// A 415 for a body that is not a form.
    pub fn unsupported_media_type() -> Self {
        OAuthError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ..OAuthError::invalid_request("expected application/x-www-form-urlencoded")
        }
    }

    /// A 401 for a request without a bearer token (introspection), with
    /// `WWW-Authenticate: Bearer`.
    pub fn unauthorized() -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            ..OAuthError::new("invalid_token", "a valid bearer token is required")
        }
    }

    /// A 401 for a bearer token that was presented and refused (introspection), with
    /// `WWW-Authenticate: Bearer error="invalid_token"`.
    pub fn invalid_token() -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            challenge: INVALID_TOKEN_CHALLENGE,
            ..OAuthError::new("invalid_token", "the bearer token is not accepted here")
        }
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        let description = e.to_string();
        match e {
            Error::InvalidGrant { .. }
            | Error::RefreshTokenReused { .. }
            | Error::InvalidTransition { .. }
            | Error::InvalidUserCode => OAuthError::new("invalid_grant", description),
            Error::InvalidScope { .. } => OAuthError::new("invalid_scope", description),
            Error::ClientDisabled { .. } | Error::GrantTypeNotAllowed { .. } => {
                OAuthError::new("unauthorized_client", description)
            }
            Error::InvalidClient { method } => {
                OAuthError::invalid_client(method == ClientAuthMethod::ClientSecretBasic)
            }
            Error::NotFound { .. } => OAuthError::new("invalid_client", description),
            Error::InvalidInput { .. }
            | Error::InvalidCursor { .. }
            | Error::AlreadyExists { .. }
            | Error::PatchTestFailed { .. }
            | Error::InvalidPatch { .. } => OAuthError::invalid_request(description),
            Error::TooManyAttempts { .. } => OAuthError {
                status: StatusCode::TOO_MANY_REQUESTS,
                ..OAuthError::new("slow_down", description)
            },
            // Concurrent changes outlasted the engine's retries: OAuth has no 409, and
            // the same request may well succeed in a moment (RFC 7009 §2.2.1 answers
            // 503 for the same reason).
            Error::Conflict => OAuthError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                retry_after: Some(UNAVAILABLE_RETRY_AFTER_SECONDS),
                ..OAuthError::new("temporarily_unavailable", description)
            },
            Error::Unavailable { .. } => {
                tracing::warn!(error = %e.chain(), "storage unavailable");
                OAuthError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    retry_after: Some(UNAVAILABLE_RETRY_AFTER_SECONDS),
                    ..OAuthError::new("temporarily_unavailable", "the store is unavailable")
                }
            }
            Error::Backend { .. } => {
                tracing::error!(error = %e.chain(), "storage failure");
                OAuthError::server_error("the store failed")
            }
            other => {
                tracing::error!(error = %other.chain(), "unexpected error");
                OAuthError::server_error("the request failed")
            }
        }
    }
}

impl OAuthError {
    fn server_error(description: &str) -> Self {
        OAuthError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            ..OAuthError::new("server_error", description)
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        forbid_storing(headers);
        if let Some(seconds) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(self.challenge),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> Error {
        Error::unavailable("postgres", std::io::Error::other("pool timed out"))
    }

    #[test]
    fn an_unavailable_store_is_a_503_with_retry_after() {
        for response in [
            ApiError::from(unavailable()).into_response(),
            OAuthError::from(unavailable()).into_response(),
        ] {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                response.headers().get(header::RETRY_AFTER),
                Some(&HeaderValue::from_static("1"))
            );
        }
    }

    #[test]
    fn at_the_oauth_endpoints_a_conflict_is_a_503_and_only_a_failure_is_a_500() {
        let conflict = OAuthError::from(Error::Conflict).into_response();
        assert_eq!(conflict.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            conflict.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("1"))
        );
        // Errors that are no failure of the store or of tenure are the caller's.
        for e in [
            Error::InvalidTransition {
                from: tenure::GrantStatus::Expired,
                to: tenure::GrantStatus::Revoked,
            },
            Error::InvalidUserCode,
            Error::AlreadyExists {
                kind: tenure::RecordKind::Client,
                id: "c".to_owned(),
            },
        ] {
            let response = OAuthError::from(e).into_response();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn a_failed_store_is_a_500_without_retry_after() {
        let failed = || tenure::storage::backend_error("postgres", std::io::Error::other("disk"));
        for response in [
            ApiError::from(failed()).into_response(),
            OAuthError::from(failed()).into_response(),
        ] {
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert!(response.headers().get(header::RETRY_AFTER).is_none());
        }
    }
}
