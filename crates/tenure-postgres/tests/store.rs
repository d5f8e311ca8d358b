//! What is particular to the PostgreSQL backend: creating and migrating its schema
//! (version-1 and version-2 schemas and their records included), refusing a newer
//! one, typed errors, records stored whole, guards that hold their record until the
//! set ends, and write sets of two pools meeting on one unique user code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use tenure::{
    AccessType, Actor, AuthorizationCode, Client, ClientRegistration, ClientType,
    DeviceAuthorization, DeviceState, Digest, Engine, Error, Expect, Grant, GrantStatus, GrantType,
    ManualClock, PersonalGrant, RecordKey, RefreshChain, RefreshRequest, RetiringSecret,
    ScopePolicy, Secret, SecretKind, Storage, Timestamp, Token, TokenKind, Transition,
    TransitionReason, Versioned, Write, WriteSet,
};
use tenure_postgres::deadpool_postgres::{Manager, Pool};
use tenure_postgres::{PostgresError, PostgresOptions, PostgresStorage, SCHEMA_VERSION};
use tenure_testkit::conformance::{
    at, client, device_authorization, grant, personal_grant, token, transition,
};
use tokio::sync::Barrier;

const ZONE: &str = "zone-store";

async fn schema_version(schema: &str) -> Vec<i32> {
    support::connect()
        .await
        .query(
            &format!("SELECT version FROM \"{schema}\".schema_version"),
            &[],
        )
        .await
        .expect("reading schema_version")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn v1<T>(record: T) -> Option<Versioned<T>> {
    Some(Versioned { record, version: 1 })
}

/// An unredeemed authorization code of `client-1`, without a challenge, keyed by
/// the digest of `code`.
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

async fn put(store: &PostgresStorage, write: Write) {
    store
        .apply(WriteSet {
            writes: vec![write],
        })
        .await
        .expect("a valid write");
}

#[test]
fn processes_starting_together_create_the_schema_once() {
    support::run(
        4,
        support::with_schema(|schema| async move {
            let barrier = Arc::new(Barrier::new(6));
            let openers: Vec<_> = (0..6)
                .map(|_| {
                    let (schema, barrier) = (schema.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        PostgresStorage::connect_with(
                            &support::database_url(),
                            support::options(&schema),
                        )
                        .await
                    })
                })
                .collect();
            let mut stores = Vec::new();
            for opener in openers {
                stores.push(
                    opener
                        .await
                        .expect("an opener panicked")
                        .expect("every process opens the store"),
                );
            }
            assert_eq!(schema_version(&schema).await, [SCHEMA_VERSION]);
            // They all see one store.
            let g = grant(ZONE, "grant-1", at(0), at(1_000));
            put(
                &stores[0],
                Write::PutGrant {
                    grant: g.clone(),
                    expect: Expect::Absent,
                },
            )
            .await;
            for store in &stores {
                assert_eq!(
                    store.get_grant(ZONE, "grant-1").await.unwrap(),
                    Some(Versioned {
                        record: g.clone(),
                        version: 1
                    })
                );
            }
        }),
    );
}

#[test]
fn reopening_keeps_the_records_and_needs_no_write() {
    support::run(
        1,
        support::with_schema(|schema| async move {
            let g = grant(ZONE, "grant-1", at(0), at(1_000));
            {
                let store = support::open(&schema).await;
                put(
                    &store,
                    Write::PutGrant {
                        grant: g.clone(),
                        expect: Expect::Absent,
                    },
                )
                .await;
            }
            // Every transaction of this pool is read-only: opening at the current
            // version must not try to create or change anything.
            let mut config: tokio_postgres::Config = support::database_url().parse().unwrap();
            config.options("-c default_transaction_read_only=on");
            let pool = Pool::builder(Manager::new(config, tokio_postgres::NoTls))
                .max_size(2)
                .build()
                .unwrap();
            let store = PostgresStorage::open(pool, PostgresOptions::new().schema(&schema))
                .await
                .expect("opening an existing schema only reads");
            assert_eq!(
                store.get_grant(ZONE, "grant-1").await.unwrap(),
                Some(Versioned {
                    record: g,
                    version: 1
                })
            );
            assert_eq!(schema_version(&schema).await, [SCHEMA_VERSION]);
        }),
    );
}

#[test]
fn a_schema_of_a_newer_version_is_refused_untouched() {
    support::run(
        1,
        support::with_schema(|schema| async move {
            drop(support::open(&schema).await);
            let newer = SCHEMA_VERSION + 1;
            support::connect()
                .await
                .execute(
                    &format!("UPDATE \"{schema}\".schema_version SET version = $1"),
                    &[&newer],
                )
                .await
                .unwrap();
            let refused =
                PostgresStorage::connect_with(&support::database_url(), support::options(&schema))
                    .await;
            match refused {
                Err(PostgresError::SchemaTooNew {
                    schema: named,
                    found,
                    supported,
                }) => {
                    assert_eq!(
                        (named.as_str(), found, supported),
                        (schema.as_str(), newer, SCHEMA_VERSION)
                    );
                }
                other => panic!("expected SchemaTooNew, got {other:?}"),
            }
            assert_eq!(schema_version(&schema).await, [newer]);
        }),
    );
}

#[test]
fn a_failed_creation_leaves_nothing_behind() {
    support::run(
        1,
        support::with_schema(|schema| async move {
            // Someone else's table where the backend's would go.
            support::connect()
                .await
                .batch_execute(&format!(
                    "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".grants (x int);"
                ))
                .await
                .unwrap();
            let refused =
                PostgresStorage::connect_with(&support::database_url(), support::options(&schema))
                    .await;
            assert!(
                matches!(refused, Err(PostgresError::Database { .. })),
                "{refused:?}"
            );
            let tables: Vec<String> = support::connect()
                .await
                .query(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = $1 ORDER BY 1",
                    &[&schema],
                )
                .await
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect();
            assert_eq!(tables, ["grants"], "the creation was not rolled back whole");
        }),
    );
}

#[test]
fn bad_names_and_unreachable_servers_are_typed_errors() {
    support::run(1, async {
        for bad in [
            "Tenure",
            "pg_tenure",
            "a-b",
            "x\"; DROP SCHEMA public; --",
            "",
        ] {
            let result = PostgresStorage::connect_with(
                "postgres://nobody@127.0.0.1:1/none",
                PostgresOptions::new().schema(bad),
            )
            .await;
            assert!(
                matches!(result, Err(PostgresError::InvalidSchemaName { ref name }) if name == bad),
                "{bad:?}: {result:?}"
            );
        }
        let result = PostgresStorage::connect("not a connection string").await;
        assert!(
            matches!(result, Err(PostgresError::InvalidUrl { .. })),
            "{result:?}"
        );
        // Nothing listens on port 1 of the loopback address.
        let result = PostgresStorage::connect("postgres://nobody@127.0.0.1:1/none").await;
        assert!(
            matches!(result, Err(PostgresError::Connection { .. })),
            "{result:?}"
        );
    });
}

