//! Every read answers from an index: the plans PostgreSQL picks for the backend's
//! own statements ([`PostgresStorage::explain`]), on a few thousand grants in four
//! zones, after `ANALYZE`, with no planner setting changed.
//!
//! A listing must be an ordered index scan: no sequential scan, no bitmap scan and
//! no sort anywhere in the plan (a sort would read every match to return a page), and
//! every scan of `grants` an index scan whose condition names the zone, on the
//! `(created_at, id)` index or on one of the filtered columns' indexes. That is
//! checked for every query shape: each combination of the user, resource, client and
//! status filters (the three statuses apart), in both orders, from the start, after
//! a key and before a key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use tenure::{
    AuthorizationCode, Digest, Expect, Grant, GrantFilter, GrantQuery, GrantStatus, Keyset,
    Position, SortOrder, Storage, Timestamp, TokenKind, Write, WriteSet,
};
use tenure_postgres::{PostgresStorage, Read};
use tenure_testkit::conformance::{
    at, client, device_authorization, grant, now, personal_grant, token, transition,
};

const ZONES: [&str; 4] = ["plan-a", "plan-b", "plan-c", "plan-d"];
const PER_ZONE: usize = 1_500;
const ZONE: &str = ZONES[0];

fn fixture_grant(zone: &str, i: usize) -> Grant {
    let n = i as i64;
    let (status, expires) = match i % 10 {
        0 => (GrantStatus::Revoked, at(500_000)),
        1 => (GrantStatus::Expired, at(50_000)),
        2 => (GrantStatus::Active, at(50_000)),
        _ => (GrantStatus::Active, at(10_000_000 + n)),
    };
    Grant {
        user_id: format!("user-{}", i % 50),
        resource_id: format!("resource-{}", (i / 3) % 20),
        client_id: format!("client-{}", (i / 7) % 10),
        status,
        ..grant(zone, &format!("grant-{i:05}"), at(n * 10), expires)
    }
}

fn user_code(i: usize) -> String {
    let alphabet = tenure::device::USER_CODE_ALPHABET;
    (0..8)
        .map(|d| char::from(alphabet[(i / 20usize.pow(d)) % 20]))
        .collect()
}

/// An unredeemed authorization code of `client-1`, keyed by the digest of `code`.
fn authorization_code(zone: &str, code: &str, expires_at: Timestamp) -> AuthorizationCode {
    AuthorizationCode {
        code: Digest::of(code),
        zone_id: zone.into(),
        client_id: "client-1".into(),
        user_id: "user-1".into(),
        resource_id: "resource-1".into(),
        provider_id: "default".into(),
        organization_id: None,
        scopes: vec!["read".into()],
        redirect_uri: "https://app.example/cb".into(),
        code_challenge: None,
        created_at: at(0),
        expires_at,
        grant_id: None,
    }
}

async fn commit_all(store: &PostgresStorage, writes: Vec<Write>) {
    for chunk in writes.chunks(500) {
        store
            .apply(WriteSet {
                writes: chunk.to_vec(),
            })
            .await
            .expect("seeding");
    }
}

/// Grants in four zones; tokens, history, personal grants, device authorizations,
/// authorization codes and clients in the first.
async fn seed(store: &PostgresStorage) {
    let mut writes = Vec::new();
    for zone in ZONES {
        for i in 0..PER_ZONE {
            writes.push(Write::PutGrant {
                grant: fixture_grant(zone, i),
                expect: Expect::Absent,
            });
        }
    }
    for i in 0..PER_ZONE {
        let g = fixture_grant(ZONE, i);
        for (secret, kind) in [
            ("access", TokenKind::Access),
            ("refresh", TokenKind::Refresh),
        ] {
            writes.push(Write::PutToken {
                token: token(&g, &format!("{secret}-{i}"), kind),
                expect: Expect::Absent,
            });
        }
        writes.push(Write::AppendTransition(transition(
            &g,
            None,
            GrantStatus::Active,
            tenure::TransitionReason::Created,
            g.created_at,
        )));
    }
    for i in 0..1_000 {
        writes.push(Write::PutPersonalGrant {
            grant: personal_grant(
                ZONE,
                &format!("personal-{i:04}"),
                &format!("user-{}", i % 50),
                at(i as i64 * 10),
            ),
            expect: Expect::Absent,
        });
    }
    for i in 0..1_000 {
        writes.push(Write::PutDeviceAuthorization {
            device: device_authorization(
                ZONE,
                &format!("device-{i}"),
                &user_code(i),
                at(i as i64 * 100),
            ),
            expect: Expect::Absent,
        });
    }
    for i in 0..1_000 {
        writes.push(Write::PutAuthorizationCode {
            code: authorization_code(ZONE, &format!("code-{i}"), at(i as i64 * 100)),
            expect: Expect::Absent,
        });
    }
    for i in 0..500 {
        writes.push(Write::PutClient {
            client: client(ZONE, &format!("client-{i:03}"), "planned"),
            expect: Expect::Absent,
        });
    }
    commit_all(store, writes).await;
    let db = store.pool().get().await.expect("a connection");
    db.batch_execute(&format!("ANALYZE \"{}\".grants, \"{0}\".tokens, \"{0}\".transitions, \"{0}\".personal_grants, \"{0}\".device_authorizations, \"{0}\".authorization_codes, \"{0}\".clients", store.schema()))
        .await
        .expect("ANALYZE");
}

