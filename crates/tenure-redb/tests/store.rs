//! What is particular to the redb store: reopening, the format marker, the lock
//! against a second process, group commit, the two durability modes, and records it
//! cannot read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration};
use redb::{ReadableTable, TableDefinition};
use tenure::{
    AuthorizeRequest, ClientRegistration, Digest, Engine, Error, Expect, Grant, GrantStatus,
    ManualClock, RefreshChain, Storage, Timestamp, TransitionReason, Write, WriteSet,
};
use tenure_redb::{
    DATABASE_FILE, Durability, FORMAT_VERSION, OpenError, RedbConfig, RedbStorage, StoreError,
};

const ZONE: &str = "zone-1";

const META: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("tenure_meta");
const GRANTS: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("grants");

fn epoch() -> Timestamp {
    DateTime::from_timestamp(1_893_456_000, 0).unwrap()
}

fn engine_on(store: RedbStorage) -> Engine {
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

/// Opens a store's database file as a plain redb database.
fn open_raw(path: &Path) -> redb::Database {
    redb::Database::open(path.join(DATABASE_FILE)).unwrap()
}

#[tokio::test]
async fn acknowledged_grants_are_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let engine = engine_on(RedbStorage::open(&path).unwrap());
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

    let engine = engine_on(RedbStorage::open(&path).unwrap());
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
    let store = RedbStorage::open(&path).unwrap();
    store.apply(put(1)).await.unwrap();
    drop(store);
    assert_eq!(FORMAT_VERSION, 1);
    let set_marker = |bytes: &[u8]| {
        let raw = open_raw(&path);
        let txn = raw.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(b"format_version".as_slice(), bytes)
            .unwrap();
        txn.commit().unwrap();
    };
    {
        let raw = open_raw(&path);
        let txn = raw.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        assert_eq!(
            meta.get(b"format_version".as_slice())
                .unwrap()
                .unwrap()
                .value(),
            FORMAT_VERSION.to_be_bytes(),
            "the marker is written when the store is created"
        );
    }
    for (marker, found) in [
        (
            (FORMAT_VERSION + 1).to_be_bytes().to_vec(),
            FORMAT_VERSION + 1,
        ),
        (u32::MAX.to_be_bytes().to_vec(), u32::MAX),
        (0u32.to_be_bytes().to_vec(), 0),
        (vec![1, 2], u32::MAX),
    ] {
        set_marker(&marker);
        let before = std::fs::read(path.join(DATABASE_FILE)).unwrap();
        match RedbStorage::open(&path) {
            Err(error @ OpenError::UnsupportedFormat { .. }) => {
                let OpenError::UnsupportedFormat {
                    path: p,
                    found: f,
                    supported,
                } = &error
                else {
                    unreachable!()
                };
                assert_eq!((*f, *supported), (found, FORMAT_VERSION));
                assert_eq!(*p, path);
                let message = error.to_string();
                assert!(
                    message.contains(&format!("format version {found}"))
                        && message.contains(&format!("reads version {FORMAT_VERSION}"))
                        && message.contains(&path.display().to_string()),
                    "{message}"
                );
            }
            other => panic!("marker {marker:?}: expected UnsupportedFormat, got {other:?}"),
        }
        assert_eq!(
            std::fs::read(path.join(DATABASE_FILE)).unwrap(),
            before,
            "refusing the store changed nothing in it"
        );
    }
    // With its marker back, the store opens as it was.
    set_marker(&FORMAT_VERSION.to_be_bytes());
    let store = RedbStorage::open(&path).unwrap();
    let stored = store.get_grant(ZONE, &grant(1).id).await.unwrap().unwrap();
    assert_eq!((stored.record, stored.version), (grant(1), 1));
}

