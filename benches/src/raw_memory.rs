//! The raw baseline of the memory backend: the records in `HashMap`s and the
//! indexes the operations need in `BTreeSet`s, under one lock, written by hand.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::Duration;
use tenure::{
    Actor, Client, Digest, Grant, GrantStatus, RefreshChain, Timestamp, Token, TokenKind,
    Transition, TransitionReason,
};

use crate::RawStore;
use crate::fixture::{self, Family};

/// Records and indexes of one zone.
#[derive(Debug, Default)]
struct Zone {
    clients: HashMap<String, Client>,
    grants: HashMap<String, Grant>,
    /// `(user, created_at in ms, grant id)`.
    by_user: BTreeSet<(String, i64, String)>,
    /// `(expires_at in ms, grant id)` of active grants.
    expiry: BTreeSet<(i64, String)>,
    tokens: HashMap<Digest, Token>,
    /// `(expires_at in ms, digest)` of every token.
    token_expiry: BTreeSet<(i64, Digest)>,
    history: HashMap<String, Vec<Transition>>,
}

impl Zone {
    fn insert_grant(&mut self, grant: Grant) {
        self.by_user.insert((
            grant.user_id.clone(),
            grant.created_at.timestamp_millis(),
            grant.id.clone(),
        ));
        if grant.status == GrantStatus::Active {
            self.expiry
                .insert((grant.expires_at.timestamp_millis(), grant.id.clone()));
        }
        self.grants.insert(grant.id.clone(), grant);
    }

    fn insert_token(&mut self, token: Token) {
        self.token_expiry
            .insert((token.expires_at.timestamp_millis(), token.digest));
        self.tokens.insert(token.digest, token);
    }

    fn remove_token(&mut self, digest: &Digest) {
        if let Some(t) = self.tokens.remove(digest) {
            self.token_expiry
                .remove(&(t.expires_at.timestamp_millis(), t.digest));
        }
    }

    fn insert_family(&mut self, f: Family) {
        let id = f.grant.id.clone();
        self.insert_grant(f.grant);
        for t in f.tokens {
            self.insert_token(t);
        }
        self.history.entry(id).or_default().extend(f.transitions);
    }

    /// Records a use of the client at `now`, at most once a day (as the engine does).
    fn record_use(&mut self, client_id: &str, now: Timestamp) {
        if let Some(c) = self.clients.get_mut(client_id) {
            c.last_used_at = Some(now);
        }
    }
}

/// Whether a client last used at `last` is due for its daily `last_used_at` write.
pub fn use_due(last: Option<Timestamp>, now: Timestamp) -> bool {
    last.is_none_or(|last| now - last >= Duration::days(1))
}

/// A hand-written in-memory grant store.
#[derive(Debug, Default)]
pub struct RawMemory {
    zone: RwLock<Zone>,
}

