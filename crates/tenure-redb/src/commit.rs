//! Group commit: write sets that arrive while a commit is under way share the next
//! one.
//!
//! redb runs one write transaction at a time, and in [`Durability::Immediate`]
//! mode each commit waits for the disk. A writer queues its prepared set; if no
//! commit is under way it becomes the leader and, on a blocking thread, takes every
//! queued set (up to [`RedbConfig::max_batch`]) into one write transaction, applies
//! them in queue order, commits once and answers each writer; then it takes what
//! queued meanwhile, until the queue is empty. Each set is checked and applied as if
//! it were alone ([`Tx::apply`]): one whose expectation fails is refused having
//! written nothing, and the others go on. A lone writer leads its own commit at
//! once, with no wait; N writers that arrive together share about two commits.
//!
//! If the store fails while a batch is applied or committed, the transaction is
//! abandoned and each of its sets is tried again in a transaction of its own, so
//! that a failure reaches only the sets it belongs to.
//!
//! [`Durability::Immediate`]: crate::Durability::Immediate
//! [`RedbConfig::max_batch`]: crate::RedbConfig::max_batch

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use redb::Database;
use tokio::sync::oneshot;

use crate::config::{Durability, RedbConfig};
use crate::error::StoreError;
use crate::write::{Prepared, Refusal, Tx};

/// A queued write set and the writer waiting for its outcome.
pub(crate) struct Job {
    set: Vec<Prepared>,
    reply: oneshot::Sender<Result<(), Refusal>>,
}

impl Job {
    /// A job for `set`, and where its outcome will arrive.
    pub(crate) fn new(set: Vec<Prepared>) -> (Job, oneshot::Receiver<Result<(), Refusal>>) {
        let (reply, outcome) = oneshot::channel();
        (Job { set, reply }, outcome)
    }
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// Whether a leader is committing; it will take every job queued.
    leading: bool,
}

/// The write path of one store.
pub(crate) struct Committer {
    queue: Mutex<Queue>,
    /// Whether every commit waits for the disk; if not, commits are made durable in
    /// batches (periodic mode).
    immediate: bool,
    max_batch: usize,
    /// In periodic mode, the most commits between two durable ones.
    flush_after: u64,
    /// Write transactions committed for write sets.
    commits: AtomicU64,
    /// Commits made since the last durable one (periodic mode).
    unsynced: AtomicU64,
    /// Whether a commit that is not yet durable was made (periodic mode).
    dirty: AtomicBool,
}

impl Committer {
    pub(crate) fn new(config: &RedbConfig) -> Committer {
        Committer {
            queue: Mutex::default(),
            immediate: config.durability == Durability::Immediate,
            max_batch: config.max_batch.max(1),
            flush_after: u64::try_from(config.flush_after.max(1)).unwrap_or(u64::MAX),
            commits: AtomicU64::new(0),
            unsynced: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing under the lock can be left half-done by a panic.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job; whether the caller must now lead ([`Committer::lead`]).
    pub(crate) fn enqueue(&self, job: Job) -> bool {
        let mut queue = self.queue();
        queue.jobs.push(job);
        !std::mem::replace(&mut queue.leading, true)
    }

    /// Commits batches until the queue is empty. Blocks: run it off the executor.
    pub(crate) fn lead(&self, db: &Database) {
        let _leading = Leading(self);
        loop {
            let jobs = {
                let mut queue = self.queue();
                if queue.jobs.is_empty() {
                    queue.leading = false;
                    return;
                }
                let n = queue.jobs.len().min(self.max_batch);
                queue.jobs.drain(..n).collect::<Vec<_>>()
            };
            self.commit(db, jobs);
        }
    }

    /// Commits `jobs` together and answers each of them.
    fn commit(&self, db: &Database, jobs: Vec<Job>) {
        match self.try_commit(db, &jobs) {
            Ok(outcomes) => {
                for (job, applied) in jobs.into_iter().zip(outcomes) {
                    let outcome = if applied {
                        Ok(())
                    } else {
                        Err(Refusal::Conflict)
                    };
                    // A writer that stopped waiting has nothing to be told.
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) if jobs.len() == 1 => {
                if let Some(job) = jobs.into_iter().next() {
                    let _ = job.reply.send(Err(Refusal::Store(e)));
                }
            }
            Err(_) => {
                for job in jobs {
                    let outcome = match self.try_commit(db, std::slice::from_ref(&job)) {
                        Ok(applied) if applied.first() == Some(&true) => Ok(()),
                        Ok(_) => Err(Refusal::Conflict),
                        Err(e) => Err(Refusal::Store(e)),
                    };
                    let _ = job.reply.send(outcome);
                }
            }
        }
    }

    /// One write transaction over `jobs`: which of them were applied (the others
    /// were refused, having written nothing), or the failure that abandoned them all.
    fn try_commit(&self, db: &Database, jobs: &[Job]) -> Result<Vec<bool>, StoreError> {
        let mut txn = db.begin_write()?;
        // redb 2 reuses the pages a commit frees only after a durable commit, so in
        // periodic mode every `flush_after`-th commit is durable too: the file then
        // grows with the live data, not with the commits between two flushes.
        let durable = self.immediate
            || self.unsynced.load(Ordering::SeqCst).saturating_add(1) >= self.flush_after;
        txn.set_durability(if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        });
        let applied = {
            let mut tx = Tx::open(&txn)?;
            let mut applied = Vec::with_capacity(jobs.len());
            for job in jobs {
                match tx.apply(&job.set) {
                    Ok(()) => applied.push(true),
                    Err(Refusal::Conflict) => applied.push(false),
                    // Dropping the transaction aborts it.
                    Err(Refusal::Store(e)) => return Err(e),
                }
            }
            applied
        };
        if applied.contains(&true) {
            txn.commit()?;
            self.commits.fetch_add(1, Ordering::Relaxed);
            if !self.immediate {
                if durable {
                    self.unsynced.store(0, Ordering::SeqCst);
                } else {
                    self.unsynced.fetch_add(1, Ordering::SeqCst);
                    self.dirty.store(true, Ordering::SeqCst);
                }
            }
        } else {
            txn.abort()?;
        }
        Ok(applied)
    }

    /// Makes every commit so far durable with one immediate commit, if any was not.
    pub(crate) fn sync(&self, db: &Database) -> Result<(), StoreError> {
        if self.dirty.swap(false, Ordering::SeqCst) {
            if let Err(e) = durable_commit(db) {
                self.dirty.store(true, Ordering::SeqCst);
                return Err(e);
            }
            self.unsynced.store(0, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Write transactions committed for write sets so far.
    pub(crate) fn count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

/// An empty commit with redb's immediate durability: it makes every commit before
/// it durable too.
pub(crate) fn durable_commit(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(redb::Durability::Immediate);
    txn.commit()?;
    Ok(())
}

/// Held by a leader; if it unwinds, the queued writers are answered (their replies
/// dropped) and the next writer leads.
struct Leading<'a>(&'a Committer);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.queue();
            queue.jobs.clear();
            queue.leading = false;
        }
    }
}
