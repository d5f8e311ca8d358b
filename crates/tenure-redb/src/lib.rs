#![doc = include_str!("../docs/crate.md")]

mod codec;
mod commit;
mod config;
mod error;
mod integrity;
mod keys;
mod read;
mod tables;
mod write;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, DatabaseError, ReadableTable, TableHandle};
use tenure::{
    AuthorizationCode, Client, DeviceAuthorization, Digest, Grant, GrantFilter, GrantPage,
    GrantQuery, Keyset, PersonalGrant, Result, Storage, Timestamp, Token, TokenAndGrant,
    TokenAndGrantFacts, Transition, Versioned, WriteSet,
};

pub use config::{Durability, RedbConfig};
pub use error::{OpenError, StoreError};
pub use integrity::IntegrityReport;

use crate::commit::{Committer, Job};
use crate::read::Snapshot;
use crate::tables::{FORMAT_KEY, META, TABLES};
use crate::write::{Refusal, Tx};

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The database file in a store's directory.
pub const DATABASE_FILE: &str = "tenure.redb";

/// A tenure store in a redb database. Cheap to clone: clones share the database.
#[derive(Clone)]
pub struct RedbStorage {
    inner: Arc<Inner>,
}

/// What the store and its background flusher share.
struct Shared {
    db: Database,
    committer: Committer,
}

struct Inner {
    shared: Arc<Shared>,
    durability: Durability,
    path: PathBuf,
    /// The thread that makes [`Durability::Periodic`] commits durable.
    flusher: Option<Flusher>,
    /// Removes a temporary store's directory; declared last, so it runs after the
    /// database is closed.
    _temporary: Option<RemoveOnDrop>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The flusher holds the database too: stop it first, so that the database
        // is closed (and its lock released) by the time the last handle is dropped.
        drop(self.flusher.take());
        // Periodic writes not yet durable become durable now; there is no one left
        // to tell if that fails, and what is lost is whole write sets.
        let _ = self.shared.committer.sync(&self.shared.db);
    }
}

/// The background thread of [`Durability::Periodic`]: every interval, one
/// immediate commit if anything was committed since the last.
struct Flusher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    fn start(shared: Arc<Shared>, every: Duration) -> std::io::Result<Flusher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let every = every.max(Duration::from_millis(1));
        let thread = std::thread::Builder::new()
            .name("tenure-redb-flush".to_owned())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    // A failure leaves the commits marked for the next round.
                    let _ = shared.committer.sync(&shared.db);
                }
            })?;
        Ok(Flusher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A directory removed when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl std::fmt::Debug for RedbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStorage")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .finish_non_exhaustive()
    }
}

impl RedbStorage {
    /// Opens the store in the directory `path`, creating it if it does not exist,
    /// with the default settings ([`Durability::Immediate`]).
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStorage, OpenError> {
        RedbStorage::open_with(path, RedbConfig::default())
    }

    /// Opens the store in the directory `path`, creating it if it does not exist.
    ///
    /// Blocks while redb checks the file (and, after a crash, recovers it); call it
    /// before serving, or from a blocking task.
    pub fn open_with(path: impl AsRef<Path>, config: RedbConfig) -> Result<RedbStorage, OpenError> {
        RedbStorage::open_at(path.as_ref().to_path_buf(), config, false)
    }

    /// A fresh store in a new directory under the system's temporary directory,
    /// removed when the last handle is dropped; [`Durability::Periodic`]. For tests.
    pub fn temporary() -> Result<RedbStorage, OpenError> {
        RedbStorage::temporary_with(RedbConfig::new().durability(Durability::Periodic))
    }

