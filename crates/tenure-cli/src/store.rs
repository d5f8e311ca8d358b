//! Which store a command runs on: sled in a directory (the default), redb in a
//! directory, PostgreSQL, or memory.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tenure::Storage;
use tenure_memory::MemoryStorage;
use tenure_postgres::{PostgresOptions, PostgresStorage, TlsMode};
use tenure_redb::{RedbConfig, RedbStorage};
use tenure_sled::{SledConfig, SledStorage};

use crate::error::CliError;

/// Where the data lives, from the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The sled store's directory.
    #[arg(
        long,
        env = "TENURE_DATA",
        default_value = "./tenure-data",
        global = true
    )]
    pub data: PathBuf,
    /// Run on an empty in-memory store instead (nothing is kept).
    #[arg(long, global = true, conflicts_with_all = ["data", "postgres", "redb"])]
    pub memory: bool,
    /// Run on the redb store in this directory instead of sled.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "TENURE_REDB",
        conflicts_with_all = ["data", "postgres"]
    )]
    pub redb: Option<PathBuf>,
    /// Run on a PostgreSQL database shared with other processes.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "TENURE_POSTGRES_URL",
        // The URL may hold a password: --help must not print it.
        hide_env_values = true,
        conflicts_with = "data"
    )]
    pub postgres: Option<String>,
}

/// Where a store is and how to open it: what [`StoreArgs`] say, or what `serve`
/// resolved from its configuration.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// An empty in-memory store.
    Memory,
    /// Sled in this directory.
    Sled(PathBuf),
    /// redb in this directory.
    Redb(PathBuf),
    /// PostgreSQL.
    Postgres {
        /// The connection URL, which may hold a password.
        url: String,
        /// How the pool connects.
        pool: PostgresPool,
    },
}

/// How `serve` sets up the PostgreSQL pool; `None` keeps the backend's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostgresPool {
    /// The most connections the pool opens.
    pub size: Option<usize>,
    /// How long a request waits for a busy pool's connection.
    pub wait_timeout: Option<Duration>,
    /// How long making a new connection may take.
    pub connect_timeout: Option<Duration>,
    /// Whether and how connections are encrypted.
    pub tls: Option<TlsMode>,
}

impl PostgresPool {
    /// The backend's options for this pool.
    fn options(&self) -> PostgresOptions {
        let mut options = PostgresOptions::new();
        if let Some(n) = self.size {
            options = options.max_connections(n);
        }
        if let Some(t) = self.wait_timeout {
            options = options.wait_timeout(t);
        }
        if let Some(t) = self.connect_timeout {
            options = options.connect_timeout(t);
        }
        if let Some(mode) = &self.tls {
            options = options.tls(mode.clone());
        }
        options
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Memory => f.write_str("Memory"),
            StoreLocation::Sled(dir) => f.debug_tuple("Sled").field(dir).finish(),
            StoreLocation::Redb(dir) => f.debug_tuple("Redb").field(dir).finish(),
            StoreLocation::Postgres { pool, .. } => f
                .debug_struct("Postgres")
                .field("url", &"[redacted]")
                .field("pool", pool)
                .finish(),
        }
    }
}

impl StoreLocation {
    /// The store the command-line arguments (and their environment variables) name.
    pub fn from_args(args: &StoreArgs) -> StoreLocation {
        if args.memory {
            StoreLocation::Memory
        } else if let Some(url) = &args.postgres {
            StoreLocation::postgres(url)
        } else if let Some(dir) = &args.redb {
            StoreLocation::Redb(dir.clone())
        } else {
            StoreLocation::Sled(args.data.clone())
        }
    }

    /// PostgreSQL at `url`, with the default pool.
    pub fn postgres(url: &str) -> StoreLocation {
        StoreLocation::Postgres {
            url: url.to_owned(),
            pool: PostgresPool::default(),
        }
    }

