//! Personal grants (seed 002).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use tenure::{Error, GrantStatus, NewPersonalGrant, PersonalGrantUpdate, RecordKind};
use tenure_memory::testing::{TestBed, epoch};

fn new(name: &str, scope: &str) -> NewPersonalGrant {
    NewPersonalGrant {
        name: Some(name.into()),
        description: Some("for scripts".into()),
        scope: Some(scope.into()),
        expires_at: None,
    }
}

#[tokio::test]
async fn create_returns_an_id_and_a_challenge_and_never_expires_by_default() {
    let bed = TestBed::new();
    let g = bed
        .engine
        .create_personal_grant(bed.zone, "alice", new("ci", "read write"))
        .await
        .unwrap();
    assert!(g.challenge.starts_with("auth-grant:"));
    assert!((10..=100).contains(&g.challenge.len()));
    assert_eq!(g.scopes, vec!["read", "write"]);
    assert_eq!(g.scope(), "read write");
    assert_eq!(g.expires_at, None);
    bed.clock.advance(Duration::days(3650));
    let read = bed
        .engine
        .get_personal_grant(bed.zone, "alice", &g.id)
        .await
        .unwrap();
    assert_eq!(read.status, GrantStatus::Active);
    assert_eq!(read.challenge, g.challenge);
}

#[tokio::test]
async fn an_expiry_is_honoured() {
    let bed = TestBed::new();
    let g = bed
        .engine
        .create_personal_grant(
            bed.zone,
            "alice",
            NewPersonalGrant {
                expires_at: Some(epoch() + Duration::hours(1)),
                ..new("short", "read")
            },
        )
        .await
        .unwrap();
    bed.clock.advance(Duration::hours(1));
    let read = bed
        .engine
        .get_personal_grant(bed.zone, "alice", &g.id)
        .await
        .unwrap();
    assert_eq!(read.status, GrantStatus::Expired);
    assert!(matches!(
        bed.engine
            .revoke_personal_grant(bed.zone, "alice", &g.id)
            .await,
        Err(Error::InvalidTransition {
            from: GrantStatus::Expired,
            to: GrantStatus::Revoked
        })
    ));
}