    /// A fresh store like [`RedbStorage::temporary`]'s, with these settings: for
    /// benchmarks, which measure the default durability.
    pub fn temporary_with(config: RedbConfig) -> Result<RedbStorage, OpenError> {
        static STORES: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "tenure-redb-{}-{}-{nanos}",
            std::process::id(),
            STORES.fetch_add(1, Ordering::Relaxed)
        ));
        RedbStorage::open_at(path, config, true)
    }

    fn open_at(
        path: PathBuf,
        config: RedbConfig,
        temporary: bool,
    ) -> Result<RedbStorage, OpenError> {
        let io = |source| OpenError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&path).map_err(io)?;
        // From here on a temporary directory is removed however opening ends.
        let temporary = temporary.then(|| RemoveOnDrop(path.clone()));
        let file = path.join(DATABASE_FILE);
        let opened = std::panic::catch_unwind(|| {
            redb::Builder::new()
                .set_cache_size(config.cache_size)
                // The format redb 3 and later read, so that a later redb can open
                // the file without an upgrade.
                .create_with_file_format_v3(true)
                .create(&file)
        });
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => {
                return Err(OpenError::Locked { path });
            }
            Ok(Err(e)) => {
                return Err(OpenError::Redb {
                    path,
                    source: Box::new(e.into()),
                });
            }
            // redb 2.6 panics on some files that a later redb has written (a
            // downgrade): refuse them like any other file it cannot read.
            Err(_) => {
                return Err(OpenError::Redb {
                    path,
                    source: Box::new(redb::Error::Corrupted(
                        "redb panicked while opening the file; was it written by a newer redb?"
                            .to_owned(),
                    )),
                });
            }
        };
        check_format(&db, &path)?;
        let shared = Arc::new(Shared {
            db,
            committer: Committer::new(&config),
        });
        let flusher = match config.durability {
            Durability::Periodic => {
                Some(Flusher::start(shared.clone(), config.flush_every).map_err(io)?)
            }
            Durability::Immediate => None,
        };
        Ok(RedbStorage {
            inner: Arc::new(Inner {
                shared,
                durability: config.durability,
                path,
                flusher,
                _temporary: temporary,
            }),
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How writes are made durable.
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// Makes every write set applied so far durable: in [`Durability::Periodic`]
    /// mode, one immediate commit if anything was committed since the last; in
    /// [`Durability::Immediate`] mode every applied set already is.
    pub async fn flush(&self) -> Result<()> {
        let shared = self.inner.shared.clone();
        Ok(blocking(move || shared.committer.sync(&shared.db)).await?)
    }

    /// How many redb write transactions this handle (and its clones) has committed
    /// for write sets. Group commit keeps it below the number of sets when writers
    /// overlap.
    pub fn commit_count(&self) -> u64 {
        self.inner.shared.committer.count()
    }

    /// The bytes the database file takes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        let file = self.inner.path.join(DATABASE_FILE);
        fs::metadata(&file)
            .map(|m| m.len())
            .map_err(|e| StoreError::from(redb::StorageError::Io(e)).into())
    }

    /// Checks that every record decodes and sits under its own key, that every index
    /// entry points to a record that has it and every record is in each of its
    /// indexes, and that every count agrees with its index. For diagnostics and crash
    /// tests: it reads the whole store, from one snapshot, without holding writers
    /// off.
    pub async fn check_integrity(&self) -> Result<IntegrityReport> {
        self.blocking(integrity::check).await
    }

    /// Runs a read on the caller's thread, from one snapshot.
    fn point<R>(&self, f: impl FnOnce(&Snapshot) -> Result<R, StoreError>) -> Result<R> {
        let snapshot = Snapshot::begin(&self.inner.shared.db)?;
        Ok(f(&snapshot)?)
    }

    /// Runs a read from one snapshot off the async executor's worker threads.
    async fn blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Snapshot) -> Result<R, StoreError> + Send + 'static,
    {
        let shared = self.inner.shared.clone();
        Ok(blocking(move || f(&Snapshot::begin(&shared.db)?)).await?)
    }
}

/// Runs `f` on tokio's blocking pool, or inline outside a tokio runtime.
async fn blocking<R, F>(f: F) -> Result<R, StoreError>
where
    R: Send + 'static,
    F: FnOnce() -> Result<R, StoreError> + Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    tokio::task::spawn_blocking(f).await?
}

/// What a database's format marker says.
enum Marker {
    /// This build's format (written just now, if the database was empty).
    Current,
    /// Another format version.
    Other(u32),
    /// No marker, but tables of someone else's.
    Foreign,
}

