//! Authorization server metadata (RFC 8414), one document per zone, whose issuer is
//! `{base}/zones/{zone_id}`. It is served where RFC 8414 §3.1 puts it for an issuer
//! with a path, `/.well-known/oauth-authorization-server/zones/{zone_id}`, and under
//! the zone, `/zones/{zone_id}/.well-known/oauth-authorization-server`, where
//! clients that append the well-known suffix to the issuer look.
//!
//! The base is [`HttpConfig::public_base_url`](crate::HttpConfig::public_base_url),
//! or `http://{Host}` of the request when that is unset. The document lists what
//! the routes really take; the authorization endpoint is the host's, named only
//! when [`HttpConfig::authorization_endpoint`](crate::HttpConfig::authorization_endpoint)
//! is set.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header, uri::Authority};
use serde::{Deserialize, Serialize};
use tenure::{ClientAuthMethod, GrantType};
use utoipa::ToSchema;

use crate::extract::Params;
use crate::oauth::TOKEN_GRANT_TYPES;
use crate::problem::{ApiError, ErrorBody};
use crate::state::AppState;

/// The metadata of a zone's authorization server (RFC 8414 §2).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthorizationServerMetadata {
    /// The zone's issuer: `{base}/zones/{zone_id}`.
    pub issuer: String,
    /// The host's authorization endpoint, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// `{issuer}/oauth/token`.
    pub token_endpoint: String,
    /// `{issuer}/oauth/device_authorization` (RFC 8628 §4).
    pub device_authorization_endpoint: String,
    /// `{issuer}/oauth/revoke` (RFC 7009).
    pub revocation_endpoint: String,
    /// `{issuer}/oauth/introspect` (RFC 7662).
    pub introspection_endpoint: String,
    /// `["code"]` with an authorization endpoint; empty without one.
    pub response_types_supported: Vec<String>,
    /// What the token endpoint takes (`authorization_code` only with an
    /// authorization endpoint).
    pub grant_types_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`, and `none` for public clients.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// The same as the token endpoint's.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// `Bearer`: the administrator's token (RFC 8414 §2 allows access token types
    /// here).
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// `["S256"]`, with an authorization endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// How clients authenticate at the token and revocation endpoints.
const CLIENT_AUTH_METHODS: [ClientAuthMethod; 3] = [
    ClientAuthMethod::ClientSecretBasic,
    ClientAuthMethod::ClientSecretPost,
    ClientAuthMethod::None,
];

/// A zone's authorization server metadata, at the zone.
#[utoipa::path(
    get,
    operation_id = "authorization_server_metadata",
    path = "/zones/{zone_id}/.well-known/oauth-authorization-server",
    tag = "oauth",
    params(("zone_id" = String, Path, description = "The zone")),
    responses(
        (status = 200, description = "The metadata", body = AuthorizationServerMetadata),
        (status = 400, description = "No usable Host header, and no public base URL configured", body = ErrorBody),
        (status = 422, description = "The zone id is invalid", body = ErrorBody),
    )
)]
pub async fn metadata(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<AuthorizationServerMetadata>, ApiError> {
    document(&state, &zone_id, &headers, &uri).map(Json)
}

/// A zone's authorization server metadata, where RFC 8414 §3.1 puts it for an
/// issuer with a path.
#[utoipa::path(
    get,
    operation_id = "authorization_server_metadata_well_known",
    path = "/.well-known/oauth-authorization-server/zones/{zone_id}",
    tag = "oauth",
    params(("zone_id" = String, Path, description = "The zone")),
    responses(
        (status = 200, description = "The metadata", body = AuthorizationServerMetadata),
        (status = 400, description = "No usable Host header, and no public base URL configured", body = ErrorBody),
        (status = 422, description = "The zone id is invalid", body = ErrorBody),
    )
)]
pub async fn metadata_well_known(
    State(state): State<AppState>,
    Params(zone_id): Params<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<AuthorizationServerMetadata>, ApiError> {
    document(&state, &zone_id, &headers, &uri).map(Json)
}

fn document(
    state: &AppState,
    zone_id: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<AuthorizationServerMetadata, ApiError> {
    tenure::validate::reference("zone_id", zone_id)?;
    let base = match &state.config.public_base_url {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => format!("http://{}", request_authority(headers, uri)?),
    };
    let zone = path_segment(zone_id);
    let issuer = format!("{base}/zones/{zone}");
    let authorization_endpoint = state
        .config
        .authorization_endpoint
        .as_ref()
        .map(|template| template.replace("{zone_id}", &zone));
    let with_codes = authorization_endpoint.is_some();
    let names = |methods: &[ClientAuthMethod]| -> Vec<String> {
        methods.iter().map(|m| m.as_str().to_owned()).collect()
    };
    Ok(AuthorizationServerMetadata {
        token_endpoint: format!("{issuer}/oauth/token"),
        device_authorization_endpoint: format!("{issuer}/oauth/device_authorization"),
        revocation_endpoint: format!("{issuer}/oauth/revoke"),
        introspection_endpoint: format!("{issuer}/oauth/introspect"),
        response_types_supported: if with_codes {
            vec!["code".to_owned()]
        } else {
            Vec::new()
        },
        grant_types_supported: TOKEN_GRANT_TYPES
            .into_iter()
            .filter(|g| with_codes || *g != GrantType::AuthorizationCode)
            .map(|g| g.as_str().to_owned())
            .collect(),
        token_endpoint_auth_methods_supported: names(&CLIENT_AUTH_METHODS),
        revocation_endpoint_auth_methods_supported: names(&CLIENT_AUTH_METHODS),
        introspection_endpoint_auth_methods_supported: vec!["Bearer".to_owned()],
        code_challenge_methods_supported: with_codes.then(|| vec![tenure::code::S256.to_owned()]),
        authorization_endpoint,
        issuer,
    })
}

/// The request's `host[:port]`: its `Host` header, or the authority of an
/// absolute request target (HTTP/2). Anything else, user information included,
/// is refused rather than published.
fn request_authority(headers: &HeaderMap, uri: &Uri) -> Result<Authority, ApiError> {
    let refused = || {
        ApiError::malformed(
            "the Host header is not a host[:port]; set the public base URL to serve metadata",
        )
    };
    let authority = match headers.get(header::HOST) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.parse::<Authority>().ok())
            .ok_or_else(refused)?,
        None => uri.authority().cloned().ok_or_else(refused)?,
    };
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(refused());
    }
    Ok(authority)
}

/// `value` percent-encoded as one path segment.
fn path_segment(value: &str) -> String {
    // Form encoding leaves only A-Z a-z 0-9 * - . _ as they are and writes a space
    // as `+`, which in a path is a plus: it becomes %20 (a real plus is %2B).
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn zone_ids_are_encoded_as_one_path_segment() {
        assert_eq!(path_segment("z1"), "z1");
        assert_eq!(path_segment("a b+c/d"), "a%20b%2Bc%2Fd");
    }

    #[test]
    fn hosts_with_user_information_or_a_path_are_refused() {
        let authority = |host: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static(host));
            request_authority(&headers, &Uri::from_static("/")).map(|a| a.to_string())
        };
        assert!(authority("evil@example.com").is_err());
        assert!(authority("example.com/path").is_err());
        assert!(authority("").is_err());
        assert_eq!(
            authority("example.com:8080").ok(),
            Some("example.com:8080".to_owned())
        );
    }
}
