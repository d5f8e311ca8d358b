//! Client policy (seeds 003, 004): JSON Patch and merge updates, scope policy,
//! future-only changes, dry-run impact, and `last_used_at`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use serde_json::json;
use tenure::{
    AccessType, ClientChange, ClientRegistration, ClientUpdate, Engine, Error, GrantType,
    Grantable, Introspection, ManualClock, PermissionResolver, RefreshRequest, ScopePolicy,
    Storage,
};
use tenure_memory::testing::{Instrumented, TestBed, epoch};

fn patch(ops: serde_json::Value) -> json_patch::Patch {
    serde_json::from_value(ops).unwrap()
}

async fn is_active(bed: &TestBed, token: &tenure::Secret) -> bool {
    bed.engine
        .introspect(bed.zone, token.expose())
        .await
        .unwrap()
        .is_active()
}

// ----- JSON Patch -----

#[tokio::test]
async fn all_six_patch_operations_apply() {
    let bed = TestBed::new();
    let client = bed.client(["read", "write"]).await.unwrap();
    let updated = bed
        .engine
        .patch_client(
            bed.zone,
            &client.id,
            &patch(json!([
                {"op": "test", "path": "/name", "value": client.name},
                {"op": "replace", "path": "/name", "value": "Renamed"},
                {"op": "add", "path": "/allowed_scopes/-", "value": "admin"},
                {"op": "remove", "path": "/allowed_scopes/0"},
                {"op": "add", "path": "/description", "value": "a description"},
                {"op": "copy", "from": "/description", "path": "/name"},
                {"op": "add", "path": "/redirect_uris", "value": ["https://app.example/cb"]},
                {"op": "move", "from": "/redirect_uris/0", "path": "/redirect_uris/-"},
                {"op": "replace", "path": "/access_token_ttl_seconds", "value": 600},
            ])),
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "a description");
    assert_eq!(updated.allowed_scopes, vec!["write", "admin"]);
    assert_eq!(updated.description.as_deref(), Some("a description"));
    assert_eq!(updated.redirect_uris, vec!["https://app.example/cb"]);
    assert_eq!(updated.access_token_ttl_seconds, 600);
    assert_eq!(
        bed.engine.get_client(bed.zone, &client.id).await.unwrap(),
        updated
    );
}

#[tokio::test]
async fn a_failing_test_op_leaves_the_client_unchanged_naming_index_and_path() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let r = bed
        .engine
        .patch_client(
            bed.zone,
            &client.id,
            &patch(json!([
                {"op": "replace", "path": "/name", "value": "changed"},
                {"op": "test", "path": "/enabled", "value": false},
            ])),
        )
        .await;
    assert!(matches!(r, Err(Error::PatchTestFailed { index: 1, ref path }) if path == "/enabled"));
    assert_eq!(
        bed.engine.get_client(bed.zone, &client.id).await.unwrap(),
        client
    );
}

#[tokio::test]
async fn only_patchable_fields_may_be_touched() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    for (index, op) in [
        json!({"op": "replace", "path": "/id", "value": "other"}),
        json!({"op": "replace", "path": "/zone_id", "value": "zone-2"}),
        json!({"op": "replace", "path": "/owner_account_id", "value": "mallory"}),
        json!({"op": "replace", "path": "/created_at", "value": "2020-01-01T00:00:00.000Z"}),
        json!({"op": "add", "path": "/secret_digest", "value": "00"}),
        json!({"op": "remove", "path": ""}),
        json!({"op": "move", "from": "/id", "path": "/name"}),
    ]
    .into_iter()
    .enumerate()
    {
        let ops = json!([{"op": "test", "path": "/id", "value": client.id}, op]);
        let r = bed
            .engine
            .patch_client(bed.zone, &client.id, &patch(ops))
            .await;
        assert!(
            matches!(r, Err(Error::InvalidPatch { index: 1, .. })),
            "case {index}: {r:?}"
        );
    }
    // Copying from a read-only field into a patchable one is fine.
    let r = bed
        .engine
        .patch_client(
            bed.zone,
            &client.id,
            &patch(json!([{"op": "copy", "from": "/id", "path": "/name"}])),
        )
        .await
        .unwrap();
    assert_eq!(r.name, client.id);
    assert_eq!(r.id, client.id);
}

