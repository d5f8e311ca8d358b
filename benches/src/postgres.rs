//! The PostgreSQL backend against hand-written SQL tables.
//!
//! Both sides use the database named by `TENURE_BENCH_POSTGRES_URL`, or else
//! `TENURE_TEST_POSTGRES_URL` (which `scripts/with-postgres.sh` sets); without
//! either there are no PostgreSQL cases. Every store, engine or raw, works in a
//! fresh schema of its own, dropped when the store is.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tenure::Storage;
use tenure_postgres::{PostgresOptions, PostgresStorage};

use crate::cases::{self, Backend, Keep};
use crate::raw_postgres::RawPostgres;
use crate::{Case, OrDie, Sizes, runtime};

/// The variables naming the database, in order of preference.
pub const URL_VARIABLES: [&str; 2] = ["TENURE_BENCH_POSTGRES_URL", "TENURE_TEST_POSTGRES_URL"];

/// The database the benchmarks use, if one is named.
pub fn database_url() -> Option<String> {
    URL_VARIABLES.iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|url| !url.trim().is_empty())
    })
}

fn url() -> String {
    database_url().or_die("no PostgreSQL database named (TENURE_BENCH_POSTGRES_URL)")
}

/// A schema name no other store of this run or another uses: `{prefix}_{pid}_{n}_{random}`.
pub fn unique_schema(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one((std::process::id(), n)) as u32;
    format!("{prefix}_{}_{n}_{random:08x}", std::process::id())
}

/// Drops a schema, with everything in it, when dropped. The drop runs on a thread
/// of its own with its own connection, since the store's runtime may be gone (or
/// running) by then; a failure is reported on stderr, not raised.
#[derive(Debug)]
pub struct DropSchema {
    url: String,
    schema: String,
}

impl DropSchema {
    /// A guard for `schema` in the database at `url`.
    pub fn new(url: &str, schema: &str) -> Self {
        DropSchema {
            url: url.to_owned(),
            schema: schema.to_owned(),
        }
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let dropped = std::thread::spawn(move || {
            runtime().block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                let connection = tokio::spawn(connection);
                let done = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .await;
                drop(client);
                let _ = connection.await;
                done
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("dropping schema {}: {e}", self.schema),
            Err(_) => eprintln!("dropping schema {}: the thread panicked", self.schema),
        }
    }
}

/// [`PostgresStorage`] (default pool and options, a fresh schema) and
/// [`RawPostgres`].
#[derive(Debug)]
pub struct Postgres;

impl Backend for Postgres {
    type Raw = RawPostgres;

    const WORKING_SET: u64 = 8;
    const POOL: u64 = 512;

    fn storage(runtime: &tokio::runtime::Runtime) -> (Arc<dyn Storage>, Keep) {
        let url = url();
        let guard = DropSchema::new(&url, &unique_schema("bench_engine"));
        let options = PostgresOptions::new().schema(guard.schema());
        let storage = runtime
            .block_on(PostgresStorage::connect_with(&url, options))
            .or_die("opening the PostgreSQL store");
        (Arc::new(storage), Box::new(guard))
    }

    fn raw(runtime: &tokio::runtime::Runtime) -> RawPostgres {
        let url = url();
        let guard = DropSchema::new(&url, &unique_schema("bench_raw"));
        RawPostgres::connect(runtime, &url, guard)
    }
}

/// Every PostgreSQL case; none when no database is named.
pub fn cases(sizes: &Sizes) -> Vec<Case> {
    if database_url().is_none() {
        return Vec::new();
    }
    cases::cases::<Postgres>("postgres", sizes, false)
}
