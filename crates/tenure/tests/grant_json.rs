//! The Grant's JSON is the seed Grant plus `client_id`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chrono::Duration;
use proptest::prelude::*;
use serde_json::{Value, json};
use tenure::{Grant, GrantStatus, RefreshChain, RefreshRequest};
use tenure_memory::testing::TestBed;

/// The keys of the seed's Grant (000, 001) that tenure keeps, plus `client_id`. The
/// seed's deprecated expansions (`provider`, `resource`, `user`) describe records
/// tenure does not keep.
const SEED_KEYS: [&str; 14] = [
    "id",
    "created_at",
    "expires_at",
    "organization_id",
    "provider_id",
    "refresh_token_set",
    "resource_id",
    "scopes",
    "status",
    "updated_at",
    "user_id",
    "zone_id",
    "active",
    "refreshed_at",
];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn grant_json_has_exactly_the_seed_keys_plus_client_id() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    bed.clock.advance(Duration::milliseconds(117));
    let refreshed = bed
        .engine
        .refresh(
            bed.zone,
            RefreshRequest::new(client.id.clone(), issued.refresh_token.as_ref().unwrap()),
        )
        .await
        .unwrap();
    let v = serde_json::to_value(&refreshed.grant).unwrap();
    let mut expected: BTreeSet<String> = SEED_KEYS.iter().map(|s| s.to_string()).collect();
    expected.insert("client_id".into());
    assert_eq!(keys(&v), expected);

    // Before the first refresh, `refreshed_at` is omitted.
    let v = serde_json::to_value(&issued.grant).unwrap();
    expected.remove("refreshed_at");
    assert_eq!(keys(&v), expected);
}

#[tokio::test]
async fn grant_json_uses_seed_formats() {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    bed.clock.advance(Duration::milliseconds(117));
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let v = serde_json::to_value(&issued.grant).unwrap();
    assert_eq!(v["created_at"], json!("2030-01-01T00:00:00.117Z"));
    assert_eq!(v["status"], json!("active"));
    assert_eq!(v["active"], json!(true));
    assert_eq!(v["refresh_token_set"], json!(true));
    assert_eq!(v["scopes"], json!(["read"]));
    // Whole seconds still carry three digits.
    bed.clock.advance(Duration::milliseconds(883));
    let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
    let v = serde_json::to_value(&issued.grant).unwrap();
    assert_eq!(v["created_at"], json!("2030-01-01T00:00:01.000Z"));
}

#[test]
fn the_seed_example_parses_and_active_is_ignored_on_input() {
    // The seed's own example (000), with client_id added and the expansions kept:
    // unknown expansion fields are ignored, `active` is derived, not read.
    let seed = json!({
        "id": "id",
        "created_at": "2019-12-27T18:11:19.117Z",
        "expires_at": "2019-12-27T18:11:19.117Z",
        "organization_id": "organization_id",
        "provider_id": "provider_id",
        "refresh_token_set": true,
        "resource_id": "resource_id",
        "scopes": ["string"],
        "status": "revoked",
        "updated_at": "2019-12-27T18:11:19.117Z",
        "user_id": "user_id",
        "zone_id": "zone_id",
        "active": true,
        "refreshed_at": "2019-12-27T18:11:19.117Z",
        "client_id": "client_id",
        "provider": {"id": "id"},
    });
    let grant: Grant = serde_json::from_value(seed.clone()).unwrap();
    assert_eq!(grant.status, GrantStatus::Revoked);
    let out = serde_json::to_value(&grant).unwrap();
    assert_eq!(out["active"], json!(false));
    for key in SEED_KEYS.iter().filter(|k| **k != "active") {
        assert_eq!(out[key], seed[key], "{key}");
    }
}

#[test]
fn times_are_normalized_to_utc_milliseconds() {
    let v = json!({
        "id": "g", "zone_id": "z", "organization_id": "o", "user_id": "u",
        "resource_id": "r", "provider_id": "p", "client_id": "c", "scopes": [],
        "status": "active",
        "created_at": "2030-01-01T02:00:00.123456+02:00",
        "updated_at": "2030-01-01T00:00:00Z",
        "expires_at": "2030-01-02T00:00:00.5Z",
        "refresh_token_set": false
    });
    let grant: Grant = serde_json::from_value(v).unwrap();
    let out = serde_json::to_value(&grant).unwrap();
    assert_eq!(out["created_at"], json!("2030-01-01T00:00:00.123Z"));
    assert_eq!(out["updated_at"], json!("2030-01-01T00:00:00.000Z"));
    assert_eq!(out["expires_at"], json!("2030-01-02T00:00:00.500Z"));
    assert!(out.get("refreshed_at").is_none());
}