#[tokio::test]
async fn a_patch_whose_result_is_invalid_changes_nothing_and_names_the_op() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let cases = [
        (
            json!([{"op": "replace", "path": "/name", "value": "ok"}, {"op": "replace", "path": "/access_token_ttl_seconds", "value": 0}]),
            1,
            "/access_token_ttl_seconds",
        ),
        (
            json!([{"op": "replace", "path": "/refresh_token_ttl_seconds", "value": -5}]),
            0,
            "/refresh_token_ttl_seconds",
        ),
        (
            json!([{"op": "add", "path": "/allowed_grants/-", "value": "password"}]),
            0,
            "/allowed_grants",
        ),
        (
            json!([{"op": "add", "path": "/redirect_uris/-", "value": "not a uri"}]),
            0,
            "/redirect_uris",
        ),
        (
            json!([{"op": "add", "path": "/allowed_scopes/-", "value": "has space"}]),
            0,
            "/allowed_scopes",
        ),
        (json!([{"op": "remove", "path": "/name"}]), 0, "/name"),
        (
            json!([{"op": "replace", "path": "/enabled", "value": "yes"}]),
            0,
            "/enabled",
        ),
        (
            json!([{"op": "replace", "path": "/scope_policy", "value": "whatever"}]),
            0,
            "/scope_policy",
        ),
    ];
    for (ops, index, field) in cases {
        let r = bed
            .engine
            .patch_client(bed.zone, &client.id, &patch(ops.clone()))
            .await;
        match r {
            Err(Error::InvalidPatch { index: i, path, .. }) => {
                assert_eq!((i, path.as_str()), (index, field), "{ops}");
            }
            other => panic!("{ops}: expected InvalidPatch, got {other:?}"),
        }
        assert_eq!(
            bed.engine.get_client(bed.zone, &client.id).await.unwrap(),
            client
        );
    }
    // A path that does not exist.
    let r = bed
        .engine
        .patch_client(
            bed.zone,
            &client.id,
            &patch(json!([{"op": "remove", "path": "/description"}])),
        )
        .await;
    assert!(matches!(r, Err(Error::InvalidPatch { index: 0, .. })));
}

