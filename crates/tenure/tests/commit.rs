//! Write sets: retried on conflict, and events only for what committed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use tenure::{
    AuthorizeRequest, ClientRegistration, Engine, Error, Event, EventSubscriber, ManualClock,
};
use tenure_memory::testing::{Fault, Instrumented, epoch};

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Event>>);

impl EventSubscriber for Recorder {
    fn notify(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

async fn setup() -> (Engine, Arc<Instrumented>, Arc<Recorder>) {
    let store = Arc::new(Instrumented::new());
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
    store.inject(Fault::Conflict, 3);
    let before = store.applies();
    let issued = engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    assert_eq!(store.applies() - before, 4);
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
    store.inject(Fault::Conflict, usize::MAX);
    let before = store.applies();
    let r = engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await;
    assert!(matches!(r, Err(Error::Conflict)));
    assert_eq!(
        store.applies() - before,
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
    store.inject(Fault::Failure, usize::MAX);
    let r = engine
        .revoke_grant("z", &issued.grant.id, tenure::Actor::Admin)
        .await;
    match r {
        Err(Error::Backend { backend, source }) => {
            assert_eq!(backend, "instrumented");
            assert_eq!(source.to_string(), "injected storage failure");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(events.0.lock().unwrap().is_empty());
    store.heal();
    assert!(
        engine
            .introspect("z", issued.access_token.expose())
            .await
            .unwrap()
            .is_active()
    );
}
