//! In-memory storage backend for the tenure grant-lifecycle engine.
//!
//! For tests, edge services and anything that needs no durability. Every index the
//! [`Storage`] trait needs is kept, so a page, a token lookup, a sweep or a bulk
//! revocation never scans a zone: a listing walks an ordered index from its cursor,
//! the expiry index holds only grants stored active, and tokens are found by digest.
//!
//! Concurrency: one reader-writer lock over the whole store, sharded per thread
//! ([`ShardedLock`]): a reader locks only its own thread's shard, so readers on
//! different cores never write to a shared cache line and introspection scales
//! with cores; a write set locks every shard, checks every version it expects, and
//! applies all of it or nothing, so no reader ever sees half of a set.
//!
//! Records are kept compact: the ids and scope sets many grants and tokens share
//! are stored once per zone and referred to by 4-byte symbols, and records are
//! rebuilt on read. A million bare grants with their indexes take about 540 bytes
//! each.
//!
//! ```
//! use std::sync::Arc;
//! use tenure::Engine;
//! use tenure_memory::MemoryStorage;
//!
//! let engine = Engine::builder(Arc::new(MemoryStorage::new())).build();
//! # let _ = engine;
//! ```

mod grants;
mod intern;
pub mod testing;
mod tokens;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};
use tenure::{
    Actor, Client, DeviceAuthorization, Digest, Error, Expect, Grant, GrantFilter, GrantPage,
    GrantQuery, GrantStatus, Keyset, PersonalGrant, Result, Storage, Timestamp, Token,
    TokenAndGrant, Transition, TransitionReason, Versioned, Write, WriteSet,
};

use crate::grants::{Grants, Key, remove_from};
use crate::tokens::Tokens;

/// One zone's records and indexes.
#[derive(Debug, Default)]
struct Zone {
    clients: BTreeMap<String, Versioned<Client>>,
    grants: Grants,
    tokens: Tokens,
    history: HashMap<Arc<str>, Vec<Entry>>,
    personal: BTreeMap<Arc<str>, Versioned<PersonalGrant>>,
    personal_by_user: HashMap<String, BTreeSet<Key>>,
    devices: HashMap<Digest, Versioned<DeviceAuthorization>>,
    devices_by_user_code: HashMap<String, Digest>,
    /// Device authorizations by `(expires_at in ms, device code)`.
    device_expiry: BTreeSet<(i64, Digest)>,
}

impl Zone {
    /// The shared id of a grant for maps keyed by grant: the stored grant's own if
    /// there is one.
    fn grant_key(&self, id: &str) -> Arc<str> {
        self.grants.shared_id(id).unwrap_or_else(|| Arc::from(id))
    }
}

/// A transition as kept: its zone and grant are those of the map holding it.
#[derive(Debug, Clone)]
struct Entry {
    from: Option<GrantStatus>,
    to: GrantStatus,
    reason: TransitionReason,
    actor: Actor,
    at: Timestamp,
}

/// A write set held a kind of write this backend does not know.
#[derive(Debug, thiserror::Error)]
#[error("unsupported write: {0}")]
pub struct UnsupportedWrite(String);

/// The in-memory store. Cheap to clone; clones share the same data.
#[derive(Debug, Default, Clone)]
pub struct MemoryStorage {
    zones: Arc<ShardedLock<HashMap<String, Zone>>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStorage::default()
    }

    fn read(&self) -> ShardedLockReadGuard<'_, HashMap<String, Zone>> {
        // A panic while holding the lock cannot leave a half-applied set (sets are
        // checked before anything is written), so a poisoned lock is still sound.
        self.zones.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> ShardedLockWriteGuard<'_, HashMap<String, Zone>> {
        self.zones.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Up to `limit` records of a map keyed by id, in id order, after `after`.
fn after_by_id<K, V>(map: &BTreeMap<K, V>, after: Option<&str>, limit: usize) -> Vec<V>
where
    K: std::borrow::Borrow<str> + Ord,
    V: Clone,
{
    let range = match after {
        Some(a) => map.range::<str, _>((Bound::Excluded(a), Bound::Unbounded)),
        None => map.range::<str, _>(..),
    };
    range.take(limit).map(|(_, v)| v.clone()).collect()
}

