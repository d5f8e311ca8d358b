//! One test per lifecycle rule of the design, through the engine on the in-memory
//! backend and a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Duration;
use tenure::{
    AccessType, Actor, AuthorizeRequest, ClientRegistration, ClientUpdate, Error, Event,
    EventSubscriber, GrantStatus, GrantType, Grantable, GrantsOf, Introspection,
    InvalidGrantReason, ListGrants, PermissionResolver, RefreshRequest, ScopePolicy, TokenKind,
    TransitionReason,
};
use tenure_memory::testing::TestBed;

/// Records every event it is sent.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Event>>);

impl EventSubscriber for Recorder {
    fn notify(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn bed_with_events() -> (TestBed, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let bed = TestBed::with(|b| b.subscriber(recorder.clone()));
    (bed, recorder)
}

async fn is_active(bed: &TestBed, token: &tenure::Secret) -> bool {
    bed.engine
        .introspect(bed.zone, token.expose())
        .await
        .unwrap()
        .is_active()
}

#[tokio::test]
async fn a_new_grant_is_active_with_seed_fields() {
    let bed = TestBed::new();
    let client = bed.client(["read", "write"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let g = &issued.grant;
    assert_eq!(g.status, GrantStatus::Active);
    assert_eq!(g.created_at, bed.clock.now_millis());
    assert_eq!(g.updated_at, g.created_at);
    assert_eq!(g.refreshed_at, None);
    assert!(g.refresh_token_set);
    assert_eq!(g.scopes, vec!["read"]);
    assert_eq!(g.client_id, client.id);
    assert_eq!(issued.expires_in(), 3600);
    assert!(issued.access_token.expose().starts_with("tnr_at_"));
    assert!(
        issued
            .refresh_token
            .as_ref()
            .unwrap()
            .expose()
            .starts_with("tnr_rt_")
    );
    // Ids are UUIDv7: unique and time-ordered.
    bed.clock.advance(Duration::milliseconds(1));
    let second = bed.grant(&client, "alice", ["read"]).await.unwrap();
    assert!(second.grant.id > g.id);
    assert_eq!(uuid_version(&g.id), Some('7'));
}

fn uuid_version(id: &str) -> Option<char> {
    id.chars().nth(14)
}

trait ClockExt {
    fn now_millis(&self) -> tenure::Timestamp;
}

impl ClockExt for tenure::ManualClock {
    fn now_millis(&self) -> tenure::Timestamp {
        tenure::time::to_millis(tenure::Clock::now(self))
    }
}

#[tokio::test]
async fn an_online_client_gets_no_refresh_token() {
    let bed = TestBed::new();
    let client = bed
        .register(
            ClientRegistration::new("online")
                .id("online")
                .scopes(["read"])
                .access_type(AccessType::Online),
        )
        .await
        .unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    assert!(issued.refresh_token.is_none());
    assert!(!issued.grant.refresh_token_set);
    // Without refresh tokens the grant lives as long as its access token.
    assert_eq!(issued.grant.expires_at, issued.access_expires_at);

    let no_refresh_grant = bed
        .register(
            ClientRegistration::new("offline-without-refresh")
                .id("ofr")
                .scopes(["read"])
                .grants([GrantType::AuthorizationCode]),
        )
        .await
        .unwrap();
    let issued = bed
        .grant(&no_refresh_grant, "alice", ["read"])
        .await
        .unwrap();
    assert!(issued.refresh_token.is_none());
}

#[tokio::test]
async fn expiry_is_a_fact_of_time_before_any_sweep() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let expires_at = bed.clock.now_millis() + Duration::hours(2);
    let issued = bed
        .engine
        .authorize(
            bed.zone,
            AuthorizeRequest::new(client.id.clone(), "alice", "r", ["read"]).expires_at(expires_at),
        )
        .await
        .unwrap();
    let id = issued.grant.id.clone();
    bed.clock.advance(Duration::hours(2));

    let grant = bed.engine.get_grant(bed.zone, &id).await.unwrap();
    assert_eq!(grant.status, GrantStatus::Expired);
    assert_eq!(grant.updated_at, expires_at);
    assert!(!grant.refresh_token_set);
    // Nothing was written: the store still holds it active.
    let stored = tenure::Storage::get_grant(&bed.storage, bed.zone, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.record.status, GrantStatus::Active);

    let expired = bed
        .engine
        .list_grants(
            bed.zone,
            &ListGrants {
                status: Some(GrantStatus::Expired),
                ..ListGrants::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(expired.items.len(), 1);
    let active = bed
        .engine
        .list_grants(
            bed.zone,
            &ListGrants {
                active: true,
                ..ListGrants::default()
            },
        )
        .await
        .unwrap();
    assert!(active.items.is_empty());
    assert!(!is_active(&bed, &issued.access_token).await);
    let history = bed.engine.grant_history(bed.zone, &id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.reason, last.to, last.at),
        (TransitionReason::Expired, GrantStatus::Expired, expires_at)
    );
    let refresh = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await;
    assert!(matches!(
        refresh,
        Err(Error::InvalidGrant {
            reason: InvalidGrantReason::TokenExpired
        })
    ));
}

#[tokio::test]
async fn sweep_persists_expirations_in_expiry_order_bounded_by_batch() {
    let (bed, events) = bed_with_events();
    let client = bed.client(["read"]).await.unwrap();
    let now = bed.clock.now_millis();
    // Created in one order, expiring in another.
    let mut ids = Vec::new();
    for hours in [3, 1, 2, 10] {
        let g = bed
            .engine
            .authorize(
                bed.zone,
                AuthorizeRequest::new(client.id.clone(), "alice", "r", ["read"])
                    .expires_at(now + Duration::hours(hours)),
            )
            .await
            .unwrap();
        ids.push(g.grant.id);
    }
    events.take();
    bed.clock.advance(Duration::hours(5));
    let first = bed.engine.sweep_expired(bed.zone, 2).await.unwrap();
    assert_eq!((first.expired, first.more), (2, true));
    // No grant is left to expire, but expired tokens are (see below).
    let second = bed.engine.sweep_expired(bed.zone, 2).await.unwrap();
    assert_eq!((second.expired, second.more), (1, true));
    let order: Vec<String> = events
        .take()
        .into_iter()
        .filter_map(|e| match e {
            Event::GrantExpired { grant_id, .. } => Some(grant_id),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![ids[1].clone(), ids[2].clone(), ids[0].clone()]);
    // Tokens are pruned through their own expiry index, up to the batch size per
    // sweep, not with their grant: four access tokens (1 h) and three refresh tokens
    // (their grant's expiry) had expired, and two sweeps of two pruned four.
    assert_eq!((first.tokens_removed, second.tokens_removed), (2, 2));
    let third = bed.engine.sweep_expired(bed.zone, 10).await.unwrap();
    assert_eq!(
        (third.expired, third.tokens_removed, third.more),
        (0, 3, false)
    );
    for id in &ids[..3] {
        let stored = tenure::Storage::get_grant(&bed.storage, bed.zone, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.record.status, GrantStatus::Expired);
        // What the sweep wrote is exactly what a read showed before it.
        assert_eq!(stored.record.updated_at, stored.record.expires_at);
        assert!(
            tenure::Storage::grant_tokens(&bed.storage, bed.zone, id)
                .await
                .unwrap()
                .is_empty()
        );
    }
    // The live grant keeps its refresh token; its expired access token is gone.
    let kept = tenure::Storage::grant_tokens(&bed.storage, bed.zone, &ids[3])
        .await
        .unwrap();
    assert_eq!(
        kept.iter().map(|t| t.record.kind).collect::<Vec<_>>(),
        vec![TokenKind::Refresh]
    );
    let untouched = bed.engine.get_grant(bed.zone, &ids[3]).await.unwrap();
    assert_eq!(untouched.status, GrantStatus::Active);
    assert_eq!(
        bed.engine
            .sweep_expired(bed.zone, 10)
            .await
            .unwrap()
            .expired,
        0
    );
}

#[tokio::test]
async fn expired_and_revoked_are_final() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let revoked = bed.grant(&client, "alice", ["read"]).await.unwrap();
    bed.engine
        .revoke_grant(bed.zone, &revoked.grant.id, Actor::Admin)
        .await
        .unwrap();
    // A revoked grant never becomes expired, even past its expiry and a sweep.
    bed.clock.advance(Duration::days(365));
    assert_eq!(
        bed.engine
            .sweep_expired(bed.zone, 10)
            .await
            .unwrap()
            .expired,
        0
    );
    let g = bed
        .engine
        .get_grant(bed.zone, &revoked.grant.id)
        .await
        .unwrap();
    assert_eq!(g.status, GrantStatus::Revoked);
    // And a revoked grant cannot be refreshed back to life.
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), revoked.refresh_token.as_ref().unwrap()),
        )
        .await;
    assert!(matches!(r, Err(Error::InvalidGrant { .. })));
}

#[tokio::test]
async fn revoking_an_active_grant_revokes_every_token_under_it() {
    let (bed, events) = bed_with_events();
    let client = bed.client(["read"]).await.unwrap();
    let first = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let rotated = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), first.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    events.take();
    bed.clock.advance(Duration::seconds(5));
    let g = bed
        .engine
        .revoke_grant(bed.zone, &first.grant.id, Actor::Admin)
        .await
        .unwrap();
    assert_eq!(g.status, GrantStatus::Revoked);
    assert_eq!(g.updated_at, bed.clock.now_millis());
    assert!(!g.refresh_token_set);
    for token in [
        &first.access_token,
        &rotated.access_token,
        rotated.refresh_token.as_ref().unwrap(),
    ] {
        assert!(!is_active(&bed, token).await);
    }
    // Its tokens were not rewritten: they read as revoked through their grant, and
    // the current refresh token is refused as revoked, not as reuse.
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), rotated.refresh_token.as_ref().unwrap()),
        )
        .await;
    assert!(matches!(
        r,
        Err(Error::InvalidGrant {
            reason: InvalidGrantReason::TokenRevoked
        })
    ));
    let history = bed.engine.grant_history(bed.zone, &g.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.reason, &last.actor),
        (TransitionReason::Revoked, &Actor::Admin)
    );
    assert!(matches!(
        events.take().as_slice(),
        [Event::GrantRevoked {
            reason: TransitionReason::Revoked,
            ..
        }]
    ));
}

