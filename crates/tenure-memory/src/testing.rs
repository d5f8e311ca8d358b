//! A test bed for policy tests: an in-memory engine on a manual clock, in one line.
//!
//! ```
//! use chrono::Duration;
//! use tenure_memory::testing::TestBed;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tenure::Error> {
//! let bed = TestBed::new();
//! let grant = bed.grant(&bed.client(["read"]).await?, "alice", ["read"]).await?;
//! bed.clock.advance(Duration::days(31));
//! assert_eq!(bed.engine.get_grant(bed.zone, &grant.grant.id).await?.status, tenure::GrantStatus::Expired);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::DateTime;
use tenure::{
    AuthorizeRequest, Client, ClientRegistration, Engine, EngineBuilder, Issued, ManualClock,
    Result, Timestamp,
};

use crate::MemoryStorage;

/// Where every test bed's clock starts: 2030-01-01T00:00:00Z.
pub fn epoch() -> Timestamp {
    DateTime::from_timestamp(1_893_456_000, 0).unwrap_or_default()
}

/// An in-memory engine, its store and its manual clock, with fixture builders.
#[derive(Debug, Clone)]
pub struct TestBed {
    /// The engine.
    pub engine: Engine,
    /// The store under it.
    pub storage: MemoryStorage,
    /// The clock it reads; move it with `advance`.
    pub clock: Arc<ManualClock>,
    /// The zone the fixture builders use.
    pub zone: &'static str,
    clients: Arc<AtomicUsize>,
}

impl Default for TestBed {
    fn default() -> Self {
        TestBed::new()
    }
}

impl TestBed {
    /// A fresh bed: empty store, clock at [`epoch`], zone `"zone-1"`.
    pub fn new() -> Self {
        TestBed::with(|b| b)
    }

    /// A fresh bed whose engine is further configured by `configure`.
    pub fn with(configure: impl FnOnce(EngineBuilder) -> EngineBuilder) -> Self {
        let storage = MemoryStorage::new();
        let clock = Arc::new(ManualClock::new(epoch()));
        let engine =
            configure(Engine::builder(Arc::new(storage.clone())).clock(clock.clone())).build();
        TestBed {
            engine,
            storage,
            clock,
            zone: "zone-1",
            clients: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Registers a client with the default policy (offline, refresh allowed) and
    /// these scopes, under a fresh id `client-N`.
    pub async fn client<S: Into<String>>(
        &self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Client> {
        let n = self.clients.fetch_add(1, Ordering::Relaxed) + 1;
        self.register(
            ClientRegistration::new(format!("Client {n}"))
                .id(format!("client-{n}"))
                .scopes(scopes),
        )
        .await
    }

    /// Registers a client from a registration.
    pub async fn register(&self, registration: ClientRegistration) -> Result<Client> {
        Ok(self
            .engine
            .register_client(self.zone, registration)
            .await?
            .client)
    }

    /// Authorizes `user` for `scopes` on resource `resource-1` through `client`.
    pub async fn grant<S: Into<String>>(
        &self,
        client: &Client,
        user: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Issued> {
        self.engine
            .authorize(
                self.zone,
                AuthorizeRequest::new(client.id.clone(), user, "resource-1", scopes),
            )
            .await
    }
}

/// What an [`Instrumented`] store does to the next write sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refuse them with [`tenure::Error::Conflict`], as if a concurrent change won.
    Conflict,
    /// Fail them with a backend error, as if the disk failed.
    Failure,
}

/// The error an [`Instrumented`] store fails with.
#[derive(Debug, thiserror::Error)]
#[error("injected storage failure")]
pub struct InjectedFailure;

/// An in-memory store that counts the write sets it is asked to apply and can be
/// told to refuse or fail the next ones: for testing that bad input writes nothing,
/// that conflicts are retried, and that failures leave no trace.
#[derive(Debug, Default)]
pub struct Instrumented {
    inner: MemoryStorage,
    applies: AtomicUsize,
    faults: std::sync::Mutex<Option<(Fault, usize)>>,
}

impl Instrumented {
    /// An empty store.
    pub fn new() -> Self {
        Instrumented::default()
    }

    /// How many write sets were handed to [`Storage::apply`](tenure::Storage::apply),
    /// whether or not they committed.
    pub fn applies(&self) -> usize {
        self.applies.load(Ordering::SeqCst)
    }

    /// Makes the next `count` write sets fail with `fault` (`usize::MAX`: all).
    pub fn inject(&self, fault: Fault, count: usize) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = Some((fault, count));
    }

    /// Stops injecting faults.
    pub fn heal(&self) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn next_fault(&self) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        match faults.as_mut() {
            Some((fault, remaining)) if *remaining > 0 => {
                *remaining -= 1;
                Some(*fault)
            }
            _ => None,
        }
    }
}

#[async_trait::async_trait]
impl tenure::Storage for Instrumented {
    async fn zones(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.inner.zones(after, limit).await
    }