#[test]
fn an_unreadable_record_is_a_backend_error_naming_postgres() {
    support::run(
        1,
        support::with_store(|store| async move {
            put(
                &store,
                Write::PutGrant {
                    grant: grant(ZONE, "grant-1", at(0), at(1_000)),
                    expect: Expect::Absent,
                },
            )
            .await;
            store
                .pool()
                .get()
                .await
                .unwrap()
                .batch_execute(&format!(
                    "UPDATE \"{}\".grants SET record = '{{\"id\": 7}}'",
                    store.schema()
                ))
                .await
                .unwrap();
            match store.get_grant(ZONE, "grant-1").await {
                Err(Error::Backend { backend, source }) => {
                    assert_eq!(backend, "postgres");
                    assert!(
                        matches!(
                            source.downcast_ref::<PostgresError>(),
                            Some(PostgresError::Corrupt { kind: "grant", .. })
                        ),
                        "{source:?}"
                    );
                }
                other => panic!("expected a backend error, got {other:?}"),
            }
        }),
    );
}

/// Records with every optional field set, and without: stored whole and read back
/// the same.
#[test]
fn records_are_stored_whole() {
    support::run(
        1,
        support::with_store(|store| async move {
            let full_client = Client {
                description: Some("with everything".into()),
                client_type: ClientType::Confidential,
                owner_account_id: Some("account-1".into()),
                allowed_scopes: vec!["read".into(), "write".into()],
                allowed_grants: vec![
                    GrantType::AuthorizationCode,
                    GrantType::RefreshToken,
                    GrantType::ClientCredentials,
                    GrantType::DeviceCode,
                ],
                scope_policy: ScopePolicy::Inherit,
                access_type: AccessType::Online,
                redirect_uris: vec!["https://app.example/cb".into()],
                enabled: false,
                secret_digest: Some(Digest::of("client secret")),
                previous_secret: Some(RetiringSecret {
                    digest: Digest::of("old client secret"),
                    valid_until: at(6),
                }),
                refresh_stopped_at: Some(at(3)),
                last_used_at: Some(at(4)),
                ..client(ZONE, "client-full", "Full ✓ \"quoted\"")
            };
            let bare_client = client(ZONE, "client-bare", "Bare");
            let refreshed = Grant {
                refreshed_at: Some(at(5)),
                status: GrantStatus::Revoked,
                refresh_token_set: false,
                scopes: vec![],
                refresh: RefreshChain {
                    generation: u64::MAX,
                    family: Some(Digest::of("family")),
                    current: Some(Digest::of("current")),
                    previous: Some(Digest::of("previous")),
                },
                ..grant(ZONE, "grant-refreshed", at(1), at(9_000))
            };
            let fresh = grant(ZONE, "grant-fresh", at(2), at(9_000));
            let spent = Token {
                generation: 0,
                revoked_at: Some(at(7)),
                ..token(&refreshed, "spent", TokenKind::Refresh)
            };
            let live = token(&fresh, "live", TokenKind::Access);
            let personal_forever = PersonalGrant {
                id: "personal-1".into(),
                zone_id: ZONE.into(),
                user_id: "user-1".into(),
                name: "Personal grant".into(),
                description: None,
                scopes: vec!["read".into()],
                challenge: "auth-grant:abcdef".into(),
                status: GrantStatus::Active,
                created_at: at(1),
                updated_at: at(1),
                expires_at: None,
            };
            let personal_expiring = PersonalGrant {
                id: "personal-2".into(),
                description: Some("expiring".into()),
                expires_at: Some(at(10)),
                ..personal_forever.clone()
            };
            let claimed = DeviceAuthorization {
                state: DeviceState::Approved,
                user_id: Some("user-1".into()),
                grant_id: Some("grant-fresh".into()),
                last_polled_at: Some(at(8)),
                ..device_authorization(ZONE, "device-1", "BCDFGHJK", at(600_000))
            };
            let pending = device_authorization(ZONE, "device-2", "CDFGHJKL", at(600_000));
            let redeemed = AuthorizationCode {
                organization_id: Some("org-2".into()),
                scopes: vec!["read".into(), "write".into()],
                code_challenge: Some(Digest::of("verifier")),
                grant_id: Some("grant-fresh".into()),
                ..authorization_code(ZONE, "code-1", at(60_000))
            };
            let unredeemed = authorization_code(ZONE, "code-2", at(60_001));
            let history: Vec<Transition> = [
                (
                    None,
                    GrantStatus::Active,
                    TransitionReason::Created,
                    Actor::User {
                        id: "user-1".into(),
                    },
                ),
                (
                    Some(GrantStatus::Active),
                    GrantStatus::Active,
                    TransitionReason::Refreshed,
                    Actor::Client {
                        id: "client-1".into(),
                    },
                ),
                (
                    Some(GrantStatus::Active),
                    GrantStatus::Revoked,
                    TransitionReason::ReuseDetected,
                    Actor::System,
                ),
                (
                    Some(GrantStatus::Revoked),
                    GrantStatus::Revoked,
                    TransitionReason::Revoked,
                    Actor::Admin,
                ),
                (
                    Some(GrantStatus::Revoked),
                    GrantStatus::Revoked,
                    TransitionReason::CodeReused,
                    Actor::System,
                ),
                (
                    Some(GrantStatus::Revoked),
                    GrantStatus::Revoked,
                    TransitionReason::ClientDisabled,
                    Actor::Admin,
                ),
            ]
            .into_iter()
            .enumerate()
            .map(|(i, (from, to, reason, actor))| Transition {
                zone_id: ZONE.into(),
                grant_id: "grant-refreshed".into(),
                from,
                to,
                reason,
                actor,
                at: at(i as i64),
            })
            .collect();

            let mut writes = vec![
                Write::PutClient {
                    client: full_client.clone(),
                    expect: Expect::Absent,
                },
                Write::PutClient {
                    client: bare_client.clone(),
                    expect: Expect::Absent,
                },
                Write::PutGrant {
                    grant: refreshed.clone(),
                    expect: Expect::Absent,
                },
                Write::PutGrant {
                    grant: fresh.clone(),
                    expect: Expect::Absent,
                },
                Write::PutToken {
                    token: spent.clone(),
                    expect: Expect::Absent,
                },
                Write::PutToken {
                    token: live.clone(),
                    expect: Expect::Absent,
                },
                Write::PutPersonalGrant {
                    grant: personal_forever.clone(),
                    expect: Expect::Absent,
                },
                Write::PutPersonalGrant {
                    grant: personal_expiring.clone(),
                    expect: Expect::Absent,
                },
                Write::PutDeviceAuthorization {
                    device: claimed.clone(),
                    expect: Expect::Absent,
                },
                Write::PutDeviceAuthorization {
                    device: pending.clone(),
                    expect: Expect::Absent,
                },
                Write::PutAuthorizationCode {
                    code: redeemed.clone(),
                    expect: Expect::Absent,
                },
                Write::PutAuthorizationCode {
                    code: unredeemed.clone(),
                    expect: Expect::Absent,
                },
            ];
            writes.extend(history.iter().cloned().map(Write::AppendTransition));
            store.apply(WriteSet { writes }).await.unwrap();

            assert_eq!(
                store.get_client(ZONE, "client-full").await.unwrap(),
                v1(full_client)
            );
            assert_eq!(
                store.get_client(ZONE, "client-bare").await.unwrap(),
                v1(bare_client)
            );
            assert_eq!(
                store.get_grant(ZONE, "grant-refreshed").await.unwrap(),
                v1(refreshed)
            );
            assert_eq!(
                store.get_grant(ZONE, "grant-fresh").await.unwrap(),
                v1(fresh)
            );
            assert_eq!(
                store.get_token(ZONE, &Digest::of("spent")).await.unwrap(),
                v1(spent)
            );
            assert_eq!(
                store.get_token(ZONE, &Digest::of("live")).await.unwrap(),
                v1(live)
            );
            assert_eq!(
                store.get_personal_grant(ZONE, "personal-1").await.unwrap(),
                v1(personal_forever)
            );
            assert_eq!(
                store.get_personal_grant(ZONE, "personal-2").await.unwrap(),
                v1(personal_expiring)
            );
            assert_eq!(
                store
                    .get_device_authorization(ZONE, &Digest::of("device-1"))
                    .await
                    .unwrap(),
                v1(claimed)
            );
            assert_eq!(
                store
                    .find_device_authorization(ZONE, "CDFGHJKL")
                    .await
                    .unwrap(),
                v1(pending)
            );
            assert_eq!(
                store
                    .get_authorization_code(ZONE, &Digest::of("code-1"))
                    .await
                    .unwrap(),
                v1(redeemed.clone())
            );
            let expired: Vec<(AuthorizationCode, u64)> = store
                .expired_authorization_codes(ZONE, at(60_001), 10)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.record, c.version))
                .collect();
            assert_eq!(expired, [(redeemed, 1), (unredeemed, 1)]);
            assert_eq!(
                store.grant_history(ZONE, "grant-refreshed").await.unwrap(),
                history
            );
        }),
    );
}

