//! The concurrency scenarios of `tenure-testkit` on the redb store, in `Immediate`
//! mode, so that racers also share commits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tempfile::TempDir;
use tenure::Storage;
use tenure_redb::RedbStorage;
use tenure_testkit::concurrency;

/// A fresh store, and the directory that must outlive it.
fn fresh() -> (Arc<dyn Storage>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStorage::open(dir.path().join("store")).unwrap();
    (Arc::new(store), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_raced_by_eight() {
    let (store, _dir) = fresh();
    concurrency::refresh_raced_by_eight(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_raced_by_refresh() {
    let (store, _dir) = fresh();
    concurrency::revoke_raced_by_refresh(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorize_raced_by_sweep() {
    let (store, _dir) = fresh();
    concurrency::authorize_raced_by_sweep(store).await;
}

#[tokio::test]
async fn refresh_after_a_competing_refresh() {
    let (store, _dir) = fresh();
    concurrency::refresh_after_a_competing_refresh(store).await;
}

#[tokio::test]
async fn token_revocation_after_a_competing_refresh() {
    let (store, _dir) = fresh();
    concurrency::token_revocation_after_a_competing_refresh(store).await;
}

#[tokio::test]
async fn refresh_after_a_competing_revocation() {
    let (store, _dir) = fresh();
    concurrency::refresh_after_a_competing_revocation(store).await;
}
