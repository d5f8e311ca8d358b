//! Durable embedded storage backend for the tenure grant-lifecycle engine, on sled
//! 0.34 (the stable line: the 1.0 alphas have no transactions).
//!
//! One auth-server process keeps its grants in a directory on local disk, with no
//! server to run. Every index the [`Storage`] trait needs is a sled tree, so a page,
//! a token lookup or a sweep never scans a zone, and every write set is one sled
//! transaction over all trees: applied whole or not at all, and recovered whole or
//! not at all after a crash.
//!
//! ```
//! use std::sync::Arc;
//! use tenure::{AuthorizeRequest, ClientRegistration, Engine};
//! use tenure_sled::{Durability, SledConfig, SledStorage};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("grants");
//! let store = SledStorage::open_with(&path, SledConfig::new().durability(Durability::Immediate))?;
//! let engine = Engine::builder(Arc::new(store)).build();
//! engine
//!     .register_client("zone-1", ClientRegistration::new("Calendar").id("calendar").scopes(["read"]))
//!     .await?;
//! let issued = engine
//!     .authorize("zone-1", AuthorizeRequest::new("calendar", "alice", "calendar-api", ["read"]))
//!     .await?;
//! // Acknowledged: with `Immediate`, the grant survives the process being killed now.
//! drop(engine);
//!
//! let engine = Engine::builder(Arc::new(SledStorage::open(&path)?)).build();
//! assert_eq!(engine.get_grant("zone-1", &issued.grant.id).await?.user_id, "alice");
//! # Ok(())
//! # }
//! ```
//!
//! # Durability
//!
//! [`Durability::Immediate`] (the default) flushes sled's log before
//! [`Storage::apply`] returns, so a write the engine acknowledged survives the process
//! being killed (the crash test kills a writing process with SIGKILL again and again
//! and finds every acknowledged write). Writers waiting at the same time share one
//! flush (group commit), so N concurrent writers cost far fewer than N flushes.
//! [`Durability::Periodic`] leaves flushing to sled's background thread (every
//! [`SledConfig::flush_every`], 500 ms by default): faster, and a crash may lose the
//! writes of the last interval; what survives is still whole write sets, never half
//! of one.
//!
//! ## Measured cost
//!
//! `cargo bench -p tenure-sled --bench durability`: each writer authorizes grants
//! through the engine (a client read, then one write set of a grant, two tokens and
//! a transition), all writers at once, on the 2-core development machine (ext4 on a
//! virtual disk, where a flush takes well under a millisecond). Write sets per
//! second, and flushes per write set in `Immediate` mode:
//!
//! | writers | Immediate | Periodic | Periodic / Immediate | flushes per set |
//! | ---: | ---: | ---: | ---: | ---: |
//! | 1 | 1,270/s | 1,860/s | 1.47 | 1.00 |
//! | 4 | 1,580/s | 2,150/s | 1.36 | 0.33 |
//! | 16 | 2,540/s | 2,550/s | 1.01 | 0.13 |
//!
//! - One writer in `Immediate` mode pays one flush per write set: about a third
//!   less throughput than `Periodic` here, more on a disk with slower flushes.
//! - Group commit: 16 concurrent writers need 0.13 flushes per set (about two per
//!   round of 16) and 4 writers 0.33, so `Immediate` throughput grows with the
//!   writers (16 writers: 2.0 times one writer) and catches up with `Periodic`.
//! - These runs shared the machine with parallel builds (load average 5 to 7 on 2
//!   cores), so throughput varies by about a third between runs (a second run gave
//!   1,410, 1,240 and 1,360/s for `Immediate` and 1,160, 1,680 and 1,680/s for
//!   `Periodic`); the flushes per set were the same in every run.
//!
//! sled 0.34 keeps commits out while it flushes, so the flush leader first lets the
//! commits already under way finish, then flushes them all at once; a lone writer
//! never waits.
//!
//! # Disk use
//!
//! `cargo run --release -p tenure-sled --example disk_use`: 100,000 grants authorized
//! through the engine (1,000 users, 10 resources, each with an access and a refresh
//! token and its history), then a quarter revoked, a quarter expired, and the sweep
//! run two hours on (which also prunes every token past its expiry: all the
//! one-hour access tokens, and the refresh tokens of the expired grants), and those
//! half of the grants deleted. Bytes of every file in the store's directory, after a
//! flush (format 2):
//!
//! | state | on disk | per grant |
//! | --- | ---: | ---: |
//! | 100,000 grants | 1,119 MiB | 11.7 KB per grant |
//! | 25,000 revoked, 25,000 expired and swept, 125,000 tokens pruned | 1,220 MiB | 12.8 KB per grant created |
//! | those 50,000 deleted | 1,271 MiB | 26.6 KB per grant left |
//! | the same, reopened | 1,287 MiB | 27.0 KB per grant left |
//!
//! The live keys and values are 1,034 bytes per grant left: sled 0.34 is
//! log-structured, every transaction writes new versions of the tree pages it
//! touches, and it reclaims the space of old versions only as it rewrites whole
//! segments. Deleting grants or pruning tokens does not make the store smaller (the
//! deletions are writes too); budget for about twenty times the live data, and for
//! the peak. (Format 1 took 982 MiB for the first state: format 2 adds the token
//! expiry index and a grant's refresh chain, and its transactions touch one more
//! tree. Revoking no longer rewrites a grant's tokens.)
//!
//! # Format
//!
//! Records are encoded with [postcard](https://docs.rs/postcard) behind a leading
//! format byte. postcard is compact (variable-length integers, no field names), has a
//! stable, documented wire format and is widely used; it is not self-describing, so
//! the records are first converted into this crate's own plain storage structs (every
//! field always present, times as seconds and nanoseconds, digests as 32 bytes), never
//! serialized in the core's JSON shape. The format byte names the layout of the
//! record's kind: a layout never changes, a change is a new layout with the next
//! byte. The store's format version, [`FORMAT_VERSION`], is written when the store is
//! created; opening a store of a newer version, or of one older than any this build
//! upgrades, is [`OpenError::UnsupportedFormat`], never a misread.
//!
//! Keys are built so that sled's byte order is the index order: strings escaped and
//! terminated (so zone `a` and zone `ab` never share a prefix), times as big-endian
//! milliseconds with the sign bit flipped, ids and digests last and raw.
//!
//! ## Additions within format 2
//!
//! Format 2 has grown since it was first written, without a new format version,
//! because nothing already stored changes shape:
//!
//! - **Clients** gained the secret a rotation replaced
//!   ([`Client::previous_secret`](tenure::Client::previous_secret)), in a new layout
//!   with the record format byte 2. Clients are always written in it; one written in
//!   the layout of byte 1, which is kept for reading, reads as it was, without a
//!   previous secret, until it is next put.
//! - **Authorization codes** are kept in two trees of their own,
//!   `authorization_codes` and `authorization_code_expiry`. sled creates a tree the
//!   first time it is opened, so a store written before them gets both, empty, when
//!   it is next opened.
//! - **Transition reasons** `CodeReused` and `ClientDisabled` were appended to the
//!   stored reasons. postcard keeps a variant as its index, so every reason stored
//!   before reads as it did.
//!
//! Nothing already stored is rewritten, and the upgrade from format 1 below is
//! unchanged (it leaves clients in the layout of byte 1, which reads as above). A
//! build from before these additions still opens a store this build has written,
//! but reports its clients of byte 2 and its transitions with the new reasons as
//! errors ([`StoreError::UnknownRecordFormat`] and [`StoreError::Decode`]) rather
//! than misreading them, and does not see its authorization codes; going back to
//! such a build is not supported.
//!
//! ## Upgrading a store of format 1
//!
//! Format 2 stores a grant's [`RefreshChain`](tenure::RefreshChain) and a token's
//! refresh `generation` (format 1 stored a token's `spent_at` instead), and keeps the
//! token expiry index. [`SledStorage::open`] upgrades a store of format 1 in place,
//! once, before it returns; every other tree and record is the same in both formats
//! and is left as it is:
//!
//! - every grant is rewritten with [`RefreshChain::LEGACY`](tenure::RefreshChain::LEGACY);
//! - every token is rewritten with the generation
//!   [`Token::legacy_generation`] gives it (1 if it was not spent: it is its
//!   grant's current refresh token; 0 if it was: presenting it again is reuse, and
//!   revokes the grant), and gets its entry in the token expiry index;
//! - then the format marker is set to 2.
//!
//! Versions are kept, so nothing read before the upgrade goes stale because of it.
//! The upgrade is resumable rather than one transaction (a large store would not fit
//! one): each record's format byte says whether it is still to be rewritten, records
//! are rewritten in batches of 1,024, each batch one atomic sled write (a token in
//! the same transaction as its expiry entry), and the marker moves to 2 last, after
//! a flush. A crash at any moment leaves a store that still says format 1 and whose
//! every record is whole in one format or the other; opening it again skips what was
//! done and finishes the rest. A failure while upgrading is
//! [`OpenError::Upgrade`]; whatever was rewritten is kept. The upgrade reads and
//! writes each grant and token once, and nothing else.
//!
//! # Indexes
//!
//! Each record kind and each index of the [`Storage`] contract is a sled tree (grants
//! by creation, user, resource, client and status; the expiry index of grants stored
//! active; tokens by digest, by grant and by expiry; history by grant and sequence;
//! personal grants by user; device authorizations by user code and by expiry;
//! authorization codes by digest and by expiry). A listing walks the narrowest index
//! its filter names, forwards or backwards from its keyset, and stops at the page's
//! end, exactly as the in-memory store does; per-index counts, kept in the same
//! transactions, pick the narrowest index and answer a count with a single filter in
//! one read.
//!
//! The token expiry index holds every stored token under `(zone, expires_at,
//! digest)`, written and removed in the transaction that puts, replaces or deletes
//! the token, so [`Storage::expired_tokens`] is a range scan that stops at the first
//! token not yet expired. Deleting a grant also deletes any token still listed under
//! it (the engine deletes them in the same set anyway), with its index entries, as
//! the in-memory store does, so no token outlives its grant. A
//! [`tenure::Write::Check`] reads its record's version inside the transaction, like
//! every other write's expectation, and writes nothing.
//!
//! # Testing
//!
//! The crate runs `tenure-testkit`'s conformance suite, its concurrency scenarios and
//! its model-based test (whose reopen operation closes the store and opens its
//! directory again); a differential test that asks this store and the in-memory one
//! every query after random write sets; a crash test that kills a writing child
//! process with SIGKILL 20 times (`TENURE_SLED_CRASH_CYCLES` for more) and checks every
//! acknowledged write and every index; upgrade tests that write a store of format 1
//! by hand (with a copy of that format's grant, token and client layouts), open it,
//! and check every record, the token expiry index, and that the engine rotates an
//! unspent legacy refresh token and revokes the grant of a spent one presented
//! again, and that an upgrade cut short by hand, or by SIGKILL at a random moment
//! (`TENURE_SLED_UPGRADE_KILLS` times, 8 by default), is finished by the next open;
//! a test that opens a store of format 2 written before authorization codes were
//! stored, with a client in its first layout, and reads and writes both; and
//! [`SledStorage::check_integrity`] after every reopen. [`SledStorage::temporary`]
//! gives a test a fresh store that cleans up after itself.
//!
//! # Concurrency
//!
//! sled's calls are synchronous and may wait for the disk. Commits, flushes and
//! every read of more than one key (pages, counts, a grant's tokens, history, the
//! expiry indexes) run on
//! tokio's blocking pool (`spawn_blocking`), never on the executor's worker threads;
//! outside a tokio runtime they run inline. Point reads (one record by key, and a
//! token with its grant) run inline on the caller's thread: sled serves them from
//! its page cache in about a microsecond, several times less than the hop to the
//! blocking pool costs, and introspection, the read behind every request, is one of
//! them. On a cache miss a point read waits for the disk on the caller's thread, as
//! reading a small file would. Every call of
//! the trait sees each write set entirely or not at all, including calls that read
//! several records (a page, a grant's tokens): reads share a lock that a commit takes
//! alone for the duration of its transaction (flushes run outside it).
//! sled's own transactions already keep plain reads out while they commit; the lock
//! extends that to reads of several keys. Version checks happen inside the
//! transaction, so a write set based on a stale read is refused with
//! [`tenure::Error::Conflict`] and the engine retries it.
//!
//! One process at a time: a second process (or a second handle in this one) that
//! opens the same directory gets [`OpenError::Locked`] naming the path. Dropping the
//! last handle flushes and closes the store.

