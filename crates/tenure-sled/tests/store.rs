//! What is particular to the sled store: reopening, the format marker, the lock
//! against a second process, group commit, and records it cannot read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use chrono::{DateTime, Duration};
use tenure::{
    AuthorizeRequest, ClientRegistration, Digest, Engine, Error, Expect, Grant, GrantStatus,
    ManualClock, RefreshChain, Storage, Timestamp, TransitionReason, Write, WriteSet,
};
use tenure_sled::{Durability, FORMAT_VERSION, OpenError, SledConfig, SledStorage, StoreError};

const ZONE: &str = "zone-1";

fn epoch() -> Timestamp {
    DateTime::from_timestamp(1_893_456_000, 0).unwrap()
}

fn engine_on(store: SledStorage) -> Engine {
    Engine::builder(Arc::new(store))
        .clock(Arc::new(ManualClock::new(epoch())))
        .build()
}

fn grant(n: usize) -> Grant {
    Grant {
        id: format!("grant-{n:05}"),
        zone_id: ZONE.to_owned(),
        organization_id: "org".to_owned(),
        user_id: format!("user-{}", n % 7),
        resource_id: "calendar".to_owned(),
        provider_id: "provider".to_owned(),
        client_id: "calendar-app".to_owned(),
        scopes: vec!["read".to_owned()],
        status: GrantStatus::Active,
        created_at: epoch(),
        updated_at: epoch(),
        expires_at: epoch() + Duration::days(30),
        refreshed_at: None,
        refresh_token_set: false,
        // A chain with every field set, so that reading a grant back checks them all.
        refresh: RefreshChain {
            generation: 7 + n as u64,
            family: Some(Digest::from_bytes([1; 32])),
            current: Some(Digest::from_bytes([2; 32])),
            previous: Some(Digest::from_bytes([3; 32])),
        },
    }
}

fn put(n: usize) -> WriteSet {
    let mut set = WriteSet::new();
    set.push(Write::PutGrant {
        grant: grant(n),
        expect: Expect::Absent,
    });
    set
}

#[tokio::test]
async fn acknowledged_grants_are_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let engine = engine_on(SledStorage::open(&path).unwrap());
    engine
        .register_client(
            ZONE,
            ClientRegistration::new("Calendar")
                .id("calendar")
                .scopes(["read"]),
        )
        .await
        .unwrap();
    let issued = engine
        .authorize(
            ZONE,
            AuthorizeRequest::new("calendar", "alice", "calendar-api", ["read"]),
        )
        .await
        .unwrap();
    let revoked = engine
        .revoke_grant(ZONE, &issued.grant.id, tenure::Actor::Admin)
        .await
        .unwrap();
    drop(engine);

    let engine = engine_on(SledStorage::open(&path).unwrap());
    assert_eq!(
        engine.get_grant(ZONE, &issued.grant.id).await.unwrap(),
        revoked
    );
    let history = engine.grant_history(ZONE, &issued.grant.id).await.unwrap();
    let reasons: Vec<_> = history.iter().map(|t| t.reason).collect();
    assert_eq!(
        reasons,
        [TransitionReason::Created, TransitionReason::Revoked]
    );
    let introspection = engine
        .introspect(ZONE, issued.access_token.expose())
        .await
        .unwrap();
    assert!(!introspection.is_active(), "revoked with its grant");
}

