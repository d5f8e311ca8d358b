//! The sled trees a store keeps, and the keys of every record and index entry.
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `clients` | zone, id | client |
//! | `grants` | zone, id | grant |
//! | `grants_by_created` | zone, created, id | empty |
//! | `grants_by_user` | zone, user, created, id | empty |
//! | `grants_by_resource` | zone, resource, created, id | empty |
//! | `grants_by_client` | zone, client, created, id | empty |
//! | `grants_by_status` | zone, status byte, created, id | empty |
//! | `grant_expiry` | zone, expires, id (stored active only) | empty |
//! | `grant_counts` | kind byte, zone, value | entries of one index prefix, `u64` BE |
//! | `tokens` | zone, digest | token |
//! | `tokens_by_grant` | zone, grant | the grant's token digests, 32 bytes each |
//! | `token_expiry` | zone, expires, digest (every stored token; format 2) | empty |
//! | `history` | zone, grant, sequence (`u64` BE) | transition |
//! | `history_len` | zone, grant | entries of the grant's history, `u64` BE |
//! | `personal_grants` | zone, id | personal grant |
//! | `personal_by_user` | zone, user, created, id | empty |
//! | `devices` | zone, device code | device authorization |
//! | `device_user_codes` | zone, user code | device code |
//! | `device_expiry` | zone, expires, device code | empty |
//! | `authorization_codes` | zone, code digest | authorization code |
//! | `authorization_code_expiry` | zone, expires, code digest | empty |
//!
//! `grant_counts` holds the size of each grant index a listing can start from, so a
//! listing picks the narrowest one exactly as the in-memory store does, and a count
//! with a single filter is one read. Token lists and history lengths are single
//! values, not scans, because sled transactions can only get, insert and remove.
//!
//! sled creates a tree the first time it is opened, so a store written before a
//! tree was added gets it, empty, when it is next opened: the authorization code
//! trees need no upgrade step.

use std::sync::Arc;

use sled::{Db, Tree};
use tenure::{Grant, GrantStatus};

use crate::codec::status_tag;
use crate::keys::{Key, ms};

/// Every tree a write set may touch, in the order of [`Trees::all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum T {
    Clients,
    Grants,
    ByCreated,
    ByUser,
    ByResource,
    ByClient,
    ByStatus,
    Expiry,
    Counts,
    Tokens,
    TokensByGrant,
    TokenExpiry,
    History,
    HistoryLen,
    Personal,
    PersonalByUser,
    Devices,
    DeviceUserCodes,
    DeviceExpiry,
    Codes,
    CodeExpiry,
}

/// The trees' names on disk, in the order of [`T`].
pub(crate) const TREE_NAMES: [&str; 21] = [
    "clients",
    "grants",
    "grants_by_created",
    "grants_by_user",
    "grants_by_resource",
    "grants_by_client",
    "grants_by_status",
    "grant_expiry",
    "grant_counts",
    "tokens",
    "tokens_by_grant",
    "token_expiry",
    "history",
    "history_len",
    "personal_grants",
    "personal_by_user",
    "devices",
    "device_user_codes",
    "device_expiry",
    "authorization_codes",
    "authorization_code_expiry",
];

/// The name of the tree that holds the format version.
pub(crate) const META_TREE: &str = "tenure_meta";

/// The key of the format version in [`META_TREE`].
pub(crate) const FORMAT_KEY: &[u8] = b"format_version";

/// The open trees of a store. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Trees {
    pub(crate) db: Db,
    all: Arc<[Tree]>,
}

impl Trees {
    pub(crate) fn open(db: &Db) -> sled::Result<Trees> {
        let all = TREE_NAMES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<sled::Result<Vec<_>>>()?;
        Ok(Trees {
            db: db.clone(),
            all: all.into(),
        })
    }

    pub(crate) fn get(&self, t: T) -> &Tree {
        &self.all[t as usize]
    }

    /// Every tree, for a transaction over all of them.
    pub(crate) fn all(&self) -> &[Tree] {
        &self.all
    }
}

/// Kinds of [`T::Counts`] entries.
pub(crate) mod count {
    /// All grants of a zone.
    pub(crate) const ZONE: u8 = 0;
    /// A user's grants.
    pub(crate) const USER: u8 = 1;
    /// A resource's grants.
    pub(crate) const RESOURCE: u8 = 2;
    /// A client's grants.
    pub(crate) const CLIENT: u8 = 3;
    /// Revoked grants.
    pub(crate) const REVOKED: u8 = 4;
}

