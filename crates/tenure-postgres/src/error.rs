//! The backend's own errors, and how they become the core's.

use deadpool_postgres::{HookError, PoolError};

/// What can go wrong in the PostgreSQL backend.
///
/// Opening a store ([`PostgresStorage::connect`](crate::PostgresStorage::connect) and
/// friends) returns these directly. Through the [`Storage`](tenure::Storage) trait
/// they arrive with `backend: "postgres"` and this error as the source, so a host
/// can downcast to act on a variant: as [`tenure::Error::Unavailable`] when the
/// database could not be reached ([`PostgresError::is_unavailable`]: no connection
/// within the pool's wait timeout, a refused or lost connection, a server shutting
/// down or out of connections), else as [`tenure::Error::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The schema name is not a plain lower-case SQL identifier.
    #[error(
        "invalid schema name {name:?}: use 1 to 63 characters of a-z, 0-9 and _, \
         not starting with a digit or pg_"
    )]
    InvalidSchemaName {
        /// The name that was given.
        name: String,
    },

    /// The connection string could not be parsed.
    #[error("invalid PostgreSQL connection string")]
    InvalidUrl {
        /// Why it was refused.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The schema was created or migrated by a newer version of this backend. This
    /// build refuses to touch it rather than misread records or indexes it does not
    /// know; upgrade every process that shares the database.
    #[error(
        "schema {schema:?} is at version {found}, newer than version {supported} that \
         this build of tenure-postgres knows; upgrade tenure-postgres"
    )]
    SchemaTooNew {
        /// The schema.
        schema: String,
        /// The version recorded in its `schema_version` table.
        found: i32,
        /// The newest version this build knows.
        supported: i32,
    },

    /// The connection pool could not be built.
    #[error("could not build the connection pool")]
    Pool {
        /// The cause.
        #[source]
        source: deadpool_postgres::BuildError,
    },

    /// No connection could be had from the pool: none came free within the wait
    /// timeout, or a new one could not be made.
    #[error("no database connection")]
    Connection {
        /// The cause.
        #[source]
        source: deadpool_postgres::PoolError,
    },

    /// The database refused or failed a statement.
    #[error("database error")]
    Database {
        /// The cause, with the server's SQLSTATE when it sent one.
        #[source]
        source: tokio_postgres::Error,
    },

    /// A stored row could not be read back as a record.
    #[error("a stored {kind} cannot be read: {reason}")]
    Corrupt {
        /// The kind of record.
        kind: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The CA file given for TLS cannot be read, is not PEM, or holds no
    /// certificate.
    #[error("the CA file {path:?} cannot be used")]
    InvalidCaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },

    /// A certificate of the CA file given for TLS was refused as a trust root.
    #[error("a certificate in the CA file {path:?} cannot be trusted as a root")]
    InvalidCaCertificate {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },

    /// TLS with the system's roots was asked for, and the operating system has none
    /// that could be read.
    #[error("no trusted root certificate could be read from the operating system")]
    NoSystemRoots {
        /// The first failure met while reading them, if any.
        #[source]
        source: Option<rustls_native_certs::Error>,
    },

    /// The TLS configuration could not be built.
    #[error("invalid TLS configuration")]
    Tls {
        /// The cause.
        #[source]
        source: rustls::Error,
    },

    /// A write set holds a kind of write this build of the backend does not know
    /// (the core is newer than the backend).
    #[error("a write set holds a kind of write this build of tenure-postgres does not know")]
    UnsupportedWrite,
}

impl From<tokio_postgres::Error> for PostgresError {
    fn from(source: tokio_postgres::Error) -> Self {
        PostgresError::Database { source }
    }
}

impl From<deadpool_postgres::PoolError> for PostgresError {
    fn from(source: deadpool_postgres::PoolError) -> Self {
        PostgresError::Connection { source }
    }
}

impl From<PostgresError> for tenure::Error {
    fn from(error: PostgresError) -> Self {
        if error.is_unavailable() {
            tenure::Error::unavailable(crate::BACKEND, error)
        } else {
            tenure::storage::backend_error(crate::BACKEND, error)
        }
    }
}

impl PostgresError {
    /// The SQLSTATE the server answered with, if the error came from the server.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PostgresError::Database { source } => source.code().map(|c| c.code()),
            _ => None,
        }
    }

    /// Whether the database could not be reached, so that the same call may well
    /// succeed later: no connection came free within the pool's wait timeout, the
    /// pool was closed, a connection could not be made or was lost, or the server
    /// answered that it is shutting down, starting up or out of connections. A
    /// server refusing the credentials, or TLS refusing the server's certificate, is
    /// not unavailable: it is misconfigured.
    pub fn is_unavailable(&self) -> bool {
        match self {
            PostgresError::Connection { source } => match source {
                PoolError::Timeout(_) | PoolError::Closed => true,
                // A host's pool may run a hook on each new connection; the
                // connection failing under it is as much an outage as failing to
                // connect.
                PoolError::Backend(e) | PoolError::PostCreateHook(HookError::Backend(e)) => {
                    connection_lost(e)
                }
                _ => false,
            },
            PostgresError::Database { source } => connection_lost(source),
            _ => false,
        }
    }
}

