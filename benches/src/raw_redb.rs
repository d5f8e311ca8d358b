//! The raw baseline of the redb backend: plain redb tables written by hand, every
//! write operation one write transaction committed with redb's immediate
//! durability (as the engine's store commits with its default durability).
//!
//! The tables, keys and values are [`crate::raw_sled`]'s (the same plain structs,
//! postcard-encoded, and the same keys), so the two raw stores differ only in the
//! database under them. redb's calls run inline in the async methods.

use std::ops::Bound;

use redb::{Database, ReadableTable, TableDefinition};
use tempfile::TempDir;
use tenure::{Client, Digest, Grant, Timestamp, TransitionReason};

use crate::fixture::{self, Family};
use crate::raw_sled::{
    ACTIVE, EMPTY, EXPIRED, Encoded, EncodedToken, REVOKED, RawClient, RawGrant, RawToken,
    RawTransition, by_user_key, decode, encode, expiry_key, ms, raw_family, reason, time_key,
    token_expiry_key,
};
use crate::{OrDie, RawStore};

/// Every table maps bytes to bytes.
type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

const CLIENTS: Def = TableDefinition::new("clients");
const GRANTS: Def = TableDefinition::new("grants");
const TOKENS: Def = TableDefinition::new("tokens");
const BY_USER: Def = TableDefinition::new("by_user");
const EXPIRY: Def = TableDefinition::new("expiry");
const TOKEN_EXPIRY: Def = TableDefinition::new("token_expiry");
const HISTORY: Def = TableDefinition::new("history");

/// A hand-written grant store on redb tables, in a temporary directory of its own.
#[derive(Debug)]
pub struct RawRedb {
    db: Database,
    /// Removed after the database is closed (fields drop in order).
    _dir: TempDir,
}

impl Default for RawRedb {
    fn default() -> Self {
        RawRedb::new()
    }
}

/// A redb failure stops the benchmark: there is nothing to measure after it.
trait Die<T> {
    fn die(self) -> T;
}

impl<T, E: std::fmt::Display> Die<T> for Result<T, E> {
    fn die(self) -> T {
        self.or_die("raw redb")
    }
}

impl RawRedb {
    /// An empty store, with redb's default cache and the file format the engine's
    /// store writes.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().or_die("creating a directory for raw redb");
        let db = redb::Builder::new()
            .create_with_file_format_v3(true)
            .create(dir.path().join("raw.redb"))
            .or_die("opening raw redb");
        let raw = RawRedb { db, _dir: dir };
        // Every table exists from the start, so that a read never finds one missing.
        raw.write(|txn| {
            for def in [
                CLIENTS,
                GRANTS,
                TOKENS,
                BY_USER,
                EXPIRY,
                TOKEN_EXPIRY,
                HISTORY,
            ] {
                txn.open_table(def).die();
            }
        });
        raw
    }

    /// Runs `f` in one write transaction and commits it durably.
    fn write<R>(&self, f: impl FnOnce(&redb::WriteTransaction) -> R) -> R {
        let mut txn = self.db.begin_write().die();
        txn.set_durability(redb::Durability::Immediate);
        let out = f(&txn);
        txn.commit().die();
        out
    }

    fn get<T: for<'a> serde::Deserialize<'a>>(
        table: &impl ReadableTable<&'static [u8], &'static [u8]>,
        key: &[u8],
    ) -> Option<T> {
        table.get(key).die().map(|v| decode(v.value()))
    }

    /// Writes families (not timed) in one transaction.
    fn put_families(&self, families: &[(RawGrant, Vec<RawToken>, Vec<RawTransition>)]) {
        self.write(|txn| {
            let mut grants = txn.open_table(GRANTS).die();
            let mut tokens = txn.open_table(TOKENS).die();
            let mut by_user = txn.open_table(BY_USER).die();
            let mut expiry = txn.open_table(EXPIRY).die();
            let mut token_expiry = txn.open_table(TOKEN_EXPIRY).die();
            let mut history = txn.open_table(HISTORY).die();
            for (g, ts, hs) in families {
                grants.insert(g.id.as_bytes(), encode(g).as_slice()).die();
                by_user
                    .insert(
                        by_user_key(&g.user_id, g.created_ms, &g.id).as_slice(),
                        EMPTY,
                    )
                    .die();
                if g.status == ACTIVE {
                    expiry
                        .insert(expiry_key(g.expires_ms, &g.id).as_slice(), EMPTY)
                        .die();
                }
                for t in ts {
                    tokens.insert(&t.digest[..], encode(t).as_slice()).die();
                    token_expiry
                        .insert(token_expiry_key(t.expires_ms, &t.digest).as_slice(), EMPTY)
                        .die();
                }
                for h in hs {
                    let e = Encoded::transition(h);
                    history.insert(e.key.as_slice(), e.value.as_slice()).die();
                }
            }
        });
    }

    /// Bytes of the database file.
    pub fn size_on_disk(&self) -> u64 {
        std::fs::metadata(self._dir.path().join("raw.redb"))
            .map(|m| m.len())
            .or_die("measuring raw redb")
    }

    /// Marks the grant under `key` of the `expiry` table expired, in a transaction
    /// of its own.
    fn expire(&self, key: &[u8]) -> bool {
        self.write(|txn| {
            let mut grants = txn.open_table(GRANTS).die();
            let id = &key[8..];
            let Some(mut grant) = Self::get::<RawGrant>(&grants, id) else {
                return false;
            };
            grant.status = EXPIRED;
            grant.refresh_token_set = false;
            grant.updated_ms = grant.expires_ms;
            let g = Encoded::grant(&grant);
            let transition = Encoded::transition(&RawTransition {
                zone_id: grant.zone_id.clone(),
                grant_id: grant.id.clone(),
                from: Some(ACTIVE),
                to: EXPIRED,
                reason: reason(TransitionReason::Expired),
                actor_kind: 0,
                actor_id: None,
                at_ms: grant.expires_ms,
            });
            grants.insert(g.key.as_slice(), g.value.as_slice()).die();
            txn.open_table(EXPIRY).die().remove(key).die();
            txn.open_table(HISTORY)
                .die()
                .insert(transition.key.as_slice(), transition.value.as_slice())
                .die();
            true
        })
    }
}

