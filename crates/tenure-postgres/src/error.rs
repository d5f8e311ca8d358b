//! The backend's own errors, and how they become the core's.

use deadpool_postgres::PoolError;

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
                PoolError::Backend(e) => connection_lost(e),
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
