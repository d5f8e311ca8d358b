//! In-memory storage backend for the tenure grant-lifecycle engine.
//!
//! For tests, edge services and anything that needs no durability. Every index the
//! [`Storage`] trait needs is kept, so a page, a token lookup, a sweep or a bulk
//! revocation never scans a zone: a listing walks an ordered index from its cursor,
//! the expiry index holds only grants stored active, tokens are found by digest,
//! and expired tokens through an index by `(expires_at, digest)`. Deleting a grant
//! also deletes whatever tokens of it its write set left stored, so none outlives
//! its grant.
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
mod sharded;
pub mod testing;
mod tokens;

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashMap;

use crate::sharded::Sharded;
use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};
use tenure::{
    Actor, AuthorizationCode, Client, DeviceAuthorization, Digest, Error, Expect, Grant,
    GrantFilter, GrantPage, GrantQuery, GrantStatus, Keyset, PersonalGrant, RecordKey, Result,
    Storage, Timestamp, Token, TokenAndGrant, TokenAndGrantFacts, Transition, TransitionReason,
    Version, Versioned, Write, WriteSet,
};

use crate::grants::{Grants, Key, remove_from};
use crate::tokens::Tokens;

/// One zone's records and indexes.
#[derive(Debug, Default)]
struct Zone {
    clients: BTreeMap<String, Versioned<Client>>,
    grants: Grants,
    tokens: Tokens,
    history: Sharded<Arc<str>, Vec<Entry>>,
    personal: BTreeMap<Arc<str>, Versioned<PersonalGrant>>,
    personal_by_user: Sharded<String, BTreeSet<Key>>,
    /// Device authorizations by device-code digest, in byte order for listing.
    devices: BTreeMap<Digest, Versioned<DeviceAuthorization>>,
    devices_by_user_code: HashMap<String, Digest>,
    /// Device authorizations by `(expires_at in ms, device code)`.
    device_expiry: BTreeSet<(i64, Digest)>,
    codes: HashMap<Digest, Versioned<AuthorizationCode>>,
    /// Authorization codes by `(expires_at in ms, code)`.
    code_expiry: BTreeSet<(i64, Digest)>,
}

impl Zone {
    /// The shared id of a grant for maps keyed by grant: the stored grant's own if
    /// there is one.
    fn grant_key(&self, id: &str) -> Arc<str> {
        self.grant_link(id).0
    }