#[tokio::test]
async fn a_store_of_a_newer_or_unknown_format_version_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = SledStorage::open(&path).unwrap();
    store.apply(put(1)).await.unwrap();
    drop(store);
    assert_eq!(FORMAT_VERSION, 2);
    for marker in [FORMAT_VERSION + 1, u32::MAX, 0] {
        {
            let raw = open_raw(&path);
            let meta = raw.open_tree("tenure_meta").unwrap();
            if marker == FORMAT_VERSION + 1 {
                assert_eq!(
                    meta.get("format_version").unwrap().unwrap().as_ref(),
                    FORMAT_VERSION.to_be_bytes(),
                    "the marker is written when the store is created"
                );
            }
            meta.insert("format_version", &marker.to_be_bytes())
                .unwrap();
            raw.flush().unwrap();
        }
        match SledStorage::open(&path) {
            Err(OpenError::UnsupportedFormat {
                path: p,
                found,
                supported,
            }) => {
                assert_eq!((found, supported), (marker, FORMAT_VERSION));
                assert_eq!(p, path);
            }
            other => panic!("marker {marker}: expected UnsupportedFormat, got {other:?}"),
        }
    }
    // Nothing was changed: with its marker back, the store opens as it was.
    {
        let raw = open_raw(&path);
        let meta = raw.open_tree("tenure_meta").unwrap();
        meta.insert("format_version", &FORMAT_VERSION.to_be_bytes())
            .unwrap();
        raw.flush().unwrap();
    }
    let store = SledStorage::open(&path).unwrap();
    let stored = store.get_grant(ZONE, &grant(1).id).await.unwrap().unwrap();
    assert_eq!((stored.record, stored.version), (grant(1), 1));
}

#[test]
fn a_sled_database_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other");
    {
        let raw = sled::open(&path).unwrap();
        raw.insert("someone else's", "data").unwrap();
        raw.flush().unwrap();
    }
    let error = SledStorage::open(&path).unwrap_err();
    assert!(
        matches!(&error, OpenError::NotATenureStore { path: p } if *p == path),
        "{error:?}"
    );
    assert!(error.to_string().contains(&path.display().to_string()));
}

#[tokio::test]
async fn a_record_of_an_unknown_format_is_an_error_not_a_misread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = SledStorage::open(&path).unwrap();
    store.apply(put(1)).await.unwrap();
    drop(store);
    {
        let raw = open_raw(&path);
        let grants = raw.open_tree("grants").unwrap();
        let (key, value) = grants.iter().next().unwrap().unwrap();
        let mut bytes = value.to_vec();
        bytes[0] = 9;
        grants.insert(key, bytes).unwrap();
        raw.flush().unwrap();
    }
    let store = SledStorage::open(&path).unwrap();
    let error = store.get_grant(ZONE, &grant(1).id).await.unwrap_err();
    let Error::Backend { backend, source } = &error else {
        panic!("expected a backend error, got {error:?}");
    };
    assert_eq!(*backend, "sled");
    assert!(
        matches!(
            source.downcast_ref::<StoreError>(),
            Some(StoreError::UnknownRecordFormat { found: 9, .. })
        ),
        "{source:?}"
    );
    let report = store.check_integrity().await.unwrap();
    assert!(!report.is_consistent());
    assert!(
        report.problems[0].contains("record format 9"),
        "{report:#?}"
    );
}

#[tokio::test]
async fn a_second_handle_in_this_process_is_refused_and_the_first_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = SledStorage::open(&path).unwrap();
    let second = SledStorage::open(&path).unwrap_err();
    assert!(
        matches!(&second, OpenError::Locked { path: p, .. } if *p == path),
        "{second:?}"
    );
    store.apply(put(1)).await.unwrap();
    drop(store);
    let store = SledStorage::open(&path).unwrap();
    assert!(store.get_grant(ZONE, &grant(1).id).await.unwrap().is_some());
}

const CHILD_PATH: &str = "TENURE_SLED_TEST_OPEN_PATH";

/// Runs [`open_from_a_child_process`] in a child process and returns what it printed.
fn open_in_child(path: &Path) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "open_from_a_child_process",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_PATH, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success(), "the child failed: {out}");
    out
}

#[test]
#[ignore = "the child half of a_second_process_gets_a_clear_error_naming_the_path"]
fn open_from_a_child_process() {
    let path = std::env::var_os(CHILD_PATH).expect("run by the parent test, which sets the path");
    match SledStorage::open(&path) {
        Ok(_) => println!("OPENED"),
        Err(OpenError::Locked { .. }) => {
            let error = SledStorage::open(&path).unwrap_err();
            println!("LOCKED {error}");
        }
        Err(other) => println!("FAILED {other:?}"),
    }
}

