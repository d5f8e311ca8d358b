//! PostgreSQL storage backend for the tenure grant-lifecycle engine.
//!
//! When one auth-server process is not enough, several share a PostgreSQL database
//! through this backend, with the same behaviour as every other backend: it passes
//! the `tenure-testkit` conformance suite and model-based property test, and two
//! engines on separate pools racing over one refresh token give exactly one winner.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tenure::Engine;
//! use tenure_postgres::{PostgresOptions, PostgresStorage, TlsMode};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tenure_postgres::PostgresError> {
//! let storage = PostgresStorage::connect_with(
//!     "postgres://tenure:secret@db.internal:5432/auth",
//!     PostgresOptions::new()
//!         .schema("tenure")
//!         .max_connections(16)
//!         .wait_timeout(Duration::from_secs(2))
//!         .tls(TlsMode::ca_file("/etc/tenure/db-ca.pem")),
//! )
//! .await?;
//! let engine = Engine::builder(Arc::new(storage)).build();
//! # let _ = engine;
//! # Ok(())
//! # }
//! ```
//!
//! # Client and pool
//!
//! The backend speaks to PostgreSQL through [`tokio_postgres`] with a
//! [`deadpool_postgres`] pool, not through `sqlx`. tokio-postgres is the plain
//! asynchronous driver: it needs no database at compile time (no macros checking
//! queries against a live server, no offline query cache to keep in step), it
//! pipelines statements sent together, which is what makes a write set cost one
//! round trip, and it builds quickly. deadpool adds a small pool with a
//! per-connection prepared-statement cache. [`PostgresStorage::connect_with`] builds
//! the pool from [`PostgresOptions`]: its size, how long a request may wait for a
//! connection, and TLS. Hosts that need other pool settings build a
//! [`deadpool_postgres::Pool`] (both crates are re-exported, so the versions match)
//! and hand it to [`PostgresStorage::open`].
//!
//! ## Waiting for a connection
//!
//! A request waits at most [`PostgresOptions::wait_timeout`] (5 s by default) for a
//! connection when every connection of the pool is busy, and at most
//! [`PostgresOptions::connect_timeout`] (5 s too) for a new one to be made
//! (connected, TLS handshake, authenticated). Then, and whenever the
//! server cannot be reached or a connection is lost, the call fails with
//! [`tenure::Error::Unavailable`] (see [`PostgresError::is_unavailable`]), which an
//! HTTP front answers 503 with `Retry-After`: an exhausted pool or a database
//! restarting never makes a request wait forever.
//!
//! ## TLS
//!
//! Connections are encrypted with rustls ([`PostgresOptions::tls`]). By default a
//! loopback address, `localhost` or a Unix socket is plaintext and any other host
//! requires TLS, verified against the operating system's trusted roots; an explicit
//! `sslmode=disable` or `sslmode=require` in the connection string is honoured when
//! the options say nothing. [`TlsMode::ca_file`] trusts only a private CA's PEM
//! file instead. A required TLS connection checks the server's certificate and host
//! name (libpq's `verify-full`) and never falls back to plaintext. A CA file that
//! cannot be read, or a system without readable roots, is refused when the store is
//! opened, with a typed error.
//!
//! # Schema
//!
//! Opening a store creates or migrates its schema idempotently, in one transaction
//! that holds an advisory lock keyed on the schema name, so processes starting
//! together never race. Everything lives in its own schema (default `tenure`,
//! [`PostgresOptions::schema`] to change it), with a `schema_version` table of its
//! own; a schema written by a newer version of this crate is refused with
//! [`PostgresError::SchemaTooNew`]. At the current version opening only reads, so
//! the role serving requests needs no right to create anything once the schema
//! exists.
//!
//! Schema version 2 (refresh tokens rotated by generation, a token expiry index)
//! migrates a version-1 schema in place when the first upgraded process opens it:
//! it adds and fills the tokens' `expires_at` column and its index, and converts
//! every record as the core's legacy rule says (every grant gets
//! [`RefreshChain::LEGACY`](tenure::RefreshChain::LEGACY), every token generation 0
//! if it was spent and 1 if not), so refresh tokens issued before keep working and
//! a spent one presented again is still reuse. It rewrites every grant and token
//! row once, in the one transaction, holding their tables locked meanwhile. Stop
//! the processes of the older version first: they cannot write tokens into the new
//! schema, and they do not keep a grant's refresh chain.
//!
//! Schema version 3 (authorization codes) migrates a version-2 schema in place in
//! the same way, when the first upgraded process opens it: it adds the
//! `authorization_codes` table and its expiry index and changes no stored row (a
//! version-1 schema goes through both migrations in the one transaction). Stop the
//! processes of the older version first here too: one that starts afterwards
//! refuses the schema as too new, and one still running drops a client's previous
//! secret when it writes the client back, and cannot read a grant's history once
//! that holds the reason `code_reused` or `client_disabled`.
//!
//! Each record is stored whole, as the JSON the core's records serialize to (a
//! `jsonb` column, readable with any SQL client), next to typed columns for what is
//! looked up, filtered or sorted on: zone, id, user, resource, client, status,
//! `created_at` and `expires_at` (milliseconds since the Unix epoch, exactly the
//! precision the core keeps, with no range limit a forged cursor could hit), token,
//! device-code and authorization-code digests (`bytea`) and a `version` column. The
//! JSON is the record's truth and the columns are its index keys, written together
//! by the same statement.
//! A grant's JSON also holds its [`RefreshChain`](tenure::RefreshChain), under a
//! `refresh` key of its own, since the seed's Grant JSON has no place for it.
//! Ids are compared bytewise (`COLLATE "C"`), as Rust compares strings, whatever the
//! database's locale.
//!
//! Every query names its zone, and each one is answered from an index:
//!
//! | read | index |
//! | --- | --- |
//! | listing, no filter | `grants_by_created (zone_id, created_at, id)` |
//! | listing by user, resource, client | `grants_by_user`, `grants_by_resource`, `grants_by_client`: `(zone_id, <column>, created_at, id)` |
//! | listing by status | `grants_by_status (zone_id, status, created_at, id)`, or any of the above |
//! | expiry sweep | `grants_by_expiry (zone_id, expires_at, id) WHERE status = 'active'` |
//! | token by digest | primary key `(zone_id, digest)` |
//! | expired tokens | `tokens_by_expiry (zone_id, expires_at, digest)` |
//! | a grant's tokens, history | `tokens_by_grant`, `transitions_by_grant` |
//! | personal grants of a user | `personal_grants_by_user (zone_id, user_id, created_at, id)` |
//! | device authorizations | primary key, `UNIQUE (zone_id, user_code)`, `device_authorizations_by_expiry` |
//! | authorization codes | primary key, `authorization_codes_by_expiry` |
//!
//! A page of a listing is one statement: a keyset scan from the cursor in
//! `(created_at, id)` order with a row-value comparison, one row past the limit, and
//! a one-row probe the other way for the other flag. A status filter compares the
//! stored status and expiry with the query's time (`active`: stored active and
//! `expires_at > now`; `expired`: stored expired, or stored active and
//! `expires_at <= now`; `revoked`: stored revoked), never with the database's clock.
//! [`PostgresStorage::explain`] shows the plan of any read on the data at hand; the
//! crate's tests assert that every listing shape is an ordered index scan.
//!
//! # Write sets
//!
//! A write set is one transaction at `READ COMMITTED` whose statements are
//! conditional on versions: `INSERT … ON CONFLICT DO NOTHING` for
//! [`Expect::Absent`](tenure::Expect::Absent), `UPDATE`/`DELETE … WHERE version = $v`
//! for [`Expect::Version`](tenure::Expect::Version). A statement that touches no row
//! means its expectation failed: the transaction rolls back and the set is
//! [`tenure::Error::Conflict`], which the engine retries with fresh reads. Rows a
//! set wrote stay locked until it ends, so all of its expectations hold together at
//! commit; a stronger isolation level would only add serialization failures. A
//! guard ([`Write::Check`](tenure::Write::Check)) writes nothing but holds its row
//! all the same: `SELECT … FOR SHARE` at the expected version, or, for a record
//! expected absent, a placeholder row inserted on the free key and deleted again in
//! the same transaction, which keeps any other set from creating the record until
//! this one ends. A user code is checked against the store as it was before the set
//! (as the contract says), and a unique index catches one taken by a set committing
//! meanwhile (also a conflict). Serialization failures and deadlocks (SQLSTATE
//! 40001, 40P01) are reported as conflicts too, at once: the backend never retries a
//! set itself, the engine's one retry policy reads afresh and decides again (see
//! [`tenure::Engine`]'s "Conflicts").
//!
//! Reads are single statements, so each sees one snapshot and never part of a set.
//!
//! # Operating it
//!
//! PostgreSQL 11 or later (tested with 15). Key lookups use statements prepared once
//! per connection: behind PgBouncer, use session pooling (or a version that supports
//! prepared statements in transaction mode). Listings and counts are planned afresh
//! with their parameters each time (one round trip, no prepared statement), so the
//! plan always fits the filter at hand. The connection string's own settings apply:
//! `application_name=auth-1`, say, names the process in `pg_stat_activity`, and
//! `connect_timeout=2` bounds each TCP connection attempt (when a host name resolves
//! to several addresses) within [`PostgresOptions::connect_timeout`].
//!
//! Write sets run in a `postgres.apply` span at `DEBUG` (its field `writes` counts
//! the writes, never their contents); the engine above counts, times and logs
//! everything else, the same for every backend.
//!
//! # Tests
//!
//! The crate's tests need a database: `scripts/with-postgres.sh cargo test -p
//! tenure-postgres` starts a throwaway cluster for them, or set
//! `TENURE_TEST_POSTGRES_URL` to use an existing database (each test works in a
//! schema of its own, dropped afterwards).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod read;
mod record;
mod schema;
mod tls;
mod write;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tenure::{
    AuthorizationCode, Client, DeviceAuthorization, Digest, Grant, GrantFilter, GrantPage,
    GrantQuery, Keyset, PersonalGrant, Position, SortOrder, Storage, Timestamp, Token,
    TokenAndGrant, Transition, Versioned, WriteSet,
};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

