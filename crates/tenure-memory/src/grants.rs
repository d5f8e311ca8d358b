//! A zone's grants, kept compact: each distinct organization, user, resource,
//! provider and client id, and each distinct set of scopes, is stored once and
//! referred to by a 4-byte symbol, so a grant costs its id, six symbols, its times
//! and its index entries. Records are rebuilt on read.
//!
//! A grant's [`RefreshChain`] is kept boxed, and not at all while it is the
//! default (a grant that never issued a refresh token), so a bare grant pays one
//! pointer for it; a rotation reuses the box.

use std::borrow::Borrow;
use std::collections::BTreeSet;

use crate::sharded::Sharded;
use std::hash::Hash;
use std::ops::Bound;
use std::sync::Arc;

use crate::intern::{Interner, Symbol};

use tenure::{
    Grant, GrantFacts, GrantFilter, GrantPage, GrantQuery, GrantStatus, Keyset, Position,
    RefreshChain, SortOrder, Timestamp, Version, Versioned,
};

/// A grant's place in an ordered index: `(time in ms, id)`.
pub(crate) type Key = (i64, Arc<str>);

/// A grant as kept: everything but its id and zone, with symbols for the ids and
/// scopes it shares with other grants.
#[derive(Debug, Clone)]
struct Stored {
    organization: Symbol,
    user: Symbol,
    resource: Symbol,
    provider: Symbol,
    client: Symbol,
    scopes: Symbol,
    status: GrantStatus,
    refresh_token_set: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
    expires_at: Timestamp,
    refreshed_at: Option<Timestamp>,
    /// `None` while the chain is [`RefreshChain::default`].
    refresh: Option<Box<RefreshChain>>,
    version: Version,
}

/// `chain` as kept: `None` if it is the default, else boxed, in `reuse` if given.
fn compact(chain: RefreshChain, reuse: Option<Box<RefreshChain>>) -> Option<Box<RefreshChain>> {
    if chain == RefreshChain::default() {
        return None;
    }
    Some(match reuse {
        Some(mut boxed) => {
            *boxed = chain;
            boxed
        }
        None => Box::new(chain),
    })
}

impl Stored {
    /// The same rule as [`Grant::status_at`].
    fn status_at(&self, now: Timestamp) -> GrantStatus {
        match self.status {
            GrantStatus::Active if self.expires_at <= now => GrantStatus::Expired,
            status => status,
        }
    }
}

/// A filter with its ids turned into symbols.
struct Compiled {
    user: Option<Symbol>,
    resource: Option<Symbol>,
    client: Option<Symbol>,
    status: Option<GrantStatus>,
}

impl Compiled {
    /// The same rule as [`GrantFilter::matches`].
    fn matches(&self, g: &Stored, now: Timestamp) -> bool {
        self.user.is_none_or(|u| u == g.user)
            && self.resource.is_none_or(|r| r == g.resource)
            && self.client.is_none_or(|c| c == g.client)
            && self.status.is_none_or(|s| s == g.status_at(now))
    }
}

/// Takes `key` out of the set `index` keeps for `value`, and the set with it once
/// empty.
pub(crate) fn remove_from<V, Q>(index: &mut Sharded<V, BTreeSet<Key>>, value: &Q, key: &Key)
where
    V: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
{
    if let Some(set) = index.get_mut(value) {
        set.remove(key);
        if set.is_empty() {
            index.remove(value);
        }
    }
}

/// A slot of [`Records`]: a grant's shared id and record, or nothing.
type Slot = Option<(Arc<str>, Stored)>;

/// Slots per chunk of [`Records`].
const CHUNK: usize = 1024;

/// The stored grants: each in a numbered slot that stays its own while it is
/// stored, found by id through a sharded index. A token keeps its grant's slot
/// beside its id, so introspection reaches the grant in one step instead of a
/// hash probe by id (see [`Grants::facts_at`]). Slots live in chunks that never
/// move, so growing costs one chunk, never a copy of every grant.
#[derive(Debug, Default)]
struct Records {
    slot_of: Sharded<Arc<str>, u32>,
    chunks: Vec<Vec<Slot>>,
    /// Slots made so far, held or free.
    made: u32,
    free: Vec<u32>,
}

impl Records {
    fn slot(&self, slot: u32) -> Option<&(Arc<str>, Stored)> {
        let slot = slot as usize;
        self.chunks.get(slot / CHUNK)?.get(slot % CHUNK)?.as_ref()
    }

