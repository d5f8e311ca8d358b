//! The concurrency scenarios of `tenure-testkit` on the in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tenure_memory::MemoryStorage;
use tenure_testkit::concurrency;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_raced_by_eight() {
    concurrency::refresh_raced_by_eight(Arc::new(MemoryStorage::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_raced_by_refresh() {
    concurrency::revoke_raced_by_refresh(Arc::new(MemoryStorage::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorize_raced_by_sweep() {
    concurrency::authorize_raced_by_sweep(Arc::new(MemoryStorage::new())).await;
}

#[tokio::test]
async fn refresh_after_a_competing_refresh() {
    concurrency::refresh_after_a_competing_refresh(Arc::new(MemoryStorage::new())).await;
}

#[tokio::test]
async fn token_revocation_after_a_competing_refresh() {
    concurrency::token_revocation_after_a_competing_refresh(Arc::new(MemoryStorage::new())).await;
}

#[tokio::test]
async fn refresh_after_a_competing_revocation() {
    concurrency::refresh_after_a_competing_revocation(Arc::new(MemoryStorage::new())).await;
}
