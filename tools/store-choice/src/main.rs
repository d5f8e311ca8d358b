//! Compares redb and fjall on tenure's write shape, to reproduce the table in
//! `crates/tenure-redb/docs/crate.md` ("redb or fjall").
//!
//! Both stores get the same workload. A write set is one grant as `tenure-redb`
//! stores it: 14 keys over 11 tables (a 400-byte grant, its six index entries, two
//! 250-byte tokens, their four index entries, a 120-byte history entry; values are
//! random bytes, so compression flatters neither store) and four counters in a
//! twelfth table, each read and rewritten inside the transaction. Keys are shaped as
//! `tenure-redb` builds them: an escaped zone, then times, names, digests and ids.
//!
//! Measured, for each store:
//!
//! - the mean time of a synced commit of one write set (redb
//!   `Durability::Immediate`, fjall `PersistMode::SyncAll` on the write transaction);
//! - the mean time of a warm point read of a token by key, each read in a read
//!   transaction of its own, after loading the grants;
//! - the bytes of every file in the store's directory, as allocated on disk and as
//!   the sum of the files' lengths, while grants are loaded (100 write sets per
//!   synced commit), half of them deleted, the store settled (redb: closed and
//!   reopened; fjall: every partition flushed and major-compacted), new grants
//!   loaded, and everything deleted.
//!
//! The timed commits and reads alternate between the two stores in rounds, so that
//! other load on the machine falls on both alike.
//!
//! Finally a fjall keyspace is closed and reopened a number of times in the same
//! process, under a watchdog, because an earlier comparison saw it hang there.
//!
//! ```text
//! cargo run --release            # 100,000 grants, 2,000 synced commits
//! cargo run --release -- --quick # 10,000 grants, 200 synced commits
//! cargo run --release -- --fjall-cache-mib 1024 # fjall with redb's cache size
//! ```
//!
//! Both stores run with their defaults: redb with a 1 GiB page cache (as
//! `tenure-redb` by default), fjall with a 32 MiB block cache unless
//! `--fjall-cache-mib` says otherwise.
//!
//! The stores are created in the system's temporary directory (`TMPDIR`).

