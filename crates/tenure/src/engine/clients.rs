//! Clients: registration, typed, JSON Patch and merge updates, their dry-run impact,
//! and the scope policy applied at issuance.

use crate::client::{
    ClientRegistration, ClientUpdate, Impact, RegisteredClient, apply_merge, apply_patch,
    apply_policy_change, validate_client,
};
use crate::error::{Error, RecordKind, Result};
use crate::event::Event;
use crate::model::{Actor, Client, ClientType, GrantStatus, ScopePolicy};
use crate::secret::{Secret, SecretKind};
use crate::storage::{Expect, SortOrder, Versioned, Write, WriteSet};
use crate::validate;

use super::observe;
use super::{Engine, GrantsOf, ListGrants};

/// A change to a client, in any of the forms the engine takes.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientChange {
    /// A typed update.
    Update(ClientUpdate),
    /// An RFC 6902 JSON Patch.
    Patch(json_patch::Patch),
    /// An RFC 7396 merge patch (a partial client object).
    Merge(serde_json::Value),
}

/// A page of a zone's clients, in id order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientPage {
    /// The clients.
    pub items: Vec<Client>,
    /// Present when more clients follow: the last id of this page, to pass as
    /// `after`.
    pub after_cursor: Option<String>,
}

impl Engine {
    /// Registers a client. A confidential client's secret is returned this once.
    #[tracing::instrument(skip_all, fields(zone = zone_id, client_id = tracing::field::Empty))]
    pub async fn register_client(
        &self,
        zone_id: &str,
        registration: ClientRegistration,
    ) -> Result<RegisteredClient> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            let now = self.now();
            let id = match &registration.id {
                Some(id) => id.clone(),
                None => self.new_id(now),
            };
            let secret = match registration.client_type {
                ClientType::Confidential => Some(Secret::generate(SecretKind::ClientSecret)?),
                ClientType::Public => None,
            };
            let client = validate_client(Client {
                id,
                zone_id: zone_id.to_owned(),
                organization_id: registration.organization_id,
                tenant: registration.tenant,
                name: registration.name,
                description: registration.description,
                business_name: registration.business_name,
                homepage_url: registration.homepage_url,
                client_type: registration.client_type,
                internal: registration.internal,
                owner_account_id: registration.owner_account_id,
                allowed_scopes: registration.allowed_scopes,
                allowed_grants: registration.allowed_grants,
                scope_policy: registration.scope_policy,
                access_type: registration.access_type,
                access_token_ttl_seconds: registration.access_token_ttl_seconds,
                refresh_token_ttl_seconds: registration.refresh_token_ttl_seconds,
                redirect_uris: registration.redirect_uris,
                enabled: registration.enabled,
                strong_auth_supported: registration.strong_auth_supported,
                claims_supported: registration.claims_supported,
                secret_digest: secret.as_ref().map(Secret::digest),
                previous_secret: None,
                created_at: now,
                updated_at: now,
                refresh_stopped_at: None,
                last_used_at: None,
            })?;
            self.check_owner_can_grant(&client).await?;
            let mut set = WriteSet::new();
            set.push(Write::PutClient {
                client: client.clone(),
                expect: Expect::Absent,
            });
            match self.apply(set).await {
                Ok(()) => {}
                Err(Error::Conflict) => {
                    return Err(Error::AlreadyExists {
                        kind: RecordKind::Client,
                        id: client.id,
                    });
                }
                Err(e) => return Err(e),
            }
            self.publish(&[Event::ClientRegistered {
                zone_id: zone_id.to_owned(),
                client_id: client.id.clone(),
                at: now,
            }]);
            Ok(RegisteredClient { client, secret })
        }
        .await;
        if let Ok(registered) = &result {
            tracing::Span::current().record("client_id", registered.client.id.as_str());
        }
        observe::finish_ok("register_client", result)
    }

    pub(crate) async fn load_client(&self, zone_id: &str, id: &str) -> Result<Versioned<Client>> {
        validate::reference("zone_id", zone_id)?;
        validate::record_id("client_id", id)?;
        self.inner
            .storage
            .get_client(zone_id, id)
            .await?
            .ok_or_else(|| Error::not_found(RecordKind::Client, id))
    }

    /// A client by id.
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id, client_id = id))]
    pub async fn get_client(&self, zone_id: &str, id: &str) -> Result<Client> {
        let result = async { Ok(self.load_client(zone_id, id).await?.record) }.await;
        observe::finish_ok("get_client", result)
    }

    /// Clients of a zone by id, after `after`, at most `limit` (1 to 100).
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id))]
    pub async fn list_clients(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Client>> {
        let result = self.read_clients(zone_id, after, limit, 0).await;
        observe::finish_ok("list_clients", result)
    }

    /// A page of a zone's clients by id, after `after`, at most `limit` (1 to 100),
    /// with the cursor of the next page when more clients follow.
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id))]
    pub async fn list_clients_page(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ClientPage> {
        let result = async {
            // One more than the page tells whether more follow.
            let mut items = self.read_clients(zone_id, after, limit, 1).await?;
            let more = items.len() > limit;
            items.truncate(limit);
            let after_cursor = if more {
                items.last().map(|c| c.id.clone())
            } else {
                None
            };
            Ok(ClientPage {
                items,
                after_cursor,
            })
        }
        .await;
        observe::finish_ok("list_clients", result)
    }

    /// Up to `limit + extra` clients after `after`, once `limit` is checked.
    async fn read_clients(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
        extra: usize,
    ) -> Result<Vec<Client>> {
        validate::reference("zone_id", zone_id)?;
        let limit = validate::limit(limit)?;
        if let Some(after) = after {
            validate::record_id("after", after)?;
        }
        let page = self
            .inner
            .storage
            .list_clients(zone_id, after, limit + extra)
            .await?;
        Ok(page.into_iter().map(|c| c.record).collect())
    }

    /// Changes a client's policy or details with a typed update. Affects future
    /// authorization and refresh only: issued tokens keep their scopes and expiry.
    pub async fn update_client(
        &self,
        zone_id: &str,
        id: &str,
        update: &ClientUpdate,
    ) -> Result<Client> {
        self.change_client(zone_id, id, &ClientChange::Update(update.clone()))
            .await
    }

    /// Changes a client with an RFC 6902 JSON Patch: all of it or nothing; see
    /// [`apply_patch`](crate::client::apply_patch) for what may be patched.
    pub async fn patch_client(
        &self,
        zone_id: &str,
        id: &str,
        patch: &json_patch::Patch,
    ) -> Result<Client> {
        self.change_client(zone_id, id, &ClientChange::Patch(patch.clone()))
            .await
    }

    /// Changes a client with a merge patch (seed 004's partial update); the same
    /// validation as every other change.
    pub async fn merge_client(
        &self,
        zone_id: &str,
        id: &str,
        merge: &serde_json::Value,
    ) -> Result<Client> {
        self.change_client(zone_id, id, &ClientChange::Merge(merge.clone()))
            .await
    }

    /// The client `change` would make of `client`, validated, owner rights checked.
    async fn changed_client(&self, client: &Client, change: &ClientChange) -> Result<Client> {
        let next = match change {
            ClientChange::Update(update) => validate_client(update.apply_to(client))?,
            ClientChange::Patch(patch) => apply_patch(client, patch)?,
            ClientChange::Merge(merge) => apply_merge(client, merge)?,
        };
        self.check_owner_can_grant(&next).await?;
        Ok(next)
    }

    /// Applies a change of any form.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            client_id = id,
            attempt = tracing::field::Empty
        )
    )]
    pub async fn change_client(
        &self,
        zone_id: &str,
        id: &str,
        change: &ClientChange,
    ) -> Result<Client> {
        let result = async {
            let (next, changed, now) = self
                .retrying("change_client", || async {
                    let stored = self.load_client(zone_id, id).await?;
                    let now = self.now();
                    let next = self.changed_client(&stored.record, change).await?;
                    if next == stored.record {
                        return Ok((next, None, now));
                    }
                    let next = apply_policy_change(&stored.record, next, now);
                    let mut set = WriteSet::new();
                    set.push(Write::PutClient {
                        client: next.clone(),
                        expect: Expect::Version(stored.version),
                    });
                    // A client that may no longer use client credentials loses the
                    // tokens it holds for itself, in the same write set.
                    let mut events = Vec::new();
                    for (grant, changes) in self
                        .standing_revocations(&stored.record, &next, now)
                        .await?
                    {
                        if let Some(revoked) = changes.grant {
                            set.push(Write::PutGrant {
                                grant: revoked,
                                expect: Expect::Version(grant.version),
                            });
                        }
                        for t in changes.transitions {
                            set.push(Write::AppendTransition(t));
                        }
                        events.extend(changes.events);
                    }
                    self.apply(set).await?;
                    Ok((next, Some(events), now))
                })
                .await?;
            if let Some(events) = changed {
                self.publish(&[Event::ClientUpdated {
                    zone_id: zone_id.to_owned(),
                    client_id: id.to_owned(),
                    at: now,
                }]);
                self.publish(&events);
            }
            Ok(next)
        }
        .await;
        observe::finish_ok("change_client", result)
    }

    /// Deletes a client, having first revoked every active grant made to it.
    ///
    /// In order:
    ///
    /// 1. Every active grant of the client is revoked, by [`Actor::Admin`], as
    ///    [`Engine::revoke_grants_of`] revokes them: each with a history entry and
    ///    its events, a page at a time. The tokens under them read inactive at once
    ///    (a token is live only while its grant is active).
    /// 2. The client record is deleted, in a write set expecting the version just
    ///    read ([`Write::DeleteClient`]), tried again on a conflict; then
    ///    [`Event::ClientDeleted`] is published.
    /// 3. The client's grants are read once more, and any made active meanwhile (by
    ///    an authorization that read the client before step 2) is revoked too.
    ///
    /// Its grants stay, revoked, in listings and with their history; deleting them
    /// is [`Engine::delete_grant`]'s work. A refresh token of a client that no
    /// longer exists is refused and introspects inactive, whatever its grant. The
    /// id may be registered again, and the new client starts with no active grant.
    ///
    /// No grant-making operation (authorization, code redemption, device approval,
    /// client credentials) holds its write set to the client's version, so one
    /// that read the client before step 2 can still commit a grant after it. Step 3
    /// revokes every such grant committed before it lists; what escapes it is a
    /// grant from an attempt that was in flight across the whole deletion (it read
    /// the client before step 2 and committed after step 3's listing): its access
    /// token introspects active until it expires, at most the client's access-token
    /// lifetime; its refresh token is refused; and it is revoked by
    /// [`Engine::revoke_grants_of`] with [`GrantsOf::Client`](super::GrantsOf::Client).
    /// An attempt that reads the client after step 2 finds no client.
    ///
    /// An error after step 2 leaves the client deleted; revoking its grants with
    /// [`Engine::revoke_grants_of`] completes the work.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            client_id = id,
            attempt = tracing::field::Empty
        )
    )]
    pub async fn delete_client(&self, zone_id: &str, id: &str) -> Result<()> {
        let result = async {
            self.load_client(zone_id, id).await?;
            let of = GrantsOf::Client(id.to_owned());
            self.revoke_every_grant_of(zone_id, &of, Actor::Admin)
                .await?;
            let now = self
                .retrying("delete_client", || async {
                    let stored = self.load_client(zone_id, id).await?;
                    let mut set = WriteSet::new();
                    set.push(Write::DeleteClient {
                        zone_id: zone_id.to_owned(),
                        id: id.to_owned(),
                        expect: stored.version,
                    });
                    self.apply(set).await?;
                    Ok(self.now())
                })
                .await?;
            self.publish(&[Event::ClientDeleted {
                zone_id: zone_id.to_owned(),
                client_id: id.to_owned(),
                at: now,
            }]);
            self.revoke_every_grant_of(zone_id, &of, Actor::Admin)
                .await?;
            Ok(())
        }
        .await;
        observe::finish_ok("delete_client", result)
    }

    /// What `change` would do to the grants already made to the client, without
    /// changing anything. Counted from the client's grant index, not from a scan of
    /// the zone.
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id, client_id = id))]
    pub async fn client_change_impact(
        &self,
        zone_id: &str,
        id: &str,
        change: &ClientChange,
    ) -> Result<Impact> {
        let result = async {
            let before = self.load_client(zone_id, id).await?.record;
            let after = self.changed_client(&before, change).await?;
            let stops_refresh = !after.enabled
                || (before.issues_refresh_tokens() && !after.issues_refresh_tokens());
            let mut impact = Impact {
                stops_authorization: before.enabled && !after.enabled,
                ..Impact::default()
            };
            let mut request = ListGrants {
                client_id: Some(id.to_owned()),
                status: Some(GrantStatus::Active),
                order: SortOrder::Ascending,
                limit: Some(validate::MAX_PAGE_LIMIT),
                ..ListGrants::default()
            };
            loop {
                let page = self.grants_page(zone_id, &request).await?;
                for grant in &page.items {
                    impact.active_grants += 1;
                    let chain = grant.refresh_token_set;
                    if chain {
                        impact.refresh_chains += 1;
                        if stops_refresh {
                            impact.stopped_refresh_chains += 1;
                        }
                    }
                    let now_allowed = self
                        .allowed_scopes(&before, &grant.user_id, &grant.scopes)
                        .await?;
                    let then_allowed = self
                        .allowed_scopes(&after, &grant.user_id, &grant.scopes)
                        .await?;
                    let count = |allowed: &[String]| {
                        grant.scopes.iter().filter(|s| allowed.contains(s)).count()
                    };
                    if count(&then_allowed) < count(&now_allowed) {
                        impact.narrowed_grants += 1;
                    }
                }
                match page.after_cursor {
                    Some(c) => request.after = Some(c),
                    None => break,
                }
            }
            Ok(impact)
        }
        .await;
        observe::finish_ok("client_change_impact", result)
    }

    /// An account-owned client may only be allowed scopes its owner can grant
    /// (seed 004); an administrator's resolver answer grants all.
    async fn check_owner_can_grant(&self, client: &Client) -> Result<()> {
        let Some(owner) = &client.owner_account_id else {
            return Ok(());
        };
        if client.scope_policy == ScopePolicy::Inherit && client.allowed_scopes.is_empty() {
            return Ok(());
        }
        let grantable = self
            .inner
            .resolver
            .grantable_scopes(&client.zone_id, owner)
            .await?
            .filter(&client.allowed_scopes);
        crate::lifecycle::refuse_outside(&client.allowed_scopes, &grantable)
    }

    /// What `client` may be given now, of `wanted`, under its scope policy.
    pub(crate) async fn allowed_scopes(
        &self,
        client: &Client,
        user_id: &str,
        wanted: &[String],
    ) -> Result<Vec<String>> {
        match client.scope_policy {
            ScopePolicy::Explicit => Ok(client.allowed_scopes.clone()),
            ScopePolicy::Inherit => {
                // A built-in client has no owner: the approving account's rights apply.
                let account = client.owner_account_id.as_deref().unwrap_or(user_id);
                let grantable = self
                    .inner
                    .resolver
                    .grantable_scopes(&client.zone_id, account)
                    .await?;
                Ok(grantable.filter(wanted))
            }
        }
    }
}
