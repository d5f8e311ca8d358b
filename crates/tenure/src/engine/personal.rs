//! Personal grants (seed 002), always addressed by their owner.

use crate::cursor::{self, Listing};
use crate::error::{Error, RecordKind, Result};
use crate::model::GrantStatus;
use crate::personal::{CHALLENGE_PREFIX, NewPersonalGrant, PersonalGrant, PersonalGrantUpdate};
use crate::storage::{Expect, GrantFilter, Keyset, SortOrder, Versioned, Write, WriteSet};
use crate::time::to_millis;
use crate::validate;

use super::Engine;
use super::observe::{self, Outcome};

/// The longest personal-grant name.
pub const MAX_NAME_LEN: usize = 255;

/// A page of a user's personal grants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonalGrantPage {
    /// Newest first, as they read now.
    pub items: Vec<PersonalGrant>,
    /// Present when more follow: pass it as the next `cursor`.
    pub next_cursor: Option<String>,
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid_input(
            field,
            format!("must be at most {max} bytes"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid_input(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid_input("name", "must not be empty"));
    }
    check_text("name", name, MAX_NAME_LEN)
}

/// The filter that binds a personal-grant cursor to its owner.
fn owner_filter(user_id: &str) -> GrantFilter {
    GrantFilter {
        user_id: Some(user_id.to_owned()),
        ..GrantFilter::default()
    }
}