mod codec;
mod config;
mod error;
mod flush;
mod integrity;
mod keys;
mod migrate;
mod read;
mod trees;
mod write;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use fs2::FileExt;
use tenure::{
    AuthorizationCode, Client, DeviceAuthorization, Digest, Grant, GrantFilter, GrantPage,
    GrantQuery, Keyset, PersonalGrant, Result, Storage, Timestamp, Token, TokenAndGrant,
    TokenAndGrantFacts, Transition, Versioned, WriteSet,
};

pub use config::{Durability, SledConfig};
pub use error::{OpenError, StoreError};
pub use integrity::IntegrityReport;

use crate::flush::GroupFlush;
use crate::trees::{FORMAT_KEY, META_TREE, Trees};

/// The on-disk format this build reads and writes. Stores of format 1 are upgraded
/// to it in place when they are opened (see [the crate docs](crate#format)).
pub const FORMAT_VERSION: u32 = 2;

/// The lock file a store keeps in its directory while open.
const LOCK_FILE: &str = "tenure.lock";

/// A tenure store in a sled database. Cheap to clone: clones share the database.
#[derive(Clone)]
pub struct SledStorage {
    inner: Arc<Inner>,
}

struct Inner {
    trees: Trees,
    /// Held shared by every read and exclusively by every commit, so that a read of
    /// several records (a page, a grant's tokens) sees each write set whole or not at
    /// all. sled's own transactions already exclude plain reads while they commit;
    /// this extends that to reads of several keys. Flushes run outside it.
    gate: RwLock<()>,
    durability: Durability,
    flush: GroupFlush,
    path: PathBuf,
    /// Held until the database is closed; declared last so it is released last.
    _lock: File,
}