    fn get_key_value(&self, id: &str) -> Option<(&Arc<str>, &Stored)> {
        self.slot(*self.slot_of.get(id)?).map(|(id, g)| (id, g))
    }

    fn get(&self, id: &str) -> Option<&Stored> {
        self.get_key_value(id).map(|(_, g)| g)
    }

    /// Stores a grant not stored yet.
    fn insert(&mut self, id: Arc<str>, g: Stored) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = self.made;
                self.made += 1;
                if slot as usize % CHUNK == 0 {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                if let Some(chunk) = self.chunks.last_mut() {
                    chunk.push(None);
                }
                slot
            }
        };
        let place = slot as usize;
        if let Some(cell) = self
            .chunks
            .get_mut(place / CHUNK)
            .and_then(|c| c.get_mut(place % CHUNK))
        {
            *cell = Some((id.clone(), g));
        }
        self.slot_of.insert(id, slot);
    }

    /// Takes a grant out; its shared id and record.
    fn remove_entry(&mut self, id: &str) -> Option<(Arc<str>, Stored)> {
        let slot = self.slot_of.remove(id)?;
        let place = slot as usize;
        let (id, g) = self
            .chunks
            .get_mut(place / CHUNK)?
            .get_mut(place % CHUNK)?
            .take()?;
        self.free.push(slot);
        Some((id, g))
    }

    fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }
}

/// The grants of one zone with their indexes.
#[derive(Debug, Default)]
pub(crate) struct Grants {
    records: Records,
    ids: Interner<str>,
    scope_sets: Interner<[String]>,
    by_created: BTreeSet<Key>,
    by_user: Sharded<Symbol, BTreeSet<Key>>,
    by_resource: Sharded<Symbol, BTreeSet<Key>>,
    by_client: Sharded<Symbol, BTreeSet<Key>>,
    /// Revoked is final and stored as such, so its index is exact; active and
    /// expired depend on the time and are told apart per grant.
    revoked: BTreeSet<Key>,
    /// Grants stored active, by `(expires_at in ms, id)`.
    expiry: BTreeSet<Key>,
}

impl Grants {
    fn rebuild(&self, zone_id: &str, id: &str, g: &Stored) -> Versioned<Grant> {
        let text = |s: Symbol| self.ids.get(s).unwrap_or_default().to_owned();
        Versioned {
            record: Grant {
                id: id.to_owned(),
                zone_id: zone_id.to_owned(),
                organization_id: text(g.organization),
                user_id: text(g.user),
                resource_id: text(g.resource),
                provider_id: text(g.provider),
                client_id: text(g.client),
                scopes: self.scope_sets.get(g.scopes).unwrap_or_default().to_vec(),
                status: g.status,
                created_at: g.created_at,
                updated_at: g.updated_at,
                expires_at: g.expires_at,
                refreshed_at: g.refreshed_at,
                refresh_token_set: g.refresh_token_set,
                refresh: g.refresh.as_deref().copied().unwrap_or_default(),
            },
            version: g.version,
        }
    }

    /// A grant by id.
    pub(crate) fn get(&self, zone_id: &str, id: &str) -> Option<Versioned<Grant>> {
        let (id, g) = self.records.get_key_value(id)?;
        Some(self.rebuild(zone_id, id, g))
    }

    /// What introspection needs of a grant, without rebuilding the record.
    pub(crate) fn facts(&self, id: &str) -> Option<GrantFacts> {
        Some(self.facts_of(self.records.get(id)?))
    }

    /// [`Grants::facts`] of the grant whose shared id is `id`, looked for first in
    /// `slot`, the slot it had when a token was linked to it: the slot holds it if
    /// it holds that very id (the same allocation, so a grant deleted and stored
    /// again, or a slot reused, is never mistaken for it), else the grant is found
    /// by id.
    pub(crate) fn facts_at(&self, id: &Arc<str>, slot: u32) -> Option<GrantFacts> {
        match self.records.slot(slot) {
            Some((held, g)) if Arc::ptr_eq(held, id) => Some(self.facts_of(g)),
            _ => self.facts(id),
        }
    }

    fn facts_of(&self, g: &Stored) -> GrantFacts {
        GrantFacts {
            status: g.status,
            expires_at: g.expires_at,
            refresh_generation: g.refresh.as_deref().copied().unwrap_or_default().generation,
            resource_id: self.ids.get(g.resource).unwrap_or_default().to_owned(),
        }
    }