/// Reads the format marker, or writes it into a database that holds nothing yet,
/// with every table, in one commit; creates the tables a store of this format
/// written by an earlier build lacks.
fn check_format(db: &Database, path: &Path) -> Result<(), OpenError> {
    let marker = read_or_write_marker(db).map_err(|e| OpenError::Redb {
        path: path.to_path_buf(),
        source: match e {
            StoreError::Redb(source) => source,
            // Only redb fails here; anything else is reported as it reads.
            other => Box::new(redb::Error::Corrupted(other.to_string())),
        },
    })?;
    match marker {
        Marker::Current => Ok(()),
        Marker::Other(found) => Err(OpenError::UnsupportedFormat {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        }),
        Marker::Foreign => Err(OpenError::NotATenureStore {
            path: path.to_path_buf(),
        }),
    }
}

fn read_or_write_marker(db: &Database) -> Result<Marker, StoreError> {
    let txn = db.begin_write()?;
    let found = txn.open_table(META)?.get(FORMAT_KEY)?.map(|v| {
        <[u8; 4]>::try_from(v.value())
            .map(u32::from_be_bytes)
            // A marker of another size is from a format this build cannot know.
            .unwrap_or(u32::MAX)
    });
    match found {
        Some(FORMAT_VERSION) => {
            let present = txn
                .list_tables()?
                .map(|t| t.name().to_owned())
                .collect::<Vec<_>>();
            if TABLES.iter().all(|t| present.iter().any(|p| p == t.name())) {
                txn.abort()?;
            } else {
                // Tables added since the store was created (the authorization
                // codes and their expiry index): opening them creates them, empty.
                Tx::open(&txn)?;
                txn.commit()?;
            }
            Ok(Marker::Current)
        }
        Some(other) => {
            txn.abort()?;
            Ok(Marker::Other(other))
        }
        None => {
            if txn.list_tables()?.any(|t| t.name() != META.name()) {
                txn.abort()?;
                return Ok(Marker::Foreign);
            }
            Tx::open(&txn)?;
            txn.open_table(META)?
                .insert(FORMAT_KEY, FORMAT_VERSION.to_be_bytes().as_slice())?;
            txn.commit()?;
            Ok(Marker::Current)
        }
    }
}

#[async_trait]
impl Storage for RedbStorage {
    async fn zones(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let after = after.map(str::to_owned);
        self.blocking(move |s| read::zones(s, after.as_deref(), limit))
            .await
    }

    async fn get_client(&self, zone_id: &str, id: &str) -> Result<Option<Versioned<Client>>> {
        self.point(|s| read::client(s, zone_id, id))
    }

