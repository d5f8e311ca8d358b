//! Group commit: writers that wait for a flush at the same time share one.
//!
//! A writer that has committed a set needs a flush that *starts* after its commit.
//! Flushes run one at a time under an async mutex. A writer notes how many flushes
//! had started when its commit was done, then queues for the mutex; when it gets it,
//! if a flush that started after its commit has completed meanwhile, its write is
//! already durable and it leaves without flushing. Otherwise it leads the next flush.
//!
//! sled 0.34 keeps commits out while it flushes (a flush holds its concurrency lock
//! shared, a commit needs it alone), so writers that are still committing when a
//! flush starts cannot join it and would need a flush of their own. The leader
//! therefore first waits for the commits already under way when it took the lead to
//! finish (they always do: a commit is one sled transaction), and then flushes them
//! all at once. A lone writer never waits; N writers that commit together share one
//! flush.

use std::sync::atomic::{AtomicU64, Ordering};

use sled::Db;
use tokio::sync::{Mutex, watch};

use crate::error::StoreError;

/// Counts and serializes flushes of one store.
#[derive(Debug)]
pub(crate) struct GroupFlush {
    /// Flushes started (the number of the latest).
    started: AtomicU64,
    /// The number of the latest completed flush; held while a flush runs.
    completed: Mutex<u64>,
    /// Commits begun.
    commits_begun: AtomicU64,
    /// Commits finished, successfully or not.
    commits_finished: watch::Sender<u64>,
}

impl Default for GroupFlush {
    fn default() -> Self {
        GroupFlush {
            started: AtomicU64::new(0),
            completed: Mutex::new(0),
            commits_begun: AtomicU64::new(0),
            commits_finished: watch::Sender::new(0),
        }
    }
}

impl GroupFlush {
    /// Marks the start of a commit, for flush leaders to wait for. Every call must
    /// be followed by one of [`GroupFlush::end_commit`], however the commit ends.
    pub(crate) fn begin_commit(&self) {
        self.commits_begun.fetch_add(1, Ordering::SeqCst);
    }

    /// Marks the end of a commit begun with [`GroupFlush::begin_commit`].
    pub(crate) fn end_commit(&self) {
        self.commits_finished.send_modify(|n| *n += 1);
    }

    /// The flush number a writer that has just committed must see completed.
    pub(crate) fn ticket(&self) -> u64 {
        self.started.load(Ordering::SeqCst) + 1
    }

    /// Waits until a flush numbered `ticket` or later has completed, leading one if
    /// no one else has.
    pub(crate) async fn wait(&self, db: &Db, ticket: u64) -> Result<(), StoreError> {
        let mut completed = self.completed.lock().await;
        if *completed >= ticket {
            return Ok(());
        }
        // Let the commits under way join this flush.
        let begun = self.commits_begun.load(Ordering::SeqCst);
        let mut finished = self.commits_finished.subscribe();
        // The sender lives in `self`, so the channel cannot close under us.
        let _ = finished.wait_for(|n| *n >= begun).await;
        let number = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let db = db.clone();
        crate::blocking(move || db.flush().map_err(StoreError::from)).await?;
        *completed = number;
        Ok(())
    }

    /// How many flushes have been started.
    pub(crate) fn count(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }
}
