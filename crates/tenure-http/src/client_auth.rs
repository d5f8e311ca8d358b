//! Reading a client's credentials off a request (RFC 6749 §2.3.1) for the core to
//! check: `client_secret_basic`, `client_secret_post`, or a public client naming
//! itself with `client_id` alone.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tenure::{Client, ClientAuthMethod, ClientCredentials};

use crate::oauth::Form;
use crate::problem::OAuthError;
use crate::state::AppState;

/// The client credentials of a request, if it presents any. Both Basic and a form
/// `client_secret`, a form `client_id` other than Basic's, or a secret without an
/// id are `invalid_request`; a Basic header that cannot be read is
/// `invalid_client`, with a Basic challenge.
pub(crate) fn client_credentials(
    headers: &HeaderMap,
    form: &Form,
) -> Result<Option<ClientCredentials>, OAuthError> {
    let basic = basic(headers)?;
    match (basic, form.get("client_id"), form.get("client_secret")) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method: Basic or client_secret, not both",
        )),
        (Some((id, _)), Some(form_id), None) if form_id != id => Err(OAuthError::invalid_request(
            "client_id differs from the Basic credentials",
        )),
        (Some((id, secret)), _, None) => Ok(Some(ClientCredentials::basic(id, secret))),
        (None, Some(id), Some(secret)) => Ok(Some(ClientCredentials::post(id, secret))),
        (None, Some(id), None) => Ok(Some(ClientCredentials::public(id))),
        (None, None, Some(_)) => Err(OAuthError::invalid_request(
            "client_id is required with client_secret",
        )),
        (None, None, None) => Ok(None),
    }
}

/// The client credentials of a request that must name its client.
pub(crate) fn require_client(
    headers: &HeaderMap,
    form: &Form,
) -> Result<ClientCredentials, OAuthError> {
    client_credentials(headers, form)?
        .ok_or_else(|| OAuthError::invalid_request("client_id is required"))
}

/// Has the core authenticate `credentials` in the zone; every failure is the same
/// 401 `invalid_client`.
pub(crate) async fn authenticate(
    state: &AppState,
    zone_id: &str,
    credentials: &ClientCredentials,
) -> Result<Client, OAuthError> {
    Ok(state
        .engine
        .authenticate_client(zone_id, credentials)
        .await?)
}

/// The id and secret of an `Authorization: Basic` header: base64 of
/// `id:secret`, each part form-urlencoded first (RFC 6749 §2.3.1). Another scheme
/// is no client authentication.
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let unreadable = || {
        OAuthError::from(tenure::Error::InvalidClient {
            method: ClientAuthMethod::ClientSecretBasic,
        })
    };
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(unreadable)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(unreadable)?;
    Ok(Some((form_decode(id), form_decode(secret))))
}

/// Undoes application/x-www-form-urlencoded on one value: `+` is a space, `%XX`
/// a byte.
fn form_decode(value: &str) -> String {
    // Parsed as the value of a one-pair form; a raw `&` (which an encoder never
    // leaves) would end the pair, so it is escaped first.
    let escaped = value.replace('&', "%26");
    url::form_urlencoded::parse(format!("x={escaped}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_parts_are_form_decoded() {
        assert_eq!(form_decode("app%3A1"), "app:1");
        assert_eq!(form_decode("a+b%2Bc"), "a b+c");
        assert_eq!(form_decode("plain=&x"), "plain=&x");
        assert_eq!(form_decode(""), "");
    }
}
