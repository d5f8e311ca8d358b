//! An axum [`Router`] that speaks the seed APIs over a tenure [`Engine`].
//!
//! Mount it in one line:
//!
//! ```
//! use std::sync::Arc;
//! use tenure::Engine;
//! use tenure_http::StaticAdminToken;
//! use tenure_memory::MemoryStorage;
//!
//! let engine = Engine::new(MemoryStorage::new());
//! let app: axum::Router = tenure_http::router(engine, Arc::new(StaticAdminToken::new("admin-token")));
//! # let _ = app;
//! ```
//!
//! Every route lives under `/zones/{zone_id}`:
//!
//! | route | who | what |
//! | --- | --- | --- |
//! | `GET, POST /delegated-grants` | admin | list (seed 001), create |
//! | `GET, PATCH, DELETE /delegated-grants/{id}`, `GET …/history` | admin | read, revoke (seed 000), delete, transitions |
//! | `GET, POST /clients`, `GET, PATCH, DELETE /clients/{id}`, `POST …/impact` | admin | clients, JSON Patch or merge, deletion (its grants revoked first), dry run (seeds 003, 004) |
//! | `POST /clients/{id}/secret` | admin | a confidential client's new secret; the old one kept for a while |
//! | `POST /authorization-codes` | admin | the host's authorization endpoint has a code issued (RFC 6749 §4.1, RFC 7636) |
//! | `POST /oauth/token`, `/oauth/revoke`, `/oauth/device_authorization` | client | RFC 6749 (authorization code, refresh, client credentials), RFC 8707, RFC 7009, RFC 8628 |
//! | `POST /oauth/introspect` | admin | RFC 7662 |
//! | `GET /.well-known/oauth-authorization-server` | anyone | RFC 8414 metadata (also at `/.well-known/oauth-authorization-server/zones/{zone_id}`) |
//! | `POST /device/approve` | user | the user's side of RFC 8628 |
//! | `/auth-grant/…`, `/profile/auth-grants` | user | personal grants (seed 002) |
//! | `GET, POST /oauth-clients/v1`, `GET, PATCH, DELETE /oauth-clients/v1/{id}` | admin, or a token with `sp:oauth-client:manage` | SailPoint's OAuth client API (seed 003), in its words and error body |
//! | `GET, POST /admin/oauth/clients`, `GET, PATCH, DELETE …/{id}`, `GET /admin/oauth/device-authorizations`, `GET /admin/oauth/refresh-tokens`, `DELETE …/{id}` | admin | Storyden's admin OAuth API (seed 004) |
//!
//! Administrators are whoever the [`Authenticator`] says (a ready
//! [`StaticAdminToken`] compares one token in constant time); users present an
//! access token tenure issued in the zone; clients authenticate as RFC 6749 §2.3
//! says (Basic, a form secret, or a public client's id alone), checked by
//! [`Engine::authenticate_client`]. Errors outside the OAuth endpoints carry
//! the seed 004 body `{error, message, suggested, metadata}`; the OAuth endpoints
//! answer as RFC 6749 §5.2 says. No input gets a 5xx: only a failing store does.
//! The OpenAPI 3.1 document of every route is served at `/openapi.json`.
//!
//! The two vendor dialects translate names and shapes only: they call the same
//! engine operations as tenure's own routes, so a client created in one reads the
//! same in the other and at `/clients`, and a client deleted in one is gone from
//! all three.
//!
//! What a client can rely on:
//!
//! - an answer that carries a secret (tokens, a client secret, a device code) or a
//!   token's facts (introspection) has `Cache-Control: no-store` and
//!   `Pragma: no-cache`;
//! - a 401 challenges as RFC 6750 §3.1 says: `Bearer realm="tenure"` when no bearer
//!   token was sent, with `error="invalid_token"` when one was sent and refused;
//! - a store that cannot be reached is a 503 with `Retry-After`; so is, at the OAuth
//!   endpoints, a write that kept meeting concurrent changes until the engine's
//!   retries ran out (`temporarily_unavailable`; the other routes answer 409
//!   `conflict`); a 500 means the store or tenure itself failed;
//! - a query parameter of a list route whose value the API document does not allow
//!   is a 400 `invalid_parameter` naming it, never ignored. Seed 001 documents
//!   `active` as the one value `true`, so `active=false` is refused: use `status`.
//!
//! For running it: [`health_router`] adds `GET /healthz` and `GET /readyz` outside
//! the zones and their authentication, and [`request_metrics`] counts requests by
//! route and status (see [the `health` module](health)).

mod auth;
mod client_auth;
mod clients;
mod codes;
mod dialect;
mod discovery;
mod extract;
mod grants;
pub mod health;
mod list_query;
mod machine;
mod no_store;
mod oauth;
mod openapi;
mod personal;
mod problem;
mod sailpoint;
mod secrets;
mod state;
mod storyden;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tenure::Engine;

pub use auth::{Authenticator, StaticAdminToken};
pub use grants::parse_list_query;
pub use health::{health_router, request_metrics};
pub use openapi::openapi;
pub use personal::NEXT_CURSOR_HEADER;
pub use problem::{ApiError, ErrorBody, OAuthError, OAuthErrorBody};
pub use state::{AppState, HttpConfig};

/// The router over `engine`, with administrators decided by `auth` and default
/// settings.
pub fn router(engine: Engine, auth: Arc<dyn Authenticator>) -> Router {
    router_with(engine, auth, HttpConfig::default())
}

/// The router with explicit settings.
pub fn router_with(engine: Engine, auth: Arc<dyn Authenticator>, config: HttpConfig) -> Router {
    let state = AppState {
        engine,
        auth,
        config: Arc::new(config),
    };
    let zone = Router::new()
        .route("/delegated-grants", get(grants::list).post(grants::create))
        .route(
            "/delegated-grants/{id}",
            get(grants::get)
                .patch(grants::update)
                .delete(grants::delete),
        )
        .route("/delegated-grants/{id}/history", get(grants::history))
        .route("/clients", get(clients::list).post(clients::create))
        .route(
            "/clients/{id}",
            get(clients::get)
                .patch(clients::patch)
                .delete(clients::delete),
        )
        .route("/clients/{id}/impact", post(clients::impact))
        .route("/clients/{id}/secret", post(secrets::rotate))
        .route("/authorization-codes", post(codes::create))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/introspect", post(oauth::introspect))
        .route("/oauth/revoke", post(oauth::revoke))
        .route(
            "/oauth/device_authorization",
            post(oauth::device_authorization),
        )
        .route("/device/approve", post(oauth::device_approve))
        .route("/auth-grant/create", post(personal::create))
        .route(
            "/auth-grant/{id}",
            get(personal::get).delete(personal::delete),
        )
        .route("/auth-grant/update/{id}", post(personal::update))
        .route("/auth-grant/{id}/revoke", post(personal::revoke))
        .route("/profile/auth-grants", post(personal::list))
        .merge(sailpoint::routes())
        .merge(storyden::routes());
    Router::new()
        .nest("/zones/{zone_id}", zone)
        .route(
            "/.well-known/oauth-authorization-server/zones/{zone_id}",
            get(discovery::metadata_well_known),
        )
        .route("/openapi.json", get(openapi::serve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
        "See /openapi.json for the methods each route takes.",
        serde_json::json!({}),
    )
}