    /// What the store is, for a person: `the sled store in DIR`.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Memory => "an in-memory store".to_owned(),
            StoreLocation::Sled(dir) => format!("the sled store in {}", dir.display()),
            StoreLocation::Redb(dir) => format!("the redb store in {}", dir.display()),
            StoreLocation::Postgres { .. } => "PostgreSQL".to_owned(),
        }
    }

    /// The same location, with this PostgreSQL pool (ignored by other stores).
    pub fn with_pool(self, pool: PostgresPool) -> StoreLocation {
        match self {
            StoreLocation::Postgres { url, .. } => StoreLocation::Postgres { url, pool },
            other => other,
        }
    }
}

/// An open store.
#[derive(Debug, Clone)]
pub enum Store {
    /// Sled, durable.
    Sled(SledStorage),
    /// redb, durable.
    Redb(RedbStorage),
    /// Memory.
    Memory(MemoryStorage),
    /// PostgreSQL, shared.
    Postgres(PostgresStorage),
}

impl Store {
    /// Opens the store the arguments name, creating a sled or redb store that does
    /// not exist yet; both in Immediate durability, so an acknowledged write survives
    /// the process being killed.
    pub async fn create(args: &StoreArgs) -> Result<Store, CliError> {
        Store::open_with(args, true).await
    }

    /// Opens the store the arguments name, which must exist.
    pub async fn open(args: &StoreArgs) -> Result<Store, CliError> {
        Store::open_with(args, false).await
    }

    async fn open_with(args: &StoreArgs, create: bool) -> Result<Store, CliError> {
        Store::open_at(&StoreLocation::from_args(args), create).await
    }

    /// Opens the store at `location`, creating a sled or redb store that does not
    /// exist yet when `create` is set.
    pub async fn open_at(location: &StoreLocation, create: bool) -> Result<Store, CliError> {
        match location {
            StoreLocation::Memory => Ok(Store::Memory(MemoryStorage::new())),
            StoreLocation::Postgres { url, pool } => {
                // The backend creates its schema if it is missing, in one transaction.
                let storage = PostgresStorage::connect_with(url, pool.options())
                    .await
                    .map_err(|e| CliError::Postgres(Box::new(e)))?;
                Ok(Store::Postgres(storage))
            }
            StoreLocation::Sled(data) => {
                if !create && !data.exists() {
                    return Err(missing(data, "--data or TENURE_DATA"));
                }
                let config = SledConfig::new().durability(tenure_sled::Durability::Immediate);
                Ok(Store::Sled(SledStorage::open_with(data, config)?))
            }
            StoreLocation::Redb(dir) => {
                // The database file, not only the directory: reading from a directory
                // that holds something else (a sled store, say) must not leave an
                // empty redb database in it.
                if !create && !dir.join(tenure_redb::DATABASE_FILE).exists() {
                    return Err(missing(dir, "--redb or TENURE_REDB"));
                }
                let config = RedbConfig::new().durability(tenure_redb::Durability::Immediate);
                Ok(Store::Redb(RedbStorage::open_with(dir, config)?))
            }
        }
    }

    /// The store as the engine takes it.
    pub fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Store::Sled(s) => Arc::new(s.clone()),
            Store::Redb(r) => Arc::new(r.clone()),
            Store::Memory(m) => Arc::new(m.clone()),
            Store::Postgres(p) => Arc::new(p.clone()),
        }
    }

    /// Makes everything written durable (PostgreSQL commits are already).
    pub async fn flush(&self) -> Result<(), CliError> {
        match self {
            Store::Sled(s) => s.flush().await?,
            Store::Redb(r) => r.flush().await?,
            Store::Memory(_) | Store::Postgres(_) => {}
        }
        Ok(())
    }
}

/// A read command's refusal of a store directory that does not exist: reading never
/// creates a store.
fn missing(dir: &std::path::Path, set: &str) -> CliError {
    CliError::Usage(format!(
        "no store at {} (set {set}, or create one with `tenure import` or `tenure serve`)",
        dir.display()
    ))
}
