//! Bad input gets a typed error and changes nothing: no write set reaches the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::Duration;
use tenure::{
    Actor, AuthorizeRequest, ClientRegistration, ClientUpdate, Engine, Error, Grant, ListGrants,
    ManualClock, RecordKind, RefreshRequest, Secret,
};
use tenure_memory::testing::{Instrumented, epoch};

struct Fixture {
    engine: Engine,
    store: Arc<Instrumented>,
    clock: Arc<ManualClock>,
    grant: Grant,
    refresh: Secret,
}

const ZONE: &str = "zone-1";

async fn fixture() -> Fixture {
    let store = Arc::new(Instrumented::new());
    let clock = Arc::new(ManualClock::new(epoch()));
    let engine = Engine::builder(store.clone()).clock(clock.clone()).build();
    engine
        .register_client(
            ZONE,
            ClientRegistration::new("c")
                .id("c")
                .scopes(["read", "write"]),
        )
        .await
        .unwrap();
    let issued = engine
        .authorize(ZONE, AuthorizeRequest::new("c", "alice", "r", ["read"]))
        .await
        .unwrap();
    Fixture {
        engine,
        store,
        clock,
        grant: issued.grant,
        refresh: issued.refresh_token.unwrap(),
    }
}

impl Fixture {
    /// Runs `op`, expects the error `check` accepts, and that nothing was written.
    async fn refused<T: std::fmt::Debug>(
        &self,
        what: &str,
        result: tenure::Result<T>,
        check: impl FnOnce(&Error) -> bool,
    ) {
        let before = self.store.applies();
        let err = match result {
            Ok(v) => panic!("{what}: expected an error, got {v:?}"),
            Err(e) => e,
        };
        assert!(check(&err), "{what}: unexpected error {err:?}");
        assert_eq!(
            self.store.applies(),
            before,
            "{what}: something was written"
        );
        // The grant is as it was.
        assert_eq!(
            self.engine.get_grant(ZONE, &self.grant.id).await.unwrap(),
            self.grant,
            "{what}"
        );
    }
}

fn invalid(field: &'static str) -> impl FnOnce(&Error) -> bool {
    move |e| matches!(e, Error::InvalidInput { field: f, .. } if *f == field)
}

fn request(client: &str, user: &str, resource: &str, scopes: &[&str]) -> AuthorizeRequest {
    AuthorizeRequest::new(client, user, resource, scopes.iter().copied())
}

#[tokio::test]
async fn empty_overlong_and_control_character_ids_are_refused() {
    let f = fixture().await;
    let long = "x".repeat(256);
    let cases: Vec<(&str, AuthorizeRequest, &'static str)> = vec![
        ("empty user", request("c", "", "r", &["read"]), "user_id"),
        (
            "overlong user",
            request("c", &long, "r", &["read"]),
            "user_id",
        ),
        (
            "control user",
            request("c", "al\u{0}ice", "r", &["read"]),
            "user_id",
        ),
        (
            "newline resource",
            request("c", "alice", "r\n", &["read"]),
            "resource_id",
        ),
        (
            "empty client",
            request("", "alice", "r", &["read"]),
            "client_id",
        ),
        (
            "overlong client",
            request(&"c".repeat(129), "alice", "r", &["read"]),
            "client_id",
        ),
    ];
    for (what, req, field) in cases {
        let before = f.store.applies();
        let r = f.engine.authorize(ZONE, req).await;
        f.refused(what, r, invalid(field)).await;
        assert_eq!(f.store.applies(), before);
    }
    f.refused(
        "empty zone",
        f.engine.get_grant("", &f.grant.id).await,
        invalid("zone_id"),
    )
    .await;
    f.refused(
        "control zone",
        f.engine.get_grant("z\u{7}", &f.grant.id).await,
        invalid("zone_id"),
    )
    .await;
    f.refused(
        "empty grant id",
        f.engine.revoke_grant(ZONE, "", Actor::Admin).await,
        invalid("grant_id"),
    )
    .await;
    f.refused(
        "overlong grant id",
        f.engine.delete_grant(ZONE, &"g".repeat(129)).await,
        invalid("grant_id"),
    )
    .await;
    f.refused(
        "control client id on register",
        f.engine
            .register_client(ZONE, ClientRegistration::new("x").id("a\u{1b}b"))
            .await,
        invalid("id"),
    )
    .await;
}