#[tokio::test]
async fn revoking_a_revoked_grant_changes_nothing_and_succeeds() {
    let (bed, events) = bed_with_events();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let once = bed
        .engine
        .revoke_grant(bed.zone, &issued.grant.id, Actor::Admin)
        .await
        .unwrap();
    events.take();
    bed.clock.advance(Duration::minutes(1));
    let twice = bed
        .engine
        .revoke_grant(bed.zone, &issued.grant.id, Actor::Admin)
        .await
        .unwrap();
    assert_eq!(once, twice);
    assert!(events.take().is_empty());
    let history = bed
        .engine
        .grant_history(bed.zone, &issued.grant.id)
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
}

#[tokio::test]
async fn revoking_an_expired_grant_is_refused_naming_both_states() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    bed.clock.advance(Duration::days(31));
    let r = bed
        .engine
        .revoke_grant(bed.zone, &issued.grant.id, Actor::Admin)
        .await;
    let err = r.unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidTransition {
            from: GrantStatus::Expired,
            to: GrantStatus::Revoked
        }
    ));
    let message = err.to_string();
    assert!(
        message.contains("expired") && message.contains("revoked"),
        "{message}"
    );
    // Also after a sweep persisted it.
    bed.engine.sweep_expired(bed.zone, 10).await.unwrap();
    let r = bed
        .engine
        .revoke_grant(bed.zone, &issued.grant.id, Actor::Admin)
        .await;
    assert!(matches!(r, Err(Error::InvalidTransition { .. })));
}

#[tokio::test]
async fn refresh_is_allowed_after_the_access_token_expired() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    bed.clock.advance(Duration::hours(3));
    assert!(!is_active(&bed, &issued.access_token).await);
    let rotated = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    assert!(is_active(&bed, &rotated.access_token).await);
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_sets_refreshed_at() {
    let (bed, events) = bed_with_events();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let old = issued.refresh_token.clone().unwrap();
    bed.clock.advance(Duration::minutes(10));
    events.take();
    let rotated = bed
        .engine
        .refresh(bed.zone, RefreshRequest::new(client.id.clone(), &old))
        .await
        .unwrap();
    let new = rotated.refresh_token.clone().unwrap();
    assert_ne!(new, old);
    assert_ne!(rotated.access_token, issued.access_token);
    assert!(
        !is_active(&bed, &old).await,
        "the presented refresh token is spent"
    );
    assert!(is_active(&bed, &new).await);
    let now = bed.clock.now_millis();
    assert_eq!(rotated.grant.refreshed_at, Some(now));
    assert_eq!(rotated.grant.updated_at, now);
    assert!(rotated.grant.refresh_token_set);
    assert_eq!(
        bed.engine
            .get_grant(bed.zone, &issued.grant.id)
            .await
            .unwrap(),
        rotated.grant
    );
    let history = bed
        .engine
        .grant_history(bed.zone, &issued.grant.id)
        .await
        .unwrap();
    assert_eq!(history.last().unwrap().reason, TransitionReason::Refreshed);
    assert!(matches!(
        events.take().as_slice(),
        [Event::GrantRefreshed { .. }]
    ));
}

#[tokio::test]
async fn refresh_scopes_are_the_request_intersected_with_the_client_now() {
    let bed = TestBed::new();
    let client = bed.client(["read", "write", "admin"]).await.unwrap();
    let issued = bed
        .grant(&client, "alice", ["read", "write", "admin"])
        .await
        .unwrap();
    // Default: the grant's scopes.
    let r1 = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r1.scopes, vec!["read", "write", "admin"]);
    // Narrow the client: the next refresh is narrowed, the grant keeps its scopes.
    bed.engine
        .update_client(
            bed.zone,
            &client.id,
            &ClientUpdate {
                allowed_scopes: Some(vec!["read".into(), "write".into()]),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    let r2 = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), r1.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r2.scopes, vec!["read", "write"]);
    assert_eq!(r2.grant.scopes, vec!["read", "write", "admin"]);
    // A request narrower than the grant.
    let r3 = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), r2.refresh_token.as_ref().unwrap())
                .scopes(["read"]),
        )
        .await
        .unwrap();
    assert_eq!(r3.scopes, vec!["read"]);
    // Asking only for what the client no longer allows yields nothing: refused.
    let r4 = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), r3.refresh_token.as_ref().unwrap())
                .scopes(["admin"]),
        )
        .await;
    assert!(matches!(r4, Err(Error::InvalidScope { ref scopes }) if scopes == &["admin"]));
}