impl std::fmt::Debug for SledStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStorage")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .finish_non_exhaustive()
    }
}

impl SledStorage {
    /// Opens the store in `path`, creating it if it does not exist, with the default
    /// settings ([`Durability::Immediate`]).
    pub fn open(path: impl AsRef<Path>) -> Result<SledStorage, OpenError> {
        SledStorage::open_with(path, SledConfig::default())
    }

    /// Opens the store in `path`, creating it if it does not exist.
    ///
    /// Blocks while sled recovers the store; call it before serving, or from a
    /// blocking task.
    pub fn open_with(path: impl AsRef<Path>, config: SledConfig) -> Result<SledStorage, OpenError> {
        SledStorage::open_at(path.as_ref().to_path_buf(), config, false)
    }

    /// A fresh store in a new directory under the system's temporary directory,
    /// removed when the last handle is dropped; [`Durability::Periodic`]. For tests.
    pub fn temporary() -> Result<SledStorage, OpenError> {
        SledStorage::temporary_with(SledConfig::new().durability(Durability::Periodic))
    }

    /// A fresh store like [`SledStorage::temporary`]'s, with these settings: for
    /// benchmarks, which measure the default durability.
    pub fn temporary_with(config: SledConfig) -> Result<SledStorage, OpenError> {
        static STORES: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "tenure-sled-{}-{}-{nanos}",
            std::process::id(),
            STORES.fetch_add(1, Ordering::Relaxed)
        ));
        SledStorage::open_at(path, config, true)
    }

    fn open_at(
        path: PathBuf,
        config: SledConfig,
        temporary: bool,
    ) -> Result<SledStorage, OpenError> {
        let io = |source| OpenError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&path).map_err(io)?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path.join(LOCK_FILE))
            .map_err(io)?;
        lock.try_lock_exclusive().map_err(|source| {
            if source.kind() == fs2::lock_contended_error().kind() {
                OpenError::Locked {
                    path: path.clone(),
                    source,
                }
            } else {
                io(source)
            }
        })?;
        let db = open_sled(&config.sled_config(&path).temporary(temporary), &path)?;
        check_format(&db, &path)?;
        let trees = Trees::open(&db).map_err(|source| OpenError::Sled {
            path: path.clone(),
            source,
        })?;
        Ok(SledStorage {
            inner: Arc::new(Inner {
                trees,
                gate: RwLock::new(()),
                durability: config.durability,
                flush: GroupFlush::default(),
                path,
                _lock: lock,
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

    /// Makes every write applied so far durable. Concurrent callers, and writers in
    /// [`Durability::Immediate`] mode, share flushes.
    pub async fn flush(&self) -> Result<()> {
        let ticket = self.inner.flush.ticket();
        Ok(self.inner.flush.wait(&self.inner.trees.db, ticket).await?)
    }

    /// How many flushes this handle (and its clones) has run for writers and
    /// [`SledStorage::flush`]; sled's background flushes are not counted. Group
    /// commit keeps it well below the number of writes when writers overlap.
    pub fn flush_count(&self) -> u64 {
        self.inner.flush.count()
    }

    /// sled's estimate of the bytes the store takes on disk.
    pub async fn size_on_disk(&self) -> Result<u64> {
        self.blocking(|trees| Ok(trees.db.size_on_disk()?)).await
    }

    /// Checks that every record decodes and sits under its own key, that every index
    /// entry points to a record that has it and every record is in each of its
    /// indexes, and that every count agrees with its index. For diagnostics and crash
    /// tests: it reads the whole store, and holds writers off while it does.
    pub async fn check_integrity(&self) -> Result<IntegrityReport> {
        self.blocking(integrity::check).await
    }

    /// Runs a point read on the caller's thread, sharing the gate with other
    /// readers so that reads of two keys see a write set entirely or not at all.
    fn point<R>(&self, f: impl FnOnce(&Trees) -> Result<R, StoreError>) -> Result<R> {
        let _shared = self.inner.gate.read().unwrap_or_else(|e| e.into_inner());
        Ok(f(&self.inner.trees)?)
    }

    /// Runs `f` on the trees off the async executor's worker threads.
    async fn blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Trees) -> Result<R, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        Ok(blocking(move || {
            // A panic under the gate cannot leave a half-applied set (sled's
            // transaction is all or nothing), so a poisoned gate is still sound.
            let _shared = inner.gate.read().unwrap_or_else(|e| e.into_inner());
            f(&inner.trees)
        })
        .await?)
    }
}

/// Runs `f` on tokio's blocking pool, or inline outside a tokio runtime.
async fn blocking<R, E, F>(f: F) -> Result<R, E>
where
    R: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce() -> Result<R, E> + Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| E::from(StoreError::from(e)))?
}