#[tokio::test]
async fn scopes_with_whitespace_or_control_characters_are_refused() {
    let f = fixture().await;
    for scope in ["re ad", "read\t", "read\u{0}", "", "\u{7f}", "é"] {
        let r = f
            .engine
            .authorize(ZONE, request("c", "alice", "r", &[scope]))
            .await;
        f.refused(scope, r, invalid("scopes")).await;
    }
    let r = f
        .engine
        .refresh(ZONE, RefreshRequest::new("c", &f.refresh).scopes(["re ad"]))
        .await;
    f.refused("refresh scope", r, invalid("scope")).await;
    let r = f
        .engine
        .register_client(ZONE, ClientRegistration::new("x").id("x").scopes(["a b"]))
        .await;
    f.refused("client scope", r, invalid("allowed_scopes"))
        .await;
    let r = f
        .engine
        .update_client(
            ZONE,
            "c",
            &ClientUpdate {
                allowed_scopes: Some(vec!["bad\nscope".into()]),
                ..ClientUpdate::default()
            },
        )
        .await;
    f.refused("client update scope", r, invalid("allowed_scopes"))
        .await;
    // The refresh token survived every refused request.
    assert!(
        f.engine
            .introspect(ZONE, f.refresh.expose())
            .await
            .unwrap()
            .is_active()
    );
}

#[tokio::test]
async fn limits_outside_one_to_one_hundred_are_refused() {
    let f = fixture().await;
    for limit in [0, 101, usize::MAX] {
        let r = f
            .engine
            .list_grants(
                ZONE,
                &ListGrants {
                    limit: Some(limit),
                    ..ListGrants::default()
                },
            )
            .await;
        f.refused("limit", r, invalid("limit")).await;
    }
    f.refused(
        "client limit",
        f.engine.list_clients(ZONE, None, 0).await,
        invalid("limit"),
    )
    .await;
    f.refused(
        "sweep limit",
        f.engine.sweep_expired(ZONE, 0).await,
        invalid("limit"),
    )
    .await;
}

#[tokio::test]
async fn forged_truncated_and_foreign_cursors_are_refused() {
    let f = fixture().await;
    for _ in 0..3 {
        f.engine
            .authorize(ZONE, request("c", "alice", "r", &["read"]))
            .await
            .unwrap();
        f.engine
            .authorize("zone-2", request("c", "alice", "r", &["read"]))
            .await
            .ok();
    }
    let page = f
        .engine
        .list_grants(
            ZONE,
            &ListGrants {
                limit: Some(1),
                ..ListGrants::default()
            },
        )
        .await
        .unwrap();
    let cursor = page.after_cursor.unwrap();
    let mut altered = cursor.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let is_cursor_error = |e: &Error| matches!(e, Error::InvalidCursor { .. });
    for (what, c) in [
        ("garbage", "not-a-cursor".to_owned()),
        ("truncated", cursor[..cursor.len() / 2].to_owned()),
        ("altered", altered),
        ("overlong", "A".repeat(256)),
    ] {
        let r = f
            .engine
            .list_grants(
                ZONE,
                &ListGrants {
                    after: Some(c.clone()),
                    ..ListGrants::default()
                },
            )
            .await;
        f.refused(what, r, is_cursor_error).await;
        let r = f
            .engine
            .list_grants(
                ZONE,
                &ListGrants {
                    before: Some(c),
                    ..ListGrants::default()
                },
            )
            .await;
        f.refused(what, r, is_cursor_error).await;
    }
    // Foreign: another zone, another filter, another order.
    let foreign = [
        (
            "zone-2",
            ListGrants {
                after: Some(cursor.clone()),
                ..ListGrants::default()
            },
        ),
        (
            ZONE,
            ListGrants {
                after: Some(cursor.clone()),
                user_id: Some("alice".into()),
                ..ListGrants::default()
            },
        ),
        (
            ZONE,
            ListGrants {
                after: Some(cursor.clone()),
                order: tenure::SortOrder::Ascending,
                ..ListGrants::default()
            },
        ),
    ];
    for (zone, q) in foreign {
        let r = f.engine.list_grants(zone, &q).await;
        f.refused("foreign", r, is_cursor_error).await;
    }
}

#[tokio::test]
async fn an_expiry_in_the_past_is_refused() {
    let f = fixture().await;
    let now = epoch();
    for at in [now, now - Duration::seconds(1)] {
        let r = f
            .engine
            .authorize(ZONE, request("c", "alice", "r", &["read"]).expires_at(at))
            .await;
        f.refused("past expiry", r, invalid("expires_at")).await;
    }
    f.clock.advance(Duration::seconds(1));
}

