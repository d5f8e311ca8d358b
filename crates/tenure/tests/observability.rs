//! What the engine tells operators: log events and spans through `tracing`, counts
//! through `metrics`, and never a secret in either.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::sync::{Arc, Mutex};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::Value;
use tenure::{
    Actor, AuthorizeRequest, ClientRegistration, Engine, Error, ManualClock, RefreshRequest,
};
use tenure_memory::MemoryStorage;
use tenure_memory::testing::{Fault, Instrumented, epoch};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Everything a subscriber wrote, one JSON object per line.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Captures every span and event, at every level, as JSON lines, for the current
/// thread (a `#[tokio::test]` runs on one).
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(captured.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

fn engine(storage: Arc<dyn tenure::Storage>) -> Engine {
    Engine::builder(storage)
        .clock(Arc::new(ManualClock::new(epoch())))
        .build()
}

fn field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line["fields"][name].as_str()
}

#[tokio::test]
async fn a_reuse_detection_is_a_warning_naming_the_grant_and_no_secret() {
    let (captured, _guard) = capture();
    let engine = engine(Arc::new(MemoryStorage::new()));
    let registered = engine
        .register_client(
            "z",
            ClientRegistration::new("c")
                .id("c")
                .scopes(["read"])
                .confidential(),
        )
        .await
        .unwrap();
    let issued = engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    let first = issued.refresh_token.clone().unwrap();
    let rotated = engine
        .refresh("z", RefreshRequest::new("c", &first))
        .await
        .unwrap();
    let reuse = engine.refresh("z", RefreshRequest::new("c", &first)).await;
    assert!(matches!(reuse, Err(Error::RefreshTokenReused { .. })));
    let grant_id = issued.grant.id.as_str();

    let lines = captured.lines();
    let warnings: Vec<&Value> = lines.iter().filter(|l| l["level"] == "WARN").collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let warning = warnings[0];
    assert_eq!(
        field(warning, "message"),
        Some("refresh token reuse detected; grant revoked")
    );
    assert_eq!(field(warning, "grant_id"), Some(grant_id));
    assert_eq!(field(warning, "client_id"), Some("c"));
    assert_eq!(field(warning, "zone"), Some("z"));
    // It happens inside the refresh's span, which learned the grant from the token.
    assert_eq!(warning["span"]["name"], "refresh");
    assert_eq!(warning["span"]["grant_id"], grant_id);
    assert_eq!(warning["span"]["zone"], "z");

    // The revocation the reuse caused is there too, at info.
    assert!(
        lines.iter().any(|l| l["level"] == "INFO"
            && field(l, "message") == Some("grant revoked")
            && field(l, "grant_id") == Some(grant_id)),
        "{lines:#?}"
    );

    // Spans close with the number of attempts their operation took.
    let closed_refresh = lines
        .iter()
        .find(|l| field(l, "message") == Some("close") && l["span"]["name"] == "refresh")
        .expect("a closed refresh span");
    assert_eq!(closed_refresh["span"]["attempt"], 1);
    assert_eq!(closed_refresh["span"]["client_id"], "c");

    // No secret, and no digest of one, anywhere: not at TRACE, not in a span.
    let text = captured.text();
    let mut secrets = vec![
        issued.access_token.clone(),
        first.clone(),
        rotated.access_token.clone(),
        rotated.refresh_token.clone().unwrap(),
        registered.secret.clone().unwrap(),
    ];
    secrets.dedup();
    for secret in &secrets {
        assert!(!text.contains(secret.expose()), "a secret was logged");
        assert!(
            !text.contains(&secret.digest().to_hex()),
            "a secret's digest was logged"
        );
    }
}

#[tokio::test]
async fn a_store_failure_is_logged_with_its_cause() {
    let store = Arc::new(Instrumented::new());
    let engine = engine(store.clone());
    engine
        .register_client("z", ClientRegistration::new("c").id("c").scopes(["read"]))
        .await
        .unwrap();
    let issued = engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    let (captured, _guard) = capture();
    store.inject(Fault::Failure, usize::MAX);
    let r = engine
        .revoke_grant("z", &issued.grant.id, Actor::Admin)
        .await;
    assert!(matches!(r, Err(Error::Backend { .. })), "{r:?}");

    let lines = captured.lines();
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "{lines:#?}");
    assert_eq!(field(errors[0], "operation"), Some("revoke_grant"));
    assert_eq!(
        field(errors[0], "error"),
        Some("instrumented storage failed: injected storage failure"),
        "the cause is kept"
    );
    assert_eq!(errors[0]["span"]["grant_id"], issued.grant.id.as_str());
}

