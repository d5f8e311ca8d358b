//! Error answers: the seed 004 body `{error, message, suggested, metadata}` for the
//! zone and personal APIs, and RFC 6749 §5.2 bodies for the OAuth endpoints.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use tenure::{ClientAuthMethod, Error};
use utoipa::ToSchema;

/// The `Retry-After` of a 503 answered because the store was unavailable
/// ([`Error::Unavailable`]): the backend has already waited its own timeout, so the
/// client may try again soon.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

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

    /// 401 with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            message,
            "Send a valid bearer token in the Authorization header.",
            json!({}),
        )
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

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.0.status
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
            other => {
                tracing::error!(error = %other.chain(), "storage failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the store failed",
                    "Retry later.",
                    json!({}),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ApiErrorParts {
            status,
            body,
            retry_after,
        } = *self.0;
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tenure\""),
            );
        }
        if let Some(seconds) = retry_after {
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        response
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
    basic_challenge: bool,
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
            basic_challenge: false,
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
            basic_challenge: basic,
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

    /// A 401 for a missing or wrong bearer token (introspection).
    pub fn unauthorized() -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            ..OAuthError::new("invalid_token", "a valid bearer token is required")
        }
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        let description = e.to_string();
        match e {
            Error::InvalidGrant { .. } | Error::RefreshTokenReused { .. } => {
                OAuthError::new("invalid_grant", description)
            }
            Error::InvalidScope { .. } => OAuthError::new("invalid_scope", description),
            Error::ClientDisabled { .. } | Error::GrantTypeNotAllowed { .. } => {
                OAuthError::new("unauthorized_client", description)
            }
            Error::InvalidClient { method } => {
                OAuthError::invalid_client(method == ClientAuthMethod::ClientSecretBasic)
            }
            Error::NotFound { .. } => OAuthError::new("invalid_client", description),
            Error::InvalidInput { .. } | Error::InvalidCursor { .. } => {
                OAuthError::invalid_request(description)
            }
            Error::TooManyAttempts { .. } => OAuthError {
                status: StatusCode::TOO_MANY_REQUESTS,
                ..OAuthError::new("slow_down", description)
            },
            Error::Conflict => OAuthError {
                status: StatusCode::CONFLICT,
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
            other => {
                tracing::error!(error = %other.chain(), "storage failure");
                OAuthError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    ..OAuthError::new("server_error", "the store failed")
                }
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(seconds) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.basic_challenge {
                "Basic realm=\"tenure\""
            } else {
                "Bearer realm=\"tenure\""
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
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