#[tokio::test]
async fn revoke_keeps_the_record_and_delete_removes_it() {
    let bed = TestBed::new();
    let g = bed
        .engine
        .create_personal_grant(bed.zone, "alice", new("a", "read"))
        .await
        .unwrap();
    let revoked = bed
        .engine
        .revoke_personal_grant(bed.zone, "alice", &g.id)
        .await
        .unwrap();
    assert_eq!(revoked.status, GrantStatus::Revoked);
    assert_eq!(
        bed.engine
            .get_personal_grant(bed.zone, "alice", &g.id)
            .await
            .unwrap()
            .status,
        GrantStatus::Revoked
    );
    // Again: unchanged.
    assert_eq!(
        bed.engine
            .revoke_personal_grant(bed.zone, "alice", &g.id)
            .await
            .unwrap(),
        revoked
    );
    bed.engine
        .delete_personal_grant(bed.zone, "alice", &g.id)
        .await
        .unwrap();
    assert!(matches!(
        bed.engine
            .get_personal_grant(bed.zone, "alice", &g.id)
            .await,
        Err(Error::NotFound {
            kind: RecordKind::PersonalGrant,
            ..
        })
    ));
    assert!(
        bed.engine
            .list_personal_grants(bed.zone, "alice", None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn update_changes_name_and_description_only() {
    let bed = TestBed::new();
    let g = bed
        .engine
        .create_personal_grant(bed.zone, "alice", new("a", "read"))
        .await
        .unwrap();
    bed.clock.advance(Duration::seconds(3));
    let u = bed
        .engine
        .update_personal_grant(
            bed.zone,
            "alice",
            &g.id,
            &PersonalGrantUpdate {
                name: Some("renamed".into()),
                description: Some(None),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (u.name.as_str(), u.description.as_deref()),
        ("renamed", None)
    );
    assert_eq!(
        (u.scopes.clone(), u.challenge.clone(), u.created_at),
        (g.scopes.clone(), g.challenge.clone(), g.created_at)
    );
    assert_eq!(u.updated_at, epoch() + Duration::seconds(3));
    for bad in [
        PersonalGrantUpdate {
            name: Some(" ".into()),
            description: None,
        },
        PersonalGrantUpdate {
            name: Some("x".repeat(256)),
            description: None,
        },
        PersonalGrantUpdate {
            name: None,
            description: Some(Some("a\u{0}b".into())),
        },
    ] {
        assert!(matches!(
            bed.engine
                .update_personal_grant(bed.zone, "alice", &g.id, &bad)
                .await,
            Err(Error::InvalidInput { .. })
        ));
    }
    assert_eq!(
        bed.engine
            .get_personal_grant(bed.zone, "alice", &g.id)
            .await
            .unwrap(),
        u
    );
}

#[tokio::test]
async fn a_user_never_sees_or_changes_another_users_personal_grants() {
    let bed = TestBed::new();
    let g = bed
        .engine
        .create_personal_grant(bed.zone, "alice", new("a", "read"))
        .await
        .unwrap();
    let not_found = |r: &Result<_, Error>| {
        matches!(
            r,
            Err(Error::NotFound {
                kind: RecordKind::PersonalGrant,
                ..
            })
        )
    };
    assert!(not_found(
        &bed.engine
            .get_personal_grant(bed.zone, "mallory", &g.id)
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        &bed.engine
            .update_personal_grant(
                bed.zone,
                "mallory",
                &g.id,
                &PersonalGrantUpdate {
                    name: Some("pwned".into()),
                    description: None
                }
            )
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        &bed.engine
            .revoke_personal_grant(bed.zone, "mallory", &g.id)
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        &bed.engine
            .delete_personal_grant(bed.zone, "mallory", &g.id)
            .await
    ));
    assert!(not_found(
        &bed.engine
            .get_personal_grant("zone-2", "alice", &g.id)
            .await
            .map(|_| ())
    ));
    assert!(
        bed.engine
            .list_personal_grants(bed.zone, "mallory", None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let mine = bed
        .engine
        .get_personal_grant(bed.zone, "alice", &g.id)
        .await
        .unwrap();
    assert_eq!(
        (mine.name.as_str(), mine.status),
        ("a", GrantStatus::Active)
    );
}

#[tokio::test]
async fn listing_mine_walks_newest_first_by_cursor() {
    let bed = TestBed::new();
    let mut ids = Vec::new();
    for i in 0..7 {
        bed.clock.advance(Duration::milliseconds(i % 2));
        ids.push(
            bed.engine
                .create_personal_grant(bed.zone, "alice", new(&format!("g{i}"), "read"))
                .await
                .unwrap()
                .id,
        );
        bed.engine
            .create_personal_grant(bed.zone, "bob", new("b", "read"))
            .await
            .unwrap();
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = bed
            .engine
            .list_personal_grants(bed.zone, "alice", cursor.as_deref(), Some(3))
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|g| g.id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // A cursor is bound to its owner and its listing.
    let page = bed
        .engine
        .list_personal_grants(bed.zone, "alice", None, Some(1))
        .await
        .unwrap();
    let c = page.next_cursor.unwrap();
    assert!(matches!(
        bed.engine
            .list_personal_grants(bed.zone, "bob", Some(&c), None)
            .await,
        Err(Error::InvalidCursor { .. })
    ));
    assert!(matches!(
        bed.engine
            .list_grants(
                bed.zone,
                &tenure::ListGrants {
                    after: Some(c),
                    user_id: Some("alice".into()),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::InvalidCursor { .. })
    ));
    assert!(matches!(
        bed.engine
            .list_personal_grants(bed.zone, "alice", None, Some(0))
            .await,
        Err(Error::InvalidInput { field: "limit", .. })
    ));
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let bed = TestBed::new();
    for (req, field) in [
        (new("a", "re\u{0}ad"), "scope"),
        (new("a", "read  write"), "scope"),
        (new(" ", "read"), "name"),
        (
            NewPersonalGrant {
                expires_at: Some(epoch()),
                ..new("a", "read")
            },
            "expiresAt",
        ),
        (
            NewPersonalGrant {
                description: Some("x".repeat(5000)),
                ..new("a", "read")
            },
            "description",
        ),
    ] {
        let r = bed
            .engine
            .create_personal_grant(bed.zone, "alice", req)
            .await;
        assert!(
            matches!(r, Err(Error::InvalidInput { field: f, .. }) if f == field),
            "{field}: {r:?}"
        );
    }
    assert!(matches!(
        bed.engine
            .create_personal_grant(bed.zone, "", new("a", "read"))
            .await,
        Err(Error::InvalidInput {
            field: "user_id",
            ..
        })
    ));
    assert!(
        bed.engine
            .list_personal_grants(bed.zone, "alice", None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // An empty scope string is allowed: a grant of nothing.
    let g = bed
        .engine
        .create_personal_grant(bed.zone, "alice", new("a", ""))
        .await
        .unwrap();
    assert!(g.scopes.is_empty());
}