    /// Whether the zone holds no grant.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A grant's version.
    pub(crate) fn version(&self, id: &str) -> Option<Version> {
        self.records.get(id).map(|g| g.version)
    }

    /// The shared id and slot of a stored grant, for other maps keyed by grant.
    pub(crate) fn shared_id(&self, id: &str) -> Option<(Arc<str>, u32)> {
        let slot = *self.records.slot_of.get(id)?;
        self.records.slot(slot).map(|(k, _)| (k.clone(), slot))
    }

    fn index(&mut self, id: &Arc<str>, g: &Stored) {
        let key = (g.created_at.timestamp_millis(), id.clone());
        self.by_user.entry(g.user).or_default().insert(key.clone());
        self.by_resource
            .entry(g.resource)
            .or_default()
            .insert(key.clone());
        self.by_client
            .entry(g.client)
            .or_default()
            .insert(key.clone());
        match g.status {
            GrantStatus::Active => {
                self.expiry
                    .insert((g.expires_at.timestamp_millis(), id.clone()));
            }
            GrantStatus::Revoked => {
                self.revoked.insert(key.clone());
            }
            _ => {}
        }
        self.by_created.insert(key);
    }

    fn unindex(&mut self, id: &Arc<str>, g: &Stored) {
        let key = (g.created_at.timestamp_millis(), id.clone());
        remove_from(&mut self.by_user, &g.user, &key);
        remove_from(&mut self.by_resource, &g.resource, &key);
        remove_from(&mut self.by_client, &g.client, &key);
        self.revoked.remove(&key);
        self.expiry
            .remove(&(g.expires_at.timestamp_millis(), id.clone()));
        self.by_created.remove(&key);
    }

    fn release(&mut self, g: &Stored) {
        for s in [g.organization, g.user, g.resource, g.provider, g.client] {
            self.ids.release(s);
        }
        self.scope_sets.release(g.scopes);
    }

    /// Moves a replaced grant's index entries to its new record, touching only
    /// the indexes whose key or membership changed (a refresh changes none; an
    /// expiry or a revocation only the status indexes).
    fn reindex(&mut self, id: &Arc<str>, old: &Stored, new: &Stored) {
        if old.created_at.timestamp_millis() != new.created_at.timestamp_millis() {
            self.unindex(id, old);
            self.index(id, new);
            return;
        }
        let key = (new.created_at.timestamp_millis(), id.clone());
        for (index, before, after) in [
            (&mut self.by_user, old.user, new.user),
            (&mut self.by_resource, old.resource, new.resource),
            (&mut self.by_client, old.client, new.client),
        ] {
            if before != after {
                remove_from(index, &before, &key);
                index.entry(after).or_default().insert(key.clone());
            }
        }
        let expiry = |g: &Stored| {
            (g.status == GrantStatus::Active).then(|| (g.expires_at.timestamp_millis(), id.clone()))
        };
        let (before, after) = (expiry(old), expiry(new));
        if before != after {
            if let Some(k) = before {
                self.expiry.remove(&k);
            }
            if let Some(k) = after {
                self.expiry.insert(k);
            }
        }
        match (
            old.status == GrantStatus::Revoked,
            new.status == GrantStatus::Revoked,
        ) {
            (true, false) => {
                self.revoked.remove(&key);
            }
            (false, true) => {
                self.revoked.insert(key);
            }
            _ => {}
        }
    }

    /// Stores `grant` at `version`, replacing the stored one.
    pub(crate) fn put(&mut self, grant: Grant, version: Version) {
        // Acquired before the old record's are released, so values both hold are
        // kept, not dropped and made again.
        let mut stored = Stored {
            organization: self.ids.acquire(&grant.organization_id),
            user: self.ids.acquire(&grant.user_id),
            resource: self.ids.acquire(&grant.resource_id),
            provider: self.ids.acquire(&grant.provider_id),
            client: self.ids.acquire(&grant.client_id),
            scopes: self.scope_sets.acquire(&grant.scopes),
            status: grant.status,
            refresh_token_set: grant.refresh_token_set,
            created_at: grant.created_at,
            updated_at: grant.updated_at,
            expires_at: grant.expires_at,
            refreshed_at: grant.refreshed_at,
            refresh: None,
            version,
        };
        // A replaced grant is taken out and put back at once: its slot is the
        // last freed, so it gets the same one.
        let id = match self.records.remove_entry(grant.id.as_str()) {
            Some((id, mut old)) => {
                self.reindex(&id, &old, &stored);
                self.release(&old);
                stored.refresh = compact(grant.refresh, old.refresh.take());
                id
            }
            None => {
                let id: Arc<str> = Arc::from(grant.id.as_str());
                self.index(&id, &stored);
                stored.refresh = compact(grant.refresh, None);
                id
            }
        };
        self.records.insert(id, stored);
    }