/// What a debugging recorder recorded (taking a snapshot resets its counters).
type Recorded = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// The value of a counter with these labels, if it was recorded.
fn counter(recorded: &Recorded, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
    recorded.iter().find_map(|(key, _, _, value)| {
        let key = key.key();
        let matches = key.name() == name
            && key.labels().count() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v));
        match value {
            DebugValue::Counter(n) if matches => Some(*n),
            _ => None,
        }
    })
}

#[tokio::test]
async fn operations_are_counted_by_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let clock = Arc::new(ManualClock::new(epoch()));
    let engine = Engine::builder(Arc::new(MemoryStorage::new()))
        .clock(clock.clone())
        .build();
    Engine::describe_metrics();

    engine
        .register_client("z", ClientRegistration::new("c").id("c").scopes(["read"]))
        .await
        .unwrap();
    let issued = engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    let first = issued.refresh_token.clone().unwrap();
    engine
        .refresh("z", RefreshRequest::new("c", &first))
        .await
        .unwrap();
    engine
        .refresh("z", RefreshRequest::new("c", &first))
        .await
        .unwrap_err();
    let other = engine
        .authorize("z", AuthorizeRequest::new("c", "bob", "r", ["read"]))
        .await
        .unwrap();
    engine
        .revoke_grant("z", &other.grant.id, Actor::Admin)
        .await
        .unwrap();
    engine
        .revoke_grant("z", &other.grant.id, Actor::Admin)
        .await
        .unwrap();
    engine.get_grant("z", "missing").await.unwrap_err();
    engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["admin"]))
        .await
        .unwrap_err();
    let expiring = engine
        .authorize(
            "z",
            AuthorizeRequest::new("c", "carol", "r", ["read"])
                .expires_at(epoch() + chrono::Duration::minutes(1)),
        )
        .await
        .unwrap();
    clock.advance(chrono::Duration::days(400));
    let report = engine.sweep_expired("z", 100).await.unwrap();
    assert_eq!(report.expired, 1, "{expiring:?}");

    let recorded: Recorded = snapshotter.snapshot().into_vec();
    let ops = |operation: &str, outcome: &str| {
        counter(
            &recorded,
            "tenure_engine_operations_total",
            &[("operation", operation), ("outcome", outcome)],
        )
    };
    assert_eq!(ops("register_client", "ok"), Some(1));
    assert_eq!(ops("authorize", "ok"), Some(3));
    assert_eq!(ops("authorize", "refused"), Some(1));
    assert_eq!(ops("refresh", "rotated"), Some(1));
    assert_eq!(ops("refresh", "reuse_detected"), Some(1));
    assert_eq!(ops("revoke_grant", "revoked"), Some(1));
    assert_eq!(
        ops("revoke_grant", "ok"),
        Some(1),
        "a second revocation changes nothing"
    );
    assert_eq!(ops("get_grant", "not_found"), Some(1));
    assert_eq!(ops("sweep_expired", "ok"), Some(1));
    assert_eq!(
        counter(&recorded, "tenure_sweep_expired_total", &[]),
        Some(1)
    );
    assert!(counter(&recorded, "tenure_sweep_tokens_removed_total", &[]).is_some_and(|n| n > 0));
    let applies = recorded
        .iter()
        .find_map(|(key, unit, _, value)| match value {
            DebugValue::Histogram(samples) if key.key().name() == "tenure_store_apply_seconds" => {
                Some((*unit, samples.len()))
            }
            _ => None,
        });
    let (unit, samples) = applies.expect("apply timings");
    assert_eq!(unit, Some(metrics::Unit::Seconds));
    assert!(samples >= 7, "{samples} apply timings");
}

#[tokio::test]
async fn without_a_recorder_or_subscriber_nothing_changes() {
    // The facade and the macros are no-ops: the engine works as before.
    let engine = engine(Arc::new(MemoryStorage::new()));
    engine
        .register_client("z", ClientRegistration::new("c").id("c").scopes(["read"]))
        .await
        .unwrap();
    let issued = engine
        .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    assert!(
        engine
            .introspect("z", issued.access_token.expose())
            .await
            .unwrap()
            .is_active()
    );
}