fn check(zones: &HashMap<String, Zone>, set: &WriteSet) -> Result<()> {
    // User codes taken by earlier writes of this same set.
    let mut claimed: HashMap<(&str, &str), Digest> = HashMap::new();
    for write in &set.writes {
        let holds = match write {
            Write::PutClient { client, expect } => expect.holds(
                zones
                    .get(&client.zone_id)
                    .and_then(|z| z.clients.get(&client.id))
                    .map(|c| c.version),
            ),
            Write::PutGrant { grant, expect } => expect.holds(
                zones
                    .get(&grant.zone_id)
                    .and_then(|z| z.grants.version(&grant.id)),
            ),
            Write::DeleteGrant {
                zone_id,
                id,
                expect,
            } => Expect::Version(*expect)
                .holds(zones.get(zone_id).and_then(|z| z.grants.version(id))),
            Write::PutToken { token, expect } => expect.holds(
                zones
                    .get(&token.zone_id)
                    .and_then(|z| z.tokens.version(&token.digest)),
            ),
            Write::DeleteToken {
                zone_id,
                digest,
                expect,
            } => Expect::Version(*expect)
                .holds(zones.get(zone_id).and_then(|z| z.tokens.version(digest))),
            Write::AppendTransition(_) => true,
            Write::PutPersonalGrant { grant, expect } => expect.holds(
                zones
                    .get(&grant.zone_id)
                    .and_then(|z| z.personal.get(grant.id.as_str()))
                    .map(|g| g.version),
            ),
            Write::DeletePersonalGrant {
                zone_id,
                id,
                expect,
            } => Expect::Version(*expect).holds(
                zones
                    .get(zone_id)
                    .and_then(|z| z.personal.get(id.as_str()))
                    .map(|g| g.version),
            ),
            Write::PutDeviceAuthorization { device, expect } => {
                let zone = zones.get(&device.zone_id);
                let code_free = zone
                    .and_then(|z| z.devices_by_user_code.get(&device.user_code))
                    .is_none_or(|owner| *owner == device.device_code);
                let free_in_set = *claimed
                    .entry((device.zone_id.as_str(), device.user_code.as_str()))
                    .or_insert(device.device_code)
                    == device.device_code;
                code_free
                    && free_in_set
                    && expect.holds(
                        zone.and_then(|z| z.devices.get(&device.device_code))
                            .map(|d| d.version),
                    )
            }
            Write::DeleteDeviceAuthorization {
                zone_id,
                device_code,
                expect,
            } => Expect::Version(*expect).holds(
                zones
                    .get(zone_id)
                    .and_then(|z| z.devices.get(device_code))
                    .map(|d| d.version),
            ),
            // A write this backend does not know: refusing it as a conflict would
            // only make the engine retry.
            other => {
                return Err(tenure::storage::backend_error(
                    "memory",
                    UnsupportedWrite(format!("{other:?}")),
                ));
            }
        };
        if !holds {
            return Err(Error::Conflict);
        }
    }
    Ok(())
}

