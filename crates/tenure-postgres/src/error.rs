//! The backend's own errors, and how they become the core's.

/// What can go wrong in the PostgreSQL backend.
///
/// Opening a store ([`PostgresStorage::connect`](crate::PostgresStorage::connect) and
/// friends) returns these directly. Through the [`Storage`](tenure::Storage) trait
/// they arrive as [`tenure::Error::Backend`] with `backend: "postgres"` and this
/// error as the source, so a host can downcast to act on a variant.
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

    /// No connection could be had from the pool.
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
        tenure::storage::backend_error(crate::BACKEND, error)
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
}
