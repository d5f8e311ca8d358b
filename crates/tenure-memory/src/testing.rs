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
