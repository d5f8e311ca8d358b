//! What every handler shares.

use std::sync::Arc;

use axum::http::HeaderMap;
use tenure::{Engine, Introspection, TokenKind};

use crate::auth::Authenticator;
use crate::extract::bearer;
use crate::problem::ApiError;

/// Settings of the router.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The largest body accepted, in bytes; larger ones get 413. 1 MiB by default.
    pub body_limit: usize,
    /// Where users enter device user codes (RFC 8628 `verification_uri`).
    pub verification_uri: String,
    /// The access-token lifetime, in seconds, of a client registered without one;
    /// one hour by default.
    pub default_access_token_ttl_seconds: u32,
    /// The refresh-token lifetime, in seconds, of a client registered without one;
    /// thirty days by default.
    pub default_refresh_token_ttl_seconds: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit: 1024 * 1024,
            verification_uri: "https://localhost/device".to_owned(),
            default_access_token_ttl_seconds: 3600,
            default_refresh_token_ttl_seconds: 30 * 24 * 3600,
        }
    }
}

/// The router's state.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// Who is an administrator.
    pub auth: Arc<dyn Authenticator>,
    /// Settings.
    pub config: Arc<HttpConfig>,
}

impl AppState {
    /// Requires an administrator's bearer token for the zone.
    pub async fn require_admin(&self, headers: &HeaderMap, zone_id: &str) -> Result<(), ApiError> {
        match bearer(headers) {
            Some(token) if self.auth.is_admin(zone_id, token).await => Ok(()),
            Some(_) => Err(ApiError::invalid_token(
                "the bearer token is not an administrator's",
            )),
            None => Err(ApiError::unauthorized("a bearer token is required")),
        }
    }

    /// Requires a live access token issued by tenure in the zone; answers its user.
    pub async fn require_user(
        &self,
        headers: &HeaderMap,
        zone_id: &str,
    ) -> Result<String, ApiError> {
        let Some(token) = bearer(headers) else {
            return Err(ApiError::unauthorized("a bearer token is required"));
        };
        match self.engine.introspect(zone_id, token).await {
            Ok(Introspection::Active(t)) if t.kind == TokenKind::Access => Ok(t.user_id),
            Ok(_) => Err(ApiError::invalid_token(
                "the bearer token is not a live access token of this zone",
            )),
            // A zone id the engine refuses cannot have issued the token either.
            Err(tenure::Error::InvalidInput { .. }) => Err(ApiError::invalid_token(
                "the bearer token is not a live access token of this zone",
            )),
            Err(e) => Err(e.into()),
        }
    }
}