#[tokio::test]
async fn refresh_asking_beyond_the_grant_is_refused() {
    let bed = TestBed::new();
    let client = bed.client(["read", "write"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let refresh = issued.refresh_token.clone().unwrap();
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), &refresh).scopes(["read", "write"]),
        )
        .await;
    assert!(matches!(r, Err(Error::InvalidScope { ref scopes }) if scopes == &["write"]));
    // Refused means unchanged: the token is not spent.
    assert!(is_active(&bed, &refresh).await);
    assert_eq!(
        bed.engine
            .get_grant(bed.zone, &issued.grant.id)
            .await
            .unwrap(),
        issued.grant
    );
}

#[tokio::test]
async fn the_access_token_before_a_refresh_stays_valid_to_its_expiry() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    bed.clock.advance(Duration::minutes(30));
    bed.engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    assert!(is_active(&bed, &issued.access_token).await);
    bed.clock.advance(Duration::minutes(30));
    assert!(!is_active(&bed, &issued.access_token).await);
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_grant() {
    let (bed, events) = bed_with_events();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let old = issued.refresh_token.clone().unwrap();
    let rotated = bed
        .engine
        .refresh(bed.zone, RefreshRequest::new(client.id.clone(), &old))
        .await
        .unwrap();
    events.take();
    let reuse = bed
        .engine
        .refresh(bed.zone, RefreshRequest::new(client.id.clone(), &old))
        .await;
    assert!(
        matches!(reuse, Err(Error::RefreshTokenReused { ref grant_id }) if *grant_id == issued.grant.id)
    );
    let g = bed
        .engine
        .get_grant(bed.zone, &issued.grant.id)
        .await
        .unwrap();
    assert_eq!(g.status, GrantStatus::Revoked);
    for t in [
        &issued.access_token,
        &rotated.access_token,
        rotated.refresh_token.as_ref().unwrap(),
    ] {
        assert!(!is_active(&bed, t).await);
    }
    let history = bed.engine.grant_history(bed.zone, &g.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.reason, &last.actor),
        (TransitionReason::ReuseDetected, &Actor::System)
    );
    let evs = events.take();
    assert!(matches!(
        evs.as_slice(),
        [
            Event::RefreshTokenReused { .. },
            Event::GrantRevoked {
                reason: TransitionReason::ReuseDetected,
                ..
            }
        ]
    ));
    // Presented again: still reuse, nothing more to revoke.
    let again = bed
        .engine
        .refresh(bed.zone, RefreshRequest::new(client.id.clone(), &old))
        .await;
    assert!(matches!(again, Err(Error::RefreshTokenReused { .. })));
}

#[tokio::test]
async fn a_configured_grace_window_forgives_a_lost_refresh_response() {
    let bed = TestBed::with(|b| b.reuse_grace(Duration::seconds(30)));
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let old = issued.refresh_token.clone().unwrap();
    let lost = bed
        .engine
        .refresh(bed.zone, RefreshRequest::new(client.id.clone(), &old))
        .await
        .unwrap();
    bed.clock.advance(Duration::seconds(10));
    let retried = bed
        .engine
        .refresh(bed.zone, RefreshRequest::new(client.id.clone(), &old))
        .await
        .unwrap();
    // The successor the client never saw is spent; the retried one is live.
    assert!(!is_active(&bed, lost.refresh_token.as_ref().unwrap()).await);
    assert!(is_active(&bed, retried.refresh_token.as_ref().unwrap()).await);
    // Outside the window, it is reuse again.
    bed.clock.advance(Duration::seconds(30));
    let reuse = bed
        .engine
        .refresh(bed.zone, RefreshRequest::new(client.id.clone(), &old))
        .await;
    assert!(matches!(reuse, Err(Error::RefreshTokenReused { .. })));
}

#[tokio::test]
async fn the_default_grace_window_is_zero() {
    assert_eq!(
        tenure::EngineConfig::default().reuse_grace,
        Duration::zero()
    );
}

#[tokio::test]
async fn client_policy_changes_affect_only_future_issuance() {
    let bed = TestBed::new();
    let client = bed.client(["read", "write"]).await.unwrap();
    let issued = bed
        .grant(&client, "alice", ["read", "write"])
        .await
        .unwrap();
    bed.engine
        .update_client(
            bed.zone,
            &client.id,
            &ClientUpdate {
                allowed_scopes: Some(vec!["read".into()]),
                access_token_ttl_seconds: Some(60),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    // The issued token keeps its snapshot and its expiry.
    match bed
        .engine
        .introspect(bed.zone, issued.access_token.expose())
        .await
        .unwrap()
    {
        Introspection::Active(t) => {
            assert_eq!(t.scopes, vec!["read", "write"]);
            assert_eq!(t.expires_at, issued.access_expires_at);
        }
        Introspection::Inactive => panic!("token should still be active"),
    }
    // The grant is not rewritten.
    let g = bed
        .engine
        .get_grant(bed.zone, &issued.grant.id)
        .await
        .unwrap();
    assert_eq!(g, issued.grant);
    // The next refresh follows the new policy.
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.scopes, vec!["read"]);
    assert_eq!(r.expires_in(), 60);
}

#[tokio::test]
async fn a_disabled_client_can_neither_authorize_nor_refresh() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    bed.engine
        .update_client(
            bed.zone,
            &client.id,
            &ClientUpdate {
                enabled: Some(false),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    let a = bed.grant(&client, "bob", ["read"]).await;
    assert!(matches!(a, Err(Error::ClientDisabled { .. })));
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await;
    assert!(matches!(r, Err(Error::ClientDisabled { .. })));
    // Issued tokens live to their expiry.
    assert!(is_active(&bed, &issued.access_token).await);
    assert!(is_active(&bed, issued.refresh_token.as_ref().unwrap()).await);
}

#[tokio::test]
async fn a_client_without_the_refresh_grant_type_cannot_refresh() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    bed.engine
        .update_client(
            bed.zone,
            &client.id,
            &ClientUpdate {
                allowed_grants: Some(vec![GrantType::AuthorizationCode]),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await;
    assert!(matches!(
        r,
        Err(Error::GrantTypeNotAllowed {
            grant_type: GrantType::RefreshToken,
            ..
        })
    ));
}

#[tokio::test]
async fn updated_at_never_goes_backwards() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    bed.clock.advance(Duration::minutes(-10));
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.grant.updated_at, issued.grant.updated_at);
    bed.clock.advance(Duration::minutes(-10));
    let g = bed
        .engine
        .revoke_grant(bed.zone, &issued.grant.id, Actor::Admin)
        .await
        .unwrap();
    assert_eq!(g.updated_at, issued.grant.updated_at);
}

#[tokio::test]
async fn every_change_is_recorded_in_the_history() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    bed.clock.advance(Duration::minutes(1));
    bed.engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    bed.clock.advance(Duration::minutes(1));
    bed.engine
        .revoke_grant(bed.zone, &issued.grant.id, Actor::Admin)
        .await
        .unwrap();
    let history = bed
        .engine
        .grant_history(bed.zone, &issued.grant.id)
        .await
        .unwrap();
    let steps: Vec<_> = history.iter().map(|t| (t.from, t.to, t.reason)).collect();
    assert_eq!(
        steps,
        vec![
            (None, GrantStatus::Active, TransitionReason::Created),
            (
                Some(GrantStatus::Active),
                GrantStatus::Active,
                TransitionReason::Refreshed
            ),
            (
                Some(GrantStatus::Active),
                GrantStatus::Revoked,
                TransitionReason::Revoked
            ),
        ]
    );
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(history[0].actor, Actor::User { id: "alice".into() });
    assert_eq!(
        history[1].actor,
        Actor::Client {
            id: client.id.clone()
        }
    );
}