impl RawMemory {
    /// An empty store.
    pub fn new() -> Self {
        RawMemory::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Zone> {
        self.zone.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Zone> {
        self.zone.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl RawStore for RawMemory {
    async fn put_client(&self, client: Client) {
        self.write().clients.insert(client.id.clone(), client);
    }

    async fn load_families(&self, families: Vec<Family>) {
        let mut zone = self.write();
        for f in families {
            zone.insert_family(f);
        }
    }

    async fn load_grants(&self, grants: Vec<Grant>) {
        let mut zone = self.write();
        for g in grants {
            zone.insert_grant(g);
        }
    }

    async fn introspect(&self, presented: &str, now: Timestamp) -> bool {
        let digest = Digest::of(presented);
        let (token, grant) = {
            let zone = self.read();
            let Some(token) = zone.tokens.get(&digest).cloned() else {
                return false;
            };
            let Some(grant) = zone.grants.get(&token.grant_id).cloned() else {
                return false;
            };
            (token, grant)
        };
        token.is_live(now)
            && token.is_current(&grant)
            && grant.status_at(now) == GrantStatus::Active
    }

    async fn authorize(&self, i: u64, now: Timestamp) {
        let client = self.read().clients.get(fixture::CLIENT).cloned();
        let Some(client) = client else { return };
        let mut f = fixture::family(i, 1);
        f.grant.client_id = client.id.clone();
        f.grant.created_at = now;
        let mut zone = self.write();
        zone.insert_family(f);
        if use_due(client.last_used_at, now) {
            zone.record_use(&client.id, now);
        }
    }

    async fn refresh(&self, presented: &str, i: u64, now: Timestamp) -> Option<String> {
        let digest = Digest::of(presented);
        let (token, grant, client) = {
            let zone = self.read();
            let token = zone.tokens.get(&digest).cloned()?;
            let grant = zone.grants.get(&token.grant_id).cloned()?;
            let client = zone.clients.get(&token.client_id).cloned()?;
            (token, grant, client)
        };
        if token.kind != TokenKind::Refresh
            || !token.is_live(now)
            || !token.is_current(&grant)
            || grant.status_at(now) != GrantStatus::Active
            || client.id != token.client_id
        {
            return None;
        }
        let generation = grant.refresh.generation + 1;
        let mut next = grant;
        next.refreshed_at = Some(now);
        next.updated_at = now;
        let access = fixture::access_secret(i, generation);
        let refresh = fixture::refresh_secret(i, generation, next.expires_at);
        let hour = now + Duration::hours(1);
        let fresh = [
            fixture::token(&next, TokenKind::Access, &access, now, hour, generation),
            fixture::token(
                &next,
                TokenKind::Refresh,
                &refresh,
                now,
                next.expires_at,
                generation,
            ),
        ];
        let spent = next.refresh.current;
        next.refresh = RefreshChain {
            generation,
            family: next.refresh.family,
            current: Some(fresh[1].digest),
            previous: Some(digest),
        };
        let mut zone = self.write();
        if let Some(d) = spent {
            zone.remove_token(&d);
        }
        for t in fresh {
            zone.insert_token(t);
        }
        if use_due(client.last_used_at, now) {
            zone.record_use(&client.id, now);
        }
        zone.grants.insert(next.id.clone(), next);
        Some(refresh)
    }

    async fn revoke(&self, grant_id: &str, now: Timestamp) -> bool {
        let mut zone = self.write();
        let zone = &mut *zone;
        let Some(grant) = zone.grants.get_mut(grant_id) else {
            return false;
        };
        if grant.status_at(now) != GrantStatus::Active {
            return false;
        }
        grant.status = GrantStatus::Revoked;
        grant.refresh_token_set = false;
        grant.updated_at = now;
        zone.expiry
            .remove(&(grant.expires_at.timestamp_millis(), grant.id.clone()));
        let transition = Transition {
            zone_id: grant.zone_id.clone(),
            grant_id: grant.id.clone(),
            from: Some(GrantStatus::Active),
            to: GrantStatus::Revoked,
            reason: TransitionReason::Revoked,
            actor: Actor::Admin,
            at: now,
        };
        zone.history
            .entry(grant_id.to_owned())
            .or_default()
            .push(transition);
        true
    }

    async fn page(&self, user_id: &str, limit: usize) -> usize {
        let zone = self.read();
        let from = (user_id.to_owned(), i64::MIN, String::new());
        let to = (user_id.to_owned(), i64::MAX, String::new());
        let items: Vec<Grant> = zone
            .by_user
            .range((Bound::Included(from), Bound::Excluded(to)))
            .rev()
            .take(limit + 1)
            .filter_map(|(_, _, id)| zone.grants.get(id).cloned())
            .collect();
        items.len().min(limit)
    }

    async fn sweep(&self, now: Timestamp, limit: usize) -> usize {
        let mut zone = self.write();
        let zone = &mut *zone;
        let now_ms = now.timestamp_millis();
        let due: Vec<(i64, String)> = zone
            .expiry
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .take(limit)
            .cloned()
            .collect();
        for key in &due {
            zone.expiry.remove(key);
            let Some(grant) = zone.grants.get_mut(&key.1) else {
                continue;
            };
            grant.status = GrantStatus::Expired;
            grant.refresh_token_set = false;
            grant.updated_at = grant.expires_at;
            let transition = Transition {
                zone_id: grant.zone_id.clone(),
                grant_id: grant.id.clone(),
                from: Some(GrantStatus::Active),
                to: GrantStatus::Expired,
                reason: TransitionReason::Expired,
                actor: Actor::System,
                at: grant.expires_at,
            };
            zone.history
                .entry(key.1.clone())
                .or_default()
                .push(transition);
        }
        let expired: Vec<Digest> = zone
            .token_expiry
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .take(limit)
            .map(|(_, d)| *d)
            .collect();
        for d in &expired {
            zone.remove_token(d);
        }
        due.len()
    }
}
