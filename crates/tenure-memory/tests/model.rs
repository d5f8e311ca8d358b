//! The engine on the in-memory store against the reference model of `tenure-testkit`,
//! and the shrunk failures it found, kept as named regressions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use proptest::prelude::*;
use tenure::{AccessType, Error, InvalidGrantReason, RefreshRequest, Storage};
use tenure_memory::MemoryStorage;
use tenure_memory::testing::TestBed;
use tenure_testkit::model::{
    ClientPick, GrantExpiry, Op, Scope, Step, Volatile, Zone, ops_strategy, run_ops,
};

/// Cases per run: `PROPTEST_CASES` when set, 64 otherwise.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

async fn check(ops: &[Op]) -> Result<(), String> {
    let mut backend = Volatile(|| Arc::new(MemoryStorage::new()) as Arc<dyn Storage>);
    run_ops(&mut backend, ops).await.map_err(|e| e.to_string())
}

proptest! {
    // Shrunk failures are kept below as named tests, not in a regressions file.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases())
    })]

    #[test]
    fn engine_matches_reference_model(ops in ops_strategy()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        if let Err(divergence) = runtime.block_on(check(&ops)) {
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

fn authorize_read() -> Op {
    Op::Authorize {
        client: 0,
        wrong_zone: false,
        user: 0,
        scopes: vec![Scope::Read],
        expires: GrantExpiry::Default,
    }
}

fn refresh_first_grant() -> Op {
    Op::RefreshCurrent {
        grant: 0,
        client: ClientPick::Own,
        scopes: None,
        wrong_zone: false,
    }
}

// Engine bug: a spent refresh token replayed after the clock stepped back 1 ms was
// redeemed again instead of being taken as reuse (zero grace is `now < spent_at + 0`).
#[tokio::test]
async fn replay_after_the_clock_steps_back_is_reuse() {
    let ops = [
        working_client(),
        authorize_read(),
        refresh_first_grant(),
        Op::AdvanceClock(Step::BackMillis(1)),
        Op::RefreshSpent { grant: 0, nth: 0 },
    ];
    check(&ops).await.unwrap();
}

// Check order: an access token presented by an unregistered client was answered
// ClientMismatch, where the rules check the token kind (NotARefreshToken) first.
#[tokio::test]
async fn access_token_from_an_unknown_client_is_not_a_refresh_token() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let answer = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new("unregistered", &issued.access_token),
        )
        .await;
    assert!(
        matches!(
            answer,
            Err(Error::InvalidGrant {
                reason: InvalidGrantReason::NotARefreshToken
            })
        ),
        "{answer:?}"
    );
}

// Engine bug: with the clock stepped back, the history's latest refresh (shown from
// the grant's `refreshed_at`) was dated before the creation and listed first.
#[tokio::test]
async fn a_refresh_after_the_clock_steps_back_follows_the_creation_in_history() {
    let ops = [
        working_client(),
        authorize_read(),
        Op::AdvanceClock(Step::BackMillis(1)),
        refresh_first_grant(),
    ];
    check(&ops).await.unwrap();
}

// A long rotation chain, then the reuse of a token from its middle.
#[tokio::test]
async fn reuse_from_the_middle_of_a_long_chain_revokes_the_grant() {
    let ops = [
        working_client(),
        authorize_read(),
        Op::RotateMany {
            grant: 0,
            times: 300,
        },
        Op::RefreshSpent { grant: 0, nth: 150 },
        refresh_first_grant(),
    ];
    check(&ops).await.unwrap();
}