use std::error::Error;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use fjall::{PartitionCreateOptions, PersistMode, TxKeyspace, TxPartitionHandle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use redb::{ReadableTable, TableDefinition};
use tempfile::TempDir;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// The tables (redb) or partitions (fjall), named as in `tenure-redb`.
const TABLES: [&str; 12] = [
    "grants",
    "grants_by_created",
    "grants_by_user",
    "grants_by_resource",
    "grants_by_client",
    "grants_by_status",
    "grant_expiry",
    "tokens",
    "tokens_by_grant",
    "token_expiry",
    "history",
    "grant_counts",
];

const GRANTS: usize = 0;
const BY_CREATED: usize = 1;
const BY_USER: usize = 2;
const BY_RESOURCE: usize = 3;
const BY_CLIENT: usize = 4;
const BY_STATUS: usize = 5;
const GRANT_EXPIRY: usize = 6;
const TOKENS: usize = 7;
const TOKENS_BY_GRANT: usize = 8;
const TOKEN_EXPIRY: usize = 9;
const HISTORY: usize = 10;
const COUNTS: usize = 11;

const GRANT_BYTES: usize = 400;
const TOKEN_BYTES: usize = 250;
const HISTORY_BYTES: usize = 120;

const ZONE: &str = "zone-1";
const USERS: u64 = 1_000;
const CLIENTS: u64 = 10;
const RESOURCES: u64 = 10;
/// Write sets per commit while loading and deleting.
const SETS_PER_COMMIT: usize = 100;
/// Times fjall's keyspace is closed and reopened at the end, and how long that may take.
const FJALL_REOPENS: usize = 20;
const FJALL_REOPEN_TIMEOUT: Duration = Duration::from_secs(300);

/// fjall's block cache, if not its default (32 MiB); set once from the arguments.
static FJALL_CACHE_BYTES: OnceLock<u64> = OnceLock::new();

/// How much work one run does.
#[derive(Debug, Clone, Copy)]
struct Scale {
    grants: usize,
    synced_commits: usize,
    reads: usize,
}

const FULL: Scale = Scale {
    grants: 100_000,
    synced_commits: 2_000,
    reads: 200_000,
};

const QUICK: Scale = Scale {
    grants: 10_000,
    synced_commits: 200,
    reads: 20_000,
};

/// Key building as in `tenure-redb`'s `keys` module.
#[derive(Default)]
struct Key(Vec<u8>);

impl Key {
    /// An escaped string with a terminator.
    fn str(mut self, s: &str) -> Self {
        for &b in s.as_bytes() {
            self.0.push(b);
            if b == 0 {
                self.0.push(0xFF);
            }
        }
        self.0.extend_from_slice(&[0, 1]);
        self
    }

    /// A time in milliseconds, ordered as bytes.
    fn millis(mut self, ms: i64) -> Self {
        self.0
            .extend_from_slice(&((ms as u64) ^ (1 << 63)).to_be_bytes());
        self
    }

    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    fn tag(tag: u8) -> Self {
        Key(vec![tag])
    }
}

/// Every key of grant number `n`, derived from `n` alone so that a grant can be
/// read or deleted without keeping its keys.
struct GrantKeys {
    /// Table and key of every record and index entry, with the length of its value.
    entries: Vec<(usize, Vec<u8>, usize)>,
    /// The two token keys in [`TOKENS`].
    tokens: [Vec<u8>; 2],
    /// The four counters in [`COUNTS`].
    counters: [Vec<u8>; 4],
}

impl GrantKeys {
    fn new(n: u64) -> GrantKeys {
        let mut rng = StdRng::seed_from_u64(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED);
        let created: i64 = 1_750_000_000_000 + n as i64 * 10;
        let expires = created + 30 * 24 * 3_600_000;
        let id = uuid_v7(created, &mut rng);
        let user = format!("user-{}", rng.random_range(0..USERS));
        let client = format!("client-{}", rng.random_range(0..CLIENTS));
        let resource = format!("resource-{}", rng.random_range(0..RESOURCES));
        let digests: [[u8; 32]; 2] = [rng.random(), rng.random()];
        let token_expires = [created + 3_600_000, expires];

        let zone = || Key::default().str(ZONE);
        let tail = |key: Key| key.millis(created).raw(id.as_bytes()).0;
        let tokens = digests.map(|d| zone().raw(&d).0);
        let mut entries = vec![
            (GRANTS, zone().raw(id.as_bytes()).0, GRANT_BYTES),
            (BY_CREATED, tail(zone()), 0),
            (BY_USER, tail(zone().str(&user)), 0),
            (BY_RESOURCE, tail(zone().str(&resource)), 0),
            (BY_CLIENT, tail(zone().str(&client)), 0),
            (BY_STATUS, tail(zone().raw(&[0])), 0),
            (GRANT_EXPIRY, zone().millis(expires).raw(id.as_bytes()).0, 0),
        ];
        for (digest, token_expires) in digests.iter().zip(token_expires) {
            entries.push((TOKENS_BY_GRANT, zone().str(&id).raw(digest).0, 0));
            entries.push((TOKEN_EXPIRY, zone().millis(token_expires).raw(digest).0, 0));
        }
        for token in &tokens {
            entries.push((TOKENS, token.clone(), TOKEN_BYTES));
        }
        entries.push((
            HISTORY,
            zone().str(&id).raw(&0u64.to_be_bytes()).0,
            HISTORY_BYTES,
        ));
        debug_assert_eq!(entries.len(), 14);
        let counters = [
            Key::tag(0).str(ZONE).0,
            Key::tag(1).str(ZONE).str(&user).0,
            Key::tag(2).str(ZONE).str(&resource).0,
            Key::tag(3).str(ZONE).str(&client).0,
        ];
        GrantKeys {
            entries,
            tokens,
            counters,
        }
    }
}

/// A UUID v7 as text, as tenure's grant ids are.
fn uuid_v7(ms: i64, rng: &mut StdRng) -> String {
    let ms = ms as u64;
    format!(
        "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
        ms >> 16,
        ms & 0xFFFF,
        rng.random_range(0..0x1000u32),
        0x8000 | rng.random_range(0..0x4000u32),
        rng.random_range(0..1u64 << 48),
    )
}

/// One write set: records to put or delete, and counters to change by `delta`.
struct WriteSet {
    puts: Vec<(usize, Vec<u8>, Vec<u8>)>,
    removes: Vec<(usize, Vec<u8>)>,
    counters: Vec<Vec<u8>>,
    delta: i64,
}

impl WriteSet {
    /// Creates grant `n`, with random values.
    fn create(n: u64, rng: &mut StdRng) -> WriteSet {
        let keys = GrantKeys::new(n);
        let puts = keys
            .entries
            .into_iter()
            .map(|(table, key, len)| {
                let mut value = vec![0; len];
                rng.fill(&mut value[..]);
                (table, key, value)
            })
            .collect();
        WriteSet {
            puts,
            removes: Vec::new(),
            counters: keys.counters.to_vec(),
            delta: 1,
        }
    }

    /// Deletes grant `n`.
    fn delete(n: u64) -> WriteSet {
        let keys = GrantKeys::new(n);
        WriteSet {
            puts: Vec::new(),
            removes: keys.entries.into_iter().map(|(t, k, _)| (t, k)).collect(),
            counters: keys.counters.to_vec(),
            delta: -1,
        }
    }
}

fn counter_value(old: Option<&[u8]>, delta: i64) -> Result<[u8; 8]> {
    let old = match old {
        None => 0,
        Some(bytes) => u64::from_be_bytes(
            bytes
                .try_into()
                .map_err(|_| format!("counter of {} bytes", bytes.len()))?,
        ),
    };
    Ok(old.wrapping_add_signed(delta).to_be_bytes())
}

/// What the comparison needs of a store.
trait Store {
    /// Applies the write sets in one write transaction, committed synced.
    fn commit(&mut self, sets: &[WriteSet]) -> Result<()>;
    /// Reads a value, in a read transaction of its own; its length if present.
    fn read(&self, table: usize, key: &[u8]) -> Result<Option<usize>>;
    /// redb: close and reopen. fjall: flush and major-compact every partition.
    fn settle(&mut self) -> Result<()>;
    fn dir(&self) -> &Path;
}

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

struct Redb {
    db: Option<redb::Database>,
    file: PathBuf,
    dir: TempDir,
}

impl Redb {
    fn open(file: &Path) -> Result<redb::Database> {
        Ok(redb::Builder::new()
            .create_with_file_format_v3(true)
            .create(file)?)
    }

    fn create() -> Result<Redb> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("store.redb");
        let db = Redb::open(&file)?;
        let txn = db.begin_write()?;
        for name in TABLES {
            txn.open_table(Def::new(name))?;
        }
        txn.commit()?;
        Ok(Redb {
            db: Some(db),
            file,
            dir,
        })
    }

    fn db(&self) -> Result<&redb::Database> {
        Ok(self.db.as_ref().ok_or("redb database not open")?)
    }
}

