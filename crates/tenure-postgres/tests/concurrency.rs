//! The concurrency scenarios of `tenure-testkit` on one PostgreSQL store, with a pool
//! large enough for every racer to hold a connection at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use tenure_postgres::PostgresStorage;
use tenure_testkit::concurrency;

async fn store(schema: &str) -> Arc<PostgresStorage> {
    let store = PostgresStorage::connect_with(
        &support::database_url(),
        support::options(schema).max_connections(concurrency::RACERS + 2),
    )
    .await
    .expect("opening the store");
    Arc::new(store)
}

/// One test per scenario, on a multi-threaded runtime, in a schema of its own.
macro_rules! scenarios {
    ($($scenario:ident,)+) => {
        $(
            #[test]
            fn $scenario() {
                support::run(
                    4,
                    support::with_schema(|schema| async move {
                        concurrency::$scenario(store(&schema).await).await;
                    }),
                );
            }
        )+
    };
}

scenarios! {
    refresh_raced_by_eight,
    revoke_raced_by_refresh,
    authorize_raced_by_sweep,
    refresh_after_a_competing_refresh,
    token_revocation_after_a_competing_refresh,
    refresh_after_a_competing_revocation,
}