impl Engine {
    /// Creates a personal grant for `user_id`. Without an expiry it never expires.
    #[tracing::instrument(skip_all, fields(zone = zone_id, grant_id = tracing::field::Empty))]
    pub async fn create_personal_grant(
        &self,
        zone_id: &str,
        user_id: &str,
        request: NewPersonalGrant,
    ) -> Result<PersonalGrant> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            validate::reference("user_id", user_id)?;
            let name = request.name.unwrap_or_else(|| "personal grant".to_owned());
            check_name(&name)?;
            if let Some(d) = &request.description {
                check_text("description", d, crate::client::MAX_TEXT_LEN)?;
            }
            let scopes = match request.scope.as_deref() {
                None | Some("") => Vec::new(),
                Some(scope) => validate::scope_string("scope", scope)?,
            };
            let now = self.now();
            let expires_at = request.expires_at.map(to_millis);
            if expires_at.is_some_and(|at| at <= now) {
                return Err(Error::invalid_input(
                    "expiresAt",
                    "must be later than the current time",
                ));
            }
            let id = self.new_id(now);
            let grant = PersonalGrant {
                challenge: format!("{CHALLENGE_PREFIX}{id}"),
                id,
                zone_id: zone_id.to_owned(),
                user_id: user_id.to_owned(),
                name,
                description: request.description,
                scopes,
                status: GrantStatus::Active,
                created_at: now,
                updated_at: now,
                expires_at,
            };
            let mut set = WriteSet::new();
            set.push(Write::PutPersonalGrant {
                grant: grant.clone(),
                expect: Expect::Absent,
            });
            self.apply(set).await?;
            Ok(grant)
        }
        .await;
        if let Ok(grant) = &result {
            tracing::Span::current().record("grant_id", grant.id.as_str());
        }
        observe::finish_ok("create_personal_grant", result)
    }

    /// Loads a personal grant of `user_id`; another user's is not found.
    async fn load_personal_grant(
        &self,
        zone_id: &str,
        user_id: &str,
        id: &str,
    ) -> Result<Versioned<PersonalGrant>> {
        validate::reference("zone_id", zone_id)?;
        validate::reference("user_id", user_id)?;
        validate::record_id("id", id)?;
        match self.inner.storage.get_personal_grant(zone_id, id).await? {
            Some(g) if g.record.user_id == user_id => Ok(g),
            _ => Err(Error::not_found(RecordKind::PersonalGrant, id)),
        }
    }

    /// One of `user_id`'s personal grants, as it reads now.
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id, grant_id = id))]
    pub async fn get_personal_grant(
        &self,
        zone_id: &str,
        user_id: &str,
        id: &str,
    ) -> Result<PersonalGrant> {
        let result = async {
            let grant = self.load_personal_grant(zone_id, user_id, id).await?;
            Ok(grant.record.as_of(self.now()))
        }
        .await;
        observe::finish_ok("get_personal_grant", result)
    }

    /// `user_id`'s personal grants, newest first, from `cursor` on, at most `limit`
    /// (1 to 100, default 50).
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id))]
    pub async fn list_personal_grants(
        &self,
        zone_id: &str,
        user_id: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<PersonalGrantPage> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            validate::reference("user_id", user_id)?;
            let limit = validate::limit(limit.unwrap_or(validate::DEFAULT_PAGE_LIMIT))?;
            let key = &self.inner.cursor_key;
            let filter = owner_filter(user_id);
            let after = match cursor {
                Some(c) => Some(cursor::decode(
                    key,
                    Listing::PersonalGrants,
                    zone_id,
                    &filter,
                    SortOrder::Descending,
                    c,
                )?),
                None => None,
            };
            let mut items = self
                .inner
                .storage
                .list_personal_grants(zone_id, user_id, after.as_ref(), limit + 1)
                .await?;
            let more = items.len() > limit;
            items.truncate(limit);
            let next_cursor = match (more, items.last()) {
                (true, Some(last)) => Some(cursor::encode(
                    key,
                    Listing::PersonalGrants,
                    zone_id,
                    &filter,
                    SortOrder::Descending,
                    &Keyset {
                        created_at: last.record.created_at,
                        id: last.record.id.clone(),
                    },
                )?),
                _ => None,
            };
            let now = self.now();
            Ok(PersonalGrantPage {
                items: items.into_iter().map(|g| g.record.as_of(now)).collect(),
                next_cursor,
            })
        }
        .await;
        observe::finish_ok("list_personal_grants", result)
    }

    /// Changes the name or description of one of `user_id`'s personal grants.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            grant_id = id,
            attempt = tracing::field::Empty
        )
    )]
    pub async fn update_personal_grant(
        &self,
        zone_id: &str,
        user_id: &str,
        id: &str,
        update: &PersonalGrantUpdate,
    ) -> Result<PersonalGrant> {
        let result = async {
            if let Some(name) = &update.name {
                check_name(name)?;
            }
            if let Some(Some(d)) = &update.description {
                check_text("description", d, crate::client::MAX_TEXT_LEN)?;
            }
            self.retrying("update_personal_grant", || async {
                let stored = self.load_personal_grant(zone_id, user_id, id).await?;
                let mut next = stored.record.clone();
                if let Some(name) = &update.name {
                    next.name = name.clone();
                }
                if let Some(description) = &update.description {
                    next.description = description.clone();
                }
                if next == stored.record {
                    return Ok(next.as_of(self.now()));
                }
                next.updated_at = next.updated_at.max(self.now());
                let mut set = WriteSet::new();
                set.push(Write::PutPersonalGrant {
                    grant: next.clone(),
                    expect: Expect::Version(stored.version),
                });
                self.apply(set).await?;
                Ok(next.as_of(self.now()))
            })
            .await
        }
        .await;
        observe::finish_ok("update_personal_grant", result)
    }

    /// Revokes one of `user_id`'s personal grants; the record stays, revoked.
    /// Revoking a revoked one changes nothing; an expired one cannot be revoked.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            grant_id = id,
            attempt = tracing::field::Empty
        )
    )]
    pub async fn revoke_personal_grant(
        &self,
        zone_id: &str,
        user_id: &str,
        id: &str,
    ) -> Result<PersonalGrant> {
        let result = async {
            self.retrying("revoke_personal_grant", || async {
                let stored = self.load_personal_grant(zone_id, user_id, id).await?;
                let now = self.now();
                match stored.record.status_at(now) {
                    GrantStatus::Revoked => Ok((stored.record, false)),
                    GrantStatus::Expired => Err(Error::InvalidTransition {
                        from: GrantStatus::Expired,
                        to: GrantStatus::Revoked,
                    }),
                    GrantStatus::Active => {
                        let mut next = stored.record.clone();
                        next.status = GrantStatus::Revoked;
                        next.updated_at = next.updated_at.max(now);
                        let mut set = WriteSet::new();
                        set.push(Write::PutPersonalGrant {
                            grant: next.clone(),
                            expect: Expect::Version(stored.version),
                        });
                        self.apply(set).await?;
                        tracing::info!(zone = zone_id, grant_id = id, "personal grant revoked");
                        Ok((next, true))
                    }
                }
            })
            .await
        }
        .await;
        observe::finish("revoke_personal_grant", result, |(_, revoked)| {
            Outcome::revoked_if(*revoked)
        })
        .map(|(grant, _)| grant)
    }

    /// Deletes one of `user_id`'s personal grants; the record is gone.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            grant_id = id,
            attempt = tracing::field::Empty
        )
    )]
    pub async fn delete_personal_grant(
        &self,
        zone_id: &str,
        user_id: &str,
        id: &str,
    ) -> Result<()> {
        let result = async {
            self.retrying("delete_personal_grant", || async {
                let stored = self.load_personal_grant(zone_id, user_id, id).await?;
                let mut set = WriteSet::new();
                set.push(Write::DeletePersonalGrant {
                    zone_id: zone_id.to_owned(),
                    id: id.to_owned(),
                    expect: stored.version,
                });
                self.apply(set).await
            })
            .await
        }
        .await;
        observe::finish_ok("delete_personal_grant", result)
    }
}
