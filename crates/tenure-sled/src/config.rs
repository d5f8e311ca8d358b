//! How a store is opened: durability and sled's knobs.

use std::path::Path;
use std::time::Duration;

/// How a write set is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every write set is flushed to disk before [`Storage::apply`] returns, so an
    /// acknowledged write survives the process being killed. Concurrent writers
    /// share flushes (group commit). The default.
    ///
    /// [`Storage::apply`]: tenure::Storage::apply
    #[default]
    Immediate,
    /// Write sets are flushed by sled's background thread every
    /// [`SledConfig::flush_every`]. Faster; a crash may lose the last interval's
    /// writes (whole write sets, never part of one).
    Periodic,
}

/// Settings for [`SledStorage::open_with`](crate::SledStorage::open_with).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SledConfig {
    /// How write sets are made durable; [`Durability::Immediate`] by default.
    pub durability: Durability,
    /// How often sled's background thread flushes; 500 ms by default. In
    /// [`Durability::Immediate`] mode it only matters for writes made outside a
    /// write set (none are).
    pub flush_every: Duration,
    /// The bytes of sled's page cache; 1 GiB by default (sled's own default).
    pub cache_capacity: u64,
}

impl Default for SledConfig {
    fn default() -> Self {
        SledConfig {
            durability: Durability::Immediate,
            flush_every: Duration::from_millis(500),
            cache_capacity: 1024 * 1024 * 1024,
        }
    }
}

impl SledConfig {
    /// The default settings.
    pub fn new() -> Self {
        SledConfig::default()
    }

    /// Sets the durability.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the background flush interval (at least 1 ms).
    pub fn flush_every(mut self, every: Duration) -> Self {
        self.flush_every = every;
        self
    }

    /// Sets the page cache's size in bytes.
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = bytes;
        self
    }

    pub(crate) fn sled_config(&self, path: &Path) -> sled::Config {
        let every = u64::try_from(self.flush_every.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        sled::Config::new()
            .path(path)
            .cache_capacity(self.cache_capacity)
            .flush_every_ms(Some(every))
    }
}