    /// Deletes a grant; whether it was there.
    pub(crate) fn remove(&mut self, id: &str) -> bool {
        match self.records.remove_entry(id) {
            Some((id, old)) => {
                self.unindex(&id, &old);
                self.release(&old);
                true
            }
            None => false,
        }
    }

    /// The filter in symbols; `None` when it names an id no grant holds, so that
    /// nothing matches.
    fn compile(&self, filter: &GrantFilter) -> Option<Compiled> {
        let symbol = |v: &Option<String>| match v {
            None => Some(None),
            Some(v) => self.ids.find(v).map(Some),
        };
        Some(Compiled {
            user: symbol(&filter.user_id)?,
            resource: symbol(&filter.resource_id)?,
            client: symbol(&filter.client_id)?,
            status: filter.status,
        })
    }

    /// The narrowest index that covers the filter; the rest of it is checked per
    /// grant.
    fn index_for(&self, filter: &Compiled) -> &BTreeSet<Key> {
        static EMPTY: BTreeSet<Key> = BTreeSet::new();
        let candidates = [
            filter.user.map(|v| self.by_user.get(&v)),
            filter.resource.map(|v| self.by_resource.get(&v)),
            filter.client.map(|v| self.by_client.get(&v)),
            (filter.status == Some(GrantStatus::Revoked)).then_some(Some(&self.revoked)),
        ];
        let mut best: Option<&BTreeSet<Key>> = None;
        for candidate in candidates.into_iter().flatten() {
            let set = candidate.unwrap_or(&EMPTY);
            if best.is_none_or(|b| set.len() < b.len()) {
                best = Some(set);
            }
        }
        best.unwrap_or(&self.by_created)
    }

    /// How many grants pass `filter` at `now`.
    pub(crate) fn count(&self, filter: &GrantFilter, now: Timestamp) -> u64 {
        let Some(filter) = self.compile(filter) else {
            return 0;
        };
        self.index_for(&filter)
            .iter()
            .filter(|k| {
                self.records
                    .get(&k.1)
                    .is_some_and(|g| filter.matches(g, now))
            })
            .count() as u64
    }

    /// Grants stored active whose expiry is at or before `now`, soonest first.
    pub(crate) fn expired(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Vec<Versioned<Grant>> {
        let now = now.timestamp_millis();
        self.expiry
            .iter()
            .take_while(|(expires, _)| *expires <= now)
            .take(limit)
            .filter_map(|(_, id)| self.get(zone_id, id))
            .collect()
    }

    /// One page of a listing: walks the narrowest index in the query's order from
    /// its position, keeping matches.
    pub(crate) fn page(&self, query: &GrantQuery) -> GrantPage {
        let Some(filter) = self.compile(&query.filter) else {
            return GrantPage::default();
        };
        let index = self.index_for(&filter);
        let now = query.now;
        let matching = |key: &Key| {
            self.records
                .get_key_value(&key.1)
                .filter(|(_, g)| filter.matches(g, now))
        };
        // Items strictly after / before a key in ascending key order.
        let above = |k: Option<(i64, &str)>| -> Box<dyn Iterator<Item = &Key> + '_> {
            match k {
                None => Box::new(index.iter()),
                Some(k) => Box::new(index.range((
                    Bound::Excluded((k.0, Arc::<str>::from(k.1))),
                    Bound::Unbounded,
                ))),
            }
        };
        let below = |k: Option<(i64, &str)>| -> Box<dyn Iterator<Item = &Key> + '_> {
            match k {
                None => Box::new(index.iter().rev()),
                Some(k) => Box::new(
                    index
                        .range((
                            Bound::Unbounded,
                            Bound::Excluded((k.0, Arc::<str>::from(k.1))),
                        ))
                        .rev(),
                ),
            }
        };
        // "Forward" is the listing's order; "backward" is its reverse.
        let forward = |k: Option<(i64, &str)>| match query.order {
            SortOrder::Ascending => above(k),
            SortOrder::Descending => below(k),
        };
        let backward = |k: Option<(i64, &str)>| match query.order {
            SortOrder::Ascending => below(k),
            SortOrder::Descending => above(k),
        };
        let take = |iter: Box<dyn Iterator<Item = &Key> + '_>, n: usize| {
            let mut items = Vec::with_capacity(n);
            let mut more = false;
            for key in iter {
                if let Some((id, g)) = matching(key) {
                    if items.len() == n {
                        more = true;
                        break;
                    }
                    items.push(self.rebuild(&query.zone_id, id, g));
                }
            }
            (items, more)
        };
        let exists =
            |mut iter: Box<dyn Iterator<Item = &Key> + '_>| iter.any(|k| matching(k).is_some());
        // Whether the grant at the cursor's key itself matches.
        let at = |k: (i64, &str)| {
            self.records
                .get(k.1)
                .filter(|g| g.created_at.timestamp_millis() == k.0)
                .is_some_and(|g| filter.matches(g, now))
        };
        match &query.position {
            Position::First => {
                let (items, more_after) = take(forward(None), query.limit);
                GrantPage {
                    items,
                    more_before: false,
                    more_after,
                }
            }
            Position::After(k) => {
                let k = keyset(k);
                let (items, more_after) = take(forward(Some(k)), query.limit);
                // Whatever is at or before k precedes the page.
                let more_before = at(k) || exists(backward(Some(k)));
                GrantPage {
                    items,
                    more_before,
                    more_after,
                }
            }
            Position::Before(k) => {
                let k = keyset(k);
                let (mut items, more_before) = take(backward(Some(k)), query.limit);
                items.reverse();
                let more_after = at(k) || exists(forward(Some(k)));
                GrantPage {
                    items,
                    more_before,
                    more_after,
                }
            }
        }
    }
}

