//! A grant's life on a manual clock: authorize, introspect, refresh, reuse detection,
//! and expiry, printed step by step.
//!
//! Run with `cargo run --example lifecycle -p tenure`.

use std::sync::Arc;

use chrono::Duration;
use tenure::{
    AuthorizeRequest, ClientRegistration, Engine, Error, Introspection, ListGrants, ManualClock,
    RefreshRequest, Secret, Timestamp, time::format_rfc3339,
};
use tenure_memory::MemoryStorage;

const ZONE: &str = "example-zone";

fn step(clock: &ManualClock, what: impl std::fmt::Display) {
    println!("{}  {what}", format_rfc3339(&tenure::Clock::now(clock)));
}

async fn describe(engine: &Engine, token: &Secret) -> Result<String, Error> {
    Ok(match engine.introspect(ZONE, token.expose()).await? {
        Introspection::Active(t) => format!(
            "active, scopes [{}], expires {}",
            t.scopes.join(" "),
            format_rfc3339(&t.expires_at)
        ),
        Introspection::Inactive => "inactive".to_owned(),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let start: Timestamp = chrono::DateTime::from_timestamp(1_893_456_000, 0).unwrap_or_default();
    let clock = Arc::new(ManualClock::new(start));
    let engine = Engine::builder(Arc::new(MemoryStorage::new()))
        .clock(clock.clone())
        .build();

    let client = engine
        .register_client(
            ZONE,
            ClientRegistration::new("Calendar sync")
                .id("calendar-sync")
                .scopes(["calendar:read", "calendar:write"])
                .lifetimes(3600, 7 * 24 * 3600),
        )
        .await?
        .client;
    step(
        &clock,
        format!(
            "registered client {:?} (offline access, 1 h access tokens)",
            client.id
        ),
    );

    let issued = engine
        .authorize(
            ZONE,
            AuthorizeRequest::new(
                &client.id,
                "alice",
                "calendar-api",
                ["calendar:read", "calendar:write"],
            )
            .expires_at(start + Duration::days(30)),
        )
        .await?;
    let grant_id = issued.grant.id.clone();
    step(
        &clock,
        format!("alice authorized grant {grant_id}, expiring in 30 days"),
    );
    step(
        &clock,
        format!(
            "access token: {}",
            describe(&engine, &issued.access_token).await?
        ),
    );

    clock.advance(Duration::minutes(90));
    step(
        &clock,
        format!(
            "90 minutes later, the access token is {}",
            describe(&engine, &issued.access_token).await?
        ),
    );

    let first_refresh = issued
        .refresh_token
        .clone()
        .ok_or(Error::invalid_input("refresh_token", "none issued"))?;
    let rotated = engine
        .refresh(
            ZONE,
            RefreshRequest::new(&client.id, &first_refresh).scopes(["calendar:read"]),
        )
        .await?;
    step(
        &clock,
        format!(
            "refreshed for [calendar:read]: new access token is {}",
            describe(&engine, &rotated.access_token).await?
        ),
    );
    step(
        &clock,
        format!(
            "the presented refresh token is now {}",
            describe(&engine, &first_refresh).await?
        ),
    );

    clock.advance(Duration::minutes(5));
    match engine
        .refresh(ZONE, RefreshRequest::new(&client.id, &first_refresh))
        .await
    {
        Err(e @ Error::RefreshTokenReused { .. }) => {
            step(&clock, format!("replaying the spent refresh token: {e}"))
        }
        other => step(&clock, format!("unexpected: {other:?}")),
    }
    let grant = engine.get_grant(ZONE, &grant_id).await?;
    step(
        &clock,
        format!(
            "grant {grant_id} is {}; the rotated access token is {}",
            grant.status,
            describe(&engine, &rotated.access_token).await?
        ),
    );

    let second = engine
        .authorize(
            ZONE,
            AuthorizeRequest::new(&client.id, "bob", "calendar-api", ["calendar:read"])
                .expires_at(tenure::Clock::now(&*clock) + Duration::days(1)),
        )
        .await?;
    step(
        &clock,
        format!("bob authorized grant {} for one day", second.grant.id),
    );
    clock.advance(Duration::days(1));
    let read = engine.get_grant(ZONE, &second.grant.id).await?;
    step(
        &clock,
        format!(
            "a day later bob's grant reads {} before any sweep",
            read.status
        ),
    );
    let report = engine.sweep_expired(ZONE, 100).await?;
    step(
        &clock,
        format!(
            "sweep persisted {} expiration(s) and pruned {} expired token(s)",
            report.expired, report.tokens_removed
        ),
    );

    println!("\nhistory of {grant_id}:");
    for t in engine.grant_history(ZONE, &grant_id).await? {
        let from = t.from.map_or("-".to_owned(), |s| s.to_string());
        println!(
            "  {}  {from:>7} -> {:<7}  {} by {}",
            format_rfc3339(&t.at),
            t.to,
            t.reason,
            t.actor
        );
    }
    let page = engine
        .list_grants(
            ZONE,
            &ListGrants {
                total_count: true,
                ..ListGrants::default()
            },
        )
        .await?;
    println!(
        "\n{} grants in {ZONE}:",
        page.total_count.unwrap_or_default()
    );
    for g in page.items {
        println!("  {}  {:<8} user {}", g.id, g.status.as_str(), g.user_id);
    }
    Ok(())
}