impl Store for Redb {
    fn commit(&mut self, sets: &[WriteSet]) -> Result<()> {
        let mut txn = self.db()?.begin_write()?;
        txn.set_durability(redb::Durability::Immediate);
        {
            let mut tables = TABLES
                .iter()
                .map(|name| txn.open_table(Def::new(name)))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            for set in sets {
                for (table, key, value) in &set.puts {
                    tables[*table].insert(key.as_slice(), value.as_slice())?;
                }
                for (table, key) in &set.removes {
                    tables[*table].remove(key.as_slice())?;
                }
                for key in &set.counters {
                    let counts = &mut tables[COUNTS];
                    let value = {
                        let old = counts.get(key.as_slice())?;
                        counter_value(old.as_ref().map(|v| v.value()), set.delta)?
                    };
                    counts.insert(key.as_slice(), value.as_slice())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn read(&self, table: usize, key: &[u8]) -> Result<Option<usize>> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(Def::new(TABLES[table]))?;
        Ok(table.get(key)?.map(|v| v.value().len()))
    }

    fn settle(&mut self) -> Result<()> {
        drop(self.db.take());
        self.db = Some(Redb::open(&self.file)?);
        Ok(())
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

struct Fjall {
    keyspace: TxKeyspace,
    partitions: Vec<TxPartitionHandle>,
    dir: TempDir,
}

impl Fjall {
    fn open(path: &Path) -> Result<(TxKeyspace, Vec<TxPartitionHandle>)> {
        let mut config = fjall::Config::new(path);
        if let Some(&bytes) = FJALL_CACHE_BYTES.get() {
            config = config.cache_size(bytes);
        }
        let keyspace = config.open_transactional()?;
        let partitions = TABLES
            .iter()
            .map(|name| keyspace.open_partition(name, PartitionCreateOptions::default()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok((keyspace, partitions))
    }

    fn create() -> Result<Fjall> {
        let dir = tempfile::tempdir()?;
        let (keyspace, partitions) = Fjall::open(dir.path())?;
        Ok(Fjall {
            keyspace,
            partitions,
            dir,
        })
    }
}

/// Commits the write sets in one fjall write transaction, synced.
fn fjall_commit(
    keyspace: &TxKeyspace,
    partitions: &[TxPartitionHandle],
    sets: &[WriteSet],
) -> Result<()> {
    let mut txn = keyspace.write_tx().durability(Some(PersistMode::SyncAll));
    for set in sets {
        for (table, key, value) in &set.puts {
            txn.insert(&partitions[*table], key.as_slice(), value.as_slice());
        }
        for (table, key) in &set.removes {
            txn.remove(&partitions[*table], key.as_slice());
        }
        for key in &set.counters {
            let counts = &partitions[COUNTS];
            let old = txn.get(counts, key)?;
            let value = counter_value(old.as_deref(), set.delta)?;
            txn.insert(counts, key.as_slice(), value.as_slice());
        }
    }
    txn.commit()?;
    Ok(())
}

impl Store for Fjall {
    fn commit(&mut self, sets: &[WriteSet]) -> Result<()> {
        fjall_commit(&self.keyspace, &self.partitions, sets)
    }

    fn read(&self, table: usize, key: &[u8]) -> Result<Option<usize>> {
        let txn = self.keyspace.read_tx();
        Ok(txn.get(&self.partitions[table], key)?.map(|v| v.len()))
    }

    fn settle(&mut self) -> Result<()> {
        for partition in &self.partitions {
            partition.inner().rotate_memtable_and_wait()?;
            partition.inner().major_compact()?;
        }
        Ok(())
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The files under a store's directory, recursively.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    /// Bytes allocated on disk (`st_blocks`), which is what the disk loses.
    allocated: u64,
    /// The sum of the files' lengths, counting the holes of sparse files.
    length: u64,
}

fn usage(dir: &Path) -> Result<Usage> {
    let mut total = Usage::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            // A file removed by a background thread while walking.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let add = if meta.is_dir() {
            usage(&entry.path())?
        } else {
            Usage {
                allocated: meta.blocks() * 512,
                length: meta.len(),
            }
        };
        total.allocated += add.allocated;
        total.length += add.length;
    }
    Ok(total)
}

/// Creates (or deletes) the given grants, [`SETS_PER_COMMIT`] a commit.
fn load(store: &mut dyn Store, grants: &[u64], create: bool, rng: &mut StdRng) -> Result<()> {
    for chunk in grants.chunks(SETS_PER_COMMIT) {
        let sets: Vec<WriteSet> = chunk
            .iter()
            .map(|&n| {
                if create {
                    WriteSet::create(n, rng)
                } else {
                    WriteSet::delete(n)
                }
            })
            .collect();
        store.commit(&sets)?;
    }
    Ok(())
}

/// The figures of one store.
#[derive(Default)]
struct Figures {
    commit: Duration,
    read: Duration,
    disk: Vec<Usage>,
}

/// Creates an empty store in a temporary directory.
type Create = fn() -> Result<Box<dyn Store>>;

/// The stores compared, by name.
const CONTENDERS: [(&str, Create); 2] = [
    ("redb", || Ok(Box::new(Redb::create()?))),
    ("fjall", || Ok(Box::new(Fjall::create()?))),
];

/// Timed work alternates between the stores in this many rounds, so that other
/// load on the machine, and the writeback of the other store's files, fall on both.
const ROUNDS: usize = 4;

fn step(what: &str, started: Instant) {
    eprintln!("[{:>7.1} s] {what}", started.elapsed().as_secs_f64());
}

fn measure(scale: Scale) -> Result<[Figures; 2]> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(7);
    let mut figures: [Figures; 2] = Default::default();
    let mut stores = CONTENDERS
        .iter()
        .map(|(_, create)| create())
        .collect::<Result<Vec<_>>>()?;

    // Synced commits of one write set each, on stores of their own.
    let per_round = scale.synced_commits / ROUNDS;
    for round in 0..ROUNDS {
        for (store, figures) in stores.iter_mut().zip(&mut figures) {
            for k in 0..per_round {
                let set = [WriteSet::create((round * per_round + k) as u64, &mut rng)];
                let t = Instant::now();
                store.commit(&set)?;
                figures.commit += t.elapsed();
            }
        }
    }
    for figures in &mut figures {
        figures.commit /= (per_round * ROUNDS) as u32;
    }
    drop(stores);
    step("synced commits", started);

    let mut stores = CONTENDERS
        .iter()
        .map(|(_, create)| create())
        .collect::<Result<Vec<_>>>()?;
    let first: Vec<u64> = (0..scale.grants as u64).collect();
    for (store, figures) in stores.iter_mut().zip(&mut figures) {
        load(store.as_mut(), &first, true, &mut rng)?;
        figures.disk.push(usage(store.dir())?);
    }
    step("grants loaded", started);

    // Point reads of tokens by key: one pass to warm up, then the timed rounds.
    let keys: Vec<Vec<u8>> = (0..scale.reads)
        .map(|_| {
            let n = rng.random_range(0..scale.grants as u64);
            let [access, refresh] = GrantKeys::new(n).tokens;
            if rng.random() { access } else { refresh }
        })
        .collect();
    let read_all = |store: &dyn Store, keys: &[Vec<u8>]| -> Result<()> {
        for key in keys {
            if store.read(TOKENS, key)? != Some(TOKEN_BYTES) {
                return Err("a token is missing".into());
            }
        }
        Ok(())
    };
    for store in &stores {
        read_all(store.as_ref(), &keys)?;
    }
    let per_round = keys.len() / ROUNDS;
    for chunk in keys.chunks(per_round).take(ROUNDS) {
        for (store, figures) in stores.iter().zip(&mut figures) {
            let t = Instant::now();
            read_all(store.as_ref(), chunk)?;
            figures.read += t.elapsed();
        }
    }
    for figures in &mut figures {
        figures.read /= (per_round * ROUNDS) as u32;
    }
    step("point reads", started);

    // Half of the grants deleted, in random order; then new grants; then all deleted.
    let mut order = first;
    order.shuffle(&mut rng);
    let (deleted, kept) = order.split_at(scale.grants / 2);
    let new: Vec<u64> = (scale.grants as u64..(scale.grants + scale.grants / 2) as u64).collect();
    let mut all: Vec<u64> = kept.iter().chain(&new).copied().collect();
    all.shuffle(&mut rng);
    for ((name, _), (store, figures)) in CONTENDERS.iter().zip(stores.iter_mut().zip(&mut figures))
    {
        let store = store.as_mut();
        load(store, deleted, false, &mut rng)?;
        figures.disk.push(usage(store.dir())?);
        store.settle()?;
        figures.disk.push(usage(store.dir())?);
        load(store, &new, true, &mut rng)?;
        figures.disk.push(usage(store.dir())?);
        load(store, &all, false, &mut rng)?;
        figures.disk.push(usage(store.dir())?);
        store.settle()?;
        figures.disk.push(usage(store.dir())?);
        step(&format!("{name}: deletes and new grants"), started);
    }

    Ok(figures)
}

/// Closes and reopens a fjall keyspace [`FJALL_REOPENS`] times in this process,
/// under a watchdog; says how that went. Each round opens the keyspace, checks a
/// token written in the first round, loads its share of the grants (so flushes and
/// compactions are under way when it closes), deletes half of the previous round's
/// and closes the keyspace again.
fn fjall_reopens(scale: Scale) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_path_buf();
    let per_round = (scale.grants / FJALL_REOPENS) as u64;
    let first = scale.grants as u64 * 2;
    let (done_tx, done_rx) = mpsc::channel();
    let (progress_tx, progress_rx) = mpsc::channel();
    thread::spawn(move || {
        let run = || -> Result<()> {
            let mut rng = StdRng::seed_from_u64(11);
            let probe = GrantKeys::new(first).tokens[0].clone();
            for round in 0..FJALL_REOPENS as u64 {
                let (keyspace, partitions) = Fjall::open(&path)?;
                if round > 0
                    && keyspace
                        .read_tx()
                        .get(&partitions[TOKENS], &probe)?
                        .is_none()
                {
                    return Err("a token is missing after reopening".into());
                }
                let start = first + round * per_round;
                let mut sets: Vec<WriteSet> = (start..start + per_round)
                    .map(|n| WriteSet::create(n, &mut rng))
                    .collect();
                if round > 0 {
                    let previous = start - per_round;
                    sets.extend((previous + 1..start).step_by(2).map(WriteSet::delete));
                }
                for chunk in sets.chunks(SETS_PER_COMMIT) {
                    fjall_commit(&keyspace, &partitions, chunk)?;
                }
                drop(partitions);
                drop(keyspace);
                // Ignored if the watchdog has given up.
                let _ = progress_tx.send(round + 1);
            }
            Ok(())
        };
        let _ = done_tx.send(run());
    });
    let started = Instant::now();
    let outcome = done_rx.recv_timeout(FJALL_REOPEN_TIMEOUT);
    let rounds = progress_rx.try_iter().last().unwrap_or(0);
    Ok(match outcome {
        Ok(Ok(())) => format!(
            "fjall: a keyspace opened, written ({} grants a round) and closed {FJALL_REOPENS} times in one process in {:.1} s, no hang",
            thousands(per_round as usize),
            started.elapsed().as_secs_f64()
        ),
        Ok(Err(e)) => {
            format!("fjall: reopening in one process failed after {rounds} rounds: {e}")
        }
        Err(_) => format!(
            "fjall: HUNG opening or closing a keyspace in one process: {rounds} of {FJALL_REOPENS} rounds done within {} s",
            FJALL_REOPEN_TIMEOUT.as_secs()
        ),
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn run() -> Result<()> {
    let mut scale = FULL;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => scale = QUICK,
            "--fjall-cache-mib" => {
                let mib: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--fjall-cache-mib needs a number of MiB")?;
                let _ = FJALL_CACHE_BYTES.set(mib * 1024 * 1024);
            }
            "-h" | "--help" => {
                println!("usage: store-choice [--quick] [--fjall-cache-mib MIB]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }

    let [redb, fjall] = measure(scale)?;
    let reopens = fjall_reopens(scale)?;

    let grants = thousands(scale.grants);
    let rows: Vec<(String, String, String)> = vec![
        (
            format!(
                "one write set per commit, synced ({} commits)",
                thousands(scale.synced_commits)
            ),
            format!("{:.2} ms", redb.commit.as_secs_f64() * 1e3),
            format!("{:.2} ms", fjall.commit.as_secs_f64() * 1e3),
        ),
        (
            format!("point read of a token by key, warm, {grants} grants"),
            format!("{:.1} µs", redb.read.as_secs_f64() * 1e6),
            format!("{:.1} µs", fjall.read.as_secs_f64() * 1e6),
        ),
    ];
    // The states whose disk use is measured, in the order of `Figures::disk`.
    let disk_rows = [
        format!("{grants} grants (loaded {SETS_PER_COMMIT} sets per commit)"),
        "half of them deleted".to_string(),
        "the same, after reopening (redb) or flushing and a major compaction of every partition (fjall)".to_string(),
        format!("then {} new grants", thousands(scale.grants / 2)),
        "all deleted".to_string(),
        "all deleted, reopened (redb) or flushed and compacted (fjall)".to_string(),
    ];
    let rows = rows
        .into_iter()
        .chain(disk_rows.iter().enumerate().map(|(i, what)| {
            (
                what.clone(),
                mib(redb.disk[i].allocated),
                mib(fjall.disk[i].allocated),
            )
        }));

    let fjall_header = match FJALL_CACHE_BYTES.get() {
        Some(bytes) => format!("fjall 2.11.2, {} MiB cache", bytes / (1024 * 1024)),
        None => "fjall 2.11.2".to_string(),
    };
    println!("| | redb 2.6.4 | {fjall_header} |");
    println!("| --- | ---: | ---: |");
    for (what, r, f) in rows {
        println!("| {what} | {r} | {f} |");
    }
    println!();
    println!("Disk figures above are bytes allocated; the sums of the files' lengths:");
    println!();
    println!("| | redb 2.6.4 | {fjall_header} |");
    println!("| --- | ---: | ---: |");
    for (i, what) in disk_rows.iter().enumerate() {
        println!(
            "| {what} | {} | {} |",
            mib(redb.disk[i].length),
            mib(fjall.disk[i].length)
        );
    }
    println!();
    println!("{reopens}");
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("store-choice: {e}");
        std::process::exit(1);
    }
}
