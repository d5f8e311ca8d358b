//! A zone's tokens, kept compact like its grants: the grant's shared id, symbols
//! for the client, user and scope set, the times, the refresh generation and a
//! version. Records are rebuilt on read.
//!
//! Tokens are indexed by grant (for deleting a grant) and by expiry (for pruning
//! expired tokens at a cost proportional to their number).

use std::collections::BTreeSet;

use crate::sharded::Sharded;
use std::sync::Arc;

use tenure::{Digest, Timestamp, Token, TokenKind, Version, Versioned};

use crate::intern::{Interner, Symbol};

/// The slot of a token whose grant was not stored when it was.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// A token as kept: everything but its digest (the key) and zone.
#[derive(Debug, Clone)]
struct Stored {
    grant: Arc<str>,
    /// The grant's slot when the token was stored ([`NO_SLOT`]: none), where
    /// introspection looks for it first.
    slot: u32,
    client: Symbol,
    user: Symbol,
    scopes: Symbol,
    kind: TokenKind,
    issued_at: Timestamp,
    expires_at: Timestamp,
    generation: u64,
    revoked_at: Option<Timestamp>,
    version: Version,
}

/// The tokens of one zone, by digest, by grant and by expiry.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    records: Sharded<Digest, Stored>,
    by_grant: Sharded<Arc<str>, Vec<Digest>>,
    /// Every token by `(expires_at in ms, digest)`.
    expiry: BTreeSet<(i64, Digest)>,
    ids: Interner<str>,
    scope_sets: Interner<[String]>,
}

impl Tokens {
    fn rebuild(&self, zone_id: &str, digest: &Digest, t: &Stored) -> Versioned<Token> {
        let text = |s: Symbol| self.ids.get(s).unwrap_or_default().to_owned();
        Versioned {
            record: Token {
                digest: *digest,
                zone_id: zone_id.to_owned(),
                grant_id: t.grant.to_string(),
                client_id: text(t.client),
                user_id: text(t.user),
                kind: t.kind,
                scopes: self.scope_sets.get(t.scopes).unwrap_or_default().to_vec(),
                issued_at: t.issued_at,
                expires_at: t.expires_at,
                generation: t.generation,
                revoked_at: t.revoked_at,
            },
            version: t.version,
        }
    }

    /// A token by digest.
    pub(crate) fn get(&self, zone_id: &str, digest: &Digest) -> Option<Versioned<Token>> {
        let t = self.records.get(digest)?;
        Some(self.rebuild(zone_id, digest, t))
    }

    /// A token by digest, with its grant's shared id and the slot that grant had,
    /// from one lookup.
    pub(crate) fn get_with_grant(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> Option<(Versioned<Token>, &Arc<str>, u32)> {
        let t = self.records.get(digest)?;
        Some((self.rebuild(zone_id, digest, t), &t.grant, t.slot))
    }

    /// A token's version.
    pub(crate) fn version(&self, digest: &Digest) -> Option<Version> {
        self.records.get(digest).map(|t| t.version)
    }

    /// Tokens whose expiry is at or before `now`, by `(expires_at, digest)`.
    pub(crate) fn expired(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Vec<Versioned<Token>> {
        let now = now.timestamp_millis();
        self.expiry
            .iter()
            .take_while(|(expires, _)| *expires <= now)
            .take(limit)
            .filter_map(|(_, d)| self.get(zone_id, d))
            .collect()
    }

    /// The tokens of a grant, oldest first.
    pub(crate) fn of_grant(&self, zone_id: &str, grant_id: &str) -> Vec<Versioned<Token>> {
        self.by_grant
            .get(grant_id)
            .map(|digests| {
                digests
                    .iter()
                    .filter_map(|d| self.get(zone_id, d))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn unlink(&mut self, grant: &str, digest: &Digest) {
        if let Some(list) = self.by_grant.get_mut(grant) {
            list.retain(|d| d != digest);
            if list.is_empty() {
                self.by_grant.remove(grant);
            }
        }
    }

    fn release(&mut self, t: &Stored) {
        self.ids.release(t.client);
        self.ids.release(t.user);
        self.scope_sets.release(t.scopes);
    }

    /// Stores `token` at `version` under the grant's shared id `grant` (in `slot`),
    /// replacing the stored one.
    pub(crate) fn put(&mut self, token: Token, version: Version, grant: Arc<str>, slot: u32) {
        // Acquired before the old record's are released, so values both hold are
        // kept, not dropped and made again.
        let stored = Stored {
            grant,
            slot,
            client: self.ids.acquire(&token.client_id),
            user: self.ids.acquire(&token.user_id),
            scopes: self.scope_sets.acquire(&token.scopes),
            kind: token.kind,
            issued_at: token.issued_at,
            expires_at: token.expires_at,
            generation: token.generation,
            revoked_at: token.revoked_at,
            version,
        };
        let expiry = (stored.expires_at.timestamp_millis(), token.digest);
        let linked = match self.records.remove(&token.digest) {
            Some(old) => {
                self.release(&old);
                self.expiry
                    .remove(&(old.expires_at.timestamp_millis(), token.digest));
                let same = old.grant == stored.grant;
                if !same {
                    self.unlink(&old.grant, &token.digest);
                }
                same
            }
            None => false,
        };
        if !linked {
            self.by_grant
                .entry(stored.grant.clone())
                .or_default()
                .push(token.digest);
        }
        self.expiry.insert(expiry);
        self.records.insert(token.digest, stored);
    }

    /// Deletes a token.
    pub(crate) fn remove(&mut self, digest: &Digest) {
        if let Some(old) = self.records.remove(digest) {
            self.unlink(&old.grant, digest);
            self.forget(digest, &old);
        }
    }

    /// Drops what a deleted token holds outside `records` and `by_grant`.
    fn forget(&mut self, digest: &Digest, old: &Stored) {
        self.expiry
            .remove(&(old.expires_at.timestamp_millis(), *digest));
        self.release(old);
    }

    /// Deletes every token of a deleted grant still stored. The engine deletes them
    /// in the same write set, so there are usually none left; any that are would
    /// otherwise outlive their grant.
    pub(crate) fn remove_grant(&mut self, grant_id: &str) {
        for digest in self.by_grant.remove(grant_id).unwrap_or_default() {
            if let Some(old) = self.records.remove(&digest) {
                self.forget(&digest, &old);
            }
        }
    }
}
