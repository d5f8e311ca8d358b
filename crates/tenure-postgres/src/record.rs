//! Records as kept in their `record` column: the core's JSON form of each, and for
//! a grant its [`RefreshChain`] beside it.
//!
//! The seed's Grant JSON, which the core's [`Grant`] serializes to, has no place
//! for the chain (the core leaves it out and reads it as the default), so a stored
//! grant carries it under a `refresh` key of its own:
//! `{"id": …, "refresh_token_set": true, "refresh": {"generation": 3, "family": "…",
//! "current": "…", "previous": "…"}}`, digests in hex, absent ones left out.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tenure::{
    AuthorizationCode, Client, DeviceAuthorization, Grant, PersonalGrant, RefreshChain, Token,
};

/// A grant as written to its `record` column: its JSON and its refresh chain.
#[derive(Debug, Serialize)]
pub(crate) struct GrantRecord<'a> {
    #[serde(flatten)]
    grant: &'a Grant,
    refresh: &'a RefreshChain,
}

impl<'a> GrantRecord<'a> {
    pub(crate) fn new(grant: &'a Grant) -> Self {
        GrantRecord {
            grant,
            refresh: &grant.refresh,
        }
    }
}

/// A grant as read from its `record` column.
#[derive(Deserialize)]
pub(crate) struct StoredGrant {
    #[serde(flatten)]
    grant: Grant,
    /// Missing only from a grant written by a process that predates schema version
    /// 2 (one left running while another migrated the schema): such a grant gets
    /// the chain the migration gives every grant it finds.
    #[serde(default = "legacy_chain")]
    refresh: RefreshChain,
}

fn legacy_chain() -> RefreshChain {
    RefreshChain::LEGACY
}

/// A kind of record, as decoded from its `record` column.
pub(crate) trait Record: Sized {
    /// The kind's name in [`PostgresError::Corrupt`](crate::PostgresError::Corrupt).
    const KIND: &'static str;
    /// The JSON form read from the column.
    type Stored: DeserializeOwned;
    /// The record from its stored form.
    fn from_stored(stored: Self::Stored) -> Self;
}

impl Record for Grant {
    const KIND: &'static str = "grant";
    type Stored = StoredGrant;
    fn from_stored(stored: StoredGrant) -> Self {
        Grant {
            refresh: stored.refresh,
            ..stored.grant
        }
    }
}

/// Records stored as exactly the core's JSON.
macro_rules! plain_records {
    ($($record:ty => $kind:literal,)+) => {
        $(
            impl Record for $record {
                const KIND: &'static str = $kind;
                type Stored = $record;
                fn from_stored(stored: $record) -> Self {
                    stored
                }
            }
        )+
    };
}

plain_records! {
    Client => "client",
    Token => "token",
    PersonalGrant => "personal grant",
    DeviceAuthorization => "device authorization",
    AuthorizationCode => "authorization code",
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure::{Digest, GrantStatus};

    fn grant(refresh: RefreshChain) -> Grant {
        let t = chrono::DateTime::from_timestamp_millis(1_893_456_000_123).unwrap_or_default();
        Grant {
            id: "grant-1".into(),
            zone_id: "zone-1".into(),
            organization_id: "org-1".into(),
            user_id: "user-1".into(),
            resource_id: "resource-1".into(),
            provider_id: "default".into(),
            client_id: "client-1".into(),
            scopes: vec!["read".into()],
            status: GrantStatus::Active,
            created_at: t,
            updated_at: t,
            expires_at: t,
            refreshed_at: Some(t),
            refresh_token_set: true,
            refresh,
        }
    }

    fn read(json: &serde_json::Value) -> Result<Grant, serde_json::Error> {
        serde_json::from_value::<StoredGrant>(json.clone()).map(Grant::from_stored)
    }

    #[test]
    fn a_grant_keeps_its_refresh_chain() -> Result<(), serde_json::Error> {
        for chain in [
            RefreshChain::default(),
            RefreshChain::LEGACY,
            RefreshChain {
                generation: u64::MAX,
                family: Some(Digest::of("family")),
                current: Some(Digest::of("current")),
                previous: Some(Digest::of("previous")),
            },
        ] {
            let g = grant(chain);
            let json = serde_json::to_value(GrantRecord::new(&g))?;
            assert_eq!(json["id"], "grant-1");
            assert_eq!(json["active"], true);
            assert_eq!(json["refresh"]["generation"], chain.generation);
            assert_eq!(read(&json)?, g);
        }
        Ok(())
    }

    #[test]
    fn a_grant_without_a_chain_reads_as_legacy() -> Result<(), serde_json::Error> {
        let g = grant(RefreshChain::default());
        let seed_form = serde_json::to_value(&g)?;
        assert!(seed_form.get("refresh").is_none());
        assert_eq!(
            read(&seed_form)?,
            Grant {
                refresh: RefreshChain::LEGACY,
                ..g
            }
        );
        Ok(())
    }
}