pub use deadpool_postgres;
pub use error::PostgresError;
pub use read::Read;
pub use schema::{DEFAULT_SCHEMA, SCHEMA_VERSION};
pub use tls::{TlsMode, TlsRoots};
pub use tokio_postgres;

use read::{PART_PAGE, PART_PROBE};
use record::Record;
use schema::SchemaName;
use write::WriteSql;

/// The backend's name in [`tenure::Error::Backend`].
pub const BACKEND: &str = "postgres";

/// How long a request waits for a free connection when nothing else is said.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long making a new connection may take when nothing else is said.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to open a store.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    schema: String,
    max_connections: Option<usize>,
    wait_timeout: Duration,
    connect_timeout: Duration,
    tls: Option<TlsMode>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: DEFAULT_SCHEMA.to_owned(),
            max_connections: None,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tls: None,
        }
    }
}

impl PostgresOptions {
    /// The defaults: schema [`DEFAULT_SCHEMA`], deadpool's default pool size,
    /// [`DEFAULT_WAIT_TIMEOUT`], [`DEFAULT_CONNECT_TIMEOUT`], and TLS as the
    /// connection string's host calls for (see [`TlsMode`]).
    pub fn new() -> Self {
        PostgresOptions::default()
    }

    /// The schema that holds the store's tables: a lower-case SQL identifier
    /// (`a-z`, `0-9`, `_`, not starting with a digit or `pg_`). Every process that
    /// shares the store must name the same one.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
        self
    }

    /// The most connections the pool opens ([`PostgresStorage::connect_with`] only;
    /// a pool handed to [`PostgresStorage::open`] keeps its own size).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// How long a request waits for a connection when every connection of the pool
    /// is busy, before it fails with [`tenure::Error::Unavailable`]
    /// ([`PostgresStorage::connect_with`] only; a pool handed to
    /// [`PostgresStorage::open`] keeps its own timeouts).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// How long making a new connection may take (connecting, the TLS handshake,
    /// authentication), before the request that needed it fails with
    /// [`tenure::Error::Unavailable`] ([`PostgresStorage::connect_with`] only).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whether and how connections are encrypted ([`PostgresStorage::connect_with`]
    /// only); by default as the connection string's host calls for (see
    /// [`TlsMode`]).
    pub fn tls(mut self, mode: TlsMode) -> Self {
        self.tls = Some(mode);
        self
    }
}