#[tokio::test]
async fn a_merge_update_goes_through_the_same_validation() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let merged = bed
        .engine
        .merge_client(
            bed.zone,
            &client.id,
            &json!({"name": "Merged", "allowed_scopes": ["read", "write"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        (merged.name.as_str(), merged.allowed_scopes.len()),
        ("Merged", 2)
    );
    for (body, field) in [
        (
            json!({"access_token_ttl_seconds": 0}),
            "access_token_ttl_seconds",
        ),
        (json!({"id": "x"}), "body"),
        (json!({"allowed_grants": ["nope"]}), "allowed_grants"),
        (json!({"name": null}), "name"),
        (json!([1, 2]), "body"),
    ] {
        let r = bed.engine.merge_client(bed.zone, &client.id, &body).await;
        assert!(
            matches!(r, Err(Error::InvalidInput { field: f, .. }) if f == field),
            "{body}: {r:?}"
        );
    }
    assert_eq!(
        bed.engine.get_client(bed.zone, &client.id).await.unwrap(),
        merged
    );
}

// ----- seed 003's descriptive fields -----

#[tokio::test]
async fn seed_003_fields_register_default_and_change_like_any_other() {
    let bed = TestBed::new();
    let plain = bed.client(["read"]).await.unwrap();
    assert_eq!(
        (
            &plain.tenant,
            &plain.business_name,
            &plain.homepage_url,
            plain.internal,
            plain.strong_auth_supported,
            plain.claims_supported,
        ),
        (&None, &None, &None, false, false, false),
        "defaults"
    );

    let registered = bed
        .engine
        .register_client(
            bed.zone,
            ClientRegistration {
                tenant: Some("acme-solar".into()),
                business_name: Some("Acme Solar, Inc.".into()),
                homepage_url: Some("HTTP://Acme.Example/about?x=1#team".into()),
                internal: true,
                strong_auth_supported: true,
                claims_supported: true,
                ..ClientRegistration::new("Acme").id("acme")
            },
        )
        .await
        .unwrap()
        .client;
    assert_eq!(
        bed.engine.get_client(bed.zone, "acme").await.unwrap(),
        registered
    );
    assert_eq!(
        (
            registered.tenant.as_deref(),
            registered.business_name.as_deref(),
            registered.homepage_url.as_deref(),
            registered.internal,
            registered.strong_auth_supported,
            registered.claims_supported,
        ),
        (
            Some("acme-solar"),
            Some("Acme Solar, Inc."),
            Some("HTTP://Acme.Example/about?x=1#team"),
            true,
            true,
            true
        ),
        "kept as given"
    );

    // JSON Patch: remove, replace and add, and a test of the fixed `internal`.
    let patched = bed
        .engine
        .patch_client(
            bed.zone,
            "acme",
            &patch(json!([
                {"op": "test", "path": "/internal", "value": true},
                {"op": "remove", "path": "/tenant"},
                {"op": "replace", "path": "/business_name", "value": "Acme Solar"},
                {"op": "add", "path": "/homepage_url", "value": "https://acme.example/"},
                {"op": "replace", "path": "/strong_auth_supported", "value": false},
                {"op": "copy", "from": "/strong_auth_supported", "path": "/claims_supported"},
            ])),
        )
        .await
        .unwrap();
    assert_eq!(patched.tenant, None);
    assert_eq!(patched.business_name.as_deref(), Some("Acme Solar"));
    assert_eq!(
        patched.homepage_url.as_deref(),
        Some("https://acme.example/")
    );
    assert!(patched.internal, "internal is never patched");
    assert!(!patched.strong_auth_supported && !patched.claims_supported);

    // The booleans are required: removing one is refused, naming it.
    let r = bed
        .engine
        .patch_client(
            bed.zone,
            "acme",
            &patch(json!([{"op": "remove", "path": "/claims_supported"}])),
        )
        .await;
    assert!(
        matches!(&r, Err(Error::InvalidPatch { index: 0, path, .. }) if path == "/claims_supported"),
        "{r:?}"
    );

    // Merge: null clears an optional field.
    let merged = bed
        .engine
        .merge_client(
            bed.zone,
            "acme",
            &json!({"tenant": "acme-2", "business_name": null, "homepage_url": null,
                    "claims_supported": true}),
        )
        .await
        .unwrap();
    assert_eq!(merged.tenant.as_deref(), Some("acme-2"));
    assert_eq!(
        (&merged.business_name, &merged.homepage_url),
        (&None, &None)
    );
    assert!(merged.claims_supported);

    // The typed update.
    let updated = bed
        .engine
        .update_client(
            bed.zone,
            "acme",
            &ClientUpdate {
                tenant: Some(None),
                homepage_url: Some(Some("http://acme.example".into())),
                strong_auth_supported: Some(true),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.tenant, None);
    assert_eq!(updated.homepage_url.as_deref(), Some("http://acme.example"));
    assert!(updated.strong_auth_supported && updated.claims_supported);
    assert_eq!(
        bed.engine.get_client(bed.zone, "acme").await.unwrap(),
        updated
    );
}

#[test]
fn a_client_stored_before_seed_003_fields_reads_with_their_defaults() {
    let older = json!({
        "id": "c", "zone_id": "z", "organization_id": "o", "name": "C",
        "client_type": "public", "allowed_scopes": ["read"],
        "allowed_grants": ["refresh_token"], "scope_policy": "explicit",
        "access_type": "offline", "access_token_ttl_seconds": 60,
        "refresh_token_ttl_seconds": 60, "enabled": true,
        "created_at": "2030-01-01T00:00:00.000Z", "updated_at": "2030-01-01T00:00:00.000Z"
    });
    let client: tenure::Client = serde_json::from_value(older).unwrap();
    assert_eq!(
        (
            &client.tenant,
            &client.business_name,
            &client.homepage_url,
            client.internal,
            client.strong_auth_supported,
            client.claims_supported,
        ),
        (&None, &None, &None, false, false, false)
    );
    // And the fields survive JSON both ways.
    let full = tenure::Client {
        tenant: Some("t".into()),
        business_name: Some("B".into()),
        homepage_url: Some("https://b.example/".into()),
        internal: true,
        strong_auth_supported: true,
        claims_supported: true,
        ..client
    };
    let back: tenure::Client =
        serde_json::from_value(serde_json::to_value(&full).unwrap()).unwrap();
    assert_eq!(back, full);
}

// ----- scope policy -----

#[derive(Debug)]
struct Accounts;

#[async_trait]
impl PermissionResolver for Accounts {
    async fn grantable_scopes(&self, _zone: &str, account: &str) -> tenure::Result<Grantable> {
        Ok(match account {
            "admin" => Grantable::All,
            "owner" => Grantable::Only(vec!["read".into(), "write".into()]),
            _ => Grantable::Only(vec![]),
        })
    }
}

#[tokio::test]
async fn an_owned_client_may_only_be_given_scopes_its_owner_can_grant() {
    let bed = TestBed::with(|b| b.permission_resolver(Arc::new(Accounts)));
    let r = bed
        .engine
        .register_client(
            bed.zone,
            ClientRegistration::new("c")
                .id("c")
                .owner("owner")
                .scopes(["read", "admin", "root"]),
        )
        .await;
    assert!(matches!(r, Err(Error::InvalidScope { ref scopes }) if scopes == &["admin", "root"]));
    assert!(matches!(
        bed.engine.get_client(bed.zone, "c").await,
        Err(Error::NotFound { .. })
    ));
    bed.engine
        .register_client(
            bed.zone,
            ClientRegistration::new("c")
                .id("c")
                .owner("owner")
                .scopes(["read"]),
        )
        .await
        .unwrap();
    let r = bed
        .engine
        .update_client(
            bed.zone,
            "c",
            &ClientUpdate {
                allowed_scopes: Some(vec!["read".into(), "admin".into()]),
                ..ClientUpdate::default()
            },
        )
        .await;
    assert!(matches!(r, Err(Error::InvalidScope { ref scopes }) if scopes == &["admin"]));
    let r = bed
        .engine
        .patch_client(
            bed.zone,
            "c",
            &patch(json!([{"op": "add", "path": "/allowed_scopes/-", "value": "admin"}])),
        )
        .await;
    assert!(matches!(r, Err(Error::InvalidScope { .. })));
    // An administrator can grant all.
    bed.engine
        .register_client(
            bed.zone,
            ClientRegistration::new("a")
                .id("a")
                .owner("admin")
                .scopes(["anything", "at:all"]),
        )
        .await
        .unwrap();
    // A built-in client has no owner to check.
    bed.engine
        .register_client(
            bed.zone,
            ClientRegistration::new("b").id("b").scopes(["anything"]),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn inherit_is_decided_at_issuance_by_what_the_owner_can_grant_then() {
    // The owner's rights shrink between two refreshes; the second is narrowed.
    #[derive(Debug, Default)]
    struct Shrinking(std::sync::atomic::AtomicBool);
    #[async_trait]
    impl PermissionResolver for Shrinking {
        async fn grantable_scopes(&self, _zone: &str, _account: &str) -> tenure::Result<Grantable> {
            Ok(if self.0.load(std::sync::atomic::Ordering::SeqCst) {
                Grantable::Only(vec!["read".into()])
            } else {
                Grantable::Only(vec!["read".into(), "write".into()])
            })
        }
    }
    let rights = Arc::new(Shrinking::default());
    let bed = TestBed::with(|b| b.permission_resolver(rights.clone()));
    let client = bed
        .register(
            ClientRegistration::new("c")
                .id("c")
                .owner("owner")
                .scope_policy(ScopePolicy::Inherit),
        )
        .await
        .unwrap();
    let issued = bed
        .grant(&client, "alice", ["read", "write"])
        .await
        .unwrap();
    rights.0.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new("c", issued.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.scopes, vec!["read"]);
}

// ----- future-only changes -----

#[tokio::test]
async fn narrowing_scopes_keeps_issued_tokens_and_narrows_the_next_refresh() {
    let bed = TestBed::new();
    let client = bed.client(["read", "write"]).await.unwrap();
    let issued = bed
        .grant(&client, "alice", ["read", "write"])
        .await
        .unwrap();
    bed.engine
        .patch_client(
            bed.zone,
            &client.id,
            &patch(json!([{"op": "replace", "path": "/allowed_scopes", "value": ["read"]}])),
        )
        .await
        .unwrap();
    let Introspection::Active(t) = bed
        .engine
        .introspect(bed.zone, issued.access_token.expose())
        .await
        .unwrap()
    else {
        panic!("still active");
    };
    assert_eq!(t.scopes, vec!["read", "write"]);
    bed.clock.advance(Duration::minutes(59));
    assert!(
        is_active(&bed, &issued.access_token).await,
        "lives to its own expiry"
    );
    bed.clock.advance(Duration::minutes(1));
    assert!(!is_active(&bed, &issued.access_token).await);
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.scopes, vec!["read"]);
}

#[tokio::test]
async fn widening_scopes_never_widens_an_existing_grant() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
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
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.scopes, vec!["read"]);
    assert_eq!(r.grant.scopes, vec!["read"]);
    let r2 = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), r.refresh_token.as_ref().unwrap())
                .scopes(["read", "write"]),
        )
        .await;
    assert!(matches!(r2, Err(Error::InvalidScope { ref scopes }) if scopes == &["write"]));
}