#[tokio::test]
async fn an_unknown_client_is_refused() {
    let f = fixture().await;
    let r = f
        .engine
        .authorize(ZONE, request("nobody", "alice", "r", &["read"]))
        .await;
    f.refused("authorize", r, |e| {
        matches!(
            e,
            Error::NotFound {
                kind: RecordKind::Client,
                ..
            }
        )
    })
    .await;
    let r = f
        .engine
        .authorize("zone-2", request("c", "alice", "r", &["read"]))
        .await;
    f.refused("client of another zone", r, |e| {
        matches!(
            e,
            Error::NotFound {
                kind: RecordKind::Client,
                ..
            }
        )
    })
    .await;
    let r = f.engine.get_client(ZONE, "nobody").await;
    f.refused("get", r, |e| {
        matches!(
            e,
            Error::NotFound {
                kind: RecordKind::Client,
                ..
            }
        )
    })
    .await;
    let r = f
        .engine
        .update_client(
            ZONE,
            "nobody",
            &ClientUpdate {
                enabled: Some(false),
                ..ClientUpdate::default()
            },
        )
        .await;
    f.refused("update", r, |e| {
        matches!(
            e,
            Error::NotFound {
                kind: RecordKind::Client,
                ..
            }
        )
    })
    .await;
    let r = f
        .engine
        .refresh(ZONE, RefreshRequest::new("nobody", &f.refresh))
        .await;
    f.refused("refresh", r, |e| matches!(e, Error::InvalidGrant { .. }))
        .await;
}

#[tokio::test]
async fn scopes_the_client_may_not_have_are_refused_by_name() {
    let f = fixture().await;
    let r = f
        .engine
        .authorize(ZONE, request("c", "alice", "r", &["read", "admin", "root"]))
        .await;
    f.refused(
        "scopes",
        r,
        |e| matches!(e, Error::InvalidScope { scopes } if scopes == &["admin", "root"]),
    )
    .await;
    let r = f
        .engine
        .authorize(ZONE, request("c", "alice", "r", &[]))
        .await;
    f.refused("no scopes", r, invalid("scopes")).await;
}

#[tokio::test]
async fn invalid_client_policies_are_refused() {
    let f = fixture().await;
    let cases: Vec<(ClientRegistration, &'static str)> = vec![
        (
            ClientRegistration::new("x").id("x").lifetimes(0, 10),
            "access_token_ttl_seconds",
        ),
        (
            ClientRegistration::new("x").id("x").lifetimes(10, 0),
            "refresh_token_ttl_seconds",
        ),
        (ClientRegistration::new("  ").id("x"), "name"),
        (
            ClientRegistration {
                redirect_uris: vec!["not a uri".into()],
                ..ClientRegistration::new("x").id("x")
            },
            "redirect_uris",
        ),
        (
            ClientRegistration {
                redirect_uris: vec!["https://app.example/cb#frag".into()],
                ..ClientRegistration::new("x").id("x")
            },
            "redirect_uris",
        ),
    ];
    for (registration, field) in cases {
        let r = f.engine.register_client(ZONE, registration).await;
        f.refused(field, r, invalid(field)).await;
    }
    let r = f
        .engine
        .register_client(ZONE, ClientRegistration::new("dup").id("c"))
        .await;
    let before = f.store.applies();
    assert!(matches!(
        r,
        Err(Error::AlreadyExists {
            kind: RecordKind::Client,
            ..
        })
    ));
    assert_eq!(f.store.applies(), before);
    // The original client is untouched.
    assert_eq!(f.engine.get_client(ZONE, "c").await.unwrap().name, "c");
    let r = f
        .engine
        .update_client(
            ZONE,
            "c",
            &ClientUpdate {
                access_token_ttl_seconds: Some(0),
                ..ClientUpdate::default()
            },
        )
        .await;
    f.refused("update ttl", r, invalid("access_token_ttl_seconds"))
        .await;
    assert_eq!(
        f.engine
            .get_client(ZONE, "c")
            .await
            .unwrap()
            .access_token_ttl_seconds,
        3600
    );
}

#[tokio::test]
async fn unknown_and_foreign_grants_are_not_found() {
    let f = fixture().await;
    let not_found = |e: &Error| {
        matches!(
            e,
            Error::NotFound {
                kind: RecordKind::Grant,
                ..
            }
        )
    };
    f.refused("get", f.engine.get_grant(ZONE, "missing").await, not_found)
        .await;
    f.refused(
        "other zone",
        f.engine.get_grant("zone-2", &f.grant.id).await,
        not_found,
    )
    .await;
    f.refused(
        "revoke other zone",
        f.engine
            .revoke_grant("zone-2", &f.grant.id, Actor::Admin)
            .await,
        not_found,
    )
    .await;
    f.refused(
        "delete other zone",
        f.engine.delete_grant("zone-2", &f.grant.id).await,
        not_found,
    )
    .await;
    f.refused(
        "history other zone",
        f.engine.grant_history("zone-2", &f.grant.id).await,
        not_found,
    )
    .await;
    let r = f
        .engine
        .refresh("zone-2", RefreshRequest::new("c", &f.refresh))
        .await;
    f.refused("refresh other zone", r, |e| {
        matches!(e, Error::InvalidGrant { .. })
    })
    .await;
}

