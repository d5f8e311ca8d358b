//! Reading requests with the seed's error answers: bodies by content type and size,
//! query strings, path parameters and bearer tokens.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::ApiError;
use crate::state::AppState;

/// What a body was sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`.
    Json,
    /// `application/json-patch+json`.
    JsonPatch,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// Anything else, or nothing.
    Other,
}

fn kind_of(parts: &axum::http::HeaderMap) -> BodyKind {
    let Some(value) = parts
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return BodyKind::Other;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => BodyKind::Json,
        "application/json-patch+json" => BodyKind::JsonPatch,
        "application/x-www-form-urlencoded" => BodyKind::Form,
        _ => BodyKind::Other,
    }
}

/// A request body read whole, up to the configured limit, with its kind.
#[derive(Debug)]
pub struct RawBody {
    /// Its kind, from `Content-Type`.
    pub kind: BodyKind,
    /// Its bytes.
    pub bytes: axum::body::Bytes,
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Over the limit.
    TooLarge(usize),
    /// The connection failed while reading.
    Unreadable,
}

impl FromRequest<AppState> for RawBody {
    type Rejection = BodyError;

    async fn from_request(req: Request<Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let kind = kind_of(req.headers());
        let limit = state.config.body_limit;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|e| {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                if too_large {
                    BodyError::TooLarge(limit)
                } else {
                    BodyError::Unreadable
                }
            })?;
        Ok(RawBody { kind, bytes })
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(limit) => ApiError::too_large(limit),
            BodyError::Unreadable => ApiError::malformed("the body could not be read"),
        }
    }
}

impl axum::response::IntoResponse for BodyError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}

impl RawBody {
    /// The body as JSON of type `T`: 415 unless sent as JSON, 400 if it is not JSON,
    /// 422 naming the field if it does not fit.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.kind != BodyKind::Json {
            return Err(ApiError::unsupported_media_type(&["application/json"]));
        }
        parse_json(&self.bytes)
    }

    /// The body as a form: a list of pairs.
    pub fn form(&self) -> Option<Vec<(String, String)>> {
        (self.kind == BodyKind::Form).then(|| {
            url::form_urlencoded::parse(&self.bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
    }
}

/// Parses JSON: 400 for bad syntax, 422 naming the field for a bad shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::malformed(format!("the body is not JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        let field = message
            .split('`')
            .nth(1)
            .filter(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or("body")
            .to_owned();
        ApiError::invalid_field(&field, message)
    })
}

/// A query string as a list of pairs (so keys may repeat, as `expand[]` does).
#[derive(Debug, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(QueryPairs::parse(parts.uri.query().unwrap_or("")))
    }
}

impl QueryPairs {
    /// The pairs of a raw query string (without the `?`).
    pub fn parse(query: &str) -> Self {
        QueryPairs(
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The single value of `key`: 400 if it is given twice.
    pub fn one(&self, key: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::malformed(format!(
                "{key} is given more than once"
            )));
        }
        Ok(first)
    }

    /// Every value of `key`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Path parameters, with a seed error body when they cannot be read.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Params(v))
            .map_err(|e| ApiError::malformed(format!("bad path: {e}")))
    }
}

/// The bearer token of the request, if there is one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}
