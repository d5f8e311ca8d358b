//! Rotating grants through the engine the way a running server does: one round
//! of refreshes per access-token lifetime (plus a second), with
//! [`Engine::sweep_expired`] run before each round, so that the access tokens the
//! round before issued, expired by then, are pruned as a server's periodic sweep
//! prunes them. A round's refreshes run [`CONCURRENT_CLIENTS`] at a time, as from
//! that many clients (on sled they share flushes; on PostgreSQL, connections).

use chrono::Duration;
use futures_util::future::join_all;
use tenure::{Engine, ManualClock, RefreshRequest, Secret, Timestamp};

use crate::OrDie;
use crate::fixture::{self, CLIENT, ZONE};

/// The access-token lifetime of the benchmark client, in seconds (the default).
pub const ACCESS_TTL_SECONDS: i64 = 3600;

/// Refreshes under way at once.
pub const CONCURRENT_CLIENTS: usize = 32;

/// When round `round` runs: that many access-token lifetimes, plus a second
/// each, after [`fixture::epoch`].
pub fn round_at(round: u64) -> Timestamp {
    fixture::epoch() + Duration::seconds((ACCESS_TTL_SECONDS + 1) * round as i64)
}

/// When grants that are to be rotated `rounds` times expire: 30 days after the
/// last round (so the last round's refresh token expires with its grant).
pub fn expiry(rounds: u64) -> Timestamp {
    round_at(rounds) + Duration::days(30)
}

/// The refresh tokens of fresh grants `range` expiring at `expires_at`
/// ([`fixture::family_expiring`] with one access token).
pub fn first_tokens(range: std::ops::Range<u64>, expires_at: Timestamp) -> Vec<Secret> {
    range
        .map(|i| Secret::from_presented(fixture::refresh_secret(i, 1, expires_at)))
        .collect()
}

/// Runs [`Engine::sweep_expired`] until nothing expired is left.
pub async fn sweep(engine: &Engine) {
    loop {
        let report = engine.sweep_expired(ZONE, 1000).await.or_die("sweeping");
        if !report.more {
            break;
        }
    }
}

/// Runs rounds `1..=rounds` on the grants whose current refresh tokens are
/// `tokens`, replacing each with the one its rotation issues; the clock is left
/// at the last round.
pub async fn rotate(engine: &Engine, clock: &ManualClock, tokens: &mut [Secret], rounds: u64) {
    for round in 1..=rounds {
        clock.set(round_at(round));
        sweep(engine).await;
        for chunk in tokens.chunks_mut(CONCURRENT_CLIENTS) {
            let requests: Vec<RefreshRequest> = chunk
                .iter()
                .map(|token| RefreshRequest::new(CLIENT, token))
                .collect();
            let issued = join_all(
                requests
                    .into_iter()
                    .map(|request| engine.refresh(ZONE, request)),
            )
            .await;
            for (token, issued) in chunk.iter_mut().zip(issued) {
                *token = issued
                    .or_die("rotating")
                    .refresh_token
                    .or_die("a rotated refresh token");
            }
        }
    }
}
