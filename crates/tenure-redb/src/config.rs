//! How a store is opened: durability and redb's knobs.

use std::time::Duration;

/// How a write set is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every write set is committed with redb's `Durability::Immediate` (its pages
    /// and the commit slot are written and synced) before [`Storage::apply`]
    /// returns, so an acknowledged write survives the process being killed and the
    /// machine losing power. Write sets that arrive while a commit is under way are
    /// committed together in the next one (group commit). The default.
    ///
    /// [`Storage::apply`]: tenure::Storage::apply
    #[default]
    Immediate,
    /// Write sets are committed with redb's `Durability::None` (visible at once,
    /// not yet written durably), and a background thread makes them durable with one
    /// immediate commit every [`RedbConfig::flush_every`] in which anything was
    /// written, and again when the store is closed; every
    /// [`RedbConfig::flush_after`]-th commit is itself immediate. Faster; a crash
    /// may lose the writes of about the last interval, always whole write sets:
    /// redb recovers the last durable commit, and every write set is inside one
    /// commit.
    Periodic,
}

/// Settings for [`RedbStorage::open_with`](crate::RedbStorage::open_with).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedbConfig {
    /// How write sets are made durable; [`Durability::Immediate`] by default.
    pub durability: Durability,
    /// How often the background thread makes [`Durability::Periodic`] writes
    /// durable; 500 ms by default. Unused in [`Durability::Immediate`] mode.
    pub flush_every: Duration,
    /// The bytes of redb's page cache; 1 GiB by default (redb's own default).
    pub cache_size: usize,
    /// The most write sets one group commit carries; 256 by default.
    pub max_batch: usize,
    /// In [`Durability::Periodic`] mode, the most commits between two durable ones,
    /// however short the interval; 32 by default. redb 2 reuses the pages a commit
    /// frees only after a durable commit, so without this bound the file would grow
    /// with the number of commits in an interval rather than with the data.
    pub flush_after: usize,
}

impl Default for RedbConfig {
    fn default() -> Self {
        RedbConfig {
            durability: Durability::Immediate,
            flush_every: Duration::from_millis(500),
            cache_size: 1024 * 1024 * 1024,
            max_batch: 256,
            flush_after: 32,
        }
    }
}

impl RedbConfig {
    /// The default settings.
    pub fn new() -> Self {
        RedbConfig::default()
    }

    /// Sets the durability.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the interval of periodic durable commits (at least 1 ms).
    pub fn flush_every(mut self, every: Duration) -> Self {
        self.flush_every = every;
        self
    }

    /// Sets the page cache's size in bytes.
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = bytes;
        self
    }

    /// Sets the most commits between two durable ones in [`Durability::Periodic`]
    /// mode (at least 1).
    pub fn flush_after(mut self, commits: usize) -> Self {
        self.flush_after = commits;
        self
    }

    /// Sets the most write sets one group commit carries (at least 1).
    pub fn max_batch(mut self, sets: usize) -> Self {
        self.max_batch = sets;
        self
    }
}