#[tokio::test]
async fn disabling_a_client_stops_authorize_and_refresh_but_tokens_live_on() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    bed.engine
        .merge_client(bed.zone, &client.id, &json!({"enabled": false}))
        .await
        .unwrap();
    assert!(matches!(
        bed.grant(&client, "bob", ["read"]).await,
        Err(Error::ClientDisabled { .. })
    ));
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await;
    assert!(matches!(r, Err(Error::ClientDisabled { .. })));
    assert!(is_active(&bed, &issued.access_token).await);
    bed.clock.advance(Duration::hours(1));
    assert!(!is_active(&bed, &issued.access_token).await);
}

#[tokio::test]
async fn changing_lifetimes_affects_only_tokens_issued_afterwards() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let before = bed.grant(&client, "alice", ["read"]).await.unwrap();
    bed.engine
        .update_client(
            bed.zone,
            &client.id,
            &ClientUpdate {
                access_token_ttl_seconds: Some(120),
                refresh_token_ttl_seconds: Some(600),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    let after = bed.grant(&client, "alice", ["read"]).await.unwrap();
    assert_eq!(before.expires_in(), 3600);
    assert_eq!(after.expires_in(), 120);
    bed.clock.advance(Duration::minutes(30));
    assert!(is_active(&bed, &before.access_token).await);
    assert!(!is_active(&bed, &after.access_token).await);
    assert!(
        is_active(&bed, before.refresh_token.as_ref().unwrap()).await,
        "old refresh token keeps its 30 days"
    );
    assert!(
        !is_active(&bed, after.refresh_token.as_ref().unwrap()).await,
        "new one got 10 minutes"
    );
}

#[tokio::test]
async fn withdrawing_refresh_stops_refresh_and_restoring_it_revives_nothing() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let old_refresh = issued.refresh_token.clone().unwrap();
    bed.clock.advance(Duration::seconds(1));
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
            RefreshRequest::new(client.id.clone(), &old_refresh),
        )
        .await;
    assert!(matches!(r, Err(Error::GrantTypeNotAllowed { .. })));
    assert!(
        is_active(&bed, &issued.access_token).await,
        "access tokens live to their expiry"
    );
    bed.clock.advance(Duration::seconds(1));
    bed.engine
        .update_client(
            bed.zone,
            &client.id,
            &ClientUpdate {
                allowed_grants: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), &old_refresh),
        )
        .await;
    assert!(matches!(
        r,
        Err(Error::InvalidGrant {
            reason: tenure::InvalidGrantReason::RefreshStopped
        })
    ));
    assert!(!is_active(&bed, &old_refresh).await);
    // A stopped refresh token is already unusable: revoking it changes nothing.
    assert!(
        !bed.engine
            .revoke_token(bed.zone, old_refresh.expose(), None)
            .await
            .unwrap()
    );
    let grant = bed
        .engine
        .get_grant(bed.zone, &issued.grant.id)
        .await
        .unwrap();
    assert_eq!(grant.status, tenure::GrantStatus::Active);
    // Grants made after it was restored refresh as usual.
    let fresh = bed.grant(&client, "alice", ["read"]).await.unwrap();
    assert!(
        bed.engine
            .refresh(
                bed.zone,
                RefreshRequest::new(client.id.clone(), fresh.refresh_token.as_ref().unwrap())
            )
            .await
            .is_ok()
    );
    // Switching to online access also stops the chains.
    bed.clock.advance(Duration::seconds(1));
    let chain = bed.grant(&client, "bob", ["read"]).await.unwrap();
    bed.clock.advance(Duration::seconds(1));
    bed.engine
        .update_client(
            bed.zone,
            &client.id,
            &ClientUpdate {
                access_type: Some(AccessType::Online),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    bed.engine
        .update_client(
            bed.zone,
            &client.id,
            &ClientUpdate {
                access_type: Some(AccessType::Offline),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    let r = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), chain.refresh_token.as_ref().unwrap()),
        )
        .await;
    assert!(matches!(r, Err(Error::InvalidGrant { .. })));
}