impl RawStore for RawRedb {
    async fn put_client(&self, client: Client) {
        self.write(|txn| {
            txn.open_table(CLIENTS)
                .die()
                .insert(
                    client.id.as_bytes(),
                    encode(&RawClient::of(&client)).as_slice(),
                )
                .die();
        });
    }

    async fn load_families(&self, families: Vec<Family>) {
        let raw: Vec<_> = families.iter().map(raw_family).collect();
        self.put_families(&raw);
    }

    async fn load_grants(&self, grants: Vec<Grant>) {
        let raw: Vec<_> = grants
            .iter()
            .map(|g| (RawGrant::of(g), Vec::new(), Vec::new()))
            .collect();
        self.put_families(&raw);
    }

    async fn introspect(&self, presented: &str, now: Timestamp) -> bool {
        let digest = Digest::of(presented);
        let txn = self.db.begin_read().die();
        let tokens = txn.open_table(TOKENS).die();
        let Some(token) = Self::get::<RawToken>(&tokens, digest.as_bytes()) else {
            return false;
        };
        let grants = txn.open_table(GRANTS).die();
        let Some(grant) = Self::get::<RawGrant>(&grants, token.grant_id.as_bytes()) else {
            return false;
        };
        token.live_under(&grant, ms(now))
    }

    async fn authorize(&self, i: u64, now: Timestamp) {
        let mut f = fixture::family(i, 1);
        f.grant.client_id = fixture::CLIENT.to_owned();
        f.grant.created_at = now;
        let (grant, tokens, history) = raw_family(&f);
        self.write(|txn| {
            let mut clients = txn.open_table(CLIENTS).die();
            let Some(mut client) = Self::get::<RawClient>(&clients, fixture::CLIENT.as_bytes())
            else {
                return;
            };
            if let Some(c) = client.record_use(ms(now)) {
                clients.insert(c.key.as_slice(), c.value.as_slice()).die();
            }
            let g = Encoded::grant(&grant);
            txn.open_table(GRANTS)
                .die()
                .insert(g.key.as_slice(), g.value.as_slice())
                .die();
            txn.open_table(BY_USER)
                .die()
                .insert(
                    by_user_key(&grant.user_id, grant.created_ms, &grant.id).as_slice(),
                    EMPTY,
                )
                .die();
            txn.open_table(EXPIRY)
                .die()
                .insert(expiry_key(grant.expires_ms, &grant.id).as_slice(), EMPTY)
                .die();
            let mut token_table = txn.open_table(TOKENS).die();
            let mut token_expiry = txn.open_table(TOKEN_EXPIRY).die();
            for t in tokens.iter().map(EncodedToken::of) {
                token_table.insert(&t.digest[..], t.value.as_slice()).die();
                token_expiry.insert(t.expiry.as_slice(), EMPTY).die();
            }
            let mut history_table = txn.open_table(HISTORY).die();
            for h in history.iter().map(Encoded::transition) {
                history_table
                    .insert(h.key.as_slice(), h.value.as_slice())
                    .die();
            }
        });
    }

