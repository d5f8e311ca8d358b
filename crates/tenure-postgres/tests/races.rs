//! Two auth-server processes sharing one database, as two engines on two separate
//! pools over one schema: whatever they race on, the database holds them to the
//! rules.
//!
//! Each race repeats [`ROUNDS`] times on a fresh grant. The racers start together
//! behind a barrier; nothing waits on a timer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use tenure::{
    Actor, AuthorizeRequest, ClientRegistration, Engine, Error, GrantStatus, InvalidGrantReason,
    Issued, ManualClock, RefreshRequest, Secret, Timestamp, TransitionReason,
};
use tokio::sync::Barrier;

const ROUNDS: usize = 32;
const ZONE: &str = "zone-race";
const CLIENT: &str = "racer";

fn start() -> Timestamp {
    chrono::DateTime::from_timestamp(1_893_456_000, 0).expect("2030-01-01 is a valid time")
}

/// Two engines, each with its own pool and clock, over one schema, and a client
/// registered through the first.
async fn two_processes(schema: &str) -> [Engine; 2] {
    let mut engines = Vec::new();
    for _ in 0..2 {
        let store = support::open(schema).await;
        let clock = Arc::new(ManualClock::new(start()));
        engines.push(Engine::builder(Arc::new(store)).clock(clock).build());
    }
    let [a, b]: [Engine; 2] = engines.try_into().expect("two engines");
    assert!(
        !Arc::ptr_eq(a.storage(), b.storage()),
        "the engines must not share a store"
    );
    a.register_client(
        ZONE,
        ClientRegistration::new("Racer")
            .id(CLIENT)
            .scopes(["read", "write"]),
    )
    .await
    .expect("registering the racing client");
    [a, b]
}

async fn authorize(engine: &Engine, round: usize) -> Issued {
    engine
        .authorize(
            ZONE,
            AuthorizeRequest::new(CLIENT, format!("user-{round}"), "calendar", ["read"]),
        )
        .await
        .expect("authorizing")
}

/// Panics unless `token` is inactive as read through every engine.
async fn assert_inactive(engines: &[Engine; 2], round: usize, what: &str, token: &Secret) {
    for (n, engine) in engines.iter().enumerate() {
        let answer = engine
            .introspect(ZONE, token.expose())
            .await
            .expect("introspecting");
        assert!(
            !answer.is_active(),
            "round {round}: {what} is active through engine {n} on a revoked grant: {answer:?}"
        );
    }
}

/// Both engines present the same refresh token at once: exactly one refresh
/// succeeds, the other is reuse, and the grant ends revoked with every token, old
/// and new, inactive through both engines.
#[test]
fn refreshes_with_one_token_on_two_pools() {
    support::run(
        4,
        support::with_schema(|schema| async move {
            let engines = two_processes(&schema).await;
            for round in 0..ROUNDS {
                let issued = authorize(&engines[round % 2], round).await;
                let refresh = issued.refresh_token.clone().expect("a refresh token");
                let barrier = Arc::new(Barrier::new(2));
                let racers: Vec<_> = engines
                    .iter()
                    .map(|engine| {
                        let (engine, barrier, token) =
                            (engine.clone(), barrier.clone(), refresh.clone());
                        tokio::spawn(async move {
                            barrier.wait().await;
                            engine
                                .refresh(ZONE, RefreshRequest::new(CLIENT, &token))
                                .await
                        })
                    })
                    .collect();
                let mut winners = Vec::new();
                for racer in racers {
                    match racer.await.expect("a racer panicked") {
                        Ok(won) => winners.push(won),
                        Err(Error::RefreshTokenReused { grant_id }) => {
                            assert_eq!(grant_id, issued.grant.id, "round {round}");
                        }
                        Err(e) => panic!("round {round}: a refresh failed with {e:?}"),
                    }
                }
                assert_eq!(
                    winners.len(),
                    1,
                    "round {round}: {} refreshes succeeded with one token",
                    winners.len()
                );
                for engine in &engines {
                    let grant = engine
                        .get_grant(ZONE, &issued.grant.id)
                        .await
                        .expect("reading the grant");
                    assert_eq!(grant.status, GrantStatus::Revoked, "round {round}");
                    assert!(!grant.refresh_token_set, "round {round}");
                }
                let history: Vec<TransitionReason> = engines[0]
                    .grant_history(ZONE, &issued.grant.id)
                    .await
                    .expect("reading the history")
                    .iter()
                    .map(|t| t.reason)
                    .collect();
                assert_eq!(
                    history,
                    [
                        TransitionReason::Created,
                        TransitionReason::Refreshed,
                        TransitionReason::ReuseDetected
                    ],
                    "round {round}"
                );
                let won = &winners[0];
                assert_inactive(
                    &engines,
                    round,
                    "the first access token",
                    &issued.access_token,
                )
                .await;
                assert_inactive(&engines, round, "the raced refresh token", &refresh).await;
                assert_inactive(
                    &engines,
                    round,
                    "the winner's access token",
                    &won.access_token,
                )
                .await;
                let rotated = won.refresh_token.as_ref().expect("a rotated refresh token");
                assert_inactive(&engines, round, "the winner's refresh token", rotated).await;
            }
        }),
    );
}