/// Every node of a plan, depth first.
fn nodes(plan: &Value) -> Vec<&Value> {
    fn walk<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
        out.push(node);
        if let Some(children) = node.get("Plans").and_then(Value::as_array) {
            for child in children {
                walk(child, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&plan[0]["Plan"], &mut out);
    out
}

fn field<'a>(node: &'a Value, name: &str) -> &'a str {
    node.get(name).and_then(Value::as_str).unwrap_or("")
}

/// Asserts that the plan scans `table` only through `indexes`, with a condition on
/// the zone, and holds none of `forbidden`; returns the indexes used.
fn assert_plan(
    what: &str,
    plan: &Value,
    table: &str,
    indexes: &[&str],
    forbidden: &[&str],
) -> Vec<String> {
    let mut used = Vec::new();
    for node in nodes(plan) {
        let kind = field(node, "Node Type");
        assert!(
            !forbidden.contains(&kind),
            "{what}: the plan holds a {kind}:\n{plan:#}"
        );
        if field(node, "Relation Name") == table || kind == "Bitmap Index Scan" {
            assert!(
                [
                    "Index Scan",
                    "Index Only Scan",
                    "Bitmap Heap Scan",
                    "Bitmap Index Scan"
                ]
                .contains(&kind),
                "{what}: {table} is read by a {kind}:\n{plan:#}"
            );
            let index = field(node, "Index Name");
            if !index.is_empty() {
                assert!(
                    indexes.contains(&index),
                    "{what}: {table} is read through {index}, not one of {indexes:?}:\n{plan:#}"
                );
                assert!(
                    field(node, "Index Cond").contains("zone_id"),
                    "{what}: the index condition does not name the zone:\n{plan:#}"
                );
                used.push(index.to_owned());
            }
        }
    }
    assert!(
        !used.is_empty(),
        "{what}: no index of {table} is used:\n{plan:#}"
    );
    used
}

const NO_SCAN_OR_SORT: &[&str] = &[
    "Seq Scan",
    "Sort",
    "Incremental Sort",
    "Bitmap Heap Scan",
    "Bitmap Index Scan",
];

async fn explain(store: &PostgresStorage, read: Read<'_>) -> Value {
    store
        .explain(&read)
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN of {read:?}: {e:?}"))
}

/// Each filter combination of a listing: user, resource, client (present or not)
/// and status (none or one of three).
fn filters() -> Vec<GrantFilter> {
    let mut out = Vec::new();
    for mask in 0..8 {
        for status in [
            None,
            Some(GrantStatus::Active),
            Some(GrantStatus::Expired),
            Some(GrantStatus::Revoked),
        ] {
            out.push(GrantFilter {
                user_id: (mask & 1 != 0).then(|| "user-7".to_owned()),
                resource_id: (mask & 2 != 0).then(|| "resource-3".to_owned()),
                client_id: (mask & 4 != 0).then(|| "client-5".to_owned()),
                status,
            });
        }
    }
    out
}

#[test]
fn every_listing_shape_is_an_ordered_index_scan() {
    support::run(
        1,
        support::with_store(|store| async move {
            seed(&store).await;
            let middle = Keyset::of(&fixture_grant(ZONE, PER_ZONE / 2));
            let mut shapes = 0;
            for filter in filters() {
                let mut allowed = vec!["grants_by_created"];
                if filter.user_id.is_some() {
                    allowed.push("grants_by_user");
                }
                if filter.resource_id.is_some() {
                    allowed.push("grants_by_resource");
                }
                if filter.client_id.is_some() {
                    allowed.push("grants_by_client");
                }
                if filter.status.is_some() {
                    allowed.push("grants_by_status");
                }
                for order in [SortOrder::Ascending, SortOrder::Descending] {
                    for position in [
                        Position::First,
                        Position::After(middle.clone()),
                        Position::Before(middle.clone()),
                    ] {
                        let query = GrantQuery {
                            zone_id: ZONE.into(),
                            filter: filter.clone(),
                            order,
                            position,
                            limit: 20,
                            now: now(),
                        };
                        let plan = explain(&store, Read::Grants(&query)).await;
                        assert_plan(
                            &format!("{query:?}"),
                            &plan,
                            "grants",
                            &allowed,
                            NO_SCAN_OR_SORT,
                        );
                        shapes += 1;
                    }
                }
            }
            assert_eq!(shapes, 32 * 2 * 3);
        }),
    );
}