/// Two processes create device authorizations with one user code at once: exactly
/// one set commits, the other is a conflict, never both.
#[test]
fn one_user_code_raced_by_two_pools() {
    const ROUNDS: usize = 24;
    support::run(
        4,
        support::with_schema(|schema| async move {
            let stores = [support::open(&schema).await, support::open(&schema).await];
            for round in 0..ROUNDS {
                let code = tenure::device::generate_user_code().unwrap();
                let barrier = Arc::new(Barrier::new(2));
                let racers: Vec<_> = stores
                    .iter()
                    .enumerate()
                    .map(|(n, store)| {
                        let device = device_authorization(
                            ZONE,
                            &format!("device-{round}-{n}"),
                            &code,
                            at(600_000),
                        );
                        let (store, barrier) = (store.clone(), barrier.clone());
                        tokio::spawn(async move {
                            barrier.wait().await;
                            store
                                .apply(WriteSet {
                                    writes: vec![Write::PutDeviceAuthorization {
                                        device,
                                        expect: Expect::Absent,
                                    }],
                                })
                                .await
                        })
                    })
                    .collect();
                let mut committed = 0;
                for racer in racers {
                    match racer.await.expect("a racer panicked") {
                        Ok(()) => committed += 1,
                        Err(Error::Conflict) => {}
                        Err(e) => panic!("round {round}: {e:?}"),
                    }
                }
                assert_eq!(
                    committed, 1,
                    "round {round}: {committed} sets took one user code"
                );
                assert!(
                    stores[1]
                        .find_device_authorization(ZONE, &code)
                        .await
                        .unwrap()
                        .is_some(),
                    "round {round}: the winner is not found by its code"
                );
            }
        }),
    );
}

/// Two schemas of one database are two stores.
#[test]
fn schemas_are_separate_stores() {
    support::run(
        1,
        support::with_schema(|first| async move {
            support::with_schema(|second| async move {
                let a = support::open(&first).await;
                let b = support::open(&second).await;
                let g = grant(ZONE, "grant-1", at(0), at(1_000));
                put(
                    &a,
                    Write::PutGrant {
                        grant: g.clone(),
                        expect: Expect::Absent,
                    },
                )
                .await;
                assert_eq!(b.get_grant(ZONE, "grant-1").await.unwrap(), None);
                put(
                    &b,
                    Write::PutGrant {
                        grant: g,
                        expect: Expect::Absent,
                    },
                )
                .await;
                assert_eq!(
                    a.get_grant(ZONE, "grant-1")
                        .await
                        .unwrap()
                        .map(|g| g.version),
                    Some(1)
                );
            })
            .await;
        }),
    );
}

/// A set that changes a device authorization's user code to one another holds is a
/// conflict, and nothing of the set stays, though the database refused the update
/// itself in the middle of the set's pipeline.
#[test]
fn taking_a_held_user_code_by_update_changes_nothing() {
    support::run(
        1,
        support::with_store(|store| async move {
            let d1 = device_authorization(ZONE, "device-1", "BCDFGHJK", at(600_000));
            let d2 = device_authorization(ZONE, "device-2", "CDFGHJKL", at(600_000));
            for device in [&d1, &d2] {
                put(
                    &store,
                    Write::PutDeviceAuthorization {
                        device: device.clone(),
                        expect: Expect::Absent,
                    },
                )
                .await;
            }
            let set = WriteSet {
                writes: vec![
                    Write::PutClient {
                        client: client(ZONE, "client-new", "new"),
                        expect: Expect::Absent,
                    },
                    Write::PutDeviceAuthorization {
                        device: DeviceAuthorization {
                            user_code: d1.user_code.clone(),
                            ..d2.clone()
                        },
                        expect: Expect::Version(1),
                    },
                    Write::AppendTransition(Transition {
                        zone_id: ZONE.into(),
                        grant_id: "grant-1".into(),
                        from: None,
                        to: GrantStatus::Active,
                        reason: TransitionReason::Created,
                        actor: Actor::System,
                        at: at(0),
                    }),
                ],
            };
            let result = store.apply(set).await;
            assert!(matches!(result, Err(Error::Conflict)), "{result:?}");
            assert_eq!(store.get_client(ZONE, "client-new").await.unwrap(), None);
            assert_eq!(store.grant_history(ZONE, "grant-1").await.unwrap(), []);
            assert_eq!(
                store
                    .find_device_authorization(ZONE, &d1.user_code)
                    .await
                    .unwrap()
                    .map(|d| d.record.device_code),
                Some(d1.device_code)
            );
            assert_eq!(
                store
                    .get_device_authorization(ZONE, &d2.device_code)
                    .await
                    .unwrap(),
                v1(d2)
            );
        }),
    );
}

