//! What every test of the crate shares: the database to use, and stores in schemas
//! of their own that are dropped afterwards.
#![allow(dead_code)]

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;
use tenure_postgres::{PostgresOptions, PostgresStorage};

/// The variable naming the database the tests use.
pub const URL_VARIABLE: &str = "TENURE_TEST_POSTGRES_URL";

/// The database the tests use. Without one, the test fails and says how to get one.
pub fn database_url() -> String {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{URL_VARIABLE} is not set, and the tenure-postgres tests need a PostgreSQL \
             database. Run them through the project's script, which starts a throwaway \
             server:\n\n    scripts/with-postgres.sh cargo test -p tenure-postgres\n\nor \
             set {URL_VARIABLE} to a database where they may create and drop schemas."
        ),
    }
}

/// A schema name no other test (of this run or another) uses.
pub fn unique_schema() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = RandomState::new().hash_one((std::process::id(), COUNTER.load(Ordering::Relaxed)));
    format!(
        "t_{}_{}_{random:016x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Options for a test store in `schema`: a small pool, since tests run side by side.
pub fn options(schema: &str) -> PostgresOptions {
    PostgresOptions::new().schema(schema).max_connections(4)
}

/// Opens a store in `schema`, creating it if needed.
pub async fn open(schema: &str) -> PostgresStorage {
    PostgresStorage::connect_with(&database_url(), options(schema))
        .await
        .unwrap_or_else(|e| panic!("opening a store in schema {schema}: {e:?}"))
}

/// A plain connection, outside any store's pool.
pub async fn connect() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connecting to the test database");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Drops a test schema and everything in it.
pub async fn drop_schema(schema: &str) {
    connect()
        .await
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap_or_else(|e| panic!("dropping schema {schema}: {e:?}"));
}

/// Runs `test` with a fresh store in a schema of its own, then drops the schema,
/// whether the test passed or panicked.
pub async fn with_store<F, Fut>(test: F)
where
    F: FnOnce(PostgresStorage) -> Fut,
    Fut: Future<Output = ()>,
{
    let schema = unique_schema();
    let store = open(&schema).await;
    let outcome = AssertUnwindSafe(test(store)).catch_unwind().await;
    drop_schema(&schema).await;
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// Runs a future on a fresh runtime: current-thread for one worker, else
/// multi-threaded with that many.
pub fn run(worker_threads: usize, future: impl Future<Output = ()>) {
    let mut builder = if worker_threads > 1 {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(worker_threads);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future);
}

/// Runs `test` with the name of a fresh schema (for tests that open several stores
/// over one schema), then drops the schema, whether the test passed or panicked.
pub async fn with_schema<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let schema = unique_schema();
    let outcome = AssertUnwindSafe(test(schema.clone())).catch_unwind().await;
    drop_schema(&schema).await;
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}