    async fn list_clients(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned<Client>>> {
        let (zone, after) = (zone_id.to_owned(), after.map(str::to_owned));
        self.blocking(move |s| read::clients(s, &zone, after.as_deref(), limit))
            .await
    }

    async fn get_grant(&self, zone_id: &str, id: &str) -> Result<Option<Versioned<Grant>>> {
        self.point(|s| read::grant(s, zone_id, id))
    }

    async fn list_grants(&self, query: &GrantQuery) -> Result<GrantPage> {
        let query = query.clone();
        self.blocking(move |s| read::page(s, &query)).await
    }

    async fn count_grants(
        &self,
        zone_id: &str,
        filter: &GrantFilter,
        now: Timestamp,
    ) -> Result<u64> {
        let (zone, filter) = (zone_id.to_owned(), filter.clone());
        self.blocking(move |s| read::count_grants(s, &zone, &filter, now))
            .await
    }

    async fn expired_grants(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<Grant>>> {
        let zone = zone_id.to_owned();
        self.blocking(move |s| read::expired_grants(s, &zone, now, limit))
            .await
    }

    async fn grant_history(&self, zone_id: &str, grant_id: &str) -> Result<Vec<Transition>> {
        let (zone, id) = (zone_id.to_owned(), grant_id.to_owned());
        self.blocking(move |s| read::history(s, &zone, &id)).await
    }

    async fn get_token(&self, zone_id: &str, digest: &Digest) -> Result<Option<Versioned<Token>>> {
        self.point(|s| read::token(s, zone_id, digest.as_bytes()))
    }

    async fn get_token_and_grant(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> Result<Option<TokenAndGrant>> {
        self.point(|s| read::token_with(s, zone_id, digest.as_bytes(), read::grant))
    }

    async fn get_token_and_grant_facts(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> Result<Option<TokenAndGrantFacts>> {
        self.point(|s| read::token_with(s, zone_id, digest.as_bytes(), read::grant_facts))
    }

    async fn grant_tokens(&self, zone_id: &str, grant_id: &str) -> Result<Vec<Versioned<Token>>> {
        let (zone, id) = (zone_id.to_owned(), grant_id.to_owned());
        self.blocking(move |s| read::grant_tokens(s, &zone, &id))
            .await
    }

    async fn expired_tokens(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<Token>>> {
        let zone = zone_id.to_owned();
        self.blocking(move |s| read::expired_tokens(s, &zone, now, limit))
            .await
    }

    async fn get_personal_grant(
        &self,
        zone_id: &str,
        id: &str,
    ) -> Result<Option<Versioned<PersonalGrant>>> {
        self.point(|s| read::personal(s, zone_id, id))
    }

    async fn list_personal_grants(
        &self,
        zone_id: &str,
        user_id: &str,
        after: Option<&Keyset>,
        limit: usize,
    ) -> Result<Vec<Versioned<PersonalGrant>>> {
        let (zone, user, after) = (zone_id.to_owned(), user_id.to_owned(), after.cloned());
        self.blocking(move |s| read::personal_of(s, &zone, &user, after.as_ref(), limit))
            .await
    }

    async fn list_zone_personal_grants(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned<PersonalGrant>>> {
        let (zone, after) = (zone_id.to_owned(), after.map(str::to_owned));
        self.blocking(move |s| read::personal_in_zone(s, &zone, after.as_deref(), limit))
            .await
    }

    async fn get_device_authorization(
        &self,
        zone_id: &str,
        device_code: &Digest,
    ) -> Result<Option<Versioned<DeviceAuthorization>>> {
        self.point(|s| read::device(s, zone_id, device_code.as_bytes()))
    }

    async fn find_device_authorization(
        &self,
        zone_id: &str,
        user_code: &str,
    ) -> Result<Option<Versioned<DeviceAuthorization>>> {
        self.point(|s| read::device_by_user_code(s, zone_id, user_code))
    }

    async fn expired_device_authorizations(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<DeviceAuthorization>>> {
        let zone = zone_id.to_owned();
        self.blocking(move |s| read::expired_devices(s, &zone, now, limit))
            .await
    }

    async fn list_device_authorizations(
        &self,
        zone_id: &str,
        after: Option<&Digest>,
        limit: usize,
    ) -> Result<Vec<Versioned<DeviceAuthorization>>> {
        let zone = zone_id.to_owned();
        let after = after.map(|d| *d.as_bytes());
        self.blocking(move |s| read::devices(s, &zone, after.as_ref(), limit))
            .await
    }

    async fn get_authorization_code(
        &self,
        zone_id: &str,
        code: &Digest,
    ) -> Result<Option<Versioned<AuthorizationCode>>> {
        self.point(|s| read::authorization_code(s, zone_id, code.as_bytes()))
    }

    async fn expired_authorization_codes(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<AuthorizationCode>>> {
        let zone = zone_id.to_owned();
        self.blocking(move |s| read::expired_authorization_codes(s, &zone, now, limit))
            .await
    }

    async fn apply(&self, set: WriteSet) -> Result<()> {
        if set.is_empty() {
            return Ok(());
        }
        let (job, outcome) = Job::new(write::prepare(&set)?);
        if self.inner.shared.committer.enqueue(job) {
            let shared = self.inner.shared.clone();
            blocking(move || {
                shared.committer.lead(&shared.db);
                Ok(())
            })
            .await?;
        }
        match outcome.await {
            Ok(outcome) => Ok(outcome?),
            Err(_) => Err(Refusal::Store(StoreError::Abandoned).into()),
        }
    }
}