    async fn get_client(&self, z: &str, id: &str) -> Result<Option<tenure::Versioned<Client>>> {
        self.inner.get_client(z, id).await
    }
    async fn list_clients(
        &self,
        z: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<tenure::Versioned<Client>>> {
        self.inner.list_clients(z, after, limit).await
    }
    async fn get_grant(
        &self,
        z: &str,
        id: &str,
    ) -> Result<Option<tenure::Versioned<tenure::Grant>>> {
        self.inner.get_grant(z, id).await
    }
    async fn list_grants(&self, q: &tenure::GrantQuery) -> Result<tenure::GrantPage> {
        self.inner.list_grants(q).await
    }
    async fn count_grants(&self, z: &str, f: &tenure::GrantFilter, now: Timestamp) -> Result<u64> {
        self.inner.count_grants(z, f, now).await
    }
    async fn expired_grants(
        &self,
        z: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<tenure::Versioned<tenure::Grant>>> {
        self.inner.expired_grants(z, now, limit).await
    }
    async fn grant_history(&self, z: &str, id: &str) -> Result<Vec<tenure::Transition>> {
        self.inner.grant_history(z, id).await
    }
    async fn get_token(
        &self,
        z: &str,
        d: &tenure::Digest,
    ) -> Result<Option<tenure::Versioned<tenure::Token>>> {
        self.inner.get_token(z, d).await
    }
    async fn get_token_and_grant(
        &self,
        z: &str,
        d: &tenure::Digest,
    ) -> Result<Option<tenure::TokenAndGrant>> {
        self.inner.get_token_and_grant(z, d).await
    }
    async fn get_token_and_grant_facts(
        &self,
        z: &str,
        d: &tenure::Digest,
    ) -> Result<Option<tenure::TokenAndGrantFacts>> {
        self.inner.get_token_and_grant_facts(z, d).await
    }
    async fn grant_tokens(
        &self,
        z: &str,
        id: &str,
    ) -> Result<Vec<tenure::Versioned<tenure::Token>>> {
        self.inner.grant_tokens(z, id).await
    }
    async fn expired_tokens(
        &self,
        z: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<tenure::Versioned<tenure::Token>>> {
        self.inner.expired_tokens(z, now, limit).await
    }
    async fn get_personal_grant(
        &self,
        z: &str,
        id: &str,
    ) -> Result<Option<tenure::Versioned<tenure::PersonalGrant>>> {
        self.inner.get_personal_grant(z, id).await
    }
    async fn list_personal_grants(
        &self,
        z: &str,
        user: &str,
        after: Option<&tenure::Keyset>,
        limit: usize,
    ) -> Result<Vec<tenure::Versioned<tenure::PersonalGrant>>> {
        self.inner.list_personal_grants(z, user, after, limit).await
    }
    async fn list_zone_personal_grants(
        &self,
        z: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<tenure::Versioned<tenure::PersonalGrant>>> {
        self.inner.list_zone_personal_grants(z, after, limit).await
    }
    async fn get_device_authorization(
        &self,
        z: &str,
        d: &tenure::Digest,
    ) -> Result<Option<tenure::Versioned<tenure::DeviceAuthorization>>> {
        self.inner.get_device_authorization(z, d).await
    }
    async fn find_device_authorization(
        &self,
        z: &str,
        code: &str,
    ) -> Result<Option<tenure::Versioned<tenure::DeviceAuthorization>>> {
        self.inner.find_device_authorization(z, code).await
    }
    async fn expired_device_authorizations(
        &self,
        z: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<tenure::Versioned<tenure::DeviceAuthorization>>> {
        self.inner
            .expired_device_authorizations(z, now, limit)
            .await
    }
    async fn list_device_authorizations(
        &self,
        z: &str,
        after: Option<&tenure::Digest>,
        limit: usize,
    ) -> Result<Vec<tenure::Versioned<tenure::DeviceAuthorization>>> {
        self.inner.list_device_authorizations(z, after, limit).await
    }
    async fn get_authorization_code(
        &self,
        z: &str,
        code: &tenure::Digest,
    ) -> Result<Option<tenure::Versioned<tenure::AuthorizationCode>>> {
        self.inner.get_authorization_code(z, code).await
    }
    async fn expired_authorization_codes(
        &self,
        z: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<tenure::Versioned<tenure::AuthorizationCode>>> {
        self.inner.expired_authorization_codes(z, now, limit).await
    }
    async fn apply(&self, set: tenure::WriteSet) -> Result<()> {
        self.applies.fetch_add(1, Ordering::SeqCst);
        match self.next_fault() {
            Some(Fault::Conflict) => Err(tenure::Error::Conflict),
            Some(Fault::Failure) => Err(tenure::storage::backend_error(
                "instrumented",
                InjectedFailure,
            )),
            None => self.inner.apply(set).await,
        }
    }
}