/// One engine revokes (the grant in even rounds, its refresh token in odd ones)
/// while the other refreshes with that refresh token. Whichever wins, a revoked
/// grant keeps no active token, the one the refresh just issued included; a
/// refresh-token revocation and a refresh of that token never both succeed; and
/// both engines read the same outcome.
#[test]
fn revocation_races_refresh_on_two_pools() {
    support::run(
        4,
        support::with_schema(|schema| async move {
            let engines = two_processes(&schema).await;
            for round in 0..ROUNDS {
                let (revoking, refreshing) = if round % 4 < 2 {
                    (&engines[0], &engines[1])
                } else {
                    (&engines[1], &engines[0])
                };
                let issued = authorize(revoking, round).await;
                let refresh = issued.refresh_token.clone().expect("a refresh token");
                let whole_grant = round % 2 == 0;
                let barrier = Arc::new(Barrier::new(2));
                let refresher = {
                    let (engine, barrier, token) =
                        (refreshing.clone(), barrier.clone(), refresh.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        engine
                            .refresh(ZONE, RefreshRequest::new(CLIENT, &token))
                            .await
                    })
                };
                let revoker = {
                    let (engine, barrier, token) =
                        (revoking.clone(), barrier.clone(), refresh.clone());
                    let grant_id = issued.grant.id.clone();
                    tokio::spawn(async move {
                        barrier.wait().await;
                        if whole_grant {
                            engine
                                .revoke_grant(ZONE, &grant_id, Actor::Admin)
                                .await
                                .map(|g| g.status == GrantStatus::Revoked)
                        } else {
                            engine.revoke_token(ZONE, token.expose(), None).await
                        }
                    })
                };
                let refreshed = refresher.await.expect("the refresher panicked");
                let revoked = revoker
                    .await
                    .expect("the revoker panicked")
                    .unwrap_or_else(|e| panic!("round {round}: revocation failed with {e:?}"));
                let won = match refreshed {
                    Ok(won) => Some(won),
                    Err(Error::InvalidGrant {
                        reason: InvalidGrantReason::TokenRevoked | InvalidGrantReason::GrantInactive,
                    }) => None,
                    Err(e) => panic!("round {round}: the refresh failed with {e:?}"),
                };
                if whole_grant {
                    assert!(revoked, "round {round}: revoke_grant left the grant active");
                } else {
                    assert!(
                        revoked != won.is_some(),
                        "round {round}: refresh succeeded: {}, token revocation: {revoked}",
                        won.is_some()
                    );
                }
                let mut statuses = Vec::new();
                for engine in &engines {
                    let grant = engine
                        .get_grant(ZONE, &issued.grant.id)
                        .await
                        .expect("reading the grant");
                    statuses.push(grant.status);
                }
                assert_eq!(
                    statuses[0], statuses[1],
                    "round {round}: the engines disagree"
                );
                assert_eq!(
                    statuses[0] == GrantStatus::Revoked,
                    revoked,
                    "round {round}: the grant reads {}",
                    statuses[0]
                );
                if revoked {
                    assert_inactive(
                        &engines,
                        round,
                        "the first access token",
                        &issued.access_token,
                    )
                    .await;
                    assert_inactive(&engines, round, "the first refresh token", &refresh).await;
                    if let Some(won) = &won {
                        assert_inactive(
                            &engines,
                            round,
                            "the refreshed access token",
                            &won.access_token,
                        )
                        .await;
                        if let Some(rotated) = &won.refresh_token {
                            assert_inactive(&engines, round, "the rotated refresh token", rotated)
                                .await;
                        }
                    }
                } else {
                    let won = won.expect("an active grant after the race was refreshed");
                    for engine in &engines {
                        assert!(
                            engine
                                .introspect(ZONE, won.access_token.expose())
                                .await
                                .expect("introspecting")
                                .is_active(),
                            "round {round}: the new access token of an active grant is inactive"
                        );
                    }
                }
            }
        }),
    );
}