/// Whether a driver error says the connection failed or went away, rather than
/// that a statement failed.
fn connection_lost(error: &tokio_postgres::Error) -> bool {
    if let Some(state) = error.code() {
        let code = state.code();
        // Class 08: connection exception; 57P01..57P03: admin or crash shutdown,
        // cannot connect now; 53300: too many connections.
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    if error.is_closed() {
        return true;
    }
    // An I/O failure, unless it is TLS refusing the server (an unknown issuer, a
    // wrong host name): that is a misconfiguration, not an outage.
    std::error::Error::source(error)
        .and_then(|cause| cause.downcast_ref::<std::io::Error>())
        .is_some_and(|io| {
            io.get_ref()
                .is_none_or(|inner| !inner.is::<rustls::Error>())
        })
}

#[cfg(test)]
mod tests {
    //! The classification of errors made without a database: the pool's own, a
    //! refused connection, and a stand-in server on a loopback socket that answers
    //! the startup message with what a real server sends when it is down, full or
    //! misconfigured.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{Read as _, Write as _};
    use std::net::{TcpListener, TcpStream};

    use deadpool_postgres::{HookError, PoolError, TimeoutType};

    use super::PostgresError;

    fn classified(error: PostgresError) -> tenure::Error {
        tenure::Error::from(error)
    }

    fn is_unavailable(error: &tenure::Error) -> bool {
        matches!(
            error,
            tenure::Error::Unavailable {
                backend: "postgres",
                ..
            }
        )
    }

    fn is_backend(error: &tenure::Error) -> bool {
        matches!(
            error,
            tenure::Error::Backend {
                backend: "postgres",
                ..
            }
        )
    }

    /// A server on a loopback port that reads the client's startup message, then
    /// does `answer` and hangs up.
    fn stand_in(answer: impl FnOnce(&mut TcpStream) + Send + 'static) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut length = [0; 4];
            stream.read_exact(&mut length).unwrap();
            let mut rest = vec![0; u32::from_be_bytes(length) as usize - 4];
            stream.read_exact(&mut rest).unwrap();
            answer(&mut stream);
        });
        port
    }

    /// An ErrorResponse message with this severity and SQLSTATE.
    fn error_response(code: &str) -> Vec<u8> {
        let mut fields = Vec::new();
        for (tag, value) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', code),
            (b'M', "refused"),
        ] {
            fields.push(tag);
            fields.extend_from_slice(value.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut message = vec![b'E'];
        message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
        message.extend_from_slice(&fields);
        message
    }

    /// What connecting to `port` fails with.
    async fn connect_error(port: u16) -> tokio_postgres::Error {
        let url = format!("postgres://nobody@127.0.0.1:{port}/none?sslmode=disable");
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok(_) => panic!("the stand-in server accepts no one"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_pools_timeouts_and_closing_are_unavailable() {
        for error in [
            PoolError::Timeout(TimeoutType::Wait),
            PoolError::Timeout(TimeoutType::Create),
            PoolError::Timeout(TimeoutType::Recycle),
            PoolError::Closed,
        ] {
            let error = classified(PostgresError::from(error));
            assert!(is_unavailable(&error), "{error:?}");
        }
        for error in [
            PoolError::NoRuntimeSpecified,
            PoolError::PostCreateHook(HookError::Message("bad search_path".into())),
        ] {
            let error = classified(PostgresError::from(error));
            assert!(is_backend(&error), "{error:?}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable() {
        // A port that was just free, and has no listener now.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refused = connect_error(port).await;
        let error = classified(PostgresError::from(PoolError::Backend(refused)));
        assert!(is_unavailable(&error), "{error:?}");
    }

    #[tokio::test]
    async fn a_connection_closed_by_the_server_is_unavailable() {
        // Whether it is met while connecting, in a hook, or by a statement.
        let closed = connect_error(stand_in(|_| {})).await;
        let in_hook = connect_error(stand_in(|_| {})).await;
        let in_statement = connect_error(stand_in(|_| {})).await;
        for error in [
            PostgresError::from(PoolError::Backend(closed)),
            PostgresError::from(PoolError::PostCreateHook(HookError::Backend(in_hook))),
            PostgresError::from(in_statement),
        ] {
            let error = classified(error);
            assert!(is_unavailable(&error), "{error:?}");
        }
    }

    #[tokio::test]
    async fn a_server_down_starting_or_full_is_unavailable_and_a_refusal_is_not() {
        for (code, unavailable) in [
            ("08006", true),  // connection failure
            ("08001", true),  // cannot establish a connection
            ("57P01", true),  // admin shutdown
            ("57P02", true),  // crash shutdown
            ("57P03", true),  // cannot connect now: starting up
            ("53300", true),  // too many connections
            ("28P01", false), // wrong password: misconfigured
            ("3D000", false), // no such database: misconfigured
            ("42P01", false), // no such table: a statement failed
        ] {
            let mut errors = Vec::new();
            for _ in 0..2 {
                let answer = error_response(code);
                let error =
                    connect_error(stand_in(move |stream| stream.write_all(&answer).unwrap())).await;
                assert_eq!(error.code().map(|c| c.code()), Some(code));
                errors.push(error);
            }
            let from_statement = PostgresError::from(errors.pop().unwrap());
            let from_pool = PostgresError::from(PoolError::Backend(errors.pop().unwrap()));
            for error in [from_statement, from_pool] {
                assert_eq!(error.is_unavailable(), unavailable, "{code}");
                let error = classified(error);
                assert_eq!(is_unavailable(&error), unavailable, "{code}: {error:?}");
                assert_eq!(is_backend(&error), !unavailable, "{code}: {error:?}");
            }
        }
    }
}