    async fn refresh(&self, presented: &str, i: u64, now: Timestamp) -> Option<String> {
        let digest = *Digest::of(presented).as_bytes();
        let now_ms = ms(now);
        self.write(|txn| {
            let mut tokens = txn.open_table(TOKENS).die();
            let mut grants = txn.open_table(GRANTS).die();
            let mut clients = txn.open_table(CLIENTS).die();
            let token = Self::get::<RawToken>(&tokens, &digest)?;
            let grant = Self::get::<RawGrant>(&grants, token.grant_id.as_bytes())?;
            let mut client = Self::get::<RawClient>(&clients, token.client_id.as_bytes())?;
            if !token.rotatable(&grant, &client, now_ms) {
                return None;
            }
            let mut token_expiry = txn.open_table(TOKEN_EXPIRY).die();
            // The spent token is the grant's current one, which is the one presented.
            tokens.remove(&token.digest[..]).die();
            token_expiry
                .remove(token_expiry_key(token.expires_ms, &token.digest).as_slice())
                .die();
            let mut next = grant;
            let (fresh, refresh) = next.rotate(i, digest, now_ms);
            let g = Encoded::grant(&next);
            grants.insert(g.key.as_slice(), g.value.as_slice()).die();
            for t in fresh.iter().map(EncodedToken::of) {
                tokens.insert(&t.digest[..], t.value.as_slice()).die();
                token_expiry.insert(t.expiry.as_slice(), EMPTY).die();
            }
            if let Some(c) = client.record_use(now_ms) {
                clients.insert(c.key.as_slice(), c.value.as_slice()).die();
            }
            Some(refresh)
        })
    }

    async fn revoke(&self, grant_id: &str, now: Timestamp) -> bool {
        let now_ms = ms(now);
        self.write(|txn| {
            let mut grants = txn.open_table(GRANTS).die();
            let Some(mut grant) = Self::get::<RawGrant>(&grants, grant_id.as_bytes()) else {
                return false;
            };
            if !grant.active_at(now_ms) {
                return false;
            }
            grant.status = REVOKED;
            grant.refresh_token_set = false;
            grant.updated_ms = now_ms;
            let g = Encoded::grant(&grant);
            let transition = Encoded::transition(&RawTransition {
                zone_id: grant.zone_id.clone(),
                grant_id: grant.id.clone(),
                from: Some(ACTIVE),
                to: REVOKED,
                reason: reason(TransitionReason::Revoked),
                actor_kind: 1,
                actor_id: None,
                at_ms: now_ms,
            });
            grants.insert(g.key.as_slice(), g.value.as_slice()).die();
            txn.open_table(EXPIRY)
                .die()
                .remove(expiry_key(grant.expires_ms, &grant.id).as_slice())
                .die();
            txn.open_table(HISTORY)
                .die()
                .insert(transition.key.as_slice(), transition.value.as_slice())
                .die();
            true
        })
    }

    async fn page(&self, user_id: &str, limit: usize) -> usize {
        let mut low = user_id.as_bytes().to_vec();
        low.push(0);
        let mut high = user_id.as_bytes().to_vec();
        high.push(1);
        let txn = self.db.begin_read().die();
        let by_user = txn.open_table(BY_USER).die();
        let grants = txn.open_table(GRANTS).die();
        let entries = by_user
            .range::<&[u8]>((
                Bound::Included(low.as_slice()),
                Bound::Excluded(high.as_slice()),
            ))
            .die();
        let mut found = 0;
        for entry in entries.rev().take(limit + 1) {
            let (key, _) = entry.die();
            let id = &key.value()[user_id.len() + 9..];
            if Self::get::<RawGrant>(&grants, id).is_some() {
                found += 1;
            }
        }
        found.min(limit)
    }

    async fn sweep(&self, now: Timestamp, limit: usize) -> usize {
        let end = time_key(ms(now).saturating_add(1));
        let due: Vec<Vec<u8>> = {
            let txn = self.db.begin_read().die();
            let expiry = txn.open_table(EXPIRY).die();
            expiry
                .range::<&[u8]>(..&end[..])
                .die()
                .take(limit)
                .map(|entry| entry.die().0.value().to_vec())
                .collect()
        };
        let swept = due.iter().filter(|key| self.expire(key)).count();
        // Expired tokens, through their expiry index, in one transaction.
        let expired: Vec<Vec<u8>> = {
            let txn = self.db.begin_read().die();
            let token_expiry = txn.open_table(TOKEN_EXPIRY).die();
            token_expiry
                .range::<&[u8]>(..&end[..])
                .die()
                .take(limit)
                .map(|entry| entry.die().0.value().to_vec())
                .collect()
        };
        if !expired.is_empty() {
            self.write(|txn| {
                let mut tokens = txn.open_table(TOKENS).die();
                let mut token_expiry = txn.open_table(TOKEN_EXPIRY).die();
                for key in &expired {
                    tokens.remove(&key[8..]).die();
                    token_expiry.remove(key.as_slice()).die();
                }
            });
        }
        swept
    }
}
