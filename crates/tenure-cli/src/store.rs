//! Which store a command runs on: sled in a directory (the default), or memory.

use std::path::PathBuf;
use std::sync::Arc;

use tenure::Storage;
use tenure_memory::MemoryStorage;
use tenure_postgres::PostgresStorage;
use tenure_sled::{Durability, SledConfig, SledStorage};

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
    #[arg(long, global = true, conflicts_with_all = ["data", "postgres"])]
    pub memory: bool,
    /// Run on a PostgreSQL database shared with other processes.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "TENURE_POSTGRES_URL",
        conflicts_with = "data"
    )]
    pub postgres: Option<String>,
}

/// An open store.
#[derive(Debug, Clone)]
pub enum Store {
    /// Sled, durable.
    Sled(SledStorage),
    /// Memory.
    Memory(MemoryStorage),
    /// PostgreSQL, shared.
    Postgres(PostgresStorage),
}

impl Store {
    /// Opens the store the arguments name, creating a sled store that does not
    /// exist yet; sled in Immediate durability, so an acknowledged write survives the
    /// process being killed.
    pub async fn create(args: &StoreArgs) -> Result<Store, CliError> {
        Store::open_with(args, true).await
    }

    /// Opens the store the arguments name, which must exist.
    pub async fn open(args: &StoreArgs) -> Result<Store, CliError> {
        Store::open_with(args, false).await
    }

    async fn open_with(args: &StoreArgs, create: bool) -> Result<Store, CliError> {
        if args.memory {
            return Ok(Store::Memory(MemoryStorage::new()));
        }
        if let Some(url) = &args.postgres {
            // The backend creates its schema if it is missing, in one transaction.
            let storage = PostgresStorage::connect(url)
                .await
                .map_err(|e| CliError::Postgres(Box::new(e)))?;
            return Ok(Store::Postgres(storage));
        }
        if !create && !args.data.exists() {
            return Err(CliError::Usage(format!(
                "no store at {} (set --data or TENURE_DATA, or create one with `tenure import` or `tenure serve`)",
                args.data.display()
            )));
        }
        let config = SledConfig::new().durability(Durability::Immediate);
        Ok(Store::Sled(SledStorage::open_with(&args.data, config)?))
    }

    /// The store as the engine takes it.
    pub fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Store::Sled(s) => Arc::new(s.clone()),
            Store::Memory(m) => Arc::new(m.clone()),
            Store::Postgres(p) => Arc::new(p.clone()),
        }
    }

    /// Makes everything written durable (PostgreSQL commits are already).
    pub async fn flush(&self) -> Result<(), CliError> {
        if let Store::Sled(s) = self {
            s.flush().await?;
        }
        Ok(())
    }
}
