//! What an operator's infrastructure asks of a running server: is the process up,
//! does its store answer, and how are requests going.
//!
//! [`health_router`] answers outside every zone, without authentication, so that an
//! orchestrator's probes need no token:
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /healthz` | `200 {"status":"ok"}` whenever the process serves requests |
//! | `GET /readyz` | `200 {"status":"ok"}` when the store answers a read ([`Engine::zones`]); `503` with the seed 004 error body when the read fails or takes longer than [`READINESS_TIMEOUT`] |
//!
//! A failed readiness check is logged at `WARN` with the error's whole cause chain;
//! the answer itself names no cause, since probes may be reachable by others.
//!
//! [`request_metrics`] is a middleware (`axum::middleware::from_fn`) that records,
//! through the [`metrics`](https://docs.rs/metrics) facade:
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `tenure_http_requests_total` | counter | `route`, `status` |
//! | `tenure_http_request_duration_seconds` | histogram | `route` |
//!
//! `route` is the pattern of the route that matched (`/zones/{zone_id}/oauth/token`),
//! never the path as sent, so ids in paths cannot multiply the series; a request
//! that matched no route counts as `unmatched`. Add the layer with
//! [`Router::layer`](axum::Router::layer) on the finished router, after every route,
//! so that it runs once a route has matched.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tenure::Engine;
use utoipa::ToSchema;

use crate::problem::ApiError;

/// How long `/readyz` waits for the store before it answers 503.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(5);

/// `tenure_http_requests_total{route, status}`: requests answered.
pub const REQUESTS_TOTAL: &str = "tenure_http_requests_total";

/// `tenure_http_request_duration_seconds{route}`: time to the response's head.
pub const REQUEST_DURATION_SECONDS: &str = "tenure_http_request_duration_seconds";

/// The `route` label of a request that matched no route.
const UNMATCHED: &str = "unmatched";

/// The body of a healthy answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// `GET /healthz` and `GET /readyz` over `engine`, outside the zone API and its
/// authentication. Merge it beside [`router`](crate::router):
///
/// ```
/// use std::sync::Arc;
/// use tenure::Engine;
/// use tenure_http::StaticAdminToken;
/// use tenure_memory::MemoryStorage;
///
/// let engine = Engine::new(MemoryStorage::new());
/// let app = tenure_http::router(engine.clone(), Arc::new(StaticAdminToken::new("admin")))
///     .merge(tenure_http::health_router(engine));
/// # let _: axum::Router = app;
/// ```
pub fn health_router(engine: Engine) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(engine)
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    operation_id = "healthz",
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process is up", body = Health))
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the store answers a read.
#[utoipa::path(
    get,
    operation_id = "readyz",
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "The store answers", body = Health),
        (status = 503, description = "The store failed or did not answer in time", body = crate::ErrorBody),
    )
)]
pub(crate) async fn readyz(State(engine): State<Engine>) -> Response {
    let problem = match tokio::time::timeout(READINESS_TIMEOUT, engine.zones(None, 1)).await {
        Ok(Ok(_)) => return Json(Health { status: "ok" }).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e.chain(), "not ready: the store failed a read");
            "the store failed a read"
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = u64::try_from(READINESS_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
                "not ready: the store did not answer in time"
            );
            "the store did not answer in time"
        }
    };
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        problem,
        "The server answers again once the store does; its log says why.",
        serde_json::json!({}),
    )
    .into_response()
}

/// Gives the request metrics their descriptions, for a recorder that shows them
/// (Prometheus's `# HELP`). Call it once the recorder is installed.
pub fn describe_metrics() {
    metrics::describe_counter!(
        REQUESTS_TOTAL,
        "HTTP requests answered, by matched route and status"
    );
    metrics::describe_histogram!(
        REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Time from a request's arrival to its response's head, by matched route"
    );
}

/// Counts every request by matched route and status and times it; see the module
/// documentation for the metrics.
pub async fn request_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(REQUEST_DURATION_SECONDS, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(REQUESTS_TOTAL, "route" => route, "status" => status).increment(1);
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use axum::http::Request;
    use tenure_memory::MemoryStorage;
    use tower::ServiceExt as _;

    use super::*;

    async fn get(path: &str) -> (StatusCode, serde_json::Value) {
        let app = health_router(Engine::new(MemoryStorage::new()));
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn probes_answer_without_a_token() {
        let ok = serde_json::json!({"status": "ok"});
        assert_eq!(get("/healthz").await, (StatusCode::OK, ok.clone()));
        assert_eq!(get("/readyz").await, (StatusCode::OK, ok));
    }
}