#[test]
fn sweeps_lookups_and_other_listings_use_their_indexes() {
    support::run(
        1,
        support::with_store(|store| async move {
            seed(&store).await;
            let s = &store;
            let digest = Digest::of("refresh-42");
            let device_code = Digest::of("device-42");
            let code = user_code(42);
            let authorization = Digest::of("code-42");
            let after = Keyset {
                created_at: at(5_000),
                id: "personal-0500".into(),
            };
            // The zone listing steps from zone to zone through both primary keys;
            // only its few output rows are sorted.
            for table in ["clients", "grants"] {
                let plan = explain(
                    s,
                    Read::Zones {
                        after: Some("a"),
                        limit: 10,
                    },
                )
                .await;
                let pkey = format!("{table}_pkey");
                assert_plan("zones", &plan, table, &[pkey.as_str()], &["Seq Scan"]);
            }
            let cases: Vec<(Read<'_>, &str, &[&str], &[&str])> = vec![
                (
                    Read::ExpiredGrants {
                        zone_id: ZONE,
                        now: now(),
                        limit: 100,
                    },
                    "grants",
                    &["grants_by_expiry"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::ExpiredTokens {
                        zone_id: ZONE,
                        now: now(),
                        limit: 100,
                    },
                    "tokens",
                    &["tokens_by_expiry"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::Token {
                        zone_id: ZONE,
                        digest: &digest,
                    },
                    "tokens",
                    &["tokens_pkey"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::TokenAndGrant {
                        zone_id: ZONE,
                        digest: &digest,
                    },
                    "tokens",
                    &["tokens_pkey", "grants_pkey"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::GrantTokens {
                        zone_id: ZONE,
                        grant_id: "grant-00042",
                    },
                    "tokens",
                    &["tokens_by_grant"],
                    &["Seq Scan"],
                ),
                (
                    Read::History {
                        zone_id: ZONE,
                        grant_id: "grant-00042",
                    },
                    "transitions",
                    &["transitions_by_grant"],
                    &["Seq Scan"],
                ),
                (
                    Read::Grant {
                        zone_id: ZONE,
                        id: "grant-00042",
                    },
                    "grants",
                    &["grants_pkey"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::Client {
                        zone_id: ZONE,
                        id: "client-042",
                    },
                    "clients",
                    &["clients_pkey"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::Clients {
                        zone_id: ZONE,
                        after: Some("client-100"),
                        limit: 20,
                    },
                    "clients",
                    &["clients_pkey"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::ZonePersonalGrants {
                        zone_id: ZONE,
                        after: Some("personal-0100"),
                        limit: 20,
                    },
                    "personal_grants",
                    &["personal_grants_pkey"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::PersonalGrant {
                        zone_id: ZONE,
                        id: "personal-0042",
                    },
                    "personal_grants",
                    &["personal_grants_pkey"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::PersonalGrants {
                        zone_id: ZONE,
                        user_id: "user-7",
                        after: None,
                        limit: 20,
                    },
                    "personal_grants",
                    &["personal_grants_by_user"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::PersonalGrants {
                        zone_id: ZONE,
                        user_id: "user-7",
                        after: Some(&after),
                        limit: 20,
                    },
                    "personal_grants",
                    &["personal_grants_by_user"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::DeviceAuthorization {
                        zone_id: ZONE,
                        device_code: &device_code,
                    },
                    "device_authorizations",
                    &["device_authorizations_pkey"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::DeviceByUserCode {
                        zone_id: ZONE,
                        user_code: &code,
                    },
                    "device_authorizations",
                    &["device_authorizations_user_code_unique"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::DeviceAuthorizations {
                        zone_id: ZONE,
                        after: None,
                        limit: 20,
                    },
                    "device_authorizations",
                    &["device_authorizations_pkey"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::DeviceAuthorizations {
                        zone_id: ZONE,
                        after: Some(&device_code),
                        limit: 20,
                    },
                    "device_authorizations",
                    &["device_authorizations_pkey"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::ExpiredDeviceAuthorizations {
                        zone_id: ZONE,
                        now: now(),
                        limit: 100,
                    },
                    "device_authorizations",
                    &["device_authorizations_by_expiry"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::AuthorizationCode {
                        zone_id: ZONE,
                        code: &authorization,
                    },
                    "authorization_codes",
                    &["authorization_codes_pkey"],
                    NO_SCAN_OR_SORT,
                ),
                (
                    Read::ExpiredAuthorizationCodes {
                        zone_id: ZONE,
                        now: now(),
                        limit: 100,
                    },
                    "authorization_codes",
                    &["authorization_codes_by_expiry"],
                    NO_SCAN_OR_SORT,
                ),
            ];
            for (read, table, indexes, forbidden) in cases {
                let plan = explain(s, read).await;
                assert_plan(&format!("{read:?}"), &plan, table, indexes, forbidden);
            }
            // Counts read every match, but through an index, never the whole table.
            for filter in filters() {
                let read = Read::CountGrants {
                    zone_id: ZONE,
                    filter: &filter,
                    now: now(),
                };
                let plan = explain(s, read).await;
                let every_index = [
                    "grants_by_created",
                    "grants_by_user",
                    "grants_by_resource",
                    "grants_by_client",
                    "grants_by_status",
                    "grants_by_expiry",
                    "grants_pkey",
                ];
                assert_plan(
                    &format!("{read:?}"),
                    &plan,
                    "grants",
                    &every_index,
                    &["Seq Scan"],
                );
            }
        }),
    );
}
