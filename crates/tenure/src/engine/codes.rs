//! Authorization codes through the engine: issued after the host's consent screen,
//! redeemed once at the token endpoint (see [`crate::code`] for the rules).

use chrono::Duration;

use super::{Engine, Issued, Read, issued, observe};
use crate::code::{
    self, AuthorizationCode, CodeRequest, MAX_CODE_LIFETIME, RedeemDecision, Redemption,
};
use crate::error::{Error, InvalidGrantReason, Result};
use crate::lifecycle::{self, NewGrant};
use crate::model::{Actor, GrantType, TransitionReason};
use crate::secret::{Digest, Secret, SecretKind};
use crate::storage::{Expect, Write, WriteSet};
use crate::time::Timestamp;
use crate::validate;

/// An authorization code just issued; the code is shown this once.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    /// The code, for the redirect back to the client.
    pub code: Secret,
    /// Seconds until it expires.
    pub expires_in: i64,
}

impl Engine {
    /// Issues an authorization code for what a user approved on the host's consent
    /// screen (RFC 6749 §4.1.2). The client must be enabled, allowed
    /// `authorization_code`, and the redirect URI exactly one of its registered
    /// URIs; a PKCE challenge must be `S256`, and is required of public clients and
    /// of every client where [`EngineConfig::pkce`](super::EngineConfig::pkce) says
    /// so. The scopes must be within the client's policy now; redemption applies
    /// the policy again.
    #[tracing::instrument(
        skip_all,
        fields(zone = zone_id, client_id = request.client_id.as_str())
    )]
    pub async fn issue_code(&self, zone_id: &str, request: CodeRequest) -> Result<IssuedCode> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            validate::record_id("client_id", &request.client_id)?;
            validate::reference("user_id", &request.user_id)?;
            validate::reference("resource_id", &request.resource_id)?;
            validate::provider("provider_id", &request.provider_id)?;
            if let Some(org) = &request.organization_id {
                validate::reference("organization_id", org)?;
            }
            let request = CodeRequest {
                scopes: validate::scopes("scopes", &request.scopes)?,
                ..request
            };
            let client = self.load_client(zone_id, &request.client_id).await?.record;
            let allowed = self
                .allowed_scopes(&client, &request.user_id, &request.scopes)
                .await?;
            let challenge =
                code::check_issue(&client, &request, &allowed, &self.inner.config.pkce)?;
            let now = self.now();
            let lifetime = self
                .inner
                .config
                .code_lifetime
                .clamp(Duration::seconds(1), MAX_CODE_LIFETIME);
            let secret = Secret::generate(SecretKind::AuthorizationCode)?;
            let record = AuthorizationCode {
                code: secret.digest(),
                zone_id: zone_id.to_owned(),
                client_id: request.client_id,
                user_id: request.user_id,
                resource_id: request.resource_id,
                provider_id: request.provider_id,
                organization_id: request.organization_id,
                scopes: request.scopes,
                redirect_uri: request.redirect_uri,
                code_challenge: challenge,
                created_at: now,
                expires_at: now + lifetime,
                grant_id: None,
            };
            let mut set = WriteSet::new();
            set.push(Write::PutAuthorizationCode {
                code: record,
                expect: Expect::Absent,
            });
            self.apply(set).await?;
            Ok(IssuedCode {
                code: secret,
                expires_in: lifetime.num_seconds(),
            })
        }
        .await;
        observe::finish_ok("issue_code", result)
    }

    /// Redeems an authorization code for `client_id`, a client the caller has
    /// authenticated ([`Engine::authenticate_client`]), at the token endpoint (RFC
    /// 6749 §4.1.3, RFC 7636 §4.6): creates the grant and its tokens as
    /// [`Engine::authorize`] does, under the client's policy now (scopes it no
    /// longer allows are dropped; none left is [`Error::InvalidScope`]). An unknown
    /// or expired code, another client's code, a redirect URI that differs from the
    /// authorization request's, or a verifier that does not match is
    /// [`Error::InvalidGrant`]. A code presented again after its redemption is
    /// refused with [`InvalidGrantReason::CodeReused`] and revokes the grant it
    /// created, with a history entry saying why.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            client_id = client_id,
            grant_id = tracing::field::Empty,
            attempt = tracing::field::Empty
        )
    )]
    pub async fn redeem_code(
        &self,
        zone_id: &str,
        client_id: &str,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<Issued> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            validate::record_id("client_id", client_id)?;
            let digest = Digest::of(code);
            let redemption = Redemption {
                client_id,
                redirect_uri,
                code_verifier,
            };
            let (outcome, events) = self
                .retrying("redeem_code", || async {
                    let stored = self
                        .inner
                        .storage
                        .get_authorization_code(zone_id, &digest)
                        .await?
                        .ok_or(Error::InvalidGrant {
                            reason: InvalidGrantReason::UnknownCode,
                        })?;
                    let now = self.now();
                    match code::check_redeem(&stored.record, redemption, now)? {
                        RedeemDecision::Reused { grant_id } => {
                            let events = self.revoke_for_reuse(zone_id, &grant_id, now).await?;
                            Ok((Err(grant_id), events))
                        }
                        RedeemDecision::Redeem => {
                            let approved = &stored.record;
                            let client = self.load_client(zone_id, client_id).await?;
                            let allowed = self
                                .allowed_scopes(&client.record, &approved.user_id, &approved.scopes)
                                .await?;
                            let scopes: Vec<String> = approved
                                .scopes
                                .iter()
                                .filter(|s| allowed.contains(s))
                                .cloned()
                                .collect();
                            if scopes.is_empty() {
                                return Err(Error::InvalidScope {
                                    scopes: approved.scopes.clone(),
                                });
                            }
                            let fresh = self.fresh(now)?;
                            let (grant, mut changes) = lifecycle::authorize(
                                &client.record,
                                &allowed,
                                NewGrant {
                                    zone_id: zone_id.to_owned(),
                                    organization_id: approved
                                        .organization_id
                                        .clone()
                                        .unwrap_or_else(|| client.record.organization_id.clone()),
                                    user_id: approved.user_id.clone(),
                                    resource_id: approved.resource_id.clone(),
                                    provider_id: approved.provider_id.clone(),
                                    scopes,
                                    expires_at: None,
                                    grant_type: GrantType::AuthorizationCode,
                                    actor: Actor::User {
                                        id: approved.user_id.clone(),
                                    },
                                },
                                &fresh,
                                now,
                            )?;
                            changes.client = lifecycle::record_use(
                                &client.record,
                                now,
                                self.inner.config.last_used_period,
                            );
                            let redeemed = AuthorizationCode {
                                grant_id: Some(grant.id.clone()),
                                ..approved.clone()
                            };
                            let read = Read {
                                client: Some(client.version),
                                code: Some((redeemed, stored.version)),
                                ..Read::zone(zone_id)
                            };
                            self.commit(&changes, read).await?;
                            let events = std::mem::take(&mut changes.events);
                            Ok((Ok(issued(grant, &mut changes, now)), events))
                        }
                    }
                })
                .await?;
            self.publish(&events);
            match outcome {
                Ok(tokens) => {
                    tracing::Span::current().record("grant_id", tokens.grant.id.as_str());
                    Ok(tokens)
                }
                Err(grant_id) => {
                    tracing::warn!(
                        zone = zone_id,
                        grant_id = grant_id.as_str(),
                        client_id,
                        "authorization code reused; its grant is revoked"
                    );
                    Err(Error::InvalidGrant {
                        reason: InvalidGrantReason::CodeReused,
                    })
                }
            }
        }
        .await;
        observe::finish_ok("redeem_code", result)
    }

    /// Revokes the grant a reused code created, if it is still active; returns the
    /// events to send.
    async fn revoke_for_reuse(
        &self,
        zone_id: &str,
        grant_id: &str,
        now: Timestamp,
    ) -> Result<Vec<crate::event::Event>> {
        let Some(grant) = self.inner.storage.get_grant(zone_id, grant_id).await? else {
            // Deleted since: nothing left to revoke.
            return Ok(Vec::new());
        };
        match lifecycle::revoke(
            &grant.record,
            TransitionReason::CodeReused,
            Actor::System,
            now,
        ) {
            Ok(Some(changes)) => {
                self.commit(&changes, Read::zone(zone_id).grant(&grant))
                    .await?;
                Ok(changes.events)
            }
            // Revoked or expired already.
            Ok(None) | Err(Error::InvalidTransition { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Deletes up to `limit` expired authorization codes of a zone in one write set;
    /// returns how many, and whether more remain.
    pub(crate) async fn sweep_codes(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<(usize, bool)> {
        let storage = &self.inner.storage;
        self.retrying("sweep_expired", || async {
            let mut due = storage
                .expired_authorization_codes(zone_id, now, limit.saturating_add(1))
                .await?;
            let more = due.len() > limit;
            due.truncate(limit);
            if due.is_empty() {
                return Ok((0, more));
            }
            let mut set = WriteSet::new();
            for code in &due {
                set.push(Write::DeleteAuthorizationCode {
                    zone_id: zone_id.to_owned(),
                    code: code.record.code,
                    expect: code.version,
                });
            }
            self.apply(set).await?;
            Ok((due.len(), more))
        })
        .await
    }
}