#[tokio::test]
async fn introspection_says_only_inactive_for_unusable_tokens() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    match bed
        .engine
        .introspect(bed.zone, issued.access_token.expose())
        .await
        .unwrap()
    {
        Introspection::Active(t) => {
            assert_eq!(t.kind, TokenKind::Access);
            assert_eq!(t.user_id, "alice");
            assert_eq!(t.client_id, client.id);
            assert_eq!(t.resource_id, "resource-1");
            assert_eq!(t.grant_id, issued.grant.id);
        }
        Introspection::Inactive => panic!("fresh token must be active"),
    }
    // Unknown, and another zone's view of a real token.
    assert_eq!(
        bed.engine
            .introspect(bed.zone, "tnr_at_nope")
            .await
            .unwrap(),
        Introspection::Inactive
    );
    assert_eq!(
        bed.engine
            .introspect("zone-2", issued.access_token.expose())
            .await
            .unwrap(),
        Introspection::Inactive
    );
    // Expired.
    bed.clock.advance(Duration::hours(1));
    assert_eq!(
        bed.engine
            .introspect(bed.zone, issued.access_token.expose())
            .await
            .unwrap(),
        Introspection::Inactive
    );
}

#[tokio::test]
async fn revoking_an_access_token_revokes_it_alone() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    assert!(
        bed.engine
            .revoke_token(bed.zone, issued.access_token.expose(), None)
            .await
            .unwrap()
    );
    assert!(!is_active(&bed, &issued.access_token).await);
    assert!(is_active(&bed, issued.refresh_token.as_ref().unwrap()).await);
    let g = bed
        .engine
        .get_grant(bed.zone, &issued.grant.id)
        .await
        .unwrap();
    assert_eq!(g.status, GrantStatus::Active);
    // Again, and an unknown token: nothing to do, no error (RFC 7009 §2.2).
    assert!(
        !bed.engine
            .revoke_token(bed.zone, issued.access_token.expose(), None)
            .await
            .unwrap()
    );
    assert!(
        !bed.engine
            .revoke_token(bed.zone, "tnr_at_unknown", None)
            .await
            .unwrap()
    );
    // A token of another client is refused when the caller says who it is.
    let r = bed
        .engine
        .revoke_token(
            bed.zone,
            issued.refresh_token.as_ref().unwrap().expose(),
            Some("other"),
        )
        .await;
    assert!(matches!(
        r,
        Err(Error::InvalidGrant {
            reason: InvalidGrantReason::ClientMismatch
        })
    ));
}

#[tokio::test]
async fn revoking_a_refresh_token_takes_the_grants_access_tokens_with_it() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let refresh = issued.refresh_token.clone().unwrap();
    assert!(
        bed.engine
            .revoke_token(bed.zone, refresh.expose(), Some(&client.id))
            .await
            .unwrap()
    );
    assert!(!is_active(&bed, &issued.access_token).await);
    assert!(!is_active(&bed, &refresh).await);
    let g = bed
        .engine
        .get_grant(bed.zone, &issued.grant.id)
        .await
        .unwrap();
    assert_eq!(g.status, GrantStatus::Revoked);
    let history = bed.engine.grant_history(bed.zone, &g.id).await.unwrap();
    assert_eq!(
        history.last().unwrap().reason,
        TransitionReason::RefreshTokenRevoked
    );
}