#[test]
fn a_second_process_gets_a_clear_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = SledStorage::open(&path).unwrap();
    let out = open_in_child(&path);
    let expected = format!(
        "LOCKED the store at {} is open in another process",
        path.display()
    );
    assert!(out.contains(&expected), "child said: {out}");
    drop(store);
    let out = open_in_child(&path);
    assert!(
        out.contains("OPENED"),
        "once closed, the store opens again; child said: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_share_flushes() {
    const WRITERS: usize = 16;
    const EACH: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let store = SledStorage::open_with(
        dir.path().join("store"),
        SledConfig::new().durability(Durability::Immediate),
    )
    .unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    store.apply(put(w * EACH + i)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let writes = (WRITERS * EACH) as u64;
    let flushes = store.flush_count();
    assert!(flushes >= 1);
    assert!(
        flushes * 2 <= writes,
        "{flushes} flushes for {writes} writes by {WRITERS} writers"
    );
    let report = store.check_integrity().await.unwrap();
    assert_eq!(report.grants, writes);
}

#[tokio::test]
async fn immediate_flushes_before_every_acknowledgement_and_periodic_never_waits() {
    let dir = tempfile::tempdir().unwrap();
    let immediate = SledStorage::open(dir.path().join("immediate")).unwrap();
    assert_eq!(immediate.durability(), Durability::Immediate, "the default");
    for n in 0..5 {
        immediate.apply(put(n)).await.unwrap();
        assert_eq!(immediate.flush_count(), n as u64 + 1);
    }
    immediate.apply(WriteSet::new()).await.unwrap();
    assert_eq!(immediate.flush_count(), 5, "an empty set writes nothing");

    let periodic = SledStorage::open_with(
        dir.path().join("periodic"),
        SledConfig::new().durability(Durability::Periodic),
    )
    .unwrap();
    for n in 0..5 {
        periodic.apply(put(n)).await.unwrap();
    }
    assert_eq!(periodic.flush_count(), 0);
    periodic.flush().await.unwrap();
    assert_eq!(periodic.flush_count(), 1);
    assert!(periodic.size_on_disk().await.unwrap() > 0);
}

#[test]
fn the_store_works_outside_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStorage::open(dir.path().join("store")).unwrap();
    /// A minimal executor that is not tokio.
    fn run<F: std::future::Future>(f: F) -> F::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }
    run(store.apply(put(1))).unwrap();
    let stored = run(store.get_grant(ZONE, &grant(1).id)).unwrap();
    assert_eq!(stored.map(|g| g.record), Some(grant(1)));
}

#[tokio::test]
async fn a_temporary_store_is_removed_when_dropped() {
    let store = SledStorage::temporary().unwrap();
    let other = SledStorage::temporary().unwrap();
    assert_ne!(store.path(), other.path());
    store.apply(put(1)).await.unwrap();
    assert!(other.get_grant(ZONE, &grant(1).id).await.unwrap().is_none());
    let path = store.path().to_path_buf();
    assert!(path.exists());
    drop(store);
    assert!(!path.exists());
}

/// The model test once failed to reopen a store it had just dropped: sled finishes
/// some writes on background threads after the last handle is dropped, and holds its
/// own file lock until they are done. Opening waits for that lock a while, since the
/// store's own lock file shows no other handle has the store open.
#[tokio::test]
async fn a_store_reopens_right_after_it_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    for round in 0..30 {
        let store =
            SledStorage::open_with(&path, SledConfig::new().durability(Durability::Periodic))
                .unwrap();
        assert_eq!(store.check_integrity().await.unwrap().grants, round as u64);
        store.apply(put(round)).await.unwrap();
    }
}

/// Opens a store's directory as a plain sled database, waiting as
/// `SledStorage::open` does while the background writes of a store just dropped
/// still hold sled's lock on its files.
fn open_raw(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("could not acquire lock"), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("opening {}: {e}", path.display()),
        }
    }
}