    /// [`Zone::grant_key`] with the grant's slot ([`tokens::NO_SLOT`] if it is not
    /// stored).
    fn grant_link(&self, id: &str) -> (Arc<str>, u32) {
        self.grants
            .shared_id(id)
            .unwrap_or_else(|| (Arc::from(id), tokens::NO_SLOT))
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
    /// A token by digest, under one read lock with what `read` takes from its
    /// grant (`None` if the grant is gone): introspection's read, whole or narrowed.
    fn token_with_grant<G>(
        &self,
        zone_id: &str,
        digest: &Digest,
        read: impl FnOnce(&grants::Grants, &Arc<str>, u32) -> Option<G>,
    ) -> Option<(Versioned<Token>, Option<G>)> {
        let zones = self.read();
        let zone = zones.get(zone_id)?;
        let (token, id, slot) = zone.tokens.get_with_grant(zone_id, digest)?;
        Some((token, read(&zone.grants, id, slot)))
    }

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

/// The version a record is stored with, `None` if absent; an error for a kind of
/// record this backend does not know.
fn stored_version(zones: &HashMap<String, Zone>, record: &RecordKey) -> Result<Option<Version>> {
    Ok(match record {
        RecordKey::Client { zone_id, id } => zones
            .get(zone_id)
            .and_then(|z| z.clients.get(id))
            .map(|c| c.version),
        RecordKey::Grant { zone_id, id } => zones.get(zone_id).and_then(|z| z.grants.version(id)),
        RecordKey::Token { zone_id, digest } => {
            zones.get(zone_id).and_then(|z| z.tokens.version(digest))
        }
        other => {
            return Err(tenure::storage::backend_error(
                "memory",
                UnsupportedWrite(format!("check of {other:?}")),
            ));
        }
    })
}

fn check(zones: &HashMap<String, Zone>, set: &WriteSet) -> Result<()> {
    // User codes taken by earlier writes of this same set.
    let mut claimed: HashMap<(&str, &str), Digest> = HashMap::default();
    for write in &set.writes {
        let holds = match write {
            Write::PutClient { client, expect } => expect.holds(
                zones
                    .get(&client.zone_id)
                    .and_then(|z| z.clients.get(&client.id))
                    .map(|c| c.version),
            ),
            Write::DeleteClient {
                zone_id,
                id,
                expect,
            } => Expect::Version(*expect).holds(
                zones
                    .get(zone_id)
                    .and_then(|z| z.clients.get(id))
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
            Write::Check { record, expect } => expect.holds(stored_version(zones, record)?),
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
            Write::PutAuthorizationCode { code, expect } => expect.holds(
                zones
                    .get(&code.zone_id)
                    .and_then(|z| z.codes.get(&code.code))
                    .map(|c| c.version),
            ),
            Write::DeleteAuthorizationCode {
                zone_id,
                code,
                expect,
            } => Expect::Version(*expect).holds(
                zones
                    .get(zone_id)
                    .and_then(|z| z.codes.get(code))
                    .map(|c| c.version),
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
        Write::DeleteClient { zone_id, id, .. } => {
            if let Some(zone) = zones.get_mut(&zone_id) {
                zone.clients.remove(&id);
            }
        }
        Write::PutGrant { grant, expect } => {
            let zone = zones.entry(grant.zone_id.clone()).or_default();
            zone.grants.put(grant, expect.next_version());
        }
        Write::DeleteGrant { zone_id, id, .. } => {
            if let Some(zone) = zones.get_mut(&zone_id) {
                zone.grants.remove(&id);
                zone.history.remove(id.as_str());
                zone.tokens.remove_grant(&id);
            }
        }
        Write::PutToken { token, expect } => {
            let zone = zones.entry(token.zone_id.clone()).or_default();
            let (grant, slot) = zone.grant_link(&token.grant_id);
            zone.tokens.put(token, expect.next_version(), grant, slot);
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
        Write::PutAuthorizationCode { code, expect } => {
            let zone = zones.entry(code.zone_id.clone()).or_default();
            if let Some(old) = zone.codes.get(&code.code) {
                let key = (old.record.expires_at.timestamp_millis(), old.record.code);
                zone.code_expiry.remove(&key);
            }
            zone.code_expiry
                .insert((code.expires_at.timestamp_millis(), code.code));
            zone.codes.insert(
                code.code,
                Versioned {
                    record: code,
                    version: expect.next_version(),
                },
            );
        }
        Write::DeleteAuthorizationCode { zone_id, code, .. } => {
            if let Some(zone) = zones.get_mut(&zone_id) {
                if let Some(old) = zone.codes.remove(&code) {
                    zone.code_expiry
                        .remove(&(old.record.expires_at.timestamp_millis(), code));
                }
            }
        }
        _ => {}
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn zones(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        // Zones are few (tenants): the map's keys are filtered and ordered per call.
        let zones = self.read();
        let mut ids: Vec<&String> = zones
            .iter()
            .filter(|(id, z)| {
                after.is_none_or(|a| id.as_str() > a)
                    && (!z.clients.is_empty() || !z.grants.is_empty())
            })
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        Ok(ids.into_iter().take(limit).cloned().collect())
    }

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
        Ok(self.token_with_grant(zone_id, digest, |grants, id, _| grants.get(zone_id, id)))
    }

    async fn get_token_and_grant_facts(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> Result<Option<TokenAndGrantFacts>> {
        Ok(self.token_with_grant(zone_id, digest, |grants, id, slot| {
            grants.facts_at(id, slot)
        }))
    }

    async fn grant_tokens(&self, zone_id: &str, grant_id: &str) -> Result<Vec<Versioned<Token>>> {
        Ok(self
            .read()
            .get(zone_id)
            .map(|z| z.tokens.of_grant(zone_id, grant_id))
            .unwrap_or_default())
    }

    async fn expired_tokens(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<Token>>> {
        let zones = self.read();
        let Some(zone) = zones.get(zone_id) else {
            return Ok(Vec::new());
        };
        Ok(zone.tokens.expired(zone_id, now, limit))
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

    async fn list_device_authorizations(
        &self,
        zone_id: &str,
        after: Option<&Digest>,
        limit: usize,
    ) -> Result<Vec<Versioned<DeviceAuthorization>>> {
        let zones = self.read();
        let Some(zone) = zones.get(zone_id) else {
            return Ok(Vec::new());
        };
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(zone
            .devices
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn get_authorization_code(
        &self,
        zone_id: &str,
        code: &Digest,
    ) -> Result<Option<Versioned<AuthorizationCode>>> {
        Ok(self
            .read()
            .get(zone_id)
            .and_then(|z| z.codes.get(code))
            .cloned())
    }

    async fn expired_authorization_codes(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<AuthorizationCode>>> {
        let zones = self.read();
        let Some(zone) = zones.get(zone_id) else {
            return Ok(Vec::new());
        };
        let now = now.timestamp_millis();
        Ok(zone
            .code_expiry
            .iter()
            .take_while(|(expires, _)| *expires <= now)
            .take(limit)
            .filter_map(|(_, c)| zone.codes.get(c).cloned())
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

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration};
    use tenure::{RefreshChain, TokenKind};

    use super::*;

    fn at(seconds: i64) -> Timestamp {
        DateTime::from_timestamp(1_893_456_000 + seconds, 0).unwrap_or_default()
    }

    fn grant(id: &str) -> Grant {
        Grant {
            id: id.into(),
            zone_id: "z".into(),
            organization_id: "org".into(),
            user_id: "alice".into(),
            resource_id: "res".into(),
            provider_id: "default".into(),
            client_id: "client".into(),
            scopes: vec!["read".into()],
            status: GrantStatus::Active,
            created_at: at(0),
            updated_at: at(0),
            expires_at: at(86_400),
            refreshed_at: None,
            refresh_token_set: true,
            refresh: RefreshChain::default(),
        }
    }

    fn token(byte: u8, grant_id: &str, expires_in: i64) -> Token {
        Token {
            digest: Digest::from_bytes([byte; 32]),
            zone_id: "z".into(),
            grant_id: grant_id.into(),
            client_id: "client".into(),
            user_id: "alice".into(),
            kind: TokenKind::Refresh,
            scopes: vec!["read".into()],
            issued_at: at(0),
            expires_at: at(expires_in),
            generation: 1,
            revoked_at: None,
        }
    }

    async fn apply(store: &MemoryStorage, writes: Vec<Write>) -> Result<()> {
        store.apply(WriteSet { writes }).await
    }

    fn put_grant(grant: Grant) -> Write {
        Write::PutGrant {
            grant,
            expect: Expect::Absent,
        }
    }

    fn put_token(token: Token) -> Write {
        Write::PutToken {
            token,
            expect: Expect::Absent,
        }
    }

    /// The first bytes of the digests `expired_tokens` answers at `now`.
    async fn expired(store: &MemoryStorage, now: i64, limit: usize) -> Vec<u8> {
        let due = store.expired_tokens("z", at(now), limit).await;
        due.unwrap_or_default()
            .iter()
            .map(|t| t.record.digest.as_bytes()[0])
            .collect()
    }

    #[tokio::test]
    async fn the_token_expiry_index_follows_every_write_of_a_token() {
        let store = MemoryStorage::new();
        let writes = vec![
            put_grant(grant("g1")),
            put_grant(grant("g2")),
            put_token(token(3, "g1", 10)),
            put_token(token(1, "g1", 10)),
            put_token(token(2, "g1", 5)),
            put_token(token(4, "g2", 20)),
        ];
        apply(&store, writes).await.unwrap();

        // By expiry, then by digest.
        assert_eq!(expired(&store, 10, 10).await, [2, 1, 3]);
        assert_eq!(expired(&store, 10, 2).await, [2, 1]);
        assert_eq!(expired(&store, 4, 10).await, [] as [u8; 0]);
        assert_eq!(expired(&store, 20, 10).await, [2, 1, 3, 4]);
        assert!(
            store
                .expired_tokens("other", at(20), 10)
                .await
                .unwrap()
                .is_empty()
        );

        // A replacement with a later expiry moves its entry.
        let replaced = Write::PutToken {
            token: token(3, "g1", 30),
            expect: Expect::Version(1),
        };
        apply(&store, vec![replaced]).await.unwrap();
        assert_eq!(expired(&store, 10, 10).await, [2, 1]);
        assert_eq!(expired(&store, 30, 10).await, [2, 1, 4, 3]);
        let due = store.expired_tokens("z", at(30), 10).await.unwrap();
        assert_eq!(due[3].version, 2);
        assert_eq!(due[3].record, token(3, "g1", 30));

        // A deleted token leaves the index.
        let delete = Write::DeleteToken {
            zone_id: "z".into(),
            digest: Digest::from_bytes([1; 32]),
            expect: 1,
        };
        apply(&store, vec![delete]).await.unwrap();
        assert_eq!(expired(&store, 30, 10).await, [2, 4, 3]);

        // Deleting a grant deletes the tokens of it its set left stored.
        let delete_g1 = Write::DeleteGrant {
            zone_id: "z".into(),
            id: "g1".into(),
            expect: 1,
        };
        apply(&store, vec![delete_g1]).await.unwrap();
        assert_eq!(expired(&store, 30, 10).await, [4]);
        let gone = store.get_token("z", &Digest::from_bytes([2; 32])).await;
        assert_eq!(gone.unwrap(), None);
        assert!(store.grant_tokens("z", "g1").await.unwrap().is_empty());

        // ... and the engine's own form, each token deleted in the same set.
        let delete_g2 = vec![
            Write::DeleteToken {
                zone_id: "z".into(),
                digest: Digest::from_bytes([4; 32]),
                expect: 1,
            },
            Write::DeleteGrant {
                zone_id: "z".into(),
                id: "g2".into(),
                expect: 1,
            },
        ];
        apply(&store, delete_g2).await.unwrap();
        assert_eq!(expired(&store, 30, 10).await, [] as [u8; 0]);
    }

    #[tokio::test]
    async fn a_check_holds_the_set_to_a_record_and_writes_nothing() {
        let store = MemoryStorage::new();
        apply(&store, vec![put_grant(grant("g1"))]).await.unwrap();
        let check = |id: &str, expect| Write::Check {
            record: RecordKey::Grant {
                zone_id: "z".into(),
                id: id.into(),
            },
            expect,
        };

        // A stale check refuses the whole set.
        let stale = vec![
            check("g1", Expect::Version(2)),
            put_token(token(1, "g1", 10)),
        ];
        assert!(matches!(apply(&store, stale).await, Err(Error::Conflict)));
        let absent = vec![put_token(token(1, "g1", 10)), check("g1", Expect::Absent)];
        assert!(matches!(apply(&store, absent).await, Err(Error::Conflict)));
        assert_eq!(
            store
                .get_token("z", &Digest::from_bytes([1; 32]))
                .await
                .unwrap(),
            None
        );

        // A check that holds lets the set through and leaves the record as it was.
        let fresh = vec![
            check("g1", Expect::Version(1)),
            put_token(token(1, "g1", 10)),
        ];
        apply(&store, fresh).await.unwrap();
        assert_eq!(
            store.get_grant("z", "g1").await.unwrap().unwrap().version,
            1
        );
        assert!(
            store
                .get_token("z", &Digest::from_bytes([1; 32]))
                .await
                .unwrap()
                .is_some()
        );

        // Tokens and clients, and zones are walls.
        let token_key = RecordKey::Token {
            zone_id: "z".into(),
            digest: Digest::from_bytes([1; 32]),
        };
        let checks = vec![
            Write::Check {
                record: token_key.clone(),
                expect: Expect::Version(1),
            },
            Write::Check {
                record: RecordKey::Client {
                    zone_id: "z".into(),
                    id: "client".into(),
                },
                expect: Expect::Absent,
            },
            Write::Check {
                record: RecordKey::Grant {
                    zone_id: "other".into(),
                    id: "g1".into(),
                },
                expect: Expect::Absent,
            },
        ];
        apply(&store, checks).await.unwrap();
        let absent_token = Write::Check {
            record: token_key,
            expect: Expect::Absent,
        };
        assert!(matches!(
            apply(&store, vec![absent_token]).await,
            Err(Error::Conflict)
        ));
    }

    #[tokio::test]
    async fn a_grant_keeps_its_refresh_chain_exactly() {
        let store = MemoryStorage::new();
        let chain = RefreshChain {
            generation: 7,
            family: Some(Digest::from_bytes([1; 32])),
            current: Some(Digest::from_bytes([2; 32])),
            previous: Some(Digest::from_bytes([3; 32])),
        };
        let rotated = Grant {
            refresh: chain,
            ..grant("g1")
        };
        apply(&store, vec![put_grant(rotated.clone())])
            .await
            .unwrap();
        let read = store.get_grant("z", "g1").await.unwrap().unwrap();
        assert_eq!(read.record, rotated);

        for (version, refresh) in [
            (1, RefreshChain::LEGACY),
            (2, RefreshChain::default()),
            (3, chain),
        ] {
            let put = Write::PutGrant {
                grant: Grant {
                    refresh,
                    ..grant("g1")
                },
                expect: Expect::Version(version),
            };
            apply(&store, vec![put]).await.unwrap();
            let read = store.get_grant("z", "g1").await.unwrap().unwrap();
            assert_eq!(read.record.refresh, refresh);
        }
        let page = store
            .expired_grants("z", at(0) + Duration::days(1), 10)
            .await
            .unwrap();
        assert_eq!(page[0].record.refresh, chain);
    }
}
