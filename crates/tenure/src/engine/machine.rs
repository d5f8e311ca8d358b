//! Client credentials (RFC 6749 §4.4): a confidential client's tokens for itself,
//! under one standing grant per client and resource.

use super::{Engine, Issued, Read, issued, observe};
use crate::error::Result;
use crate::lifecycle::{self, MachineRequest};
use crate::model::{Actor, Client, Grant, GrantStatus, TransitionReason};
use crate::storage::{GrantFilter, GrantQuery, Keyset, Position, SortOrder, Versioned};
use crate::time::Timestamp;
use crate::validate;

/// A client-credentials token request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCredentialsRequest {
    /// The scopes asked for; everything the client may be given when `None`.
    pub scopes: Option<Vec<String>>,
    /// The resource the token is for (RFC 8707); the client itself when `None`.
    pub resource: Option<String>,
}

impl Engine {
    /// Issues an access token to `client_id`, a confidential client the caller has
    /// authenticated ([`Engine::authenticate_client`]), for itself (RFC 6749 §4.4):
    /// scopes within what it may be given, an audience from `resource`, no refresh
    /// token. The token lives under the client's standing grant for the resource
    /// (see [`lifecycle::client_credentials`]), so it introspects, revokes and
    /// expires like any other, and storage grows with the tokens alive, not with the
    /// requests made. Disabling the client, or taking `client_credentials` from it,
    /// revokes its standing grants and with them every token they carry.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            client_id = client_id,
            grant_id = tracing::field::Empty,
            attempt = tracing::field::Empty
        )
    )]
    pub async fn client_credentials(
        &self,
        zone_id: &str,
        client_id: &str,
        request: ClientCredentialsRequest,
    ) -> Result<Issued> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            validate::record_id("client_id", client_id)?;
            let resource_id = request.resource.unwrap_or_else(|| client_id.to_owned());
            validate::reference("resource", &resource_id)?;
            let scopes = match &request.scopes {
                Some(s) => Some(validate::scopes("scope", s)?),
                None => None,
            };
            self.retrying("client_credentials", || async {
                let stored = self.load_client(zone_id, client_id).await?;
                let client = &stored.record;
                let wanted = scopes.as_deref().unwrap_or(&client.allowed_scopes);
                let allowed = self.allowed_scopes(client, client_id, wanted).await?;
                let now = self.now();
                let standing = self
                    .standing_grants(zone_id, client_id, Some(&resource_id), now)
                    .await?
                    .into_iter()
                    .next();
                let fresh = self.fresh(now)?;
                let (grant, mut changes) = lifecycle::client_credentials(
                    client,
                    &allowed,
                    MachineRequest {
                        zone_id: zone_id.to_owned(),
                        resource_id: resource_id.clone(),
                        scopes: scopes.clone(),
                    },
                    standing.as_ref().map(|g| &g.record),
                    &fresh,
                    now,
                )?;
                changes.client =
                    lifecycle::record_use(client, now, self.inner.config.last_used_period);
                let mut read = Read {
                    client: Some(stored.version),
                    ..Read::zone(zone_id)
                };
                if let Some(g) = standing.as_ref().filter(|g| g.record.id == grant.id) {
                    read = read.grant(g);
                }
                self.commit(&changes, read).await?;
                self.publish(&changes.events);
                tracing::Span::current().record("grant_id", grant.id.as_str());
                Ok(issued(grant, &mut changes, now))
            })
            .await
        }
        .await;
        observe::finish_ok("client_credentials", result)
    }

    /// A client's active standing client-credentials grants, on one resource (the
    /// newest only) or on all, newest first, read page by page from the index of
    /// the client's own grants.
    pub(crate) async fn standing_grants(
        &self,
        zone_id: &str,
        client_id: &str,
        resource_id: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<Versioned<Grant>>> {
        let mut standing = Vec::new();
        let mut position = Position::First;
        loop {
            let page = self
                .inner
                .storage
                .list_grants(&GrantQuery {
                    zone_id: zone_id.to_owned(),
                    filter: GrantFilter {
                        user_id: Some(client_id.to_owned()),
                        resource_id: resource_id.map(str::to_owned),
                        client_id: Some(client_id.to_owned()),
                        status: Some(GrantStatus::Active),
                    },
                    order: SortOrder::Descending,
                    position,
                    limit: crate::validate::MAX_PAGE_LIMIT,
                    now,
                })
                .await?;
            let last = page.items.last().map(|g| Keyset::of(&g.record));
            standing.extend(
                page.items
                    .into_iter()
                    .filter(|g| lifecycle::is_standing(&g.record)),
            );
            match last {
                Some(last) if page.more_after && (resource_id.is_none() || standing.is_empty()) => {
                    position = Position::After(last);
                }
                _ => return Ok(standing),
            }
        }
    }

    /// The revocations that follow when `next`, a client's new state, may no longer
    /// use client credentials: each of its standing grants, revoked with
    /// [`TransitionReason::ClientDisabled`].
    pub(crate) async fn standing_revocations(
        &self,
        before: &Client,
        next: &Client,
        now: Timestamp,
    ) -> Result<Vec<(Versioned<Grant>, lifecycle::Changes)>> {
        let could = before.enabled && before.allows(crate::model::GrantType::ClientCredentials);
        let can = next.enabled && next.allows(crate::model::GrantType::ClientCredentials);
        if !could || can {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for grant in self
            .standing_grants(&next.zone_id, &next.id, None, now)
            .await?
        {
            if let Some(changes) = lifecycle::revoke(
                &grant.record,
                TransitionReason::ClientDisabled,
                Actor::System,
                now,
            )? {
                out.push((grant, changes));
            }
        }
        Ok(out)
    }
}