/// One engine revokes a grant's access token alone (a write of the token guarded by
/// a check of the grant) while the other refreshes the grant (a write of the grant):
/// both succeed, whichever commits first, and both engines then read the revoked
/// access token inactive and the refreshed grant's new tokens active.
#[test]
fn access_token_revocation_races_refresh_on_two_pools() {
    support::run(
        4,
        support::with_schema(|schema| async move {
            let engines = two_processes(&schema).await;
            for round in 0..ROUNDS {
                let (revoking, refreshing) = if round % 2 == 0 {
                    (&engines[0], &engines[1])
                } else {
                    (&engines[1], &engines[0])
                };
                let issued = authorize(refreshing, round).await;
                let refresh = issued.refresh_token.clone().expect("a refresh token");
                let barrier = Arc::new(Barrier::new(2));
                let refresher = {
                    let (engine, barrier, token) =
                        (refreshing.clone(), barrier.clone(), refresh.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        engine
                            .refresh(ZONE, RefreshRequest::new(CLIENT, &token))
                            .await
                    })
                };
                let revoker = {
                    let (engine, barrier, token) = (
                        revoking.clone(),
                        barrier.clone(),
                        issued.access_token.clone(),
                    );
                    tokio::spawn(async move {
                        barrier.wait().await;
                        engine.revoke_token(ZONE, token.expose(), None).await
                    })
                };
                let won = refresher
                    .await
                    .expect("the refresher panicked")
                    .unwrap_or_else(|e| panic!("round {round}: the refresh failed with {e:?}"));
                let revoked = revoker
                    .await
                    .expect("the revoker panicked")
                    .unwrap_or_else(|e| panic!("round {round}: the revocation failed with {e:?}"));
                assert!(revoked, "round {round}: the access token was not revoked");
                assert_inactive(
                    &engines,
                    round,
                    "the revoked access token",
                    &issued.access_token,
                )
                .await;
                let rotated = won.refresh_token.as_ref().expect("a rotated refresh token");
                for engine in &engines {
                    let grant = engine
                        .get_grant(ZONE, &issued.grant.id)
                        .await
                        .expect("reading the grant");
                    assert_eq!(grant.status, GrantStatus::Active, "round {round}");
                    for (what, token) in [
                        ("the refreshed access token", &won.access_token),
                        ("the rotated refresh token", rotated),
                    ] {
                        assert!(
                            engine
                                .introspect(ZONE, token.expose())
                                .await
                                .expect("introspecting")
                                .is_active(),
                            "round {round}: {what} is inactive"
                        );
                    }
                }
            }
        }),
    );
}
