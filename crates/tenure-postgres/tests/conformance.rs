//! The storage conformance suite of `tenure-testkit` on PostgreSQL.
//!
//! A store opens asynchronously (it connects and creates its schema), so the suite
//! runs through a harness: each rule gets a fresh schema, dropped afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::future::Future;

use tenure_postgres::PostgresStorage;

/// Runs one rule on a runtime with the worker threads the suite asks for, on a
/// fresh schema dropped afterwards.
fn run_rule<F, Fut>(worker_threads: usize, rule: F)
where
    F: FnOnce(PostgresStorage) -> Fut,
    Fut: Future<Output = ()>,
{
    support::run(worker_threads, support::with_store(rule));
}

tenure_testkit::conformance!(postgres, harness = run_rule);
