//! The raw baseline of the memory backend: the records in `HashMap`s and the
//! indexes the operations need in `BTreeSet`s, under one lock, written by hand.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use tenure::{
    Actor, Client, Digest, Grant, GrantStatus, Timestamp, Token, TokenKind, Transition,
    TransitionReason,
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
    tokens_by_grant: HashMap<String, Vec<Digest>>,
    history: HashMap<String, Vec<Transition>>,
}

impl Zone {
    fn insert_grant(&mut self, grant: Grant) {
        self.by_user.insert((
            grant.user_id.clone(),
            grant.created_at.timestamp_millis(),
            grant.id.clone(),
        ));
        self.expiry
            .insert((grant.expires_at.timestamp_millis(), grant.id.clone()));
        self.grants.insert(grant.id.clone(), grant);
    }

    fn insert_token(&mut self, token: Token) {
        self.tokens_by_grant
            .entry(token.grant_id.clone())
            .or_default()
            .push(token.digest);
        self.tokens.insert(token.digest, token);
    }

    fn insert_family(&mut self, f: Family) {
        let id = f.grant.id.clone();
        self.insert_grant(f.grant);
        for t in f.tokens {
            self.insert_token(t);
        }
        self.history.entry(id).or_default().extend(f.transitions);
    }
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
        token.is_live(now) && grant.status_at(now) == GrantStatus::Active
    }

    async fn authorize(&self, i: u64, now: Timestamp) {
        let client = self.read().clients.get(fixture::CLIENT).cloned();
        let Some(client) = client else { return };
        let mut f = fixture::family(i, 2);
        f.grant.client_id = client.id;
        f.grant.created_at = now;
        self.write().insert_family(f);
    }

    async fn refresh(&self, presented: &str, i: u64, now: Timestamp) -> bool {
        let digest = Digest::of(presented);
        let (token, grant, tokens, client) = {
            let zone = self.read();
            let Some(token) = zone.tokens.get(&digest).cloned() else {
                return false;
            };
            let Some(grant) = zone.grants.get(&token.grant_id).cloned() else {
                return false;
            };
            let tokens: Vec<Token> = zone
                .tokens_by_grant
                .get(&grant.id)
                .into_iter()
                .flatten()
                .filter_map(|d| zone.tokens.get(d).cloned())
                .collect();
            let Some(client) = zone.clients.get(&token.client_id).cloned() else {
                return false;
            };
            (token, grant, tokens, client)
        };
        if token.kind != TokenKind::Refresh
            || !token.is_live(now)
            || grant.status_at(now) != GrantStatus::Active
            || client.id != token.client_id
        {
            return false;
        }
        let expired: Vec<Digest> = tokens
            .iter()
            .filter(|t| t.expires_at <= now)
            .map(|t| t.digest)
            .collect();
        let mut next = grant;
        next.refreshed_at = Some(now);
        next.updated_at = now;
        let access = fixture::secret(TokenKind::Access, i, 1_000);
        let refresh = fixture::secret(TokenKind::Refresh, i, 1_000);
        let hour = now + chrono::Duration::hours(1);
        let fresh = [
            fixture::token(&next, TokenKind::Access, &access, hour),
            fixture::token(&next, TokenKind::Refresh, &refresh, next.expires_at),
        ];
        let transition = Transition {
            zone_id: next.zone_id.clone(),
            grant_id: next.id.clone(),
            from: Some(GrantStatus::Active),
            to: GrantStatus::Active,
            reason: TransitionReason::Refreshed,
            actor: Actor::Client { id: client.id },
            at: now,
        };
        let mut zone = self.write();
        if let Some(t) = zone.tokens.get_mut(&digest) {
            t.spent_at = Some(now);
        }
        for d in &expired {
            zone.tokens.remove(d);
        }
        for t in fresh {
            zone.insert_token(t);
        }
        zone.history
            .entry(next.id.clone())
            .or_default()
            .push(transition);
        zone.grants.insert(next.id.clone(), next);
        true
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
        grant.updated_at = now;
        zone.expiry
            .remove(&(grant.expires_at.timestamp_millis(), grant.id.clone()));
        for d in zone.tokens_by_grant.get(grant_id).into_iter().flatten() {
            if let Some(t) = zone.tokens.get_mut(d) {
                if t.spent_at.is_none() && t.revoked_at.is_none() {
                    t.revoked_at = Some(now);
                }
            }
        }
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
        let due: Vec<(i64, String)> = zone
            .expiry
            .iter()
            .take_while(|(at, _)| *at <= now.timestamp_millis())
            .take(limit)
            .cloned()
            .collect();
        for key in &due {
            zone.expiry.remove(key);
            let Some(grant) = zone.grants.get_mut(&key.1) else {
                continue;
            };
            grant.status = GrantStatus::Expired;
            for d in zone.tokens_by_grant.remove(&key.1).into_iter().flatten() {
                zone.tokens.remove(&d);
            }
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
        due.len()
    }
}
