//! Connections: a bounded wait for the pool, typed "unavailable" errors, and TLS
//! settings checked when the store is opened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write as _;
use std::time::{Duration, Instant};

use tenure::{Engine, Error, Storage};
use tenure_postgres::{PostgresError, PostgresOptions, PostgresStorage, TlsMode};

const ZONE: &str = "zone-1";

/// The PostgreSQL error inside a core error.
fn postgres_source(error: &Error) -> &PostgresError {
    let source = match error {
        Error::Unavailable { source, .. } | Error::Backend { source, .. } => source,
        other => panic!("not a store error: {other:?}"),
    };
    source
        .downcast_ref::<PostgresError>()
        .expect("a PostgresError")
}

#[test]
fn an_exhausted_pool_answers_unavailable_after_the_wait_timeout() {
    support::run(
        1,
        support::with_schema(|schema| async move {
            let store = PostgresStorage::connect_with(
                &support::database_url(),
                support::options(&schema)
                    .max_connections(1)
                    .wait_timeout(Duration::from_millis(300)),
            )
            .await
            .unwrap();
            let held = store.pool().get().await.unwrap();

            let started = Instant::now();
            let r = store.get_grant(ZONE, "g").await;
            let waited = started.elapsed();
            let error = r.expect_err("no connection is free");
            assert!(
                matches!(
                    error,
                    Error::Unavailable {
                        backend: "postgres",
                        ..
                    }
                ),
                "{error:?}"
            );
            assert!(error.is_transient());
            assert!(postgres_source(&error).is_unavailable());
            assert!(
                waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
                "waited {waited:?}"
            );

            // Through the engine too, and writes alike.
            let engine = Engine::new(store.clone());
            let r = engine.get_grant(ZONE, "g").await;
            assert!(matches!(r, Err(Error::Unavailable { .. })), "{r:?}");
            let r = engine
                .register_client(ZONE, tenure::ClientRegistration::new("c").id("c"))
                .await;
            assert!(matches!(r, Err(Error::Unavailable { .. })), "{r:?}");

            // The pool recovers as soon as a connection comes back.
            drop(held);
            assert_eq!(store.get_grant(ZONE, "g").await.unwrap(), None);
        }),
    );
}

#[test]
fn an_unreachable_server_is_unavailable() {
    support::run(1, async {
        // Nothing listens on port 1 of the loopback address.
        let result = PostgresStorage::connect_with(
            "postgres://nobody@127.0.0.1:1/none",
            PostgresOptions::new().connect_timeout(Duration::from_secs(2)),
        )
        .await;
        match result {
            Err(e @ PostgresError::Connection { .. }) => {
                assert!(e.is_unavailable(), "{e:?}");
                assert!(matches!(
                    tenure::Error::from(e),
                    Error::Unavailable {
                        backend: "postgres",
                        ..
                    }
                ));
            }
            other => panic!("expected a connection error, got {other:?}"),
        }
    });
}

#[test]
fn a_statement_error_is_a_backend_error_not_unavailable() {
    support::run(
        1,
        support::with_store(|store| async move {
            let client = store.pool().get().await.unwrap();
            let e = client
                .batch_execute("SELECT * FROM no_such_table")
                .await
                .unwrap_err();
            let e = PostgresError::from(e);
            assert!(!e.is_unavailable());
            assert!(matches!(tenure::Error::from(e), Error::Backend { .. }));
        }),
    );
}

#[test]
fn disabled_tls_connects_as_before() {
    support::run(
        1,
        support::with_schema(|schema| async move {
            let store = PostgresStorage::connect_with(
                &support::database_url(),
                support::options(&schema).tls(TlsMode::Disable),
            )
            .await
            .unwrap();
            assert_eq!(store.get_grant(ZONE, "g").await.unwrap(), None);
        }),
    );
}

/// The test server speaks no TLS: a store that requires it is refused when it
/// opens, and never falls back to plaintext.
#[test]
fn required_tls_never_falls_back_to_plaintext() {
    support::run(
        1,
        support::with_schema(|schema| async move {
            let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/isrg-root-x1.pem");
            let result = PostgresStorage::connect_with(
                &support::database_url(),
                support::options(&schema).tls(TlsMode::ca_file(ca)),
            )
            .await;
            let error = result.expect_err("the server speaks no TLS");
            assert!(
                matches!(error, PostgresError::Connection { .. }),
                "{error:?}"
            );
            let chain = Error::from(error).chain().to_string();
            assert!(chain.contains("TLS"), "{chain}");
            // The connection string's own `sslmode=require` is honoured as well.
            let url = format!("{}?sslmode=require", support::database_url());
            let result = PostgresStorage::connect_with(&url, support::options(&schema)).await;
            assert!(
                matches!(
                    result,
                    Err(PostgresError::Connection { .. } | PostgresError::NoSystemRoots { .. })
                ),
                "{result:?}"
            );
        }),
    );
}

/// Opens a store requiring TLS with this CA file, at an address where nothing is
/// ever reached: the file is checked first.
async fn open_with_ca_file(path: &std::path::Path) -> Result<PostgresStorage, PostgresError> {
    PostgresStorage::connect_with(
        "postgres://nobody@127.0.0.1:1/none",
        PostgresOptions::new().tls(TlsMode::ca_file(path)),
    )
    .await
}

#[test]
fn a_ca_file_that_does_not_parse_is_a_typed_error() {
    support::run(1, async {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::File::create(&path)
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            path
        };
        let missing = dir.path().join("missing.pem");
        let empty = write("empty.pem", "");
        let not_pem = write("not.pem", "this is not a certificate\n");
        let bad_base64 = write(
            "bad.pem",
            "-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n",
        );
        for path in [&missing, &empty, &not_pem, &bad_base64] {
            let result = open_with_ca_file(path).await;
            assert!(
                matches!(&result, Err(PostgresError::InvalidCaFile { path: p, .. }) if p == path),
                "{path:?}: {result:?}"
            );
        }
        // Well-formed PEM whose content is no certificate.
        let not_a_certificate = write(
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        );
        let result = open_with_ca_file(&not_a_certificate).await;
        assert!(
            matches!(result, Err(PostgresError::InvalidCaCertificate { .. })),
            "{result:?}"
        );
        // A good CA file gets as far as connecting (and nothing listens there).
        let good = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/isrg-root-x1.pem");
        let result = open_with_ca_file(&good).await;
        assert!(
            matches!(result, Err(PostgresError::Connection { .. })),
            "{result:?}"
        );
    });
}
