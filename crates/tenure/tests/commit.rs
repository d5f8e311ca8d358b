//! Write sets: retried on conflict, and events only for what committed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tenure::{
    AuthorizeRequest, Client, ClientRegistration, Digest, Engine, Error, Event, EventSubscriber,
    Grant, GrantFilter, GrantPage, GrantQuery, ManualClock, Storage, Timestamp, Token, Transition,
    Versioned, WriteSet,
};
use tenure_memory::MemoryStorage;
use tenure_memory::testing::epoch;

/// Refuses the next `conflicts` write sets with a conflict, or fails them outright.
#[derive(Debug, Default)]
struct Flaky {
    inner: MemoryStorage,
    conflicts: AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
    attempts: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("disk on fire")]
struct DiskOnFire;

#[async_trait]
impl Storage for Flaky {
    async fn get_client(&self, z: &str, id: &str) -> tenure::Result<Option<Versioned<Client>>> {
        self.inner.get_client(z, id).await
    }
    async fn list_clients(
        &self,
        z: &str,
        a: Option<&str>,
        l: usize,
    ) -> tenure::Result<Vec<Versioned<Client>>> {
        self.inner.list_clients(z, a, l).await
    }
    async fn get_grant(&self, z: &str, id: &str) -> tenure::Result<Option<Versioned<Grant>>> {
        self.inner.get_grant(z, id).await
    }
    async fn list_grants(&self, q: &GrantQuery) -> tenure::Result<GrantPage> {
        self.inner.list_grants(q).await
    }
    async fn count_grants(&self, z: &str, f: &GrantFilter, now: Timestamp) -> tenure::Result<u64> {
        self.inner.count_grants(z, f, now).await
    }
    async fn expired_grants(
        &self,
        z: &str,
        now: Timestamp,
        l: usize,
    ) -> tenure::Result<Vec<Versioned<Grant>>> {
        self.inner.expired_grants(z, now, l).await
    }
    async fn grant_history(&self, z: &str, id: &str) -> tenure::Result<Vec<Transition>> {
        self.inner.grant_history(z, id).await
    }
    async fn get_token(&self, z: &str, d: &Digest) -> tenure::Result<Option<Versioned<Token>>> {
        self.inner.get_token(z, d).await
    }
    async fn grant_tokens(&self, z: &str, id: &str) -> tenure::Result<Vec<Versioned<Token>>> {
        self.inner.grant_tokens(z, id).await
    }
    async fn apply(&self, set: WriteSet) -> tenure::Result<()> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(tenure::storage::backend_error("flaky", DiskOnFire));
        }
        if self
            .conflicts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::Conflict);
        }
        self.inner.apply(set).await
    }
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Event>>);

impl EventSubscriber for Recorder {
    fn notify(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

async fn setup() -> (Engine, Arc<Flaky>, Arc<Recorder>) {
    let store = Arc::new(Flaky::default());
    let events = Arc::new(Recorder::default());
    let engine = Engine::builder(store.clone())
        .clock(Arc::new(ManualClock::new(epoch())))
        .subscriber(events.clone())
        .build();
    engine
        .register_client("z", ClientRegistration::new("c").id("c").scopes(["read"]))
        .await
        .unwrap();
    events.0.lock().unwrap().clear();
    (engine, store, events)
}

#[tokio::test]
async fn a_conflicting_write_set_is_retried_until_it_commits() {
    let (engine, store, events) = setup().await;
    store.conflicts.store(3, Ordering::SeqCst);
    store.attempts.store(0, Ordering::SeqCst);
    let issued = engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    assert_eq!(store.attempts.load(Ordering::SeqCst), 4);
    // One grant, one set of events: the failed attempts left nothing behind.
    assert_eq!(events.0.lock().unwrap().len(), 1);
    assert!(
        engine
            .introspect("z", issued.access_token.expose())
            .await
            .unwrap()
            .is_active()
    );
}

#[tokio::test]
async fn retries_are_bounded_and_then_the_conflict_is_reported() {
    let (engine, store, events) = setup().await;
    store.conflicts.store(usize::MAX, Ordering::SeqCst);
    store.attempts.store(0, Ordering::SeqCst);
    let r = engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await;
    assert!(matches!(r, Err(Error::Conflict)));
    assert_eq!(
        store.attempts.load(Ordering::SeqCst),
        tenure::DEFAULT_MAX_ATTEMPTS as usize
    );
    assert!(
        events.0.lock().unwrap().is_empty(),
        "no event for a change that did not commit"
    );
}

#[tokio::test]
async fn no_event_is_sent_for_a_change_that_failed() {
    let (engine, store, events) = setup().await;
    let issued = engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    events.0.lock().unwrap().clear();
    store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = engine
        .revoke_grant("z", &issued.grant.id, tenure::Actor::Admin)
        .await;
    match r {
        Err(Error::Backend { backend, source }) => {
            assert_eq!(backend, "flaky");
            assert_eq!(source.to_string(), "disk on fire");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(events.0.lock().unwrap().is_empty());
    store.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(
        engine
            .introspect("z", issued.access_token.expose())
            .await
            .unwrap()
            .is_active()
    );
}
