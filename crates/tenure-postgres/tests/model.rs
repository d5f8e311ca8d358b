//! The engine on PostgreSQL against the reference model of `tenure-testkit`.
//!
//! Each case runs in a schema of its own; `Op::Reopen` drops the store (and its
//! pool) and opens the same schema again, so the state the model expects must have
//! been in the database, not in a process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use proptest::prelude::*;
use tenure::{AccessType, Storage};
use tenure_postgres::PostgresStorage;
use tenure_testkit::model::{
    Backend, ClientPick, GrantExpiry, Op, Scope, Step, TokenPick, Zone, ops_strategy, run_ops,
};

/// Cases per run: `PROPTEST_CASES` when set, 16 otherwise (each case is a few
/// hundred statements against a real server).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(16)
}

/// A store in one schema, reopened from scratch on `Op::Reopen`.
struct Postgres {
    schema: String,
}

impl Backend for Postgres {
    async fn create(&mut self) -> tenure::Result<Arc<dyn Storage>> {
        let store =
            PostgresStorage::connect_with(&support::database_url(), support::options(&self.schema))
                .await?;
        Ok(Arc::new(store))
    }

    async fn reopen(&mut self, store: Arc<dyn Storage>) -> tenure::Result<Arc<dyn Storage>> {
        // The runner holds no other reference: this closes the pool.
        drop(store);
        self.create().await
    }
}

/// Runs `ops` against the engine on a fresh schema and the model, then drops the
/// schema.
async fn check(ops: &[Op]) -> Result<(), String> {
    let mut backend = Postgres {
        schema: support::unique_schema(),
    };
    let outcome = AssertUnwindSafe(run_ops(&mut backend, ops))
        .catch_unwind()
        .await;
    support::drop_schema(&backend.schema).await;
    match outcome {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases())
    })]

    #[test]
    fn engine_matches_reference_model(ops in ops_strategy()) {
        if let Err(divergence) = runtime().block_on(check(&ops)) {
            prop_assert!(false, "{divergence}");
        }
    }
}

fn working_client() -> Op {
    Op::RegisterClient {
        zone: Zone::A,
        client: 0,
        scopes: vec![Scope::Read, Scope::Write],
        authorization_code: true,
        refresh_token: true,
        access_type: AccessType::Offline,
        access_ttl: 60,
        refresh_ttl: 3600,
        enabled: true,
    }
}

fn authorize(user: u8) -> Op {
    Op::Authorize {
        client: 0,
        wrong_zone: false,
        user,
        scopes: vec![Scope::Read],
        expires: GrantExpiry::Default,
    }
}

fn refresh_current(grant: u8) -> Op {
    Op::RefreshCurrent {
        grant,
        client: ClientPick::Own,
        scopes: None,
        wrong_zone: false,
    }
}

/// A reopen between every step of two grants' lives: whatever the engine reads
/// after it (refresh chains, token generations, the token expiry index) must have
/// come from the database.
#[test]
fn a_reopened_store_holds_everything() {
    let ops = [
        working_client(),
        Op::Reopen,
        authorize(0),
        authorize(1),
        Op::Reopen,
        refresh_current(0),
        Op::Reopen,
        Op::RefreshSpent { grant: 0, nth: 0 },
        Op::Reopen,
        refresh_current(1),
        Op::Reopen,
        Op::RotateMany {
            grant: 1,
            times: 40,
        },
        Op::Reopen,
        Op::Introspect {
            token: TokenPick::LatestRefresh { grant: 1 },
            wrong_zone: false,
        },
        Op::AdvanceClock(Step::Days(400)),
        Op::Sweep {
            zone: Zone::A,
            limit: 10,
        },
        Op::Reopen,
        Op::Sweep {
            zone: Zone::A,
            limit: 100,
        },
        Op::Reopen,
        Op::RefreshWith {
            token: TokenPick::Issued { nth: 3 },
        },
    ];
    runtime().block_on(check(&ops)).unwrap();
}

/// A token replayed from the middle of a long rotation chain, its record long
/// deleted, after a reopen: reuse, and the grant is revoked.
#[test]
fn reuse_from_the_middle_of_a_long_chain_after_a_reopen() {
    let ops = [
        working_client(),
        authorize(0),
        Op::RotateMany {
            grant: 0,
            times: 120,
        },
        Op::Reopen,
        Op::RefreshSpent { grant: 0, nth: 60 },
        Op::Reopen,
        refresh_current(0),
    ];
    runtime().block_on(check(&ops)).unwrap();
}
