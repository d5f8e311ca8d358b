//! `tenure demo`: a grant's whole life on the embedded store, as a timeline.
//!
//! The demo runs on a manual clock that starts at the real time, so an hour of a
//! grant's life takes no time at all; each run uses a zone of its own
//! (`demo-<time>`), printed at the start, to inspect afterwards with
//! `tenure grants list --zone …`.

use std::sync::Arc;

use chrono::Duration;
use tenure::time::format_rfc3339;
use tenure::{
    AuthorizeRequest, ClientRegistration, ClientUpdate, Clock, Engine, Error, Introspection,
    ManualClock, RefreshRequest, Secret,
};

use crate::error::CliError;
use crate::store::{Store, StoreArgs, StoreLocation};

struct Timeline {
    clock: Arc<ManualClock>,
}

impl Timeline {
    fn say(&self, what: impl std::fmt::Display) {
        println!("{}  {what}", format_rfc3339(&self.clock.now()));
    }
}

async fn describe(engine: &Engine, zone: &str, token: &Secret) -> Result<String, CliError> {
    Ok(match engine.introspect(zone, token.expose()).await? {
        Introspection::Active(t) => format!(
            "active [{}] until {}",
            t.scopes.join(" "),
            format_rfc3339(&t.expires_at)
        ),
        Introspection::Inactive => "inactive".to_owned(),
    })
}

/// Runs the demo.
pub async fn run(args: &StoreArgs) -> Result<(), CliError> {
    let store = Store::create(args).await?;
    let start = tenure::time::to_millis(chrono::Utc::now());
    let clock = Arc::new(ManualClock::new(start));
    let engine = Engine::builder(store.storage())
        .clock(clock.clone())
        .build();
    let t = Timeline {
        clock: clock.clone(),
    };
    let zone = format!("demo-{}", start.format("%Y%m%dT%H%M%S%.3fZ"));
    println!(
        "demo on {}, zone {zone}\n",
        StoreLocation::from_args(args).describe()
    );

    let client = engine
        .register_client(
            &zone,
            ClientRegistration::new("Calendar sync")
                .id("calendar")
                .scopes(["calendar:read", "calendar:write"])
                .lifetimes(3600, 7 * 24 * 3600),
        )
        .await?
        .client;
    t.say(format!("registered client {:?}: offline access, scopes calendar:read calendar:write, 1 h access tokens", client.id));

    let issued = engine
        .authorize(
            &zone,
            AuthorizeRequest::new(
                "calendar",
                "alice",
                "calendar-api",
                ["calendar:read", "calendar:write"],
            )
            .expires_at(start + Duration::days(30)),
        )
        .await?;
    let grant_id = issued.grant.id.clone();
    t.say(format!("alice authorized grant {grant_id} for 30 days"));
    t.say(format!(
        "  access token: {}",
        describe(&engine, &zone, &issued.access_token).await?
    ));

    clock.advance(Duration::minutes(90));
    t.say(format!(
        "90 minutes on, the first access token is {}",
        describe(&engine, &zone, &issued.access_token).await?
    ));
    let first_refresh = issued
        .refresh_token
        .clone()
        .ok_or_else(|| CliError::Usage("the demo client should get refresh tokens".into()))?;
    let second = engine
        .refresh(&zone, RefreshRequest::new("calendar", &first_refresh))
        .await?;
    t.say(format!(
        "refreshed: new access token {}",
        describe(&engine, &zone, &second.access_token).await?
    ));
    t.say(format!(
        "  the presented refresh token is now {}",
        describe(&engine, &zone, &first_refresh).await?
    ));

    clock.advance(Duration::minutes(10));
    engine
        .update_client(
            &zone,
            "calendar",
            &ClientUpdate {
                allowed_scopes: Some(vec!["calendar:read".into()]),
                ..ClientUpdate::default()
            },
        )
        .await?;
    t.say("the client is narrowed to calendar:read; tokens already issued keep their scopes:");
    t.say(format!(
        "  the current access token is {}",
        describe(&engine, &zone, &second.access_token).await?
    ));
    let second_refresh = second
        .refresh_token
        .clone()
        .ok_or_else(|| CliError::Usage("the demo client should get refresh tokens".into()))?;
    let third = engine
        .refresh(&zone, RefreshRequest::new("calendar", &second_refresh))
        .await?;
    t.say(format!(
        "refreshed again: the new access token is {}",
        describe(&engine, &zone, &third.access_token).await?
    ));

    clock.advance(Duration::minutes(5));
    match engine
        .refresh(&zone, RefreshRequest::new("calendar", &first_refresh))
        .await
    {
        Err(e @ Error::RefreshTokenReused { .. }) => t.say(format!(
            "someone replays the first, spent refresh token: {e}"
        )),
        Ok(_) => t.say("unexpected: the spent refresh token was accepted"),
        Err(e) => return Err(e.into()),
    }
    let grant = engine.get_grant(&zone, &grant_id).await?;
    t.say(format!(
        "grant {grant_id} is {}; its newest access token is {}",
        grant.status,
        describe(&engine, &zone, &third.access_token).await?
    ));

    let short = engine
        .authorize(
            &zone,
            AuthorizeRequest::new("calendar", "bob", "calendar-api", ["calendar:read"])
                .expires_at(clock.now() + Duration::hours(2)),
        )
        .await?;
    t.say(format!(
        "bob authorized grant {} for 2 hours",
        short.grant.id
    ));
    clock.advance(Duration::hours(2));
    let read = engine.get_grant(&zone, &short.grant.id).await?;
    t.say(format!(
        "2 hours on, bob's grant reads {} before any sweep",
        read.status
    ));
    let report = engine.sweep_expired(&zone, 100).await?;
    t.say(format!(
        "the sweep persisted {} expiration and pruned {} expired tokens",
        report.expired, report.tokens_removed
    ));

    println!("\nwhy alice's grant is revoked:");
    for tr in engine.grant_history(&zone, &grant_id).await? {
        let from = tr.from.map_or("-".to_owned(), |s| s.to_string());
        println!(
            "  {}  {from:>7} -> {:<8} {} by {}",
            format_rfc3339(&tr.at),
            tr.to,
            tr.reason,
            tr.actor
        );
    }
    store.flush().await?;
    Ok(())
}