#[test]
fn a_redb_database_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other");
    std::fs::create_dir_all(&path).unwrap();
    {
        let raw = redb::Database::create(path.join(DATABASE_FILE)).unwrap();
        let txn = raw.begin_write().unwrap();
        let other: TableDefinition<'static, &str, &str> = TableDefinition::new("someone else's");
        txn.open_table(other)
            .unwrap()
            .insert("key", "data")
            .unwrap();
        txn.commit().unwrap();
    }
    let error = RedbStorage::open(&path).unwrap_err();
    assert!(
        matches!(&error, OpenError::NotATenureStore { path: p } if *p == path),
        "{error:?}"
    );
    assert!(error.to_string().contains(&path.display().to_string()));
}

#[test]
fn a_file_that_is_not_a_redb_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join(DATABASE_FILE), vec![0x5a; 16 * 1024]).unwrap();
    let error = RedbStorage::open(&path).unwrap_err();
    assert!(
        matches!(&error, OpenError::Redb { path: p, .. } if *p == path),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_record_of_an_unknown_format_is_an_error_not_a_misread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = RedbStorage::open(&path).unwrap();
    store.apply(put(1)).await.unwrap();
    drop(store);
    {
        let raw = open_raw(&path);
        let txn = raw.begin_write().unwrap();
        {
            let mut grants = txn.open_table(GRANTS).unwrap();
            let (key, mut bytes) = {
                let (key, value) = grants.first().unwrap().unwrap();
                (key.value().to_vec(), value.value().to_vec())
            };
            bytes[0] = 9;
            grants.insert(key.as_slice(), bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = RedbStorage::open(&path).unwrap();
    let error = store.get_grant(ZONE, &grant(1).id).await.unwrap_err();
    let Error::Backend { backend, source } = &error else {
        panic!("expected a backend error, got {error:?}");
    };
    assert_eq!(*backend, "redb");
    assert!(
        matches!(
            source.downcast_ref::<StoreError>(),
            Some(StoreError::UnknownRecordFormat { found: 9, .. })
        ),
        "{source:?}"
    );
    // A write set that would read the record refuses, and writes nothing.
    let mut set = WriteSet::new();
    set.push(Write::PutGrant {
        grant: grant(1),
        expect: Expect::Version(1),
    });
    set.push(Write::PutGrant {
        grant: grant(2),
        expect: Expect::Absent,
    });
    assert!(matches!(store.apply(set).await, Err(Error::Backend { .. })));
    assert!(store.get_grant(ZONE, &grant(2).id).await.unwrap().is_none());
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
    let store = RedbStorage::open(&path).unwrap();
    let second = RedbStorage::open(&path).unwrap_err();
    assert!(
        matches!(&second, OpenError::Locked { path: p } if *p == path),
        "{second:?}"
    );
    store.apply(put(1)).await.unwrap();
    drop(store);
    let store = RedbStorage::open(&path).unwrap();
    assert!(store.get_grant(ZONE, &grant(1).id).await.unwrap().is_some());
}

const CHILD_PATH: &str = "TENURE_REDB_TEST_OPEN_PATH";

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
    match RedbStorage::open(&path) {
        Ok(_) => println!("OPENED"),
        Err(error @ OpenError::Locked { .. }) => println!("LOCKED {error}"),
        Err(other) => println!("FAILED {other:?}"),
    }
}

#[test]
fn a_second_process_gets_a_clear_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = RedbStorage::open(&path).unwrap();
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
async fn concurrent_writers_share_commits() {
    const WRITERS: usize = 16;
    const EACH: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStorage::open_with(
        dir.path().join("store"),
        RedbConfig::new().durability(Durability::Immediate),
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
    let commits = store.commit_count();
    assert!(commits >= 1);
    assert!(
        commits * 2 <= writes,
        "{commits} commits for {writes} writes by {WRITERS} writers"
    );
    let report = store.check_integrity().await.unwrap();
    assert!(report.is_consistent(), "{report:#?}");
    assert_eq!(report.grants, writes);
}

/// Sets committed together are still checked one by one, in order: of sixteen
/// writers creating the same grant at once, one wins and every other is refused,
/// having written nothing, while the sets beside them in the same commit go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sets_that_share_a_commit_are_refused_one_by_one() {
    const WRITERS: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStorage::open(dir.path().join("store")).unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                // Every writer creates grant 0 (with its own user) and its own grant.
                let mut contested = grant(0);
                contested.user_id = format!("writer-{w}");
                let mut set = WriteSet::new();
                set.push(Write::PutGrant {
                    grant: contested,
                    expect: Expect::Absent,
                });
                let won = store.apply(set).await;
                let own = store.apply(put(100 + w)).await;
                (won, own)
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        let (won, own) = task.await.unwrap();
        own.unwrap();
        match won {
            Ok(()) => winners += 1,
            Err(Error::Conflict) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(winners, 1);
    let report = store.check_integrity().await.unwrap();
    assert!(report.is_consistent(), "{report:#?}");
    assert_eq!(report.grants, 1 + WRITERS as u64);
    let stored = store.get_grant(ZONE, &grant(0).id).await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
}

#[tokio::test]
async fn immediate_commits_every_set_and_periodic_makes_them_durable_later() {
    let dir = tempfile::tempdir().unwrap();
    let immediate = RedbStorage::open(dir.path().join("immediate")).unwrap();
    assert_eq!(immediate.durability(), Durability::Immediate, "the default");
    for n in 0..5 {
        immediate.apply(put(n)).await.unwrap();
        assert_eq!(immediate.commit_count(), n as u64 + 1);
    }
    immediate.apply(WriteSet::new()).await.unwrap();
    assert_eq!(immediate.commit_count(), 5, "an empty set writes nothing");
    let refused = immediate.apply(put(0)).await;
    assert!(matches!(refused, Err(Error::Conflict)));
    assert_eq!(immediate.commit_count(), 5, "a refused set commits nothing");
    immediate.flush().await.unwrap();

    let path = dir.path().join("periodic");
    let periodic = RedbStorage::open_with(
        &path,
        RedbConfig::new()
            .durability(Durability::Periodic)
            .flush_every(StdDuration::from_secs(3600)),
    )
    .unwrap();
    for n in 0..5 {
        periodic.apply(put(n)).await.unwrap();
    }
    periodic.flush().await.unwrap();
    assert!(periodic.size_on_disk().unwrap() > 0);
    periodic.apply(put(5)).await.unwrap();
    // Closing the store makes the last write durable, long before its interval.
    drop(periodic);
    let reopened = RedbStorage::open(&path).unwrap();
    assert_eq!(reopened.check_integrity().await.unwrap().grants, 6);
}

#[test]
fn the_store_works_outside_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStorage::open(dir.path().join("store")).unwrap();
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
    let page = run(store.expired_grants(ZONE, epoch() + Duration::days(31), 10)).unwrap();
    assert_eq!(page.len(), 1);
}

#[tokio::test]
async fn a_temporary_store_is_removed_when_dropped() {
    let store = RedbStorage::temporary().unwrap();
    let other = RedbStorage::temporary().unwrap();
    assert_ne!(store.path(), other.path());
    store.apply(put(1)).await.unwrap();
    assert!(other.get_grant(ZONE, &grant(1).id).await.unwrap().is_none());
    let path = store.path().to_path_buf();
    assert!(path.join(DATABASE_FILE).exists());
    drop(store);
    assert!(!path.exists());
}

/// Dropping the last handle closes the database before the drop returns (the
/// periodic flusher is stopped and joined first), so the directory opens again at
/// once, with every write set of the handle before.
#[tokio::test]
async fn a_store_reopens_right_after_it_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    for round in 0..30 {
        let store = RedbStorage::open_with(
            &path,
            RedbConfig::new()
                .durability(Durability::Periodic)
                .flush_every(StdDuration::from_millis(1)),
        )
        .unwrap();
        assert_eq!(store.check_integrity().await.unwrap().grants, round as u64);
        store.apply(put(round)).await.unwrap();
    }
}
