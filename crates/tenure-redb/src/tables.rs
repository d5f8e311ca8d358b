//! The redb tables a store keeps, and the keys of every record and index entry.
//!
//! Every table maps bytes to bytes; the keys are built by [`crate::keys`] so that
//! redb's byte order is the index order.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `tenure_meta` | name | the format version, `u32` BE, under `format_version` |
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
//! | `tokens_by_grant` | zone, grant, digest | empty |
//! | `token_expiry` | zone, expires, digest (every stored token) | empty |
//! | `history` | zone, grant, sequence (`u64` BE) | transition |
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
//! with a single filter is one read. Unlike sled's transactions, redb's write
//! transactions can walk a range, so a grant's tokens are an index of their own and
//! the next history entry's sequence is found from the last one, with no list or
//! length kept beside them.
//!
//! A table exists once a write transaction has opened it. A store is created with
//! every table of [`TABLES`]; a store created before a table was added gets it,
//! empty, when it is next opened (see [the crate docs](crate#format)), so reads
//! never meet a missing table.

use redb::TableDefinition;
use tenure::{Grant, GrantStatus};

use crate::codec::status_tag;
use crate::keys::{Key, ms};

/// The definition of every table: bytes to bytes.
pub(crate) type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Every table a write set may touch, in the order of [`TABLES`].
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
    Personal,
    PersonalByUser,
    Devices,
    DeviceUserCodes,
    DeviceExpiry,
    Codes,
    CodeExpiry,
}

/// The tables, in the order of [`T`].
pub(crate) const TABLES: [Def; 20] = [
    Def::new("clients"),
    Def::new("grants"),
    Def::new("grants_by_created"),
    Def::new("grants_by_user"),
    Def::new("grants_by_resource"),
    Def::new("grants_by_client"),
    Def::new("grants_by_status"),
    Def::new("grant_expiry"),
    Def::new("grant_counts"),
    Def::new("tokens"),
    Def::new("tokens_by_grant"),
    Def::new("token_expiry"),
    Def::new("history"),
    Def::new("personal_grants"),
    Def::new("personal_by_user"),
    Def::new("devices"),
    Def::new("device_user_codes"),
    Def::new("device_expiry"),
    Def::new("authorization_codes"),
    Def::new("authorization_code_expiry"),
];

impl T {
    /// The table's definition.
    pub(crate) fn def(self) -> Def {
        TABLES[self as usize]
    }
}

/// The table that holds the format version.
pub(crate) const META: Def = Def::new("tenure_meta");

/// The key of the format version in [`META`].
pub(crate) const FORMAT_KEY: &[u8] = b"format_version";

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

/// The prefix of a grant's entries in [`T::TokensByGrant`] and [`T::History`].
pub(crate) fn grant_prefix(zone: &str, grant: &str) -> Vec<u8> {
    Key::new().str(zone).str(grant).into_vec()
}

/// An entry of [`T::TokensByGrant`].
pub(crate) fn grant_token_key(zone: &str, grant: &str, digest: &[u8; 32]) -> Vec<u8> {
    Key::new().str(zone).str(grant).raw(digest).into_vec()
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