/// Seed 003's descriptive fields: every bad value is refused naming its field, the
/// same way whether it comes at registration, in a typed update, in a merge or in
/// a JSON Patch (which names the operation's path), and nothing is written.
#[tokio::test]
async fn bad_seed_003_client_fields_are_refused_by_name() {
    let f = fixture().await;
    let long = |prefix: &str, len: usize| format!("{prefix}{}", "a".repeat(len - prefix.len()));
    let cases: Vec<(&'static str, String)> = vec![
        ("business_name", String::new()),
        ("business_name", "   ".into()),
        ("business_name", long("", 2049)),
        ("business_name", "Acme\u{7}Solar".into()),
        ("business_name", "Acme\u{0}".into()),
        ("homepage_url", "not a url".into()),
        ("homepage_url", "/about".into()),
        ("homepage_url", "acme.example".into()),
        ("homepage_url", "ftp://acme.example/".into()),
        ("homepage_url", "javascript:alert(1)".into()),
        ("homepage_url", "mailto:ops@acme.example".into()),
        ("homepage_url", "https://".into()),
        ("homepage_url", long("https://acme.example/", 2049)),
        // The URL parser would drop these silently.
        ("homepage_url", "https://acme.exa\tmple/".into()),
        ("homepage_url", "https://acme.example/\n".into()),
        ("homepage_url", " https://acme.example/".into()),
        ("homepage_url", "https://acme.example/\u{7f}".into()),
        ("tenant", String::new()),
        ("tenant", long("", 256)),
        ("tenant", "acme\u{1b}".into()),
        ("tenant", "acme\nsolar".into()),
    ];
    let stored = f.engine.get_client(ZONE, "c").await.unwrap();
    for (field, value) in cases {
        let what = format!("{field} = {value:?}");
        let mut registration = ClientRegistration::new("x").id("x");
        let mut update = ClientUpdate::default();
        match field {
            "business_name" => {
                registration.business_name = Some(value.clone());
                update.business_name = Some(Some(value.clone()));
            }
            "homepage_url" => {
                registration.homepage_url = Some(value.clone());
                update.homepage_url = Some(Some(value.clone()));
            }
            _ => {
                registration.tenant = Some(value.clone());
                update.tenant = Some(Some(value.clone()));
            }
        }
        let r = f.engine.register_client(ZONE, registration).await;
        f.refused(&format!("register {what}"), r, invalid(field))
            .await;
        let r = f.engine.update_client(ZONE, "c", &update).await;
        f.refused(&format!("update {what}"), r, invalid(field))
            .await;
        let body = serde_json::json!({ field: value });
        let r = f.engine.merge_client(ZONE, "c", &body).await;
        f.refused(&format!("merge {what}"), r, invalid(field)).await;
        let ops = serde_json::json!([
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": format!("/{field}"), "value": value},
        ]);
        let r = f
            .engine
            .patch_client(ZONE, "c", &serde_json::from_value(ops).unwrap())
            .await;
        let path = format!("/{field}");
        f.refused(
            &format!("patch {what}"),
            r,
            |e| matches!(e, Error::InvalidPatch { index: 1, path: p, .. } if *p == path),
        )
        .await;
        assert_eq!(
            f.engine.get_client(ZONE, "c").await.unwrap(),
            stored,
            "{what}: the client is unchanged"
        );
        assert!(
            matches!(
                f.engine.get_client(ZONE, "x").await,
                Err(Error::NotFound { .. })
            ),
            "{what}: nothing was registered"
        );
    }
    // Booleans and text of the wrong JSON type, and `internal`, which is fixed at
    // registration.
    for (body, field) in [
        (
            serde_json::json!({"strong_auth_supported": "yes"}),
            "strong_auth_supported",
        ),
        (
            serde_json::json!({"claims_supported": null}),
            "claims_supported",
        ),
        (serde_json::json!({"homepage_url": 7}), "homepage_url"),
        (serde_json::json!({"internal": true}), "body"),
    ] {
        let r = f.engine.merge_client(ZONE, "c", &body).await;
        f.refused(&format!("merge {body}"), r, invalid(field)).await;
    }
    let ops = serde_json::json!([{"op": "replace", "path": "/internal", "value": true}]);
    let r = f
        .engine
        .patch_client(ZONE, "c", &serde_json::from_value(ops).unwrap())
        .await;
    f.refused("patch /internal", r, |e| {
        matches!(e, Error::InvalidPatch { index: 0, .. })
    })
    .await;
    assert_eq!(f.engine.get_client(ZONE, "c").await.unwrap(), stored);
}