fn keyset(k: &Keyset) -> (i64, &str) {
    (k.created_at.timestamp_millis(), k.id.as_str())
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn grant(id: &str, user: &str, scopes: &[&str]) -> Grant {
        let t = DateTime::from_timestamp(1_893_456_000, 0).unwrap();
        Grant {
            id: id.into(),
            zone_id: "z".into(),
            organization_id: "org".into(),
            user_id: user.into(),
            resource_id: "res".into(),
            provider_id: "default".into(),
            client_id: "client".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            status: GrantStatus::Active,
            created_at: t,
            updated_at: t,
            expires_at: t + chrono::Duration::days(1),
            refreshed_at: None,
            refresh_token_set: true,
            refresh: RefreshChain::default(),
        }
    }

    #[test]
    fn a_slot_is_trusted_only_while_it_holds_the_very_grant_a_token_was_linked_to() {
        let mut grants = Grants::default();
        grants.put(grant("g1", "alice", &["read"]), 1);
        let (id, slot) = grants.shared_id("g1").unwrap();
        assert_eq!(grants.facts_at(&id, slot).unwrap().resource_id, "res");
        // Replaced in place: same slot, same id, the new facts.
        let mut revoked = grant("g1", "alice", &["read"]);
        revoked.status = GrantStatus::Revoked;
        grants.put(revoked, 2);
        assert_eq!(grants.shared_id("g1").unwrap().1, slot);
        assert_eq!(
            grants.facts_at(&id, slot).unwrap().status,
            GrantStatus::Revoked
        );
        // Deleted, and its slot reused by another grant: not mistaken for it.
        assert!(grants.remove("g1"));
        let mut other = grant("g2", "bob", &["read"]);
        other.resource_id = "elsewhere".into();
        grants.put(other, 1);
        assert_eq!(grants.shared_id("g2").unwrap().1, slot);
        assert_eq!(grants.facts_at(&id, slot), None);
        // Stored again under a new allocation: found by id.
        grants.put(grant("g1", "alice", &["read"]), 3);
        let facts = grants.facts_at(&id, slot).unwrap();
        assert_eq!(
            (facts.status, facts.resource_id.as_str()),
            (GrantStatus::Active, "res")
        );
        assert_eq!(
            grants.facts_at(&id, crate::tokens::NO_SLOT),
            grants.facts("g1")
        );
        // Slots come in chunks that never move: thousands of grants, each found.
        for i in 0..3000 {
            grants.put(grant(&format!("many-{i}"), "carol", &["read"]), 1);
        }
        for i in 0..3000 {
            let (id, slot) = grants.shared_id(&format!("many-{i}")).unwrap();
            assert!(grants.facts_at(&id, slot).is_some());
            assert_eq!(grants.get("z", &id).unwrap().record.id, format!("many-{i}"));
        }
    }

    #[test]
    fn shared_values_outlive_any_one_holder_and_are_dropped_with_the_last() {
        let mut grants = Grants::default();
        let g1 = grant("g1", "alice", &["read"]);
        let g2 = grant("g2", "alice", &["read"]);
        grants.put(g1.clone(), 1);
        grants.put(g2.clone(), 1);
        assert!(grants.remove("g1"));
        assert_eq!(grants.get("z", "g2").map(|g| g.record), Some(g2));
        assert!(grants.remove("g2"));
        assert_eq!(grants.ids.find("alice"), None, "alice is no longer held");
        assert_eq!(grants.scope_sets.find(&["read".to_owned()][..]), None);

        // A freed symbol is reused for a new value, which reads back as itself.
        let g3 = grant("g3", "bob", &["write", "read"]);
        grants.put(g3.clone(), 1);
        assert_eq!(grants.get("z", "g3").map(|g| g.record), Some(g3));
        assert_eq!(
            grants.ids.symbols_made(),
            5,
            "symbols were reused, not grown"
        );
    }

    #[test]
    fn replacing_a_grant_moves_its_values() {
        let mut grants = Grants::default();
        grants.put(grant("g1", "alice", &["read"]), 1);
        let moved = grant("g1", "bob", &["read", "write"]);
        grants.put(moved.clone(), 2);
        assert_eq!(grants.ids.find("alice"), None);
        assert_eq!(
            grants.get("z", "g1"),
            Some(Versioned {
                record: moved,
                version: 2
            })
        );
        let by_alice = GrantFilter {
            user_id: Some("alice".into()),
            ..GrantFilter::default()
        };
        let now = DateTime::from_timestamp(1_893_456_000, 0).unwrap();
        assert_eq!(grants.count(&by_alice, now), 0);
    }

    #[test]
    fn a_replaced_grant_moves_between_indexes() {
        let mut grants = Grants::default();
        let g = grant("g1", "alice", &["read"]);
        let later = g.expires_at + chrono::Duration::days(1);
        grants.put(g.clone(), 1);
        let revoked = Grant {
            user_id: "bob".into(),
            status: GrantStatus::Revoked,
            ..g.clone()
        };
        grants.put(revoked, 2);
        let at = g.created_at;
        let count = |grants: &Grants, user: Option<&str>, status: Option<GrantStatus>| {
            let filter = GrantFilter {
                user_id: user.map(Into::into),
                status,
                ..GrantFilter::default()
            };
            grants.count(&filter, at)
        };
        assert_eq!(count(&grants, Some("alice"), None), 0);
        assert_eq!(count(&grants, Some("bob"), None), 1);
        assert_eq!(count(&grants, None, Some(GrantStatus::Revoked)), 1);
        assert!(
            grants.expired("z", later, 10).is_empty(),
            "revoked is not due"
        );

        let active = Grant {
            expires_at: later,
            ..g.clone()
        };
        grants.put(active, 3);
        assert_eq!(count(&grants, None, Some(GrantStatus::Revoked)), 0);
        assert!(
            grants.expired("z", g.expires_at, 10).is_empty(),
            "old expiry gone"
        );
        let due = grants.expired("z", later, 10);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].version, 3);
    }

    #[test]
    fn only_a_chain_other_than_the_default_is_kept() {
        let mut grants = Grants::default();
        grants.put(grant("g1", "alice", &["read"]), 1);
        assert!(
            grants
                .records
                .get("g1")
                .is_some_and(|g| g.refresh.is_none()),
            "a bare grant keeps none"
        );

        let chain = RefreshChain {
            generation: 2,
            current: Some(tenure::Digest::from_bytes([9; 32])),
            ..RefreshChain::LEGACY
        };
        let rotated = Grant {
            refresh: chain,
            ..grant("g1", "alice", &["read"])
        };
        grants.put(rotated.clone(), 2);
        assert_eq!(grants.get("z", "g1").map(|g| g.record), Some(rotated));

        grants.put(grant("g1", "alice", &["read"]), 3);
        assert!(
            grants
                .records
                .get("g1")
                .is_some_and(|g| g.refresh.is_none()),
            "back to the default"
        );
        assert_eq!(
            grants.get("z", "g1").map(|g| g.record.refresh),
            Some(RefreshChain::default())
        );
    }
}