/// A write set chosen as the victim of a deadlock is a conflict, at once and with
/// nothing of it written: the backend does not replay it, the engine's retry policy
/// reads afresh and decides again. Applied again, the same set commits.
///
/// Another session locks the second token; the set locks the first and waits for
/// the second; the session then waits for the first. The set's backend has waited
/// longest, so its deadlock check runs first and aborts it (SQLSTATE 40P01); the
/// session, whose own check is set far off, gets its lock, changes nothing and
/// commits.
#[test]
fn a_deadlocked_set_is_a_conflict_and_is_not_replayed() {
    support::run(
        2,
        support::with_store(|store| async move {
            let g = grant(ZONE, "grant-1", at(0), at(600_000));
            let t1 = token(&g, "secret-1", TokenKind::Access);
            let t2 = token(&g, "secret-2", TokenKind::Refresh);
            store
                .apply(WriteSet {
                    writes: vec![
                        Write::PutGrant {
                            grant: g.clone(),
                            expect: Expect::Absent,
                        },
                        Write::PutToken {
                            token: t1.clone(),
                            expect: Expect::Absent,
                        },
                        Write::PutToken {
                            token: t2.clone(),
                            expect: Expect::Absent,
                        },
                    ],
                })
                .await
                .unwrap();
            let lock_row = format!(
                "SELECT 1 FROM \"{}\".tokens WHERE zone_id = $1 AND digest = $2 FOR UPDATE",
                store.schema()
            );
            let mut other = support::connect().await;
            let tx = other.transaction().await.unwrap();
            tx.batch_execute("SET LOCAL deadlock_timeout = '60s'")
                .await
                .unwrap();
            let xid: i64 = tx
                .query_one("SELECT txid_current()", &[])
                .await
                .unwrap()
                .get(0);
            tx.execute(&lock_row, &[&ZONE, &t2.digest.as_bytes().as_slice()])
                .await
                .unwrap();

            let revoked = |t: &Token| Token {
                revoked_at: Some(at(1)),
                ..t.clone()
            };
            let set = WriteSet {
                writes: vec![
                    Write::PutToken {
                        token: revoked(&t1),
                        expect: Expect::Version(1),
                    },
                    Write::PutToken {
                        token: revoked(&t2),
                        expect: Expect::Version(1),
                    },
                ],
            };
            let writer = tokio::spawn({
                let store = store.clone();
                async move { store.apply(set).await }
            });
            // Wait (boundedly) until the set waits for this session's transaction.
            let watcher = support::connect().await;
            let mut waiting = false;
            for _ in 0..500 {
                let n: i64 = watcher
                    .query_one(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted \
                         AND locktype = 'transactionid' AND transactionid::text = $1",
                        &[&xid.to_string()],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if n > 0 {
                    waiting = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert!(waiting, "the set never waited for the other session's lock");
            tx.execute(&lock_row, &[&ZONE, &t1.digest.as_bytes().as_slice()])
                .await
                .expect("the set, not this session, is the deadlock's victim");
            tx.commit().await.unwrap();

            let result = writer.await.expect("the writer panicked");
            assert!(matches!(result, Err(Error::Conflict)), "{result:?}");
            for t in [&t1, &t2] {
                assert_eq!(
                    store.get_token(ZONE, &t.digest).await.unwrap(),
                    v1(t.clone()),
                    "nothing of the deadlocked set was written"
                );
            }
            store
                .apply(WriteSet {
                    writes: vec![
                        Write::PutToken {
                            token: revoked(&t1),
                            expect: Expect::Version(1),
                        },
                        Write::PutToken {
                            token: revoked(&t2),
                            expect: Expect::Version(1),
                        },
                    ],
                })
                .await
                .expect("applied again, the set commits");
            for t in [&t1, &t2] {
                assert_eq!(
                    store.get_token(ZONE, &t.digest).await.unwrap(),
                    Some(Versioned {
                        record: revoked(t),
                        version: 2
                    })
                );
            }
        }),
    );
}

/// A set guarded by a [`Write::Check`] waits for another transaction changing the
/// record it checks, and then holds or fails by what that transaction did: a
/// record expected absent that the other creates, or a version the other bumps.
/// The placeholder a check of an absent record takes is gone after the set.
#[test]
fn a_check_waits_for_a_transaction_changing_its_record() {
    support::run(
        2,
        support::with_store(|store| async move {
            let s = store.schema().to_owned();
            let stored = grant(ZONE, "grant-stored", at(0), at(600_000));
            put(
                &store,
                Write::PutGrant {
                    grant: stored.clone(),
                    expect: Expect::Absent,
                },
            )
            .await;
            let record = serde_json::to_value(grant(ZONE, "grant-new", at(0), at(600_000)))
                .expect("a grant's JSON");
            for (round, (expect_absent, commit)) in
                [(true, true), (true, false), (false, true), (false, false)]
                    .into_iter()
                    .enumerate()
            {
                let mut other = support::connect().await;
                let tx = other.transaction().await.unwrap();
                let xid: i64 = tx
                    .query_one("SELECT txid_current()", &[])
                    .await
                    .unwrap()
                    .get(0);
                let (checked, expect) = if expect_absent {
                    let id = format!("grant-new-{round}");
                    tx.execute(
                        &format!(
                            "INSERT INTO \"{s}\".grants (zone_id, id, user_id, resource_id, \
                             client_id, status, created_at, expires_at, version, record) \
                             VALUES ($1, $2, 'user-1', 'resource-1', 'client-1', 'active', \
                             0, 600000, 1, $3)"
                        ),
                        &[&ZONE, &id, &tokio_postgres::types::Json(&record)],
                    )
                    .await
                    .unwrap();
                    (id, Expect::Absent)
                } else {
                    let version: i64 = tx
                        .query_one(
                            &format!(
                                "UPDATE \"{s}\".grants SET version = version + 1 \
                                 WHERE zone_id = $1 AND id = 'grant-stored' RETURNING version - 1"
                            ),
                            &[&ZONE],
                        )
                        .await
                        .unwrap()
                        .get(0);
                    ("grant-stored".to_owned(), Expect::Version(version as u64))
                };
                let client_id = format!("client-{round}");
                let set = WriteSet {
                    writes: vec![
                        Write::Check {
                            record: RecordKey::Grant {
                                zone_id: ZONE.into(),
                                id: checked.clone(),
                            },
                            expect,
                        },
                        Write::PutClient {
                            client: client(ZONE, &client_id, "guarded"),
                            expect: Expect::Absent,
                        },
                    ],
                };
                let writer = tokio::spawn({
                    let store = store.clone();
                    async move { store.apply(set).await }
                });
                let watcher = support::connect().await;
                let mut waiting = false;
                for _ in 0..500 {
                    let n: i64 = watcher
                        .query_one(
                            "SELECT count(*) FROM pg_locks WHERE NOT granted \
                             AND locktype = 'transactionid' AND transactionid::text = $1",
                            &[&xid.to_string()],
                        )
                        .await
                        .unwrap()
                        .get(0);
                    if n > 0 {
                        waiting = true;
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                assert!(waiting, "round {round}: the check did not wait");
                if commit {
                    tx.commit().await.unwrap();
                } else {
                    tx.rollback().await.unwrap();
                }
                let result = writer.await.expect("the writer panicked");
                let client_stored = store.get_client(ZONE, &client_id).await.unwrap();
                if commit {
                    assert!(
                        matches!(result, Err(Error::Conflict)),
                        "round {round}: {result:?}"
                    );
                    assert_eq!(client_stored, None, "round {round}");
                } else {
                    assert!(result.is_ok(), "round {round}: {result:?}");
                    assert!(client_stored.is_some(), "round {round}");
                }
                let checked_stored = store.get_grant(ZONE, &checked).await.unwrap();
                match (expect_absent, commit) {
                    (true, true) => assert!(checked_stored.is_some(), "round {round}"),
                    (true, false) => assert_eq!(checked_stored, None, "round {round}"),
                    // Bumped to 2 by the committed update, not by the rolled back one.
                    (false, _) => assert_eq!(
                        checked_stored.map(|g| (g.record, g.version)),
                        Some((stored.clone(), 2)),
                        "round {round}"
                    ),
                }
            }
            let placeholders: i64 = support::connect()
                .await
                .query_one(
                    &format!(
                        "SELECT (SELECT count(*) FROM \"{s}\".grants WHERE record = 'null') \
                         + (SELECT count(*) FROM \"{s}\".clients WHERE record = 'null')"
                    ),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(placeholders, 0);
        }),
    );
}

/// Checks of every kind of record, alone and beside writes: a set holds only if
/// every record is as its check expects, and a check writes nothing.
#[test]
fn checks_of_clients_grants_and_tokens() {
    support::run(
        1,
        support::with_store(|store| async move {
            let g = grant(ZONE, "grant-1", at(0), at(600_000));
            let t = token(&g, "secret-1", TokenKind::Refresh);
            let c = client(ZONE, "client-1", "checked");
            store
                .apply(WriteSet {
                    writes: vec![
                        Write::PutClient {
                            client: c.clone(),
                            expect: Expect::Absent,
                        },
                        Write::PutGrant {
                            grant: g.clone(),
                            expect: Expect::Absent,
                        },
                        Write::PutToken {
                            token: t.clone(),
                            expect: Expect::Absent,
                        },
                    ],
                })
                .await
                .unwrap();
            let keys = |n: &str| {
                [
                    RecordKey::Client {
                        zone_id: ZONE.into(),
                        id: format!("client-{n}"),
                    },
                    RecordKey::Grant {
                        zone_id: ZONE.into(),
                        id: format!("grant-{n}"),
                    },
                    RecordKey::Token {
                        zone_id: ZONE.into(),
                        digest: Digest::of(&format!("secret-{n}")),
                    },
                ]
            };
            let check = |record: RecordKey, expect: Expect| WriteSet {
                writes: vec![Write::Check { record, expect }],
            };
            for (stored, missing) in keys("1").into_iter().zip(keys("2")) {
                for (record, expect, holds) in [
                    (stored.clone(), Expect::Version(1), true),
                    (stored.clone(), Expect::Version(2), false),
                    (stored.clone(), Expect::Absent, false),
                    (missing.clone(), Expect::Absent, true),
                    (missing.clone(), Expect::Version(1), false),
                    (
                        RecordKey::Grant {
                            zone_id: "another-zone".into(),
                            id: "grant-1".into(),
                        },
                        Expect::Absent,
                        true,
                    ),
                ] {
                    let result = store.apply(check(record.clone(), expect)).await;
                    assert_eq!(result.is_ok(), holds, "{record:?} {expect:?}: {result:?}");
                    if !holds {
                        assert!(matches!(result, Err(Error::Conflict)), "{result:?}");
                    }
                }
            }
            // Nothing was written: not the records checked, nor anything for the ones
            // checked absent.
            assert_eq!(store.get_client(ZONE, "client-1").await.unwrap(), v1(c));
            assert_eq!(
                store.get_grant(ZONE, "grant-1").await.unwrap(),
                v1(g.clone())
            );
            assert_eq!(
                store.get_token(ZONE, &t.digest).await.unwrap(),
                v1(t.clone())
            );
            assert_eq!(store.get_client(ZONE, "client-2").await.unwrap(), None);
            assert_eq!(store.get_grant(ZONE, "grant-2").await.unwrap(), None);
            assert_eq!(
                store
                    .get_token(ZONE, &Digest::of("secret-2"))
                    .await
                    .unwrap(),
                None
            );
            assert_eq!(
                store
                    .expired_tokens(ZONE, at(i64::from(u32::MAX)), 10)
                    .await
                    .unwrap(),
                vec![Versioned {
                    record: t.clone(),
                    version: 1
                }]
            );
            // A failed check undoes the set's writes, a check that holds lets them in.
            let revoked = Token {
                revoked_at: Some(at(1)),
                ..t.clone()
            };
            for (expect, holds) in [(Expect::Version(2), false), (Expect::Version(1), true)] {
                let result = store
                    .apply(WriteSet {
                        writes: vec![
                            Write::PutToken {
                                token: revoked.clone(),
                                expect: Expect::Version(1),
                            },
                            Write::Check {
                                record: RecordKey::Grant {
                                    zone_id: ZONE.into(),
                                    id: "grant-1".into(),
                                },
                                expect,
                            },
                        ],
                    })
                    .await;
                assert_eq!(result.is_ok(), holds, "{result:?}");
            }
            assert_eq!(
                store.get_token(ZONE, &t.digest).await.unwrap(),
                Some(Versioned {
                    record: revoked,
                    version: 2
                })
            );
            assert_eq!(store.get_grant(ZONE, "grant-1").await.unwrap(), v1(g));
        }),
    );
}

/// The schema exactly as version 1 of this crate created it (migration 1, frozen
/// here so that the test keeps testing what stores of that version hold).
const VERSION_1_SQL: &str = r#"
CREATE TABLE {schema}.clients (
    zone_id text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (zone_id, id)
);

CREATE TABLE {schema}.grants (
    zone_id text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    resource_id text COLLATE "C" NOT NULL,
    client_id text COLLATE "C" NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'expired', 'revoked')),
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (zone_id, id)
);
-- Listings: one index per way of narrowing, each in (created_at, id) order.
CREATE INDEX grants_by_created ON {schema}.grants (zone_id, created_at, id);
CREATE INDEX grants_by_user ON {schema}.grants (zone_id, user_id, created_at, id);
CREATE INDEX grants_by_resource ON {schema}.grants (zone_id, resource_id, created_at, id);
CREATE INDEX grants_by_client ON {schema}.grants (zone_id, client_id, created_at, id);
CREATE INDEX grants_by_status ON {schema}.grants (zone_id, status, created_at, id);
-- The expiry sweep: only grants stored active, in (expires_at, id) order.
CREATE INDEX grants_by_expiry ON {schema}.grants (zone_id, expires_at, id)
    WHERE status = 'active';

CREATE TABLE {schema}.transitions (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id text COLLATE "C" NOT NULL,
    grant_id text COLLATE "C" NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX transitions_by_grant ON {schema}.transitions (zone_id, grant_id, seq);

CREATE TABLE {schema}.tokens (
    zone_id text COLLATE "C" NOT NULL,
    digest bytea NOT NULL CHECK (octet_length(digest) = 32),
    -- The grant whose token list holds the token: set when the token is created,
    -- cleared when that grant is deleted.
    grant_id text COLLATE "C",
    version bigint NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (zone_id, digest)
);
CREATE INDEX tokens_by_grant ON {schema}.tokens (zone_id, grant_id);

CREATE TABLE {schema}.personal_grants (
    zone_id text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (zone_id, id)
);
CREATE INDEX personal_grants_by_user
    ON {schema}.personal_grants (zone_id, user_id, created_at, id);

CREATE TABLE {schema}.device_authorizations (
    zone_id text COLLATE "C" NOT NULL,
    device_code bytea NOT NULL CHECK (octet_length(device_code) = 32),
    user_code text COLLATE "C" NOT NULL,
    expires_at bigint NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (zone_id, device_code),
    CONSTRAINT device_authorizations_user_code_unique UNIQUE (zone_id, user_code)
);
CREATE INDEX device_authorizations_by_expiry
    ON {schema}.device_authorizations (zone_id, expires_at, device_code);
"#;

/// A schema at version 1, with a grant and two refresh tokens (one unspent, one
/// spent) in the JSON that version wrote, migrated in place by opening it: the
/// unspent token is current and refreshes, the spent one is reuse and revokes the
/// grant, and the tokens are in the expiry index.
#[test]
fn a_version_1_schema_is_migrated_in_place() {
    const CLIENT: &str = "legacy-client";
    const GRANT: &str = "grant-legacy";
    support::run(
        1,
        support::with_schema(|schema| async move {
            let start = chrono::DateTime::from_timestamp_millis(1_893_456_000_000).unwrap();
            let ms = |offset: i64| start + chrono::Duration::milliseconds(offset);
            let text = |t| tenure::time::format_rfc3339(&t);
            const DAY: i64 = 86_400_000;
            let unspent = Secret::generate(SecretKind::RefreshToken).unwrap();
            let spent = Secret::generate(SecretKind::RefreshToken).unwrap();
            let (created, refreshed) = (ms(-2 * 3_600_000), ms(-3_600_000 + 17));
            let (spent_expiry, unspent_expiry) = (ms(5 * DAY + 123), ms(10 * DAY + 456));
            let old_grant = serde_json::json!({
                "id": GRANT,
                "zone_id": ZONE,
                "organization_id": "org-1",
                "user_id": "user-1",
                "resource_id": "resource-1",
                "provider_id": "default",
                "client_id": CLIENT,
                "scopes": ["read"],
                "status": "active",
                "active": true,
                "created_at": text(created),
                "updated_at": text(refreshed),
                "expires_at": text(ms(30 * DAY)),
                "refreshed_at": text(refreshed),
                "refresh_token_set": true,
            });
            let old_token = |secret: &Secret, issued, expires, spent_at: Option<_>| {
                let mut token = serde_json::json!({
                    "digest": secret.digest(),
                    "zone_id": ZONE,
                    "grant_id": GRANT,
                    "client_id": CLIENT,
                    "user_id": "user-1",
                    "kind": "refresh",
                    "scopes": ["read"],
                    "issued_at": text(issued),
                    "expires_at": text(expires),
                });
                if let Some(t) = spent_at {
                    token["spent_at"] = text(t).into();
                }
                token
            };

            // Version 1, by hand, as that version's code left it.
            let db = support::connect().await;
            let quoted = format!("\"{schema}\"");
            db.batch_execute(&format!(
                "CREATE SCHEMA {quoted};
                 CREATE TABLE {quoted}.schema_version (
                     singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                     version integer NOT NULL,
                     updated_at timestamptz NOT NULL DEFAULT now()
                 );
                 INSERT INTO {quoted}.schema_version (version) VALUES (1);
                 {}",
                VERSION_1_SQL.replace("{schema}", &quoted)
            ))
            .await
            .unwrap();
            db.execute(
                &format!(
                    "INSERT INTO {quoted}.grants (zone_id, id, user_id, resource_id, client_id, \
                     status, created_at, expires_at, version, record) \
                     VALUES ($1, $2, 'user-1', 'resource-1', $3, 'active', $4, $5, 2, $6)"
                ),
                &[
                    &ZONE,
                    &GRANT,
                    &CLIENT,
                    &created.timestamp_millis(),
                    &ms(30 * DAY).timestamp_millis(),
                    &tokio_postgres::types::Json(&old_grant),
                ],
            )
            .await
            .unwrap();
            for (secret, record) in [
                (
                    &spent,
                    old_token(&spent, created, spent_expiry, Some(refreshed)),
                ),
                (
                    &unspent,
                    old_token(&unspent, refreshed, unspent_expiry, None),
                ),
            ] {
                db.execute(
                    &format!(
                        "INSERT INTO {quoted}.tokens (zone_id, digest, grant_id, version, record) \
                         VALUES ($1, $2, $3, 1, $4)"
                    ),
                    &[
                        &ZONE,
                        &secret.digest().as_bytes().as_slice(),
                        &GRANT,
                        &tokio_postgres::types::Json(&record),
                    ],
                )
                .await
                .unwrap();
            }

            let store = support::open(&schema).await;
            assert_eq!(schema_version(&schema).await, [SCHEMA_VERSION]);
            assert_eq!(SCHEMA_VERSION, 3);
            // The records as the legacy rule converts them, versions unchanged.
            let grant = store.get_grant(ZONE, GRANT).await.unwrap().unwrap();
            assert_eq!(grant.version, 2);
            assert_eq!(grant.record.refresh, RefreshChain::LEGACY);
            assert_eq!(grant.record.refreshed_at, Some(refreshed));
            let generations: Vec<(u64, u64)> = {
                let mut out = Vec::new();
                for secret in [&spent, &unspent] {
                    let t = store
                        .get_token(ZONE, &secret.digest())
                        .await
                        .unwrap()
                        .unwrap();
                    out.push((t.record.generation, t.version));
                }
                out
            };
            assert_eq!(generations, [(0, 1), (1, 1)]);
            let leftover: i64 = db
                .query_one(
                    &format!(
                        "SELECT count(*) FROM {quoted}.tokens WHERE record ? 'spent_at' \
                         OR NOT record ? 'generation'"
                    ),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(leftover, 0, "a token kept the old form");
            // The expiry index holds both, by their expiry to the millisecond.
            let expired = |t| {
                let store = store.clone();
                async move {
                    store
                        .expired_tokens(ZONE, t, 10)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|t| t.record.digest)
                        .collect::<Vec<_>>()
                }
            };
            assert_eq!(expired(ms(5 * DAY + 122)).await, []);
            assert_eq!(expired(spent_expiry).await, [spent.digest()]);
            assert_eq!(expired(ms(10 * DAY + 455)).await, [spent.digest()]);
            assert_eq!(
                expired(unspent_expiry).await,
                [spent.digest(), unspent.digest()]
            );

            // The engine takes it from there.
            let engine = Engine::builder(Arc::new(store.clone()))
                .clock(Arc::new(ManualClock::new(start)))
                .build();
            engine
                .register_client(
                    ZONE,
                    ClientRegistration::new("Legacy")
                        .id(CLIENT)
                        .scopes(["read"]),
                )
                .await
                .unwrap();
            assert!(
                engine
                    .introspect(ZONE, unspent.expose())
                    .await
                    .unwrap()
                    .is_active(),
                "the unspent refresh token is current"
            );
            assert!(
                !engine
                    .introspect(ZONE, spent.expose())
                    .await
                    .unwrap()
                    .is_active(),
                "the spent refresh token is spent"
            );
            let rotated = engine
                .refresh(ZONE, RefreshRequest::new(CLIENT, &unspent))
                .await
                .expect("the unspent refresh token refreshes");
            assert_eq!(rotated.grant.id, GRANT);
            assert!(
                engine
                    .introspect(ZONE, rotated.access_token.expose())
                    .await
                    .unwrap()
                    .is_active()
            );
            match engine
                .refresh(ZONE, RefreshRequest::new(CLIENT, &spent))
                .await
            {
                Err(Error::RefreshTokenReused { grant_id }) => assert_eq!(grant_id, GRANT),
                other => panic!("the spent refresh token is reuse, got {other:?}"),
            }
            let grant = engine.get_grant(ZONE, GRANT).await.unwrap();
            assert_eq!(grant.status, GrantStatus::Revoked);
            for secret in [
                &unspent,
                &rotated.access_token,
                rotated
                    .refresh_token
                    .as_ref()
                    .expect("a rotated refresh token"),
            ] {
                assert!(
                    !engine
                        .introspect(ZONE, secret.expose())
                        .await
                        .unwrap()
                        .is_active(),
                    "a token of the revoked grant is active"
                );
            }
            // Version 3's table came with the one migration.
            assert_eq!(
                store
                    .get_authorization_code(ZONE, &Digest::of("code"))
                    .await
                    .unwrap(),
                None
            );
            // Opening it again finds it at the new version and changes nothing.
            drop(support::open(&schema).await);
            assert_eq!(schema_version(&schema).await, [SCHEMA_VERSION]);
        }),
    );
}

/// The schema exactly as version 2 of this crate brought a version-1 schema to it
/// (migration 2, frozen here like [`VERSION_1_SQL`]).
const VERSION_2_SQL: &str = r#"
ALTER TABLE {schema}.tokens ADD COLUMN expires_at bigint;
UPDATE {schema}.tokens SET
    expires_at = round(
        extract(epoch FROM ltrim(record->>'expires_at', '+')::timestamptz) * 1000
    )::bigint,
    record = (record - 'spent_at') || jsonb_build_object(
        'generation',
        CASE WHEN record->>'spent_at' IS NULL THEN 1 ELSE 0 END
    );
ALTER TABLE {schema}.tokens ALTER COLUMN expires_at SET NOT NULL;
-- Pruning expired tokens: (expires_at, digest) order.
CREATE INDEX tokens_by_expiry ON {schema}.tokens (zone_id, expires_at, digest);

UPDATE {schema}.grants SET record = record || '{"refresh": {"generation": 1}}'::jsonb;
"#;

/// A record's JSON, as a query parameter.
fn json(record: &impl serde::Serialize) -> tokio_postgres::types::Json<serde_json::Value> {
    tokio_postgres::types::Json(serde_json::to_value(record).expect("a record's JSON"))
}

/// The tables, columns, indexes and constraints of a schema, with its name left out,
/// so that two schemas can be compared.
async fn catalogue(db: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT concat_ws(' ', 'column', table_name, column_name, data_type, \
         collation_name, is_nullable) \
         FROM information_schema.columns WHERE table_schema = $1 \
         ORDER BY table_name, ordinal_position",
        "SELECT concat_ws(' ', 'index', tablename, indexname, \
         replace(indexdef, $1 || '.', '')) \
         FROM pg_indexes WHERE schemaname = $1 ORDER BY tablename, indexname",
        "SELECT concat_ws(' ', 'constraint', c.relname, k.conname, \
         pg_get_constraintdef(k.oid)) \
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 ORDER BY c.relname, k.conname",
    ] {
        for row in db.query(sql, &[&schema]).await.unwrap() {
            out.push(row.get(0));
        }
    }
    out
}

/// Each stored row's `xmin`: the transaction that last wrote it.
async fn row_writers(db: &tokio_postgres::Client, quoted: &str) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "clients",
        "grants",
        "transitions",
        "tokens",
        "personal_grants",
        "device_authorizations",
    ] {
        let rows = db
            .query(
                &format!("SELECT concat_ws(' ', '{table}', xmin) FROM {quoted}.{table} ORDER BY 1"),
                &[],
            )
            .await
            .unwrap();
        out.extend(rows.iter().map(|row| row.get::<_, String>(0)));
    }
    out
}

/// A schema at version 2, with a record of every kind in the JSON that version
/// wrote, migrated in place by opening it: every record reads back as it was, at its
/// version, and no stored row is rewritten; the schema is then the one a new store
/// creates, and authorization codes are stored in it with their version checks.
#[test]
fn a_version_2_schema_is_migrated_in_place() {
    support::run(
        1,
        support::with_schema(|schema| async move {
            let stored_client = Client {
                client_type: ClientType::Confidential,
                secret_digest: Some(Digest::of("client secret")),
                ..client(ZONE, "client-1", "Version 2")
            };
            let stored_grant = Grant {
                refresh: RefreshChain {
                    generation: 3,
                    family: Some(Digest::of("family")),
                    current: Some(Digest::of("refresh-3")),
                    previous: Some(Digest::of("refresh-2")),
                },
                refreshed_at: Some(at(50)),
                ..grant(ZONE, "grant-1", at(0), at(900_000))
            };
            let stored_token = Token {
                expires_at: at(7_000),
                ..token(&stored_grant, "refresh-3", TokenKind::Refresh)
            };
            let stored_transition = transition(
                &stored_grant,
                None,
                GrantStatus::Active,
                TransitionReason::Created,
                at(0),
            );
            let stored_personal = personal_grant(ZONE, "personal-1", "user-1", at(5));
            let stored_device = device_authorization(ZONE, "device-1", "BCDFGHJK", at(600_000));
            let mut grant_json = json(&stored_grant);
            grant_json.0["refresh"] = serde_json::to_value(stored_grant.refresh).unwrap();

            // Version 2, by hand, as that version's code left it.
            let db = support::connect().await;
            let quoted = format!("\"{schema}\"");
            db.batch_execute(&format!(
                "CREATE SCHEMA {quoted};
                 CREATE TABLE {quoted}.schema_version (
                     singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                     version integer NOT NULL,
                     updated_at timestamptz NOT NULL DEFAULT now()
                 );
                 INSERT INTO {quoted}.schema_version (version) VALUES (2);
                 {}
                 {}",
                VERSION_1_SQL.replace("{schema}", &quoted),
                VERSION_2_SQL.replace("{schema}", &quoted)
            ))
            .await
            .unwrap();
            let ms = |t: Timestamp| t.timestamp_millis();
            db.execute(
                &format!(
                    "INSERT INTO {quoted}.clients (zone_id, id, version, record) \
                     VALUES ($1, 'client-1', 4, $2)"
                ),
                &[&ZONE, &json(&stored_client)],
            )
            .await
            .unwrap();
            db.execute(
                &format!(
                    "INSERT INTO {quoted}.grants (zone_id, id, user_id, resource_id, client_id, \
                     status, created_at, expires_at, version, record) \
                     VALUES ($1, 'grant-1', 'user-1', 'resource-1', 'client-1', 'active', \
                     $2, $3, 3, $4)"
                ),
                &[
                    &ZONE,
                    &ms(stored_grant.created_at),
                    &ms(stored_grant.expires_at),
                    &grant_json,
                ],
            )
            .await
            .unwrap();
            db.execute(
                &format!(
                    "INSERT INTO {quoted}.transitions (zone_id, grant_id, record) \
                     VALUES ($1, 'grant-1', $2)"
                ),
                &[&ZONE, &json(&stored_transition)],
            )
            .await
            .unwrap();
            db.execute(
                &format!(
                    "INSERT INTO {quoted}.tokens (zone_id, digest, grant_id, expires_at, \
                     version, record) VALUES ($1, $2, 'grant-1', $3, 2, $4)"
                ),
                &[
                    &ZONE,
                    &stored_token.digest.as_bytes().as_slice(),
                    &ms(stored_token.expires_at),
                    &json(&stored_token),
                ],
            )
            .await
            .unwrap();
            db.execute(
                &format!(
                    "INSERT INTO {quoted}.personal_grants (zone_id, id, user_id, created_at, \
                     version, record) VALUES ($1, 'personal-1', 'user-1', $2, 1, $3)"
                ),
                &[
                    &ZONE,
                    &ms(stored_personal.created_at),
                    &json(&stored_personal),
                ],
            )
            .await
            .unwrap();
            db.execute(
                &format!(
                    "INSERT INTO {quoted}.device_authorizations (zone_id, device_code, \
                     user_code, expires_at, version, record) \
                     VALUES ($1, $2, 'BCDFGHJK', $3, 5, $4)"
                ),
                &[
                    &ZONE,
                    &stored_device.device_code.as_bytes().as_slice(),
                    &ms(stored_device.expires_at),
                    &json(&stored_device),
                ],
            )
            .await
            .unwrap();
            let writers = row_writers(&db, &quoted).await;
            assert_eq!(writers.len(), 6);

            let store = support::open(&schema).await;
            assert_eq!(schema_version(&schema).await, [SCHEMA_VERSION]);
            assert_eq!(SCHEMA_VERSION, 3);
            assert_eq!(
                row_writers(&db, &quoted).await,
                writers,
                "the migration rewrote a stored row"
            );
            // Every record as it was, at its version.
            assert_eq!(
                store.get_client(ZONE, "client-1").await.unwrap(),
                Some(Versioned {
                    record: stored_client,
                    version: 4
                })
            );
            assert_eq!(
                store.get_grant(ZONE, "grant-1").await.unwrap(),
                Some(Versioned {
                    record: stored_grant,
                    version: 3
                })
            );
            assert_eq!(
                store.grant_history(ZONE, "grant-1").await.unwrap(),
                [stored_transition]
            );
            assert_eq!(
                store.expired_tokens(ZONE, at(7_000), 10).await.unwrap(),
                [Versioned {
                    record: stored_token,
                    version: 2
                }]
            );
            assert_eq!(
                store.get_personal_grant(ZONE, "personal-1").await.unwrap(),
                v1(stored_personal)
            );
            assert_eq!(
                store
                    .find_device_authorization(ZONE, "BCDFGHJK")
                    .await
                    .unwrap(),
                Some(Versioned {
                    record: stored_device,
                    version: 5
                })
            );
            // The migrated schema is the one a new store creates.
            let (db, migrated) = (&db, schema.as_str());
            support::with_schema(|fresh| async move {
                drop(support::open(&fresh).await);
                let found = catalogue(db, migrated).await;
                assert!(
                    found
                        .iter()
                        .any(|l| l.contains("authorization_codes_by_expiry")),
                    "{found:#?}"
                );
                assert_eq!(found, catalogue(db, &fresh).await);
            })
            .await;

            // Authorization codes, with their version checks.
            let code = authorization_code(ZONE, "code-1", at(60_000));
            let digest = code.code;
            put(
                &store,
                Write::PutAuthorizationCode {
                    code: code.clone(),
                    expect: Expect::Absent,
                },
            )
            .await;
            let redeemed = AuthorizationCode {
                grant_id: Some("grant-1".into()),
                ..code.clone()
            };
            // A stale expectation fails the set, and nothing of it is written.
            for stale in [
                Write::PutAuthorizationCode {
                    code: code.clone(),
                    expect: Expect::Absent,
                },
                Write::PutAuthorizationCode {
                    code: code.clone(),
                    expect: Expect::Version(2),
                },
                Write::DeleteAuthorizationCode {
                    zone_id: ZONE.into(),
                    code: digest,
                    expect: 2,
                },
            ] {
                let set = WriteSet {
                    writes: vec![
                        Write::PutGrant {
                            grant: grant(ZONE, "grant-2", at(0), at(1_000)),
                            expect: Expect::Absent,
                        },
                        stale,
                    ],
                };
                assert!(matches!(store.apply(set).await, Err(Error::Conflict)));
                assert_eq!(store.get_grant(ZONE, "grant-2").await.unwrap(), None);
                assert_eq!(
                    store.get_authorization_code(ZONE, &digest).await.unwrap(),
                    v1(code.clone())
                );
            }
            put(
                &store,
                Write::PutAuthorizationCode {
                    code: redeemed.clone(),
                    expect: Expect::Version(1),
                },
            )
            .await;
            assert_eq!(
                store.get_authorization_code(ZONE, &digest).await.unwrap(),
                Some(Versioned {
                    record: redeemed.clone(),
                    version: 2
                })
            );
            assert_eq!(
                store
                    .expired_authorization_codes(ZONE, at(59_999), 10)
                    .await
                    .unwrap(),
                []
            );
            assert_eq!(
                store
                    .expired_authorization_codes(ZONE, at(60_000), 10)
                    .await
                    .unwrap(),
                [Versioned {
                    record: redeemed,
                    version: 2
                }]
            );
            put(
                &store,
                Write::DeleteAuthorizationCode {
                    zone_id: ZONE.into(),
                    code: digest,
                    expect: 2,
                },
            )
            .await;
            assert_eq!(
                store.get_authorization_code(ZONE, &digest).await.unwrap(),
                None
            );
            // Opening it again finds it at the new version and changes nothing.
            drop(support::open(&schema).await);
            assert_eq!(schema_version(&schema).await, [SCHEMA_VERSION]);
        }),
    );
}