// ----- dry-run impact -----

#[tokio::test]
async fn dry_run_impact_counts_without_changing_anything() {
    let store = Arc::new(Instrumented::new());
    let clock = Arc::new(ManualClock::new(epoch()));
    let engine = Engine::builder(store.clone()).clock(clock.clone()).build();
    let z = "zone-1";
    engine
        .register_client(
            z,
            ClientRegistration::new("c")
                .id("c")
                .scopes(["read", "write"]),
        )
        .await
        .unwrap();
    engine
        .register_client(
            z,
            ClientRegistration::new("other")
                .id("other")
                .scopes(["read", "write"]),
        )
        .await
        .unwrap();
    for (user, scopes) in [
        ("a", vec!["read"]),
        ("b", vec!["read", "write"]),
        ("c", vec!["write"]),
    ] {
        engine
            .authorize(z, tenure::AuthorizeRequest::new("c", user, "r", scopes))
            .await
            .unwrap();
    }
    let revoked = engine
        .authorize(z, tenure::AuthorizeRequest::new("c", "d", "r", ["write"]))
        .await
        .unwrap();
    engine
        .revoke_grant(z, &revoked.grant.id, tenure::Actor::Admin)
        .await
        .unwrap();
    for _ in 0..5 {
        engine
            .authorize(
                z,
                tenure::AuthorizeRequest::new("other", "e", "r", ["write"]),
            )
            .await
            .unwrap();
    }
    let before = store.applies();
    let narrow = ClientChange::Patch(patch(
        json!([{"op": "replace", "path": "/allowed_scopes", "value": ["read"]}]),
    ));
    let impact = engine.client_change_impact(z, "c", &narrow).await.unwrap();
    assert_eq!(impact.active_grants, 3);
    assert_eq!(impact.refresh_chains, 3);
    assert_eq!(impact.narrowed_grants, 2);
    assert_eq!(impact.stopped_refresh_chains, 0);
    assert!(!impact.stops_authorization);
    let disable = ClientChange::Merge(json!({"enabled": false}));
    let impact = engine.client_change_impact(z, "c", &disable).await.unwrap();
    assert_eq!(
        (impact.stopped_refresh_chains, impact.stops_authorization),
        (3, true)
    );
    let no_refresh = ClientChange::Update(ClientUpdate {
        allowed_grants: Some(vec![GrantType::AuthorizationCode]),
        ..ClientUpdate::default()
    });
    let impact = engine
        .client_change_impact(z, "c", &no_refresh)
        .await
        .unwrap();
    assert_eq!(
        (impact.stopped_refresh_chains, impact.narrowed_grants),
        (3, 0)
    );
    // An invalid change is refused as the real one would be.
    let bad = ClientChange::Merge(json!({"access_token_ttl_seconds": 0}));
    assert!(matches!(
        engine.client_change_impact(z, "c", &bad).await,
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(store.applies(), before, "a dry run writes nothing");
    assert_eq!(
        engine.get_client(z, "c").await.unwrap().allowed_scopes,
        vec!["read", "write"]
    );
    // Expired grants do not count.
    clock.advance(Duration::days(31));
    let impact = engine.client_change_impact(z, "c", &narrow).await.unwrap();
    assert_eq!(impact.active_grants, 0);
}

// ----- last_used_at -----

#[tokio::test]
async fn last_used_at_is_written_at_most_once_per_period() {
    let store = Arc::new(Instrumented::new());
    let clock = Arc::new(ManualClock::new(epoch()));
    let engine = Engine::builder(store.clone()).clock(clock.clone()).build();
    let z = "zone-1";
    engine
        .register_client(z, ClientRegistration::new("c").id("c").scopes(["read"]))
        .await
        .unwrap();
    let version = |store: Arc<Instrumented>| async move {
        store.get_client(z, "c").await.unwrap().unwrap().version
    };
    assert_eq!(version(store.clone()).await, 1);
    let mut issued = engine
        .authorize(
            z,
            tenure::AuthorizeRequest::new("c", "alice", "r", ["read"]),
        )
        .await
        .unwrap();
    assert_eq!(
        engine.get_client(z, "c").await.unwrap().last_used_at,
        Some(epoch())
    );
    for _ in 0..50 {
        clock.advance(Duration::minutes(10));
        issued = engine
            .refresh(
                z,
                RefreshRequest::new("c", issued.refresh_token.as_ref().unwrap()),
            )
            .await
            .unwrap();
        engine
            .authorize(z, tenure::AuthorizeRequest::new("c", "bob", "r", ["read"]))
            .await
            .unwrap();
    }
    // 100 uses over 500 minutes: one write at first use, none since.
    assert_eq!(version(store.clone()).await, 2);
    clock.advance(Duration::hours(24));
    engine
        .authorize(z, tenure::AuthorizeRequest::new("c", "bob", "r", ["read"]))
        .await
        .unwrap();
    assert_eq!(version(store.clone()).await, 3);
    assert_eq!(
        engine.get_client(z, "c").await.unwrap().last_used_at,
        Some(tenure::Clock::now(&*clock))
    );
}

#[tokio::test]
async fn the_last_used_period_is_configurable() {
    let bed = TestBed::with(|b| {
        b.config(tenure::EngineConfig {
            last_used_period: Duration::minutes(5),
            ..tenure::EngineConfig::default()
        })
    });
    let client = bed.client(["read"]).await.unwrap();
    bed.grant(&client, "a", ["read"]).await.unwrap();
    bed.clock.advance(Duration::minutes(4));
    bed.grant(&client, "a", ["read"]).await.unwrap();
    assert_eq!(
        bed.engine
            .get_client(bed.zone, &client.id)
            .await
            .unwrap()
            .last_used_at,
        Some(tenure_memory::testing::epoch())
    );
    bed.clock.advance(Duration::minutes(1));
    bed.grant(&client, "a", ["read"]).await.unwrap();
    assert_eq!(
        bed.engine
            .get_client(bed.zone, &client.id)
            .await
            .unwrap()
            .last_used_at,
        Some(tenure_memory::testing::epoch() + Duration::minutes(5))
    );
}