/// A commit under way; ends when dropped, however the commit ends (even if the
/// task awaiting it is cancelled, since the blocking closure owns it).
struct Commit(Arc<Inner>);

impl Drop for Commit {
    fn drop(&mut self) {
        self.0.flush.end_commit();
    }
}

/// How long opening waits for sled's own lock on its files once tenure's lock is held.
const SLED_LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the sled database. The caller holds the store's lock file, so no other
/// tenure handle has the store open; if sled's own lock on its files is still held,
/// it is by the background writes of a handle of this process that was just
/// dropped (sled finishes them after the drop returns), and it is retried for a
/// while before giving up.
fn open_sled(config: &sled::Config, path: &Path) -> Result<sled::Db, OpenError> {
    let deadline = std::time::Instant::now() + SLED_LOCK_PATIENCE;
    loop {
        match config.open().map_err(|e| sled_open_error(path, e)) {
            Err(OpenError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn sled_open_error(path: &Path, e: sled::Error) -> OpenError {
    match e {
        // sled's own lock on its `db` file: held by a handle of this process that
        // has not finished closing, or by a program that opened the database
        // without tenure.
        sled::Error::Io(source) if source.to_string().contains("could not acquire lock") => {
            OpenError::Locked {
                path: path.to_path_buf(),
                source,
            }
        }
        source => OpenError::Sled {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Reads the format marker, or writes it into a store that holds nothing yet, and
/// upgrades a store of an older format this build knows.
fn check_format(db: &sled::Db, path: &Path) -> Result<(), OpenError> {
    let sled_error = |source| OpenError::Sled {
        path: path.to_path_buf(),
        source,
    };
    let meta = db.open_tree(META_TREE).map_err(sled_error)?;
    match meta.get(FORMAT_KEY).map_err(sled_error)? {
        Some(found) => {
            let found = <[u8; 4]>::try_from(found.as_ref())
                .map(u32::from_be_bytes)
                // A marker of another size is from a format this build cannot know.
                .unwrap_or(u32::MAX);
            match found {
                FORMAT_VERSION => Ok(()),
                migrate::FORMAT_1 => {
                    migrate::from_format_1(db).map_err(|source| OpenError::Upgrade {
                        path: path.to_path_buf(),
                        from: found,
                        to: FORMAT_VERSION,
                        source,
                    })
                }
                _ => Err(OpenError::UnsupportedFormat {
                    path: path.to_path_buf(),
                    found,
                    supported: FORMAT_VERSION,
                }),
            }
        }
        None => {
            for name in db.tree_names() {
                if !db.open_tree(&name).map_err(sled_error)?.is_empty() {
                    return Err(OpenError::NotATenureStore {
                        path: path.to_path_buf(),
                    });
                }
            }
            meta.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())
                .map_err(sled_error)?;
            db.flush().map_err(sled_error)?;
            Ok(())
        }
    }
}

#[async_trait]
impl Storage for SledStorage {
    async fn get_client(&self, zone_id: &str, id: &str) -> Result<Option<Versioned<Client>>> {
        self.point(|t| read::client(t, zone_id, id))
    }

    async fn zones(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let after = after.map(str::to_owned);
        self.blocking(move |t| read::zones(t, after.as_deref(), limit))
            .await
    }

    async fn list_clients(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned<Client>>> {
        let (zone, after) = (zone_id.to_owned(), after.map(str::to_owned));
        self.blocking(move |t| read::clients(t, &zone, after.as_deref(), limit))
            .await
    }

    async fn get_grant(&self, zone_id: &str, id: &str) -> Result<Option<Versioned<Grant>>> {
        self.point(|t| read::grant(t, zone_id, id))
    }

    async fn list_grants(&self, query: &GrantQuery) -> Result<GrantPage> {
        let query = query.clone();
        self.blocking(move |t| read::page(t, &query)).await
    }

    async fn count_grants(
        &self,
        zone_id: &str,
        filter: &GrantFilter,
        now: Timestamp,
    ) -> Result<u64> {
        let (zone, filter) = (zone_id.to_owned(), filter.clone());
        self.blocking(move |t| read::count_grants(t, &zone, &filter, now))
            .await
    }

    async fn expired_grants(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<Grant>>> {
        let zone = zone_id.to_owned();
        self.blocking(move |t| read::expired_grants(t, &zone, now, limit))
            .await
    }

    async fn grant_history(&self, zone_id: &str, grant_id: &str) -> Result<Vec<Transition>> {
        let (zone, id) = (zone_id.to_owned(), grant_id.to_owned());
        self.blocking(move |t| read::history(t, &zone, &id)).await
    }

    async fn get_token(&self, zone_id: &str, digest: &Digest) -> Result<Option<Versioned<Token>>> {
        self.point(|t| read::token(t, zone_id, digest.as_bytes()))
    }

    async fn get_token_and_grant(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> Result<Option<TokenAndGrant>> {
        self.point(|t| read::token_with(t, zone_id, digest.as_bytes(), read::grant))
    }

    async fn get_token_and_grant_facts(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> Result<Option<TokenAndGrantFacts>> {
        self.point(|t| read::token_with(t, zone_id, digest.as_bytes(), read::grant_facts))
    }

    async fn grant_tokens(&self, zone_id: &str, grant_id: &str) -> Result<Vec<Versioned<Token>>> {
        let (zone, id) = (zone_id.to_owned(), grant_id.to_owned());
        self.blocking(move |t| read::grant_tokens(t, &zone, &id))
            .await
    }

    async fn expired_tokens(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<Token>>> {
        let zone = zone_id.to_owned();
        self.blocking(move |t| read::expired_tokens(t, &zone, now, limit))
            .await
    }

    async fn get_personal_grant(
        &self,
        zone_id: &str,
        id: &str,
    ) -> Result<Option<Versioned<PersonalGrant>>> {
        self.point(|t| read::personal(t, zone_id, id))
    }

    async fn list_personal_grants(
        &self,
        zone_id: &str,
        user_id: &str,
        after: Option<&Keyset>,
        limit: usize,
    ) -> Result<Vec<Versioned<PersonalGrant>>> {
        let (zone, user, after) = (zone_id.to_owned(), user_id.to_owned(), after.cloned());
        self.blocking(move |t| read::personal_of(t, &zone, &user, after.as_ref(), limit))
            .await
    }

    async fn list_zone_personal_grants(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned<PersonalGrant>>> {
        let (zone, after) = (zone_id.to_owned(), after.map(str::to_owned));
        self.blocking(move |t| read::personal_in_zone(t, &zone, after.as_deref(), limit))
            .await
    }

    async fn get_device_authorization(
        &self,
        zone_id: &str,
        device_code: &Digest,
    ) -> Result<Option<Versioned<DeviceAuthorization>>> {
        self.point(|t| read::device(t, zone_id, device_code.as_bytes()))
    }

    async fn find_device_authorization(
        &self,
        zone_id: &str,
        user_code: &str,
    ) -> Result<Option<Versioned<DeviceAuthorization>>> {
        let (zone, code) = (zone_id.to_owned(), user_code.to_owned());
        self.blocking(move |t| read::device_by_user_code(t, &zone, &code))
            .await
    }

    async fn expired_device_authorizations(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<DeviceAuthorization>>> {
        let zone = zone_id.to_owned();
        self.blocking(move |t| read::expired_devices(t, &zone, now, limit))
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
        self.blocking(move |t| read::devices(t, &zone, after.as_ref(), limit))
            .await
    }

    async fn get_authorization_code(
        &self,
        zone_id: &str,
        code: &Digest,
    ) -> Result<Option<Versioned<AuthorizationCode>>> {
        self.point(|t| read::authorization_code(t, zone_id, code.as_bytes()))
    }

    async fn expired_authorization_codes(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<AuthorizationCode>>> {
        let zone = zone_id.to_owned();
        self.blocking(move |t| read::expired_authorization_codes(t, &zone, now, limit))
            .await
    }

    async fn apply(&self, set: WriteSet) -> Result<()> {
        if set.is_empty() {
            return Ok(());
        }
        self.inner.flush.begin_commit();
        let commit = Commit(self.inner.clone());
        // The ticket is taken after the commit: only a flush that starts later is
        // sure to carry this set.
        let ticket = blocking(move || -> Result<u64> {
            let inner = &commit.0;
            {
                let _exclusive = inner.gate.write().unwrap_or_else(|e| e.into_inner());
                write::apply(&inner.trees, &set)?;
            }
            Ok(inner.flush.ticket())
        })
        .await?;
        if self.inner.durability == Durability::Immediate {
            self.inner.flush.wait(&self.inner.trees.db, ticket).await?;
        }
        Ok(())
    }
}
