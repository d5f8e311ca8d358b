//! Hash maps split into shards, so that no single insert rehashes a whole table.
//!
//! A hash map grows by allocating a table twice its size and moving every entry
//! into it, all inside the insert that crossed its load factor. The store applies
//! write sets under its write lock, so with half a million tokens one growth of the
//! token table stalled every request for tens of milliseconds (`scripts/http-load.sh`
//! showed p99.9 refresh latencies of 30 to 60 ms at each doubling). Split into
//! [`SHARDS`] maps by a hash of the key, each growth moves a sixty-fourth of the
//! entries, and the shards grow at different moments.
//!
//! The shard is chosen by a fixed-seed hash, independent of the per-map random
//! seed each shard's own table uses, so the entries of one shard still spread over
//! its whole table.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash};

use foldhash::HashMap;
use foldhash::fast::FixedState;

/// How many maps a [`Sharded`] map is split into.
pub(crate) const SHARDS: usize = 64;

/// The seed of the hash that picks a shard.
const SHARD_SEED: u64 = 0x7465_6e75_7265_0001;

/// A map of `K` to `V`, split into [`SHARDS`] hash maps.
#[derive(Debug)]
pub(crate) struct Sharded<K, V> {
    shards: Box<[HashMap<K, V>]>,
}

impl<K, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Sharded {
            shards: (0..SHARDS).map(|_| HashMap::default()).collect(),
        }
    }
}

/// The shard of a key.
fn shard_of<Q: Hash + ?Sized>(key: &Q) -> usize {
    (FixedState::with_seed(SHARD_SEED).hash_one(key) % SHARDS as u64) as usize
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    fn shard<Q>(&self, key: &Q) -> &HashMap<K, V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        &self.shards[shard_of(key)]
    }

    fn shard_mut<Q>(&mut self, key: &Q) -> &mut HashMap<K, V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        &mut self.shards[shard_of(key)]
    }

    /// The value of `key`.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).get(key)
    }

    /// The value of `key`, to change.
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard_mut(key).get_mut(key)
    }

    /// Sets `key` to `value`; the value it had.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.shard_mut(&key).insert(key, value)
    }

    /// The entry of `key`, to read or fill.
    pub(crate) fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        self.shard_mut(&key).entry(key)
    }

    /// Takes `key` out; its value.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard_mut(key).remove(key)
    }

    /// Whether it holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.shards.iter().all(HashMap::is_empty)
    }

    /// How many keys it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_borrowed_forms_and_spread_over_the_shards() {
        let mut map: Sharded<std::sync::Arc<str>, u32> = Sharded::default();
        for i in 0..10_000u32 {
            assert_eq!(map.insert(format!("grant-{i}").into(), i), None);
        }
        assert_eq!(map.len(), 10_000);
        assert_eq!(map.get("grant-42"), Some(&42));
        if let Some(v) = map.get_mut("grant-7") {
            *v += 1;
        }
        assert_eq!(map.get("grant-7"), Some(&8));
        *map.entry("grant-1".into()).or_default() += 10;
        assert_eq!(map.get("grant-1"), Some(&11));
        assert_eq!(map.remove("grant-42"), Some(42));
        assert_eq!(map.get("grant-42"), None);
        // Every shard holds some, and none holds more than twice its share.
        let share = map.len() / SHARDS;
        assert!(
            map.shards
                .iter()
                .all(|s| !s.is_empty() && s.len() < 2 * share),
            "uneven shards"
        );
        for i in 0..10_000u32 {
            map.remove(format!("grant-{i}").as_str());
        }
        assert!(map.is_empty());
    }
}