/// A tenure store in a PostgreSQL database. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PostgresStorage {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    schema: SchemaName,
    writes: WriteSql,
}

impl fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("schema", &self.inner.schema.name())
            .field("pool", &self.inner.pool.status())
            .finish()
    }
}

impl PostgresStorage {
    /// Connects to the database at `url` (a `postgres://` URL or a `key=value`
    /// connection string) with the default options, and creates or migrates the
    /// schema.
    pub async fn connect(url: &str) -> Result<Self, PostgresError> {
        PostgresStorage::connect_with(url, PostgresOptions::default()).await
    }

    /// [`connect`](Self::connect) with options.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, PostgresError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|source| PostgresError::InvalidUrl { source })?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let tls = options
            .tls
            .clone()
            .unwrap_or_else(|| tls::default_mode(&config));
        let manager = match &tls {
            TlsMode::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                Manager::from_config(config, tokio_postgres::NoTls, manager_config)
            }
            TlsMode::Require(roots) => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Manager::from_config(config, tls::connector(roots)?, manager_config)
            }
        };
        let connect = Some(options.connect_timeout);
        let mut builder = Pool::builder(manager)
            .timeouts(Timeouts {
                wait: Some(options.wait_timeout),
                create: connect,
                recycle: connect,
            })
            .runtime(Runtime::Tokio1);
        if let Some(n) = options.max_connections {
            builder = builder.max_size(n);
        }
        let pool = builder
            .build()
            .map_err(|source| PostgresError::Pool { source })?;
        PostgresStorage::open(pool, options).await
    }

    /// Opens a store over a pool the host built (for TLS, say), creating or
    /// migrating the schema.
    pub async fn open(pool: Pool, options: PostgresOptions) -> Result<Self, PostgresError> {
        let schema = SchemaName::new(&options.schema)?;
        schema::ensure(&pool, &schema).await?;
        Ok(PostgresStorage {
            inner: Arc::new(Inner {
                writes: WriteSql::new(&schema),
                pool,
                schema,
            }),
        })
    }

    /// The schema that holds the store.
    pub fn schema(&self) -> &str {
        self.inner.schema.name()
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The plan PostgreSQL picks for a read, as `EXPLAIN (FORMAT JSON)` gives it:
    /// a JSON array holding one object whose `Plan` is the root node. The read is
    /// planned, not run.
    pub async fn explain(&self, read: &Read<'_>) -> Result<serde_json::Value, PostgresError> {
        let statement = read.statement(&self.inner.schema);
        let client = self.inner.pool.get().await?;
        let row = client
            .query_typed_one(
                &format!("EXPLAIN (FORMAT JSON) {}", statement.sql),
                &statement.typed_params(),
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Runs a read's statement: a one-shot statement planned with its parameters in
    /// one round trip, or a statement prepared once per connection.
    async fn query(&self, read: Read<'_>) -> Result<Vec<Row>, PostgresError> {
        let statement = read.statement(&self.inner.schema);
        let client = self.inner.pool.get().await?;
        if statement.one_shot {
            return Ok(client
                .query_typed(&statement.sql, &statement.typed_params())
                .await?);
        }
        let prepared = client.prepare_cached(&statement.sql).await?;
        Ok(client.query(&prepared, &statement.params()).await?)
    }

    /// Runs a read that yields versioned records.
    async fn records<T: Record>(&self, read: Read<'_>) -> Result<Vec<Versioned<T>>, PostgresError> {
        self.query(read).await?.iter().map(versioned).collect()
    }

    /// Runs a read that yields at most one versioned record.
    async fn record<T: Record>(
        &self,
        read: Read<'_>,
    ) -> Result<Option<Versioned<T>>, PostgresError> {
        Ok(self.records(read).await?.into_iter().next())
    }

    async fn page(&self, query: &GrantQuery) -> Result<GrantPage, PostgresError> {
        let rows = self.query(Read::Grants(query)).await?;
        let mut scanned: Vec<((i64, String), Versioned<Grant>)> = Vec::with_capacity(rows.len());
        let mut probe = false;
        for row in &rows {
            let part: i32 = row.try_get("part")?;
            if part == PART_PROBE {
                probe = true;
            } else if part == PART_PAGE {
                let key = (row.try_get("created_at")?, row.try_get("id")?);
                scanned.push((key, versioned(row)?));
            }
        }
        // The page's scan runs in the listing's order, or against it for `Before`.
        let backward = matches!(query.position, Position::Before(_));
        let ascending_scan = (query.order == SortOrder::Ascending) != backward;
        scanned.sort_by(|a, b| a.0.cmp(&b.0));
        if !ascending_scan {
            scanned.reverse();
        }
        let more_in_scan = scanned.len() > query.limit;
        scanned.truncate(query.limit);
        let mut items: Vec<Versioned<Grant>> = scanned.into_iter().map(|(_, g)| g).collect();
        Ok(if backward {
            items.reverse();
            GrantPage {
                items,
                more_before: more_in_scan,
                more_after: probe,
            }
        } else {
            GrantPage {
                items,
                more_before: probe,
                more_after: more_in_scan,
            }
        })
    }
}

/// Reads a row's `version` and `record` columns.
fn versioned<T: Record>(row: &Row) -> Result<Versioned<T>, PostgresError> {
    versioned_in(row, "version", "record")
}

/// A versioned record from the named columns of a row.
fn versioned_in<T: Record>(
    row: &Row,
    version_column: &str,
    record_column: &str,
) -> Result<Versioned<T>, PostgresError> {
    let version: i64 = row.try_get(version_column)?;
    let version = u64::try_from(version)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| PostgresError::Corrupt {
            kind: T::KIND,
            reason: format!("version {version}"),
        })?;
    let Json(stored) = row
        .try_get::<_, Json<T::Stored>>(record_column)
        .map_err(|e| PostgresError::Corrupt {
            kind: T::KIND,
            reason: e.to_string(),
        })?;
    Ok(Versioned {
        record: T::from_stored(stored),
        version,
    })
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn get_client(
        &self,
        zone_id: &str,
        id: &str,
    ) -> tenure::Result<Option<Versioned<Client>>> {
        Ok(self.record(Read::Client { zone_id, id }).await?)
    }

    async fn zones(&self, after: Option<&str>, limit: usize) -> tenure::Result<Vec<String>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = self.query(Read::Zones { after, limit }).await?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(|e| PostgresError::from(e).into()))
            .collect()
    }

    async fn list_clients(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<Client>>> {
        let read = Read::Clients {
            zone_id,
            after,
            limit,
        };
        Ok(self.records(read).await?)
    }

    async fn get_grant(&self, zone_id: &str, id: &str) -> tenure::Result<Option<Versioned<Grant>>> {
        Ok(self.record(Read::Grant { zone_id, id }).await?)
    }

    async fn list_grants(&self, query: &GrantQuery) -> tenure::Result<GrantPage> {
        Ok(self.page(query).await?)
    }

    async fn count_grants(
        &self,
        zone_id: &str,
        filter: &GrantFilter,
        now: Timestamp,
    ) -> tenure::Result<u64> {
        let read = Read::CountGrants {
            zone_id,
            filter,
            now,
        };
        let rows = self.query(read).await?;
        let count: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(PostgresError::from)?,
            None => 0,
        };
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn expired_grants(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<Grant>>> {
        let read = Read::ExpiredGrants {
            zone_id,
            now,
            limit,
        };
        Ok(self.records(read).await?)
    }

    async fn grant_history(
        &self,
        zone_id: &str,
        grant_id: &str,
    ) -> tenure::Result<Vec<Transition>> {
        let rows = self.query(Read::History { zone_id, grant_id }).await?;
        let mut history = Vec::with_capacity(rows.len());
        for row in &rows {
            let Json(transition) = row.try_get::<_, Json<Transition>>("record").map_err(|e| {
                PostgresError::Corrupt {
                    kind: "transition",
                    reason: e.to_string(),
                }
            })?;
            history.push(transition);
        }
        Ok(history)
    }

    async fn get_token(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> tenure::Result<Option<Versioned<Token>>> {
        Ok(self.record(Read::Token { zone_id, digest }).await?)
    }

    async fn get_token_and_grant(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> tenure::Result<Option<TokenAndGrant>> {
        let rows = self.query(Read::TokenAndGrant { zone_id, digest }).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let token = versioned(row)?;
        let grant_version: Option<i64> =
            row.try_get("grant_version").map_err(PostgresError::from)?;
        let grant = match grant_version {
            Some(_) => Some(versioned_in(row, "grant_version", "grant_record")?),
            None => None,
        };
        Ok(Some((token, grant)))
    }

    async fn grant_tokens(
        &self,
        zone_id: &str,
        grant_id: &str,
    ) -> tenure::Result<Vec<Versioned<Token>>> {
        Ok(self
            .records(Read::GrantTokens { zone_id, grant_id })
            .await?)
    }

    async fn expired_tokens(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<Token>>> {
        let read = Read::ExpiredTokens {
            zone_id,
            now,
            limit,
        };
        Ok(self.records(read).await?)
    }

    async fn get_personal_grant(
        &self,
        zone_id: &str,
        id: &str,
    ) -> tenure::Result<Option<Versioned<PersonalGrant>>> {
        Ok(self.record(Read::PersonalGrant { zone_id, id }).await?)
    }

    async fn list_personal_grants(
        &self,
        zone_id: &str,
        user_id: &str,
        after: Option<&Keyset>,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<PersonalGrant>>> {
        let read = Read::PersonalGrants {
            zone_id,
            user_id,
            after,
            limit,
        };
        Ok(self.records(read).await?)
    }

    async fn list_zone_personal_grants(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<PersonalGrant>>> {
        let read = Read::ZonePersonalGrants {
            zone_id,
            after,
            limit,
        };
        Ok(self.records(read).await?)
    }

    async fn get_device_authorization(
        &self,
        zone_id: &str,
        device_code: &Digest,
    ) -> tenure::Result<Option<Versioned<DeviceAuthorization>>> {
        let read = Read::DeviceAuthorization {
            zone_id,
            device_code,
        };
        Ok(self.record(read).await?)
    }

    async fn find_device_authorization(
        &self,
        zone_id: &str,
        user_code: &str,
    ) -> tenure::Result<Option<Versioned<DeviceAuthorization>>> {
        let read = Read::DeviceByUserCode { zone_id, user_code };
        Ok(self.record(read).await?)
    }

    async fn expired_device_authorizations(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<DeviceAuthorization>>> {
        let read = Read::ExpiredDeviceAuthorizations {
            zone_id,
            now,
            limit,
        };
        Ok(self.records(read).await?)
    }

    async fn list_device_authorizations(
        &self,
        zone_id: &str,
        after: Option<&Digest>,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<DeviceAuthorization>>> {
        let read = Read::DeviceAuthorizations {
            zone_id,
            after,
            limit,
        };
        Ok(self.records(read).await?)
    }

    async fn get_authorization_code(
        &self,
        zone_id: &str,
        code: &Digest,
    ) -> tenure::Result<Option<Versioned<AuthorizationCode>>> {
        Ok(self
            .record(Read::AuthorizationCode { zone_id, code })
            .await?)
    }

    async fn expired_authorization_codes(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> tenure::Result<Vec<Versioned<AuthorizationCode>>> {
        let read = Read::ExpiredAuthorizationCodes {
            zone_id,
            now,
            limit,
        };
        Ok(self.records(read).await?)
    }

    #[tracing::instrument(
        name = "postgres.apply",
        level = "debug",
        skip_all,
        fields(writes = set.writes.len())
    )]
    async fn apply(&self, set: WriteSet) -> tenure::Result<()> {
        write::apply(&self.inner.pool, &self.inner.writes, &set).await
    }
}
