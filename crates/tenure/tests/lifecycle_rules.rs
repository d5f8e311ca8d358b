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
    let second = bed.engine.sweep_expired(bed.zone, 2).await.unwrap();
    assert_eq!((second.expired, second.more), (1, false));
    let order: Vec<String> = events
        .take()
        .into_iter()
        .filter_map(|e| match e {
            Event::GrantExpired { grant_id, .. } => Some(grant_id),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![ids[1].clone(), ids[2].clone(), ids[0].clone()]);
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