fn apply_one(zones: &mut HashMap<String, Zone>, write: Write) {
    match write {
        Write::PutClient { client, expect } => {
            let zone = zones.entry(client.zone_id.clone()).or_default();
            zone.clients.insert(
                client.id.clone(),
                Versioned {
                    record: client,
                    version: expect.next_version(),
                },
            );
        }
        Write::PutGrant { grant, expect } => {
            let zone = zones.entry(grant.zone_id.clone()).or_default();
            zone.grants.put(grant, expect.next_version());
        }
        Write::DeleteGrant { zone_id, id, .. } => {
            if let Some(zone) = zones.get_mut(&zone_id) {
                zone.grants.remove(&id);
                zone.history.remove(id.as_str());
                zone.tokens.forget_grant(&id);
            }
        }
        Write::PutToken { token, expect } => {
            let zone = zones.entry(token.zone_id.clone()).or_default();
            let grant = zone.grant_key(&token.grant_id);
            zone.tokens.put(token, expect.next_version(), grant);
        }
        Write::DeleteToken {
            zone_id, digest, ..
        } => {
            if let Some(zone) = zones.get_mut(&zone_id) {
                zone.tokens.remove(&digest);
            }
        }
        Write::AppendTransition(t) => {
            let zone = zones.entry(t.zone_id.clone()).or_default();
            let grant_id = zone.grant_key(&t.grant_id);
            zone.history.entry(grant_id).or_default().push(Entry {
                from: t.from,
                to: t.to,
                reason: t.reason,
                actor: t.actor,
                at: t.at,
            });
        }
        Write::PutPersonalGrant { grant, expect } => {
            let zone = zones.entry(grant.zone_id.clone()).or_default();
            let id: Arc<str> = match zone.personal.get_key_value(grant.id.as_str()) {
                Some((id, old)) => {
                    let id = id.clone();
                    let key = (old.record.created_at.timestamp_millis(), id.clone());
                    let user = old.record.user_id.clone();
                    remove_from(&mut zone.personal_by_user, &user, &key);
                    id
                }
                None => Arc::from(grant.id.as_str()),
            };
            zone.personal_by_user
                .entry(grant.user_id.clone())
                .or_default()
                .insert((grant.created_at.timestamp_millis(), id.clone()));
            zone.personal.insert(
                id,
                Versioned {
                    record: grant,
                    version: expect.next_version(),
                },
            );
        }
        Write::DeletePersonalGrant { zone_id, id, .. } => {
            if let Some(zone) = zones.get_mut(&zone_id) {
                if let Some((key, old)) = zone.personal.remove_entry(id.as_str()) {
                    let index_key = (old.record.created_at.timestamp_millis(), key);
                    remove_from(&mut zone.personal_by_user, &old.record.user_id, &index_key);
                }
            }
        }
        Write::PutDeviceAuthorization { device, expect } => {
            let zone = zones.entry(device.zone_id.clone()).or_default();
            if let Some(old) = zone.devices.get(&device.device_code) {
                let old = old.record.clone();
                zone.devices_by_user_code.remove(&old.user_code);
                zone.device_expiry
                    .remove(&(old.expires_at.timestamp_millis(), old.device_code));
            }
            zone.devices_by_user_code
                .insert(device.user_code.clone(), device.device_code);
            zone.device_expiry
                .insert((device.expires_at.timestamp_millis(), device.device_code));
            zone.devices.insert(
                device.device_code,
                Versioned {
                    record: device,
                    version: expect.next_version(),
                },
            );
        }
        Write::DeleteDeviceAuthorization {
            zone_id,
            device_code,
            ..
        } => {
            if let Some(zone) = zones.get_mut(&zone_id) {
                if let Some(old) = zone.devices.remove(&device_code) {
                    zone.devices_by_user_code.remove(&old.record.user_code);
                    zone.device_expiry
                        .remove(&(old.record.expires_at.timestamp_millis(), device_code));
                }
            }
        }
        _ => {}
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get_client(&self, zone_id: &str, id: &str) -> Result<Option<Versioned<Client>>> {
        Ok(self
            .read()
            .get(zone_id)
            .and_then(|z| z.clients.get(id))
            .cloned())
    }

    async fn list_clients(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned<Client>>> {
        let zones = self.read();
        Ok(zones
            .get(zone_id)
            .map(|z| after_by_id(&z.clients, after, limit))
            .unwrap_or_default())
    }

    async fn get_grant(&self, zone_id: &str, id: &str) -> Result<Option<Versioned<Grant>>> {
        Ok(self
            .read()
            .get(zone_id)
            .and_then(|z| z.grants.get(zone_id, id)))
    }

    async fn list_grants(&self, query: &GrantQuery) -> Result<GrantPage> {
        let zones = self.read();
        let Some(zone) = zones.get(&query.zone_id) else {
            return Ok(GrantPage::default());
        };
        Ok(zone.grants.page(query))
    }

    async fn count_grants(
        &self,
        zone_id: &str,
        filter: &GrantFilter,
        now: Timestamp,
    ) -> Result<u64> {
        let zones = self.read();
        let Some(zone) = zones.get(zone_id) else {
            return Ok(0);
        };
        Ok(zone.grants.count(filter, now))
    }

    async fn expired_grants(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<Grant>>> {
        let zones = self.read();
        let Some(zone) = zones.get(zone_id) else {
            return Ok(Vec::new());
        };
        Ok(zone.grants.expired(zone_id, now, limit))
    }

    async fn grant_history(&self, zone_id: &str, grant_id: &str) -> Result<Vec<Transition>> {
        let zones = self.read();
        let entries = zones.get(zone_id).and_then(|z| z.history.get(grant_id));
        Ok(entries
            .into_iter()
            .flatten()
            .map(|e| Transition {
                zone_id: zone_id.to_owned(),
                grant_id: grant_id.to_owned(),
                from: e.from,
                to: e.to,
                reason: e.reason,
                actor: e.actor.clone(),
                at: e.at,
            })
            .collect())
    }

    async fn get_token(&self, zone_id: &str, digest: &Digest) -> Result<Option<Versioned<Token>>> {
        Ok(self
            .read()
            .get(zone_id)
            .and_then(|z| z.tokens.get(zone_id, digest)))
    }

    async fn get_token_and_grant(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> Result<Option<TokenAndGrant>> {
        let zones = self.read();
        let Some(zone) = zones.get(zone_id) else {
            return Ok(None);
        };
        let Some(token) = zone.tokens.get(zone_id, digest) else {
            return Ok(None);
        };
        let grant = zone
            .tokens
            .grant_of(digest)
            .and_then(|id| zone.grants.get(zone_id, id));
        Ok(Some((token, grant)))
    }

    async fn grant_tokens(&self, zone_id: &str, grant_id: &str) -> Result<Vec<Versioned<Token>>> {
        Ok(self
            .read()
            .get(zone_id)
            .map(|z| z.tokens.of_grant(zone_id, grant_id))
            .unwrap_or_default())
    }

    async fn get_personal_grant(
        &self,
        zone_id: &str,
        id: &str,
    ) -> Result<Option<Versioned<PersonalGrant>>> {
        Ok(self
            .read()
            .get(zone_id)
            .and_then(|z| z.personal.get(id))
            .cloned())
    }

    async fn list_personal_grants(
        &self,
        zone_id: &str,
        user_id: &str,
        after: Option<&Keyset>,
        limit: usize,
    ) -> Result<Vec<Versioned<PersonalGrant>>> {
        let zones = self.read();
        let Some(zone) = zones.get(zone_id) else {
            return Ok(Vec::new());
        };
        let Some(index) = zone.personal_by_user.get(user_id) else {
            return Ok(Vec::new());
        };
        let newest_first: Box<dyn Iterator<Item = &Key>> = match after {
            None => Box::new(index.iter().rev()),
            Some(k) => Box::new(
                index
                    .range((
                        Bound::Unbounded,
                        Bound::Excluded((
                            k.created_at.timestamp_millis(),
                            Arc::from(k.id.as_str()),
                        )),
                    ))
                    .rev(),
            ),
        };
        Ok(newest_first
            .filter_map(|(_, id)| zone.personal.get(id).cloned())
            .take(limit)
            .collect())
    }

    async fn list_zone_personal_grants(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned<PersonalGrant>>> {
        let zones = self.read();
        Ok(zones
            .get(zone_id)
            .map(|z| after_by_id(&z.personal, after, limit))
            .unwrap_or_default())
    }

    async fn get_device_authorization(
        &self,
        zone_id: &str,
        device_code: &Digest,
    ) -> Result<Option<Versioned<DeviceAuthorization>>> {
        Ok(self
            .read()
            .get(zone_id)
            .and_then(|z| z.devices.get(device_code))
            .cloned())
    }

    async fn find_device_authorization(
        &self,
        zone_id: &str,
        user_code: &str,
    ) -> Result<Option<Versioned<DeviceAuthorization>>> {
        let zones = self.read();
        Ok(zones.get(zone_id).and_then(|z| {
            z.devices_by_user_code
                .get(user_code)
                .and_then(|d| z.devices.get(d))
                .cloned()
        }))
    }

    async fn expired_device_authorizations(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<DeviceAuthorization>>> {
        let zones = self.read();
        let Some(zone) = zones.get(zone_id) else {
            return Ok(Vec::new());
        };
        let now = now.timestamp_millis();
        Ok(zone
            .device_expiry
            .iter()
            .take_while(|(expires, _)| *expires <= now)
            .take(limit)
            .filter_map(|(_, d)| zone.devices.get(d).cloned())
            .collect())
    }

    async fn apply(&self, set: WriteSet) -> Result<()> {
        let mut zones = self.write();
        check(&zones, &set)?;
        for write in set.writes {
            apply_one(&mut zones, write);
        }
        Ok(())
    }
}