#[tokio::test]
async fn deleting_a_grant_removes_every_trace_of_it() {
    let (bed, events) = bed_with_events();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let rotated = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    events.take();
    bed.engine
        .delete_grant(bed.zone, &issued.grant.id)
        .await
        .unwrap();
    assert!(matches!(
        events.take().as_slice(),
        [Event::GrantDeleted { .. }]
    ));
    assert!(matches!(
        bed.engine.get_grant(bed.zone, &issued.grant.id).await,
        Err(Error::NotFound {
            kind: tenure::RecordKind::Grant,
            ..
        })
    ));
    assert!(matches!(
        bed.engine.grant_history(bed.zone, &issued.grant.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        tenure::Storage::grant_history(&bed.storage, bed.zone, &issued.grant.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        tenure::Storage::grant_tokens(&bed.storage, bed.zone, &issued.grant.id)
            .await
            .unwrap()
            .is_empty()
    );
    for t in [
        &issued.access_token,
        issued.refresh_token.as_ref().unwrap(),
        &rotated.access_token,
    ] {
        assert!(
            tenure::Storage::get_token(&bed.storage, bed.zone, &t.digest())
                .await
                .unwrap()
                .is_none()
        );
    }
    let page = bed
        .engine
        .list_grants(
            bed.zone,
            &ListGrants {
                total_count: true,
                ..ListGrants::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.total_count), (0, Some(0)));
    assert!(matches!(
        bed.engine.delete_grant(bed.zone, &issued.grant.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn bulk_revocation_takes_every_active_grant_of_a_user_client_or_resource() {
    let bed = TestBed::new();
    let a = bed.client(["read"]).await.unwrap();
    let b = bed.client(["read"]).await.unwrap();
    for user in ["alice", "alice", "bob"] {
        bed.grant(&a, user, ["read"]).await.unwrap();
    }
    let on_other_resource = bed
        .engine
        .authorize(
            bed.zone,
            AuthorizeRequest::new(b.id.clone(), "carol", "resource-2", ["read"]),
        )
        .await
        .unwrap();
    assert_eq!(
        bed.engine
            .revoke_grants_of(bed.zone, &GrantsOf::User("alice".into()), Actor::Admin)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        bed.engine
            .revoke_grants_of(bed.zone, &GrantsOf::Client(a.id.clone()), Actor::Admin)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        bed.engine
            .revoke_grants_of(
                bed.zone,
                &GrantsOf::Resource("resource-2".into()),
                Actor::Admin
            )
            .await
            .unwrap(),
        1
    );
    assert!(!is_active(&bed, &on_other_resource.access_token).await);
    let active = bed
        .engine
        .list_grants(
            bed.zone,
            &ListGrants {
                active: true,
                total_count: true,
                ..ListGrants::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(active.total_count, Some(0));
}

#[derive(Debug)]
struct Accounts;

#[async_trait]
impl PermissionResolver for Accounts {
    async fn grantable_scopes(&self, _zone: &str, account: &str) -> tenure::Result<Grantable> {
        Ok(match account {
            "admin" => Grantable::All,
            "owner" => Grantable::Only(vec!["read".into()]),
            _ => Grantable::Only(vec!["profile".into()]),
        })
    }
}

#[tokio::test]
async fn inherit_policy_uses_what_the_account_can_grant_at_issuance() {
    let bed = TestBed::with(|b| b.permission_resolver(Arc::new(Accounts)));
    let owned = bed
        .register(
            ClientRegistration::new("owned")
                .id("owned")
                .owner("owner")
                .scope_policy(ScopePolicy::Inherit),
        )
        .await
        .unwrap();
    assert!(bed.grant(&owned, "alice", ["read"]).await.is_ok());
    assert!(matches!(
        bed.grant(&owned, "alice", ["write"]).await,
        Err(Error::InvalidScope { .. })
    ));
    // A built-in client has no owner: the approving account's rights apply.
    let builtin = bed
        .register(
            ClientRegistration::new("builtin")
                .id("builtin")
                .scope_policy(ScopePolicy::Inherit),
        )
        .await
        .unwrap();
    assert!(bed.grant(&builtin, "admin", ["anything"]).await.is_ok());
    assert!(bed.grant(&builtin, "alice", ["profile"]).await.is_ok());
    assert!(matches!(
        bed.grant(&builtin, "alice", ["read"]).await,
        Err(Error::InvalidScope { .. })
    ));
}

#[tokio::test]
async fn without_a_resolver_inherit_clients_get_nothing() {
    let bed = TestBed::new();
    let c = bed
        .register(
            ClientRegistration::new("c")
                .id("c")
                .owner("owner")
                .scope_policy(ScopePolicy::Inherit),
        )
        .await
        .unwrap();
    assert!(matches!(
        bed.grant(&c, "alice", ["read"]).await,
        Err(Error::InvalidScope { .. })
    ));
}

#[tokio::test]
async fn a_confidential_client_gets_its_secret_once_stored_as_a_digest() {
    let bed = TestBed::new();
    let registered = bed
        .engine
        .register_client(
            bed.zone,
            ClientRegistration::new("c").id("c").confidential(),
        )
        .await
        .unwrap();
    let secret = registered.secret.clone().unwrap();
    assert!(secret.expose().starts_with("tnr_cs_"));
    let stored = bed.engine.get_client(bed.zone, "c").await.unwrap();
    let digest = stored.secret_digest.unwrap();
    assert!(digest.verify(secret.expose()));
    let json = serde_json::to_string(&stored).unwrap();
    assert!(!json.contains(secret.expose()));
    assert!(!format!("{registered:?}").contains(secret.expose()));
}

// ----- constant-cost rotation, revocation and pruning -----

/// Refreshes `token` as `client`.
async fn refresh_as(
    bed: &TestBed,
    client: &str,
    token: &tenure::Secret,
) -> tenure::Result<tenure::Issued> {
    bed.engine
        .refresh(bed.zone, RefreshRequest::new(client, token))
        .await
}

/// The grant's refresh token records as stored.
async fn stored_refresh_tokens(bed: &TestBed, grant_id: &str) -> Vec<tenure::Token> {
    tenure::Storage::grant_tokens(&bed.storage, bed.zone, grant_id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.record)
        .filter(|t| t.kind == TokenKind::Refresh)
        .collect()
}

#[tokio::test]
async fn any_earlier_refresh_token_is_reuse_however_long_the_history() {
    const ROTATIONS: usize = 500;
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    for replayed in [1, 250, 499] {
        let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
        let id = issued.grant.id.clone();
        let mut current = issued;
        let mut kept = None;
        for rotation in 1..=ROTATIONS {
            bed.clock.advance(Duration::seconds(1));
            current = refresh_as(&bed, &client.id, current.refresh_token.as_ref().unwrap())
                .await
                .unwrap_or_else(|e| panic!("rotation {rotation}: {e}"));
            if rotation == replayed {
                kept = current.refresh_token.clone();
            }
        }
        // The grant keeps one refresh-token record however often it rotated.
        assert_eq!(stored_refresh_tokens(&bed, &id).await.len(), 1);
        let refresh = current.refresh_token.clone().unwrap();
        assert!(is_active(&bed, &refresh).await);
        assert!(is_active(&bed, &current.access_token).await);

        let reuse = refresh_as(&bed, &client.id, kept.as_ref().unwrap()).await;
        assert!(
            matches!(reuse, Err(Error::RefreshTokenReused { ref grant_id }) if *grant_id == id),
            "token of rotation {replayed}: {reuse:?}"
        );
        let grant = bed.engine.get_grant(bed.zone, &id).await.unwrap();
        assert_eq!(grant.status, GrantStatus::Revoked);
        assert!(!is_active(&bed, &refresh).await);
        assert!(!is_active(&bed, &current.access_token).await);
        let history = bed.engine.grant_history(bed.zone, &id).await.unwrap();
        assert_eq!(
            history.last().unwrap().reason,
            TransitionReason::ReuseDetected
        );
        // Created, the latest refresh, the revocation: not one entry per rotation.
        assert_eq!(history.len(), 3);
    }
}

#[tokio::test]
async fn a_spent_refresh_token_past_its_own_expiry_is_expired_not_reuse() {
    let (bed, events) = bed_with_events();
    let client = bed
        .register(
            ClientRegistration::new("short")
                .id("short")
                .scopes(["read"])
                .lifetimes(60, 3600),
        )
        .await
        .unwrap();
    let issued = bed
        .engine
        .authorize(
            bed.zone,
            AuthorizeRequest::new(client.id.clone(), "alice", "r", ["read"])
                .expires_at(bed.clock.now_millis() + Duration::days(1)),
        )
        .await
        .unwrap();
    let first = issued.refresh_token.clone().unwrap();
    bed.clock.advance(Duration::minutes(10));
    let second = refresh_as(&bed, &client.id, &first).await.unwrap();
    bed.clock.advance(Duration::minutes(55));
    let third = refresh_as(&bed, &client.id, second.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    // `first` expired an hour after it was issued: five minutes ago.
    bed.clock.advance(Duration::minutes(1));
    events.take();
    let late = refresh_as(&bed, &client.id, &first).await;
    assert!(
        matches!(
            late,
            Err(Error::InvalidGrant {
                reason: InvalidGrantReason::TokenExpired
            })
        ),
        "{late:?}"
    );
    assert!(events.take().is_empty());
    let grant = bed
        .engine
        .get_grant(bed.zone, &issued.grant.id)
        .await
        .unwrap();
    assert_eq!(grant.status, GrantStatus::Active);
    assert!(is_active(&bed, third.refresh_token.as_ref().unwrap()).await);
    refresh_as(&bed, &client.id, third.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn rotations_within_one_millisecond_still_tell_tokens_apart() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let first = issued.refresh_token.clone().unwrap();
    let second = refresh_as(&bed, &client.id, &first).await.unwrap();
    let third = refresh_as(&bed, &client.id, second.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(third.grant.refreshed_at, second.grant.refreshed_at);
    assert!(!is_active(&bed, second.refresh_token.as_ref().unwrap()).await);
    assert!(is_active(&bed, third.refresh_token.as_ref().unwrap()).await);
    let reuse = refresh_as(&bed, &client.id, &first).await;
    assert!(
        matches!(reuse, Err(Error::RefreshTokenReused { .. })),
        "{reuse:?}"
    );
    assert!(!is_active(&bed, third.refresh_token.as_ref().unwrap()).await);
}

#[tokio::test]
async fn the_grace_window_forgives_only_the_last_spent_token_and_only_once_in_time() {
    let grace = Duration::seconds(30);
    let bed = TestBed::with(|b| b.reuse_grace(grace));
    let client = bed.client(["read"]).await.unwrap();

    // The token the last rotation spent, again inside the window: one more rotation,
    // which spends the successor the client never saw.
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let id = issued.grant.id.clone();
    let spent = issued.refresh_token.clone().unwrap();
    let lost = refresh_as(&bed, &client.id, &spent).await.unwrap();
    bed.clock.advance(Duration::seconds(10));
    let retried = refresh_as(&bed, &client.id, &spent).await.unwrap();
    let lost_refresh = lost.refresh_token.clone().unwrap();
    let retried_refresh = retried.refresh_token.clone().unwrap();
    assert!(!is_active(&bed, &lost_refresh).await);
    assert!(is_active(&bed, &retried_refresh).await);
    // One live refresh token: the retried one.
    let records = stored_refresh_tokens(&bed, &id).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].digest, retried_refresh.digest());
    // Still inside the window, the successor it replaced is reuse.
    let reuse = refresh_as(&bed, &client.id, &lost_refresh).await;
    assert!(
        matches!(reuse, Err(Error::RefreshTokenReused { .. })),
        "{reuse:?}"
    );
    assert_eq!(
        bed.engine.get_grant(bed.zone, &id).await.unwrap().status,
        GrantStatus::Revoked
    );

    // The same token after the window: reuse.
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let spent = issued.refresh_token.clone().unwrap();
    refresh_as(&bed, &client.id, &spent).await.unwrap();
    bed.clock.advance(grace);
    let reuse = refresh_as(&bed, &client.id, &spent).await;
    assert!(
        matches!(reuse, Err(Error::RefreshTokenReused { .. })),
        "{reuse:?}"
    );

    // A token older than the last spent one, inside the window: reuse.
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let older = issued.refresh_token.clone().unwrap();
    let next = refresh_as(&bed, &client.id, &older).await.unwrap();
    bed.clock.advance(Duration::seconds(1));
    refresh_as(&bed, &client.id, next.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    bed.clock.advance(Duration::seconds(1));
    let reuse = refresh_as(&bed, &client.id, &older).await;
    assert!(
        matches!(reuse, Err(Error::RefreshTokenReused { .. })),
        "{reuse:?}"
    );

    // Once redeemed in the window, the spent token is not forgiven a second time.
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let spent = issued.refresh_token.clone().unwrap();
    refresh_as(&bed, &client.id, &spent).await.unwrap();
    refresh_as(&bed, &client.id, &spent).await.unwrap();
    let reuse = refresh_as(&bed, &client.id, &spent).await;
    assert!(
        matches!(reuse, Err(Error::RefreshTokenReused { .. })),
        "{reuse:?}"
    );
}

/// A refresh token's body, decoded: `[format, id length, id, generation (8, big
/// endian), expiry (8), family secret (32), random bits (32)]`.
fn token_body(token: &tenure::Secret) -> Vec<u8> {
    use base64::Engine as _;
    let body = token.expose().strip_prefix("tnr_rt_").unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .unwrap()
}

fn token_from_body(body: &[u8]) -> tenure::Secret {
    use base64::Engine as _;
    let text = format!(
        "tnr_rt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body)
    );
    tenure::Secret::from_presented(text)
}

#[tokio::test]
async fn a_forged_refresh_token_is_unknown_and_revokes_nothing() {
    let (bed, events) = bed_with_events();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let spent = issued.refresh_token.clone().unwrap();
    let current = refresh_as(&bed, &client.id, &spent).await.unwrap();
    let current_refresh = current.refresh_token.clone().unwrap();
    let body = token_body(&current_refresh);
    let id_len = usize::from(body[1]);
    let generation_at = 2 + id_len;
    let family_at = generation_at + 16;
    let bits_at = family_at + 32;
    assert_eq!(body.len(), bits_at + 32);
    assert_eq!(&body[2..generation_at], issued.grant.id.as_bytes());
    let generation = u64::from_be_bytes(body[generation_at..generation_at + 8].try_into().unwrap());

    let mut forgeries = Vec::new();
    // Another family secret, on a spent token and on the current one.
    for original in [token_body(&spent), body.clone()] {
        let mut forged = original;
        forged[family_at] ^= 0x01;
        forgeries.push(("family", forged));
    }
    // A generation the grant has not reached.
    let mut forged = body.clone();
    forged[generation_at..generation_at + 8].copy_from_slice(&(generation + 1).to_be_bytes());
    forgeries.push(("generation ahead", forged));
    // The current generation with other random bits: no record has that digest.
    let mut forged = body.clone();
    forged[bits_at] ^= 0x01;
    forgeries.push(("random bits", forged));
    // Another grant's id with this grant's family secret.
    let other = bed.grant(&client, "bob", ["read"]).await.unwrap();
    let mut forged = body.clone();
    forged[2..generation_at].copy_from_slice(other.grant.id.as_bytes());
    forgeries.push(("grant id", forged));

    events.take();
    for (what, forged) in forgeries {
        let token = token_from_body(&forged);
        assert!(
            token.refresh_reference().is_some(),
            "{what}: still well formed"
        );
        let r = refresh_as(&bed, &client.id, &token).await;
        assert!(
            matches!(
                r,
                Err(Error::InvalidGrant {
                    reason: InvalidGrantReason::UnknownToken
                })
            ),
            "{what}: {r:?}"
        );
    }
    assert!(events.take().is_empty(), "nothing was revoked or written");
    for grant in [&issued.grant.id, &other.grant.id] {
        assert_eq!(
            bed.engine.get_grant(bed.zone, grant).await.unwrap().status,
            GrantStatus::Active
        );
    }
    refresh_as(&bed, &client.id, &current_refresh)
        .await
        .unwrap();
}

/// A store that forwards to memory and keeps every write set it is handed.
#[derive(Debug, Default)]
struct Recording {
    inner: tenure_memory::MemoryStorage,
    sets: Mutex<Vec<tenure::WriteSet>>,
    /// An authorization another engine makes, over the same data, just before the
    /// first set that deletes a client is applied; and what it was issued.
    meanwhile: Mutex<Option<(tenure::Engine, AuthorizeRequest)>>,
    issued_meanwhile: Mutex<Option<tenure::Issued>>,
}

impl Recording {
    fn take(&self) -> Vec<tenure::WriteSet> {
        std::mem::take(&mut *self.sets.lock().unwrap())
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl tenure::Storage for Recording {
    async fn get_client(
        &self,
        z: &str,
        id: &str,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::Client>>> {
        self.inner.get_client(z, id).await
    }
    async fn list_clients(
        &self,
        z: &str,
        after: Option<&str>,
        limit: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::Client>>> {
        self.inner.list_clients(z, after, limit).await
    }
    async fn get_grant(
        &self,
        z: &str,
        id: &str,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::Grant>>> {
        self.inner.get_grant(z, id).await
    }
    async fn list_grants(&self, q: &tenure::GrantQuery) -> tenure::Result<tenure::GrantPage> {
        self.inner.list_grants(q).await
    }
    async fn count_grants(
        &self,
        z: &str,
        f: &tenure::GrantFilter,
        now: tenure::Timestamp,
    ) -> tenure::Result<u64> {
        self.inner.count_grants(z, f, now).await
    }
    async fn expired_grants(
        &self,
        z: &str,
        now: tenure::Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::Grant>>> {
        self.inner.expired_grants(z, now, limit).await
    }
    async fn grant_history(&self, z: &str, id: &str) -> tenure::Result<Vec<tenure::Transition>> {
        self.inner.grant_history(z, id).await
    }
    async fn get_token(
        &self,
        z: &str,
        d: &tenure::Digest,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::Token>>> {
        self.inner.get_token(z, d).await
    }
    async fn get_token_and_grant(
        &self,
        z: &str,
        d: &tenure::Digest,
    ) -> tenure::Result<Option<tenure::TokenAndGrant>> {
        self.inner.get_token_and_grant(z, d).await
    }
    async fn get_token_and_grant_facts(
        &self,
        z: &str,
        d: &tenure::Digest,
    ) -> tenure::Result<Option<tenure::TokenAndGrantFacts>> {
        self.inner.get_token_and_grant_facts(z, d).await
    }
    async fn grant_tokens(
        &self,
        z: &str,
        id: &str,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::Token>>> {
        self.inner.grant_tokens(z, id).await
    }
    async fn expired_tokens(
        &self,
        z: &str,
        now: tenure::Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::Token>>> {
        self.inner.expired_tokens(z, now, limit).await
    }
    async fn get_personal_grant(
        &self,
        z: &str,
        id: &str,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::PersonalGrant>>> {
        self.inner.get_personal_grant(z, id).await
    }
    async fn list_personal_grants(
        &self,
        z: &str,
        user: &str,
        after: Option<&tenure::Keyset>,
        limit: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::PersonalGrant>>> {
        self.inner.list_personal_grants(z, user, after, limit).await
    }
    async fn list_zone_personal_grants(
        &self,
        z: &str,
        after: Option<&str>,
        limit: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::PersonalGrant>>> {
        self.inner.list_zone_personal_grants(z, after, limit).await
    }
    async fn get_device_authorization(
        &self,
        z: &str,
        d: &tenure::Digest,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::DeviceAuthorization>>> {
        self.inner.get_device_authorization(z, d).await
    }
    async fn find_device_authorization(
        &self,
        z: &str,
        code: &str,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::DeviceAuthorization>>> {
        self.inner.find_device_authorization(z, code).await
    }
    async fn expired_device_authorizations(
        &self,
        z: &str,
        now: tenure::Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::DeviceAuthorization>>> {
        self.inner
            .expired_device_authorizations(z, now, limit)
            .await
    }
    async fn list_device_authorizations(
        &self,
        z: &str,
        after: Option<&tenure::Digest>,
        limit: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::DeviceAuthorization>>> {
        self.inner.list_device_authorizations(z, after, limit).await
    }
    async fn get_authorization_code(
        &self,
        z: &str,
        code: &tenure::Digest,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::AuthorizationCode>>> {
        self.inner.get_authorization_code(z, code).await
    }
    async fn expired_authorization_codes(
        &self,
        z: &str,
        now: tenure::Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::AuthorizationCode>>> {
        self.inner.expired_authorization_codes(z, now, limit).await
    }
    async fn zones(&self, after: Option<&str>, limit: usize) -> tenure::Result<Vec<String>> {
        self.inner.zones(after, limit).await
    }
    async fn apply(&self, set: tenure::WriteSet) -> tenure::Result<()> {
        self.sets.lock().unwrap().push(set.clone());
        let deletes_client = set
            .writes
            .iter()
            .any(|w| matches!(w, tenure::Write::DeleteClient { .. }));
        let meanwhile = deletes_client
            .then(|| self.meanwhile.lock().unwrap().take())
            .flatten();
        if let Some((engine, request)) = meanwhile {
            let issued = engine.authorize("zone-1", request).await?;
            *self.issued_meanwhile.lock().unwrap() = Some(issued);
        }
        self.inner.apply(set).await
    }
}

/// An engine over a [`Recording`] store on a manual clock, with one client.
async fn recorded() -> (tenure::Engine, Arc<Recording>, Arc<tenure::ManualClock>) {
    let store = Arc::new(Recording::default());
    let clock = Arc::new(tenure::ManualClock::new(tenure_memory::testing::epoch()));
    let engine = tenure::Engine::builder(store.clone())
        .clock(clock.clone())
        .build();
    engine
        .register_client(
            "zone-1",
            ClientRegistration::new("c").id("c").scopes(["read"]),
        )
        .await
        .unwrap();
    store.take();
    (engine, store, clock)
}

/// What each write of a set is, in order.
fn kinds(set: &tenure::WriteSet) -> Vec<&'static str> {
    use tenure::Write;
    set.writes
        .iter()
        .map(|w| match w {
            Write::PutClient { .. } => "put client",
            Write::PutGrant { .. } => "put grant",
            Write::DeleteGrant { .. } => "delete grant",
            Write::PutToken { .. } => "put token",
            Write::DeleteToken { .. } => "delete token",
            Write::Check { .. } => "check",
            Write::AppendTransition(_) => "append transition",
            _ => "other",
        })
        .collect()
}

#[tokio::test]
async fn revoking_a_grant_writes_two_records_however_many_tokens_it_issued() {
    let (engine, store, clock) = recorded().await;
    let issued = engine
        .authorize("zone-1", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    let id = issued.grant.id.clone();
    let mut access = vec![issued.access_token.clone()];
    let mut current = issued;
    for _ in 1..100 {
        clock.advance(Duration::seconds(1));
        current = engine
            .refresh(
                "zone-1",
                RefreshRequest::new("c", current.refresh_token.as_ref().unwrap()),
            )
            .await
            .unwrap();
        access.push(current.access_token.clone());
    }
    assert_eq!(access.len(), 100);
    for token in &access {
        assert!(
            engine
                .introspect("zone-1", token.expose())
                .await
                .unwrap()
                .is_active()
        );
    }
    store.take();
    engine
        .revoke_grant("zone-1", &id, Actor::Admin)
        .await
        .unwrap();
    let sets = store.take();
    assert_eq!(sets.len(), 1);
    assert_eq!(kinds(&sets[0]), vec!["put grant", "append transition"]);
    for token in access.iter().chain(current.refresh_token.as_ref()) {
        assert!(
            !engine
                .introspect("zone-1", token.expose())
                .await
                .unwrap()
                .is_active()
        );
    }
}

#[tokio::test]
async fn revoking_an_access_token_writes_it_and_checks_its_grant() {
    let (engine, store, clock) = recorded().await;
    let issued = engine
        .authorize("zone-1", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    let id = issued.grant.id.clone();
    let before = tenure::Storage::get_grant(&*store, "zone-1", &id)
        .await
        .unwrap()
        .unwrap();
    clock.advance(Duration::seconds(1));
    store.take();
    assert!(
        engine
            .revoke_token("zone-1", issued.access_token.expose(), None)
            .await
            .unwrap()
    );
    let sets = store.take();
    assert_eq!(sets.len(), 1);
    assert_eq!(kinds(&sets[0]), vec!["check", "put token"]);
    match &sets[0].writes[..] {
        [
            tenure::Write::Check { record, expect },
            tenure::Write::PutToken { token, .. },
        ] => {
            assert_eq!(
                *record,
                tenure::RecordKey::Grant {
                    zone_id: "zone-1".into(),
                    id: id.clone()
                }
            );
            assert_eq!(*expect, tenure::Expect::Version(before.version));
            assert_eq!(token.digest, issued.access_token.digest());
            assert_eq!(token.revoked_at, Some(engine.now()));
        }
        other => panic!("unexpected writes: {other:?}"),
    }
    let after = tenure::Storage::get_grant(&*store, "zone-1", &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after, before,
        "the grant is neither rewritten nor re-versioned"
    );
}

#[tokio::test]
async fn a_refresh_writes_the_same_records_on_its_300th_rotation_as_on_its_first() {
    let (engine, store, clock) = recorded().await;
    let issued = engine
        .authorize("zone-1", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    let mut current = issued;
    let mut sets = Vec::new();
    for rotation in 1..=300 {
        clock.advance(Duration::seconds(1));
        store.take();
        current = engine
            .refresh(
                "zone-1",
                RefreshRequest::new("c", current.refresh_token.as_ref().unwrap()),
            )
            .await
            .unwrap();
        if rotation == 1 || rotation == 300 {
            let mut taken = store.take();
            assert_eq!(taken.len(), 1, "rotation {rotation}: one write set");
            sets.push(taken.remove(0));
        }
    }
    let (first, last) = (kinds(&sets[0]), kinds(&sets[1]));
    assert_eq!(first, last);
    assert_eq!(sets[0].writes.len(), sets[1].writes.len());
    // The grant, the spent token's deletion, the new access and refresh tokens.
    let mut sorted = first.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        vec!["delete token", "put grant", "put token", "put token"]
    );
}

#[tokio::test]
async fn the_sweep_prunes_expired_access_tokens_of_a_live_grant() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let id = issued.grant.id.clone();
    let mut access = vec![issued.access_token.clone()];
    let mut current = issued;
    for _ in 0..5 {
        bed.clock.advance(Duration::minutes(61));
        current = refresh_as(&bed, &client.id, current.refresh_token.as_ref().unwrap())
            .await
            .unwrap();
        access.push(current.access_token.clone());
    }
    // Six access tokens, five of them expired, and the current refresh token.
    let stored = tenure::Storage::grant_tokens(&bed.storage, bed.zone, &id)
        .await
        .unwrap();
    assert_eq!(stored.len(), 7);
    let report = bed.engine.sweep_expired(bed.zone, 100).await.unwrap();
    assert_eq!((report.expired, report.tokens_removed), (0, 5));
    let mut left: Vec<_> = tenure::Storage::grant_tokens(&bed.storage, bed.zone, &id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.record.digest)
        .collect();
    left.sort_unstable();
    let mut live = vec![
        current.access_token.digest(),
        current.refresh_token.as_ref().unwrap().digest(),
    ];
    live.sort_unstable();
    assert_eq!(left, live);
    assert!(is_active(&bed, &current.access_token).await);
    assert!(is_active(&bed, current.refresh_token.as_ref().unwrap()).await);
    // Nothing left to prune, and the grant refreshes as before.
    let again = bed.engine.sweep_expired(bed.zone, 100).await.unwrap();
    assert_eq!(again.tokens_removed, 0);
    refresh_as(&bed, &client.id, current.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        bed.engine.get_grant(bed.zone, &id).await.unwrap().status,
        GrantStatus::Active
    );
}

#[tokio::test]
async fn deleting_a_client_revokes_a_grant_made_while_it_was_deleted() {
    let (engine, store, _clock) = recorded().await;
    let (events, recorder) = {
        let recorder = Arc::new(Recorder::default());
        let engine = tenure::Engine::builder(store.clone())
            .clock(Arc::new(tenure::ManualClock::new(
                tenure_memory::testing::epoch(),
            )))
            .subscriber(recorder.clone())
            .build();
        (engine, recorder)
    };
    let before = engine
        .authorize("zone-1", AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    // Another engine authorizes between the revocation of the client's grants and
    // the deletion of the client record, as an authorization that read the client
    // before the deletion would.
    let other = tenure::Engine::builder(Arc::new(store.inner.clone()))
        .clock(Arc::new(tenure::ManualClock::new(
            tenure_memory::testing::epoch(),
        )))
        .build();
    *store.meanwhile.lock().unwrap() =
        Some((other, AuthorizeRequest::new("c", "bob", "r", ["read"])));
    events.delete_client("zone-1", "c").await.unwrap();
    let meanwhile = store.issued_meanwhile.lock().unwrap().take().unwrap();
    for issued in [&before, &meanwhile] {
        let grant = engine.get_grant("zone-1", &issued.grant.id).await.unwrap();
        assert_eq!(grant.status, GrantStatus::Revoked, "{:?}", issued.grant.id);
        for token in [Some(&issued.access_token), issued.refresh_token.as_ref()]
            .into_iter()
            .flatten()
        {
            assert_eq!(
                engine.introspect("zone-1", token.expose()).await.unwrap(),
                Introspection::Inactive
            );
        }
    }
    let deleted: Vec<_> = recorder
        .take()
        .into_iter()
        .filter(|e| matches!(e, Event::ClientDeleted { .. }))
        .collect();
    assert!(
        matches!(deleted.as_slice(), [Event::ClientDeleted { zone_id, client_id, .. }]
            if zone_id == "zone-1" && client_id == "c"),
        "{deleted:?}"
    );
}

#[tokio::test]
async fn deleting_a_client_writes_its_record_alone_expecting_its_version() {
    let (engine, store, _clock) = recorded().await;
    let stored = tenure::Storage::get_client(&*store, "zone-1", "c")
        .await
        .unwrap()
        .unwrap();
    engine.delete_client("zone-1", "c").await.unwrap();
    let sets = store.take();
    let deletes: Vec<_> = sets
        .iter()
        .flat_map(|s| &s.writes)
        .filter_map(|w| match w {
            tenure::Write::DeleteClient {
                zone_id,
                id,
                expect,
            } => Some((zone_id.as_str(), id.as_str(), *expect)),
            _ => None,
        })
        .collect();
    assert_eq!(deletes, [("zone-1", "c", stored.version)]);
    assert_eq!(
        sets.iter().map(kinds).collect::<Vec<_>>(),
        [vec!["other"]],
        "a client with no grants: one set, deleting it"
    );
}
