//! Client authentication (RFC 6749 §2.3) and client secret rotation.

use std::sync::LazyLock;

use chrono::Duration;

use super::{Engine, observe};
use crate::client::RegisteredClient;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::model::{Client, ClientAuthMethod, ClientType, RetiringSecret};
use crate::secret::{Digest, Secret, SecretKind};
use crate::storage::{Expect, Write, WriteSet};
use crate::time::{Timestamp, to_millis};
use crate::validate;

/// The longest a replaced secret may keep working after a rotation: 90 days.
pub const MAX_SECRET_OVERLAP: Duration = Duration::days(90);

/// What a client presented to authenticate.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The client id it named.
    pub client_id: String,
    /// The secret it presented, if any.
    pub secret: Option<Secret>,
    /// How it presented them.
    pub method: ClientAuthMethod,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("method", &self.method)
            .finish()
    }
}

impl ClientCredentials {
    /// `client_secret_basic`: the id and secret of an `Authorization: Basic` header.
    pub fn basic(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        ClientCredentials {
            client_id: client_id.into(),
            secret: Some(Secret::from_presented(secret)),
            method: ClientAuthMethod::ClientSecretBasic,
        }
    }

    /// `client_secret_post`: `client_id` and `client_secret` in the form.
    pub fn post(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        ClientCredentials {
            client_id: client_id.into(),
            secret: Some(Secret::from_presented(secret)),
            method: ClientAuthMethod::ClientSecretPost,
        }
    }

    /// A public client naming itself with `client_id` alone.
    pub fn public(client_id: impl Into<String>) -> Self {
        ClientCredentials {
            client_id: client_id.into(),
            secret: None,
            method: ClientAuthMethod::None,
        }
    }
}

/// What an unknown client's secret is compared with, so that an unknown client and
/// a wrong secret take the same work.
static NOBODY: LazyLock<Client> = LazyLock::new(|| {
    let never = Timestamp::MIN_UTC;
    Client {
        id: String::new(),
        zone_id: String::new(),
        organization_id: String::new(),
        tenant: None,
        name: String::new(),
        description: None,
        business_name: None,
        homepage_url: None,
        client_type: ClientType::Confidential,
        internal: false,
        owner_account_id: None,
        allowed_scopes: Vec::new(),
        allowed_grants: Vec::new(),
        scope_policy: crate::model::ScopePolicy::Explicit,
        access_type: crate::model::AccessType::Online,
        access_token_ttl_seconds: 1,
        refresh_token_ttl_seconds: 1,
        redirect_uris: Vec::new(),
        enabled: false,
        strong_auth_supported: false,
        claims_supported: false,
        secret_digest: Some(Digest::from_bytes([0; 32])),
        previous_secret: Some(RetiringSecret {
            digest: Digest::from_bytes([0; 32]),
            valid_until: never,
        }),
        created_at: never,
        updated_at: never,
        refresh_stopped_at: None,
        last_used_at: None,
    }
});

/// Whether `credentials` authenticate `client` at `now`: a confidential client by
/// one of its secrets (sent by Basic or in the form), a public client by its id
/// alone. A public client that sends a secret, or a confidential one that sends
/// none, fails.
pub(crate) fn authenticates(
    client: &Client,
    credentials: &ClientCredentials,
    now: Timestamp,
) -> bool {
    match (client.client_type, &credentials.secret, credentials.method) {
        (ClientType::Confidential, Some(secret), ClientAuthMethod::ClientSecretBasic)
        | (ClientType::Confidential, Some(secret), ClientAuthMethod::ClientSecretPost) => {
            client.secret_matches(secret.expose(), now)
        }
        (ClientType::Public, None, ClientAuthMethod::None) => true,
        _ => false,
    }
}

impl Engine {
    /// Authenticates the client of a token, introspection or revocation request
    /// (RFC 6749 §2.3): `client_secret_basic` or `client_secret_post` for a
    /// confidential client, checked in constant time against its secret and,
    /// until that one's deadline, the secret a rotation replaced; the client id
    /// alone for a public client. Every failure, an unknown client included, is
    /// the same [`Error::InvalidClient`] after the same work. A disabled client
    /// authenticates; what it may do is decided by the operation it asks for.
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id))]
    pub async fn authenticate_client(
        &self,
        zone_id: &str,
        credentials: &ClientCredentials,
    ) -> Result<Client> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            let refused = Error::InvalidClient {
                method: credentials.method,
            };
            let found = match validate::record_id("client_id", &credentials.client_id) {
                Ok(()) => self
                    .inner
                    .storage
                    .get_client(zone_id, &credentials.client_id)
                    .await?
                    .map(|c| c.record),
                Err(_) => None,
            };
            let now = self.now();
            match found {
                Some(client) if authenticates(&client, credentials, now) => Ok(client),
                Some(_) => Err(refused),
                None => {
                    // The same comparisons as for a known client, against nothing.
                    let _ = authenticates(&NOBODY, credentials, now);
                    Err(refused)
                }
            }
        }
        .await;
        observe::finish_ok("authenticate_client", result)
    }

    /// Gives a confidential client a new secret, shown this once. The secret it
    /// replaces keeps working until `previous_valid_until` (at most
    /// [`MAX_SECRET_OVERLAP`] from now; a time already past stops it at once), so
    /// that the client's instances can move to the new one; a secret replaced by an
    /// earlier rotation stops now.
    #[tracing::instrument(
        skip_all,
        fields(zone = zone_id, client_id = id, attempt = tracing::field::Empty)
    )]
    pub async fn rotate_client_secret(
        &self,
        zone_id: &str,
        id: &str,
        previous_valid_until: Timestamp,
    ) -> Result<RegisteredClient> {
        let result = async {
            let previous_valid_until = to_millis(previous_valid_until);
            let (client, secret, now) = self
                .retrying("rotate_client_secret", || async {
                    let stored = self.load_client(zone_id, id).await?;
                    let now = self.now();
                    if stored.record.client_type != ClientType::Confidential {
                        return Err(Error::invalid_input(
                            "client_type",
                            "only a confidential client has a secret to rotate",
                        ));
                    }
                    if previous_valid_until > now + MAX_SECRET_OVERLAP {
                        return Err(Error::invalid_input(
                            "previous_secret_valid_until",
                            "must be at most 90 days from now",
                        ));
                    }
                    let secret = Secret::generate(SecretKind::ClientSecret)?;
                    let mut next = stored.record.clone();
                    next.previous_secret = next.secret_digest.map(|digest| RetiringSecret {
                        digest,
                        valid_until: previous_valid_until,
                    });
                    next.secret_digest = Some(secret.digest());
                    next.updated_at = now;
                    let mut set = WriteSet::new();
                    set.push(Write::PutClient {
                        client: next.clone(),
                        expect: Expect::Version(stored.version),
                    });
                    self.apply(set).await?;
                    Ok((next, secret, now))
                })
                .await?;
            self.publish(&[Event::ClientUpdated {
                zone_id: zone_id.to_owned(),
                client_id: id.to_owned(),
                at: now,
            }]);
            Ok(RegisteredClient {
                client,
                secret: Some(secret),
            })
        }
        .await;
        observe::finish_ok("rotate_client_secret", result)
    }
}
