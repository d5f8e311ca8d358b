//! The one retry policy: bounded attempts, the first retry at once, then jittered
//! exponential backoff, watched through the engine's sleep hook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tenure::{AuthorizeRequest, ClientRegistration, Engine, EngineConfig, Error, ManualClock};
use tenure_memory::testing::{Fault, Instrumented, epoch};

/// An engine over an instrumented store, whose waits between retries are recorded
/// (and really waited).
async fn setup(config: EngineConfig) -> (Engine, Arc<Instrumented>, Arc<Mutex<Vec<Duration>>>) {
    let store = Arc::new(Instrumented::new());
    let waits = Arc::new(Mutex::new(Vec::new()));
    let engine = Engine::builder(store.clone())
        .clock(Arc::new(ManualClock::new(epoch())))
        .config(config)
        .retry_sleep({
            let waits = waits.clone();
            move |d| {
                waits.lock().unwrap().push(d);
                tokio::time::sleep(d)
            }
        })
        .build();
    engine
        .register_client("z", ClientRegistration::new("c").id("c").scopes(["read"]))
        .await
        .unwrap();
    (engine, store, waits)
}

#[tokio::test]
async fn an_operation_that_always_conflicts_is_attempted_max_attempts_times_with_backoff() {
    let config = EngineConfig {
        max_attempts: 6,
        retry_base_delay: Duration::from_millis(2),
        retry_max_delay: Duration::from_millis(5),
        ..EngineConfig::default()
    };
    let (engine, store, waits) = setup(config).await;
    store.inject(Fault::Conflict, usize::MAX);
    let before = store.applies();
    let started = Instant::now();
    let r = engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await;
    let elapsed = started.elapsed();
    assert!(matches!(r, Err(Error::Conflict)), "{r:?}");
    assert_eq!(store.applies() - before, 6, "attempted max_attempts times");

    // Five retries: the first at once (no wait asked for), then four waits under a
    // ceiling of 2, 4, 5 and 5 ms (doubling from the base, capped).
    let waits = waits.lock().unwrap().clone();
    assert_eq!(waits.len(), 4, "{waits:?}");
    for (wait, ceiling) in waits.iter().zip([2, 4, 5, 5]) {
        assert!(
            *wait <= Duration::from_millis(ceiling),
            "{wait:?} > {ceiling} ms"
        );
    }
    let waited: Duration = waits.iter().sum();
    assert!(
        elapsed >= waited,
        "{elapsed:?} < {waited:?}: the waits were not slept"
    );
}

#[tokio::test]
async fn a_single_conflict_is_retried_at_once() {
    let (engine, store, waits) = setup(EngineConfig::default()).await;
    store.inject(Fault::Conflict, 1);
    engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    assert!(waits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn waits_are_jittered() {
    let config = EngineConfig {
        max_attempts: 40,
        retry_base_delay: Duration::from_micros(100),
        retry_max_delay: Duration::from_micros(100),
        ..EngineConfig::default()
    };
    let (engine, store, waits) = setup(config).await;
    store.inject(Fault::Conflict, usize::MAX);
    engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap_err();
    let waits = waits.lock().unwrap().clone();
    assert!(!waits.is_empty());
    let distinct: std::collections::HashSet<&Duration> = waits.iter().collect();
    assert!(distinct.len() > 1, "every wait was the same: {waits:?}");
}

#[tokio::test]
async fn one_attempt_means_no_retry() {
    let config = EngineConfig {
        max_attempts: 1,
        ..EngineConfig::default()
    };
    let (engine, store, waits) = setup(config).await;
    store.inject(Fault::Conflict, usize::MAX);
    let before = store.applies();
    let r = engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await;
    assert!(matches!(r, Err(Error::Conflict)));
    assert_eq!(store.applies() - before, 1);
    assert!(waits.lock().unwrap().is_empty());
}
