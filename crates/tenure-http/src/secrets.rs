//! `POST /zones/{zone_id}/clients/{id}/secret`: a confidential client's new secret,
//! with the one it replaces kept working for as long as asked.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use tenure::MAX_SECRET_OVERLAP;
use tenure::time::format_rfc3339;
use utoipa::ToSchema;

use crate::clients::ClientBody;
use crate::extract::{Params, RawBody};
use crate::problem::{ApiError, ErrorBody};
use crate::state::AppState;

/// How long the replaced secret keeps working.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretBody {
    /// Seconds the replaced secret keeps working, at most 7,776,000 (90 days).
    /// 0, the default, stops it at once: a rotation because a secret leaked needs
    /// nothing more, and an overlap for moving instances over is asked for.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 7776000)]
    pub previous_secret_expires_in: Option<i64>,
}

/// The client with its new secret, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotatedSecret {
    /// The client.
    #[serde(flatten)]
    pub client: ClientBody,
    /// The new secret.
    pub client_secret: String,
    /// When the replaced secret stops working (now, when it stopped at once).
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
}

/// Give a confidential client a new secret. The one it replaces keeps working for
/// `previous_secret_expires_in` seconds; one replaced by an earlier rotation stops
/// now. An empty body is `{}`.
#[utoipa::path(
    post,
    operation_id = "rotate_client_secret",
    path = "/zones/{zone_id}/clients/{id}/secret",
    tag = "clients",
    params(("zone_id" = String, Path, description = "The zone"), ("id" = String, Path, description = "The client")),
    request_body(content = RotateSecretBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The client and its new secret, once", body = RotatedSecret,
            headers(("cache-control" = String, description = "no-store"))),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or wrong administrator token", body = ErrorBody),
        (status = 404, description = "No such client in this zone", body = ErrorBody),
        (status = 409, description = "Changed concurrently; retry", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid, or the client is public and has no secret", body = ErrorBody),
    )
)]
pub async fn rotate(
    State(state): State<AppState>,
    Params((zone_id, id)): Params<(String, String)>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Response, ApiError> {
    state.require_admin(&headers, &zone_id).await?;
    let b: RotateSecretBody = if body.bytes.is_empty() {
        RotateSecretBody::default()
    } else {
        body.json()?
    };
    let seconds = b.previous_secret_expires_in.unwrap_or(0);
    if !(0..=MAX_SECRET_OVERLAP.num_seconds()).contains(&seconds) {
        return Err(ApiError::invalid_field(
            "previous_secret_expires_in",
            "must be from 0 to 7776000 seconds (90 days)",
        ));
    }
    let overlap = Duration::seconds(seconds);
    // The engine's clock, not this machine's: the deadline is the engine's to keep.
    let until = state.engine.now() + overlap;
    let rotated = state
        .engine
        .rotate_client_secret(&zone_id, &id, until)
        .await?;
    let Some(secret) = rotated.secret else {
        // The engine gives every rotation a secret; without one there is nothing to show.
        return Err(ApiError::from(tenure::Error::invalid_input(
            "client_type",
            "the client has no secret",
        )));
    };
    let body = RotatedSecret {
        client: ClientBody::from(&rotated.client),
        client_secret: secret.expose().to_owned(),
        previous_secret_expires_at: rotated
            .client
            .previous_secret
            .as_ref()
            .map(|p| format_rfc3339(&p.valid_until)),
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
