//! What `serve` tells its operator: log lines on standard error through
//! `tracing-subscriber`, the HTTP layers that trace each request, and Prometheus
//! metrics on a listener of their own.
//!
//! Standard output is kept for the few lines a person starting the server reads
//! (where it listens, a generated administrator token); nothing secret ever goes to
//! the log. Requests are traced in a `request` span with `method`, `route` (the
//! matched pattern), `path` and `request_id` (the client's `x-request-id`, or a
//! fresh UUID, echoed in the response); headers are never logged, and
//! `Authorization`, `Proxy-Authorization` and `Cookie` are marked sensitive besides.

use std::io::IsTerminal as _;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderName, Request, StatusCode, header};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::config::LogFormat;
use crate::error::CliError;

/// The buckets of every `…_seconds` histogram: from half a millisecond (a memory
/// store's write) to half a minute (a request timeout).
const SECONDS_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often the exporter drains its histograms' old samples.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the log subscriber: `RUST_LOG` filters (default `info`; a directive
/// it cannot read is ignored), lines go to standard error in `format`.
pub fn init_logs(format: LogFormat) -> Result<(), CliError> {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    installed.map_err(|e| CliError::Usage(format!("cannot install the log subscriber: {e}")))
}

/// Installs the Prometheus recorder, so that every `metrics` call of the process
/// (the engine's, the HTTP layer's, the sweeper's) lands in it.
pub fn install_metrics() -> Result<PrometheusHandle, CliError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| CliError::Usage(format!("cannot install the metrics recorder: {e}")))?;
    tenure::Engine::describe_metrics();
    tenure_http::health::describe_metrics();
    Ok(handle)
}

/// Serves `GET /metrics` on `listener` until `stop` turns true.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let upkeep = {
        let handle = handle.clone();
        let mut stop = stop.clone();
        async move {
            let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    _ = ticks.tick() => handle.run_upkeep(),
                }
            }
        }
    };
    let app = Router::new().route("/metrics", get(move || std::future::ready(handle.render())));
    let server = axum::serve(listener, app).with_graceful_shutdown(stopped(stop));
    let (served, ()) = tokio::join!(server.into_future(), upkeep);
    served
}

/// Resolves once `stop` turns true (or its sender is gone).
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The layers every API request passes: sensitive headers marked, a request id set
/// and echoed, a trace span, request metrics, a timeout answered 503, the body
/// limit. Add them after every route, so that the route is known to the span and
/// the metrics.
pub fn layered(app: Router, request_timeout: Duration, body_limit: usize) -> Router {
    // Each `layer` wraps what is already there: the last one runs first.
    app.layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(axum::middleware::from_fn(tenure_http::request_metrics))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::PROXY_AUTHORIZATION,
            header::COOKIE,
        ]))
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The span of one request: never a header's value but the request id's, never
/// the query string (it may carry cursors or codes).
fn request_span(request: &Request<Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        path = request.uri().path(),
        request_id,
    )
}