pub(crate) fn record_key(zone: &str, id: &str) -> Vec<u8> {
    Key::new().str(zone).raw(id.as_bytes()).into_vec()
}

pub(crate) fn digest_key(zone: &str, digest: &[u8; 32]) -> Vec<u8> {
    Key::new().str(zone).raw(digest).into_vec()
}

/// The key of a grant's token list or history length.
pub(crate) fn grant_key(zone: &str, grant: &str) -> Vec<u8> {
    Key::new().str(zone).str(grant).into_vec()
}

pub(crate) fn history_key(zone: &str, grant: &str, seq: u64) -> Vec<u8> {
    Key::new()
        .str(zone)
        .str(grant)
        .raw(&seq.to_be_bytes())
        .into_vec()
}

/// The prefix of a grant index's entries for one value (or the whole zone for
/// [`T::ByCreated`]).
pub(crate) fn index_prefix(t: T, zone: &str, value: Option<&str>) -> Vec<u8> {
    let key = Key::new().str(zone);
    match value {
        Some(v) if t != T::ByStatus => key.str(v).into_vec(),
        _ => key.into_vec(),
    }
}

pub(crate) fn status_prefix(zone: &str, status: GrantStatus) -> Vec<u8> {
    Key::new().str(zone).raw(&[status_tag(status)]).into_vec()
}

pub(crate) fn count_key(kind: u8, zone: &str, value: Option<&str>) -> Vec<u8> {
    let key = Key::tagged(kind).str(zone);
    match value {
        Some(v) => key.str(v).into_vec(),
        None => key.into_vec(),
    }
}

/// Every index entry a stored grant has.
pub(crate) fn grant_entries(g: &Grant) -> Vec<(T, Vec<u8>)> {
    let created = ms(&g.created_at);
    let tail = |prefix: Vec<u8>| {
        Key::new()
            .raw(&prefix)
            .millis(created)
            .raw(g.id.as_bytes())
            .into_vec()
    };
    let mut out = vec![
        (
            T::ByCreated,
            tail(index_prefix(T::ByCreated, &g.zone_id, None)),
        ),
        (
            T::ByUser,
            tail(index_prefix(T::ByUser, &g.zone_id, Some(&g.user_id))),
        ),
        (
            T::ByResource,
            tail(index_prefix(
                T::ByResource,
                &g.zone_id,
                Some(&g.resource_id),
            )),
        ),
        (
            T::ByClient,
            tail(index_prefix(T::ByClient, &g.zone_id, Some(&g.client_id))),
        ),
        (T::ByStatus, tail(status_prefix(&g.zone_id, g.status))),
    ];
    if g.status == GrantStatus::Active {
        out.push((
            T::Expiry,
            Key::new()
                .str(&g.zone_id)
                .millis(ms(&g.expires_at))
                .raw(g.id.as_bytes())
                .into_vec(),
        ));
    }
    out
}

/// Every count a stored grant adds one to.
pub(crate) fn grant_counts(g: &Grant) -> Vec<Vec<u8>> {
    let mut out = vec![
        count_key(count::ZONE, &g.zone_id, None),
        count_key(count::USER, &g.zone_id, Some(&g.user_id)),
        count_key(count::RESOURCE, &g.zone_id, Some(&g.resource_id)),
        count_key(count::CLIENT, &g.zone_id, Some(&g.client_id)),
    ];
    if g.status == GrantStatus::Revoked {
        out.push(count_key(count::REVOKED, &g.zone_id, None));
    }
    out
}

pub(crate) fn personal_index_key(zone: &str, user: &str, created_ms: i64, id: &str) -> Vec<u8> {
    Key::new()
        .str(zone)
        .str(user)
        .millis(created_ms)
        .raw(id.as_bytes())
        .into_vec()
}

pub(crate) fn user_code_key(zone: &str, code: &str) -> Vec<u8> {
    Key::new().str(zone).str(code).into_vec()
}

/// An entry of [`T::TokenExpiry`], [`T::DeviceExpiry`] or [`T::CodeExpiry`]: a record
/// keyed by digest, in `(expires_at, digest)` order within its zone.
pub(crate) fn expiry_key(zone: &str, expires_ms: i64, digest: &[u8; 32]) -> Vec<u8> {
    Key::new()
        .str(zone)
        .millis(expires_ms)
        .raw(digest)
        .into_vec()
}

/// Reads a `u64` BE counter value.
pub(crate) fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(*bytes.first_chunk::<8>()?)).filter(|_| bytes.len() == 8)
}