// Found by the grant_json fuzz target: past the year 2262, truncation to
// milliseconds fell back to the untruncated time, so a grant did not round-trip.
#[test]
fn far_future_times_keep_millisecond_precision() {
    let v = json!({
        "id": "g", "zone_id": "z", "organization_id": "o", "user_id": "u",
        "resource_id": "r", "provider_id": "p", "client_id": "c", "scopes": [],
        "status": "revoked",
        "created_at": "4060-01-01T02:00:00.123456+02:00",
        "updated_at": "9999-12-31T23:59:59.999999999Z",
        "expires_at": "0001-01-01T00:00:00.0005Z",
        "refresh_token_set": false
    });
    let grant: Grant = serde_json::from_value(v).unwrap();
    let out = serde_json::to_value(&grant).unwrap();
    assert_eq!(out["created_at"], json!("4060-01-01T00:00:00.123Z"));
    assert_eq!(out["updated_at"], json!("9999-12-31T23:59:59.999Z"));
    assert_eq!(out["expires_at"], json!("0001-01-01T00:00:00.000Z"));
    let back: Grant = serde_json::from_value(out).unwrap();
    assert_eq!(back, grant);
}

#[test]
fn malformed_grant_json_is_an_error_not_a_panic() {
    for bad in [
        json!({"id": "g"}),
        json!({"status": "paused"}),
        json!([]),
        json!({"id": "g", "zone_id": "z", "organization_id": "o", "user_id": "u",
               "resource_id": "r", "provider_id": "p", "client_id": "c", "scopes": [],
               "status": "active", "created_at": "yesterday", "updated_at": "x",
               "expires_at": "x", "refresh_token_set": false}),
    ] {
        assert!(serde_json::from_value::<Grant>(bad).is_err());
    }
}

fn arb_time() -> impl Strategy<Value = tenure::Timestamp> {
    (-62_135_596_800_000i64..253_402_300_800_000)
        .prop_map(|ms| chrono::DateTime::from_timestamp_millis(ms).unwrap())
}

fn arb_grant() -> impl Strategy<Value = Grant> {
    let text = "[a-zA-Z0-9:_-]{1,12}";
    (
        (text, text, text, text, text, text, text),
        prop::collection::vec("[a-z:]{1,8}", 0..4),
        prop_oneof![
            Just(GrantStatus::Active),
            Just(GrantStatus::Expired),
            Just(GrantStatus::Revoked)
        ],
        (
            arb_time(),
            arb_time(),
            arb_time(),
            prop::option::of(arb_time()),
        ),
        any::<bool>(),
    )
        .prop_map(
            |(
                (id, zone_id, organization_id, user_id, resource_id, provider_id, client_id),
                scopes,
                status,
                (created_at, updated_at, expires_at, refreshed_at),
                refresh_token_set,
            )| Grant {
                id,
                zone_id,
                organization_id,
                user_id,
                resource_id,
                provider_id,
                client_id,
                scopes,
                status,
                created_at,
                updated_at,
                expires_at,
                refreshed_at,
                refresh_token_set,
                // Not part of the seed's shape: it reads back as the default.
                refresh: RefreshChain::default(),
            },
        )
}

proptest! {
    #[test]
    fn grant_json_round_trips(grant in arb_grant()) {
        let text = serde_json::to_string(&grant).unwrap();
        let back: Grant = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &grant);
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn the_refresh_chain_stays_out_of_the_seed_json(
        grant in arb_grant(),
        generation in any::<u64>(),
        family in any::<[u8; 32]>(),
    ) {
        let text = serde_json::to_string(&grant).unwrap();
        let family = tenure::SecretBytes::from_bytes(family).digest();
        let rotated = Grant {
            refresh: RefreshChain {
                generation,
                family: Some(family),
                current: Some(family),
                previous: None,
            },
            ..grant
        };
        prop_assert_eq!(serde_json::to_string(&rotated).unwrap(), text);
    }
}
