//! The token endpoint's `client_credentials` grant (RFC 6749 §4.4) with a resource
//! indicator (RFC 8707).

use tenure::{ClientCredentialsRequest, Issued};

use crate::oauth::Form;
use crate::problem::OAuthError;
use crate::state::AppState;

/// Issues a token to `client_id`, already authenticated, for itself: `scope`
/// space-separated (all the client may have when absent), `resource` the token's
/// audience (the client itself when absent).
pub(crate) async fn issue(
    state: &AppState,
    zone_id: &str,
    client_id: &str,
    form: &Form,
) -> Result<Issued, OAuthError> {
    let resource = form.resource()?;
    if let Some(uri) = resource {
        check_resource(uri)?;
    }
    let request = ClientCredentialsRequest {
        scopes: form
            .get("scope")
            .map(|s| s.split(' ').map(str::to_owned).collect()),
        resource: resource.map(str::to_owned),
    };
    match state
        .engine
        .client_credentials(zone_id, client_id, request)
        .await
    {
        Ok(issued) => Ok(issued),
        Err(tenure::Error::InvalidInput {
            field: "resource",
            reason,
        }) => Err(invalid_target(reason)),
        Err(e) => Err(e.into()),
    }
}

/// RFC 8707 §2: an absolute URI, without a fragment.
fn check_resource(uri: &str) -> Result<(), OAuthError> {
    let parsed = url::Url::parse(uri)
        .map_err(|_| invalid_target("resource must be an absolute URI".to_owned()))?;
    if parsed.fragment().is_some() {
        return Err(invalid_target(
            "resource must not have a fragment".to_owned(),
        ));
    }
    Ok(())
}

fn invalid_target(description: String) -> OAuthError {
    OAuthError::new("invalid_target", description)
}
