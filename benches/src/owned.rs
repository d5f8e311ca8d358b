//! A store bound to something that must live as long as it.

use async_trait::async_trait;
use tenure::{
    Client, DeviceAuthorization, Digest, Grant, GrantFilter, GrantPage, GrantQuery, Keyset,
    PersonalGrant, Storage, Timestamp, Token, TokenAndGrant, Transition, Versioned, WriteSet,
};

/// A store together with something that must live exactly as long as it (a guard
/// that drops a PostgreSQL schema). Every call goes straight to the store, the
/// methods the trait gives defaults for included (left out, the store's own
/// versions would be bypassed); the store is dropped first.
#[derive(Debug)]
pub struct Owned<S, G> {
    /// The store.
    pub storage: S,
    /// Dropped after the store.
    pub guard: G,
}

type R<T> = tenure::Result<T>;

#[async_trait]
impl<S: Storage, G: std::fmt::Debug + Send + Sync + 'static> Storage for Owned<S, G> {
    async fn get_client(&self, zone_id: &str, id: &str) -> R<Option<Versioned<Client>>> {
        self.storage.get_client(zone_id, id).await
    }

    async fn list_clients(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> R<Vec<Versioned<Client>>> {
        self.storage.list_clients(zone_id, after, limit).await
    }

    async fn get_grant(&self, zone_id: &str, id: &str) -> R<Option<Versioned<Grant>>> {
        self.storage.get_grant(zone_id, id).await
    }

    async fn list_grants(&self, query: &GrantQuery) -> R<GrantPage> {
        self.storage.list_grants(query).await
    }

    async fn count_grants(&self, zone_id: &str, filter: &GrantFilter, now: Timestamp) -> R<u64> {
        self.storage.count_grants(zone_id, filter, now).await
    }

    async fn expired_grants(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> R<Vec<Versioned<Grant>>> {
        self.storage.expired_grants(zone_id, now, limit).await
    }

    async fn grant_history(&self, zone_id: &str, grant_id: &str) -> R<Vec<Transition>> {
        self.storage.grant_history(zone_id, grant_id).await
    }

    async fn get_token(&self, zone_id: &str, digest: &Digest) -> R<Option<Versioned<Token>>> {
        self.storage.get_token(zone_id, digest).await
    }

    async fn get_token_and_grant(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> R<Option<TokenAndGrant>> {
        self.storage.get_token_and_grant(zone_id, digest).await
    }

    async fn grant_tokens(&self, zone_id: &str, grant_id: &str) -> R<Vec<Versioned<Token>>> {
        self.storage.grant_tokens(zone_id, grant_id).await
    }

    async fn get_personal_grant(
        &self,
        zone_id: &str,
        id: &str,
    ) -> R<Option<Versioned<PersonalGrant>>> {
        self.storage.get_personal_grant(zone_id, id).await
    }

    async fn list_personal_grants(
        &self,
        zone_id: &str,
        user_id: &str,
        after: Option<&Keyset>,
        limit: usize,
    ) -> R<Vec<Versioned<PersonalGrant>>> {
        self.storage
            .list_personal_grants(zone_id, user_id, after, limit)
            .await
    }

    async fn list_zone_personal_grants(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> R<Vec<Versioned<PersonalGrant>>> {
        self.storage
            .list_zone_personal_grants(zone_id, after, limit)
            .await
    }

    async fn get_device_authorization(
        &self,
        zone_id: &str,
        device_code: &Digest,
    ) -> R<Option<Versioned<DeviceAuthorization>>> {
        self.storage
            .get_device_authorization(zone_id, device_code)
            .await
    }

    async fn find_device_authorization(
        &self,
        zone_id: &str,
        user_code: &str,
    ) -> R<Option<Versioned<DeviceAuthorization>>> {
        self.storage
            .find_device_authorization(zone_id, user_code)
            .await
    }

    async fn expired_device_authorizations(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> R<Vec<Versioned<DeviceAuthorization>>> {
        self.storage
            .expired_device_authorizations(zone_id, now, limit)
            .await
    }

    async fn apply(&self, set: WriteSet) -> R<()> {
        self.storage.apply(set).await
    }
}
