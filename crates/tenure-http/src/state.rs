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
    /// The server's public base URL, such as `https://auth.example.com`: each
    /// zone's issuer (RFC 8414) is `{public_base_url}/zones/{zone_id}`, and its
    /// discovery document names endpoints under it. When `None`, the base is built
    /// from each request's `Host` header as `http://{host}`: fine on a developer's
    /// machine, but a deployment behind TLS sets this, since the router cannot know
    /// the scheme clients used, and should not trust `Host` for what it publishes.
    pub public_base_url: Option<String>,
    /// The host's authorization endpoint (RFC 6749 §3.1), which signs the user in,
    /// asks for consent and issues codes through `POST /authorization-codes`;
    /// `{zone_id}` in it is replaced by the zone. When `None`, the discovery
    /// document names no authorization endpoint, and so lists neither the
    /// `authorization_code` grant nor the `code` response type: RFC 8414 §2
    /// requires the endpoint of a server that lists them. The token endpoint
    /// redeems codes either way.
    pub authorization_endpoint: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit: 1024 * 1024,
            verification_uri: "https://localhost/device".to_owned(),
            default_access_token_ttl_seconds: 3600,
            default_refresh_token_ttl_seconds: 30 * 24 * 3600,
            public_base_url: None,
            authorization_endpoint: None,
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
            Ok(Introspection::Active(t)) if t.kind == TokenKind::Access => {
                // A client's own client-credentials token stands for the client, not
                // for the user whose id its grant carries.
                let standing = match self.engine.get_grant(zone_id, &t.grant_id).await {
                    Ok(grant) => tenure::lifecycle::is_standing(&grant),
                    // Deleted since it was introspected: no longer anyone's token.
                    Err(tenure::Error::NotFound { .. }) => true,
                    Err(e) => return Err(e.into()),
                };
                if standing {
                    return Err(ApiError::invalid_token(
                        "the bearer token is a client's own token, not a user's",
                    ));
                }
                Ok(t.user_id)
            }
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
