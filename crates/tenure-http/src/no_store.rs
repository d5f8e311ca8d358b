//! Answers that carry a secret (a token, a client secret, a device code) or a
//! token's facts (introspection), which no cache may keep (RFC 6749 §5.1).

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// A response with `Cache-Control: no-store` and, for HTTP/1.0 caches,
/// `Pragma: no-cache`.
#[derive(Debug)]
pub(crate) struct NoStore<T>(pub(crate) T);

impl<T: IntoResponse> IntoResponse for NoStore<T> {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        forbid_storing(response.headers_mut());
        response
    }
}

/// Marks a response's headers so that no cache stores it.
pub(crate) fn forbid_storing(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
