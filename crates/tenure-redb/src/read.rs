//! Reads: keyed lookups, and listings that walk an index from a keyset.
//!
//! Every function reads through one [`Snapshot`], a redb read transaction: it sees
//! the store as of one commit, so a read of several keys sees each write set
//! entirely or not at all, and no writer waits for it.

use std::ops::Bound;

use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableTable};
use tenure::{
    AuthorizationCode, Client, DeviceAuthorization, Grant, GrantFacts, GrantFilter, GrantPage,
    GrantQuery, GrantStatus, Keyset, PersonalGrant, Position, SortOrder, Timestamp, Token,
    Transition, Versioned,
};

use crate::codec::{
    AuthorizationCodeV1, DeviceV1, GrantV1, PersonalGrantV1, TokenV1, TransitionV1, decode,
    decode_client, decode_grant_facts,
};
use crate::error::StoreError;
use crate::keys::{Key, ms, prefix_end, rest_str, take_digest, take_millis, take_str};
use crate::tables::{
    T, count, count_key, digest_key, grant_prefix, index_prefix, read_u64, record_key,
    status_prefix, user_code_key,
};

type Result<T> = std::result::Result<T, StoreError>;

/// A table of a snapshot.
pub(crate) type Table = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// The store as of one commit.
pub(crate) struct Snapshot(ReadTransaction);

impl Snapshot {
    pub(crate) fn begin(db: &Database) -> Result<Snapshot> {
        Ok(Snapshot(db.begin_read()?))
    }

    pub(crate) fn table(&self, t: T) -> Result<Table> {
        Ok(self.0.open_table(t.def())?)
    }
}

/// The value under `key`, decoded.
pub(crate) fn get<R>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
    decode_value: impl FnOnce(&[u8]) -> Result<R>,
) -> Result<Option<R>> {
    match table.get(key)? {
        None => Ok(None),
        Some(value) => decode_value(value.value()).map(Some),
    }
}

pub(crate) fn decode_grant(bytes: &[u8]) -> Result<Versioned<Grant>> {
    decode::<GrantV1>("grant", bytes).and_then(GrantV1::into_record)
}

pub(crate) fn decode_token(bytes: &[u8]) -> Result<Versioned<Token>> {
    decode::<TokenV1>("token", bytes).and_then(TokenV1::into_record)
}

pub(crate) fn decode_personal(bytes: &[u8]) -> Result<Versioned<PersonalGrant>> {
    decode::<PersonalGrantV1>("personal grant", bytes).and_then(PersonalGrantV1::into_record)
}

pub(crate) fn decode_device(bytes: &[u8]) -> Result<Versioned<DeviceAuthorization>> {
    decode::<DeviceV1>("device authorization", bytes).and_then(DeviceV1::into_record)
}

pub(crate) fn decode_authorization_code(bytes: &[u8]) -> Result<Versioned<AuthorizationCode>> {
    decode::<AuthorizationCodeV1>("authorization code", bytes)
        .and_then(AuthorizationCodeV1::into_record)
}

pub(crate) fn decode_transition(bytes: &[u8]) -> Result<Transition> {
    decode::<TransitionV1>("transition", bytes).and_then(TransitionV1::into_record)
}

/// The zones that hold a client or a grant, in byte order of their ids, after
/// `after`, at most `limit`. A skip scan: per zone, one seek in the clients table
/// and one in the grant counts (a zone has a count while it holds a grant), each
/// past every key of the zone before, so the cost grows with the zones listed, not
/// with the records they hold.
pub(crate) fn zones(snap: &Snapshot, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
    let clients = snap.table(T::Clients)?;
    let counts = snap.table(T::Counts)?;
    let mut out: Vec<String> = Vec::new();
    while out.len() < limit {
        let after = out.last().map(String::as_str).or(after);
        let with_client = next_zone(&clients, &[], after)?;
        let with_grant = next_zone(&counts, &[count::ZONE], after)?;
        let next = match (with_client, with_grant) {
            (Some(c), Some(g)) => c.min(g),
            (Some(z), None) | (None, Some(z)) => z,
            (None, None) => break,
        };
        out.push(next);
    }
    Ok(out)
}

/// The first zone after `after` among the keys of `table` that start with `tag`
/// and then a zone id.
fn next_zone(table: &Table, tag: &[u8], after: Option<&str>) -> Result<Option<String>> {
    let low = match after {
        // Past every key of the zone `after`: its encoding is prefix-free.
        Some(a) => match prefix_end(&Key::new().raw(tag).str(a).into_vec()) {
            Some(end) => Bound::Included(end),
            None => return Ok(None),
        },
        None => Bound::Included(tag.to_vec()),
    };
    let Some(item) = range(table, low, end_of(tag))?.next() else {
        return Ok(None);
    };
    let (key, _) = item?;
    let zone = key
        .value()
        .get(tag.len()..)
        .and_then(take_str)
        .map(|(zone, _)| zone)
        .ok_or_else(|| corrupt_key("zone"))?;
    Ok(Some(zone))
}

pub(crate) fn grant(snap: &Snapshot, zone: &str, id: &str) -> Result<Option<Versioned<Grant>>> {
    get(&snap.table(T::Grants)?, &record_key(zone, id), decode_grant)
}

/// What introspection needs of a grant.
pub(crate) fn grant_facts(snap: &Snapshot, zone: &str, id: &str) -> Result<Option<GrantFacts>> {
    get(
        &snap.table(T::Grants)?,
        &record_key(zone, id),
        decode_grant_facts,
    )
}

pub(crate) fn client(snap: &Snapshot, zone: &str, id: &str) -> Result<Option<Versioned<Client>>> {
    get(
        &snap.table(T::Clients)?,
        &record_key(zone, id),
        decode_client,
    )
}

pub(crate) fn clients(
    snap: &Snapshot,
    zone: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Versioned<Client>>> {
    by_id(&snap.table(T::Clients)?, zone, after, limit, decode_client)
}

/// Every personal grant of a zone, by id.
pub(crate) fn personal_in_zone(
    snap: &Snapshot,
    zone: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Versioned<PersonalGrant>>> {
    by_id(
        &snap.table(T::Personal)?,
        zone,
        after,
        limit,
        decode_personal,
    )
}

/// Records of a table keyed by (zone, id), in id order, after `after`.
fn by_id<R>(
    table: &Table,
    zone: &str,
    after: Option<&str>,
    limit: usize,
    decode_value: impl Fn(&[u8]) -> Result<R>,
) -> Result<Vec<R>> {
    let prefix = Key::new().str(zone).into_vec();
    let start = match after {
        Some(a) => Bound::Excluded(record_key(zone, a)),
        None => Bound::Included(prefix.clone()),
    };
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    for item in range(table, start, end_of(&prefix))? {
        let (_, value) = item?;
        out.push(decode_value(value.value())?);
        if out.len() == limit {
            break;
        }
    }
    Ok(out)
}

/// The entries of `table` between two bounds.
pub(crate) fn range<'t>(
    table: &'t impl ReadableTable<&'static [u8], &'static [u8]>,
    low: Bound<Vec<u8>>,
    high: Bound<Vec<u8>>,
) -> Result<redb::Range<'t, &'static [u8], &'static [u8]>> {
    let low = low.as_ref().map(Vec::as_slice);
    let high = high.as_ref().map(Vec::as_slice);
    Ok(table.range::<&[u8]>((low, high))?)
}

/// Every entry of `table` whose key starts with `prefix`.
pub(crate) fn scan_prefix<'t>(
    table: &'t impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
) -> Result<redb::Range<'t, &'static [u8], &'static [u8]>> {
    range(table, Bound::Included(prefix.to_vec()), end_of(prefix))
}

pub(crate) fn end_of(prefix: &[u8]) -> Bound<Vec<u8>> {
    prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded)
}

pub(crate) fn token(
    snap: &Snapshot,
    zone: &str,
    digest: &[u8; 32],
) -> Result<Option<Versioned<Token>>> {
    get(
        &snap.table(T::Tokens)?,
        &digest_key(zone, digest),
        decode_token,
    )
}

/// A token and its grant, from one snapshot.
/// A token by digest, with what `grant` reads of its grant (`None` if the grant
/// is gone).
pub(crate) fn token_with<G>(
    snap: &Snapshot,
    zone: &str,
    digest: &[u8; 32],
    grant: impl FnOnce(&Snapshot, &str, &str) -> Result<Option<G>>,
) -> Result<Option<(Versioned<Token>, Option<G>)>> {
    let Some(token) = token(snap, zone, digest)? else {
        return Ok(None);
    };
    let grant = grant(snap, zone, &token.record.grant_id)?;
    Ok(Some((token, grant)))
}

pub(crate) fn grant_tokens(
    snap: &Snapshot,
    zone: &str,
    grant: &str,
) -> Result<Vec<Versioned<Token>>> {
    let index = snap.table(T::TokensByGrant)?;
    let tokens = snap.table(T::Tokens)?;
    let prefix = grant_prefix(zone, grant);
    let mut out = Vec::new();
    for item in scan_prefix(&index, &prefix)? {
        let (key, _) = item?;
        let digest = key
            .value()
            .get(prefix.len()..)
            .and_then(|rest| take_digest(rest).filter(|(_, rest)| rest.is_empty()))
            .map(|(digest, _)| digest)
            .ok_or_else(|| corrupt_key("token of a grant"))?;
        if let Some(t) = get(&tokens, &digest_key(zone, &digest), decode_token)? {
            out.push(t);
        }
    }
    Ok(out)
}

pub(crate) fn history(snap: &Snapshot, zone: &str, grant: &str) -> Result<Vec<Transition>> {
    let table = snap.table(T::History)?;
    scan_prefix(&table, &grant_prefix(zone, grant))?
        .map(|item| {
            let (_, value) = item?;
            decode_transition(value.value())
        })
        .collect()
}

pub(crate) fn personal(
    snap: &Snapshot,
    zone: &str,
    id: &str,
) -> Result<Option<Versioned<PersonalGrant>>> {
    get(
        &snap.table(T::Personal)?,
        &record_key(zone, id),
        decode_personal,
    )
}

pub(crate) fn personal_of(
    snap: &Snapshot,
    zone: &str,
    user: &str,
    after: Option<&Keyset>,
    limit: usize,
) -> Result<Vec<Versioned<PersonalGrant>>> {
    let index = snap.table(T::PersonalByUser)?;
    let records = snap.table(T::Personal)?;
    let prefix = Key::new().str(zone).str(user).into_vec();
    let end = match after {
        Some(k) => Bound::Excluded(
            Key::new()
                .raw(&prefix)
                .millis(ms(&k.created_at))
                .raw(k.id.as_bytes())
                .into_vec(),
        ),
        None => end_of(&prefix),
    };
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    for item in range(&index, Bound::Included(prefix.clone()), end)?.rev() {
        let (key, _) = item?;
        let (_, id) = index_tail(key.value(), prefix.len())?;
        if let Some(p) = get(&records, &record_key(zone, &id), decode_personal)? {
            out.push(p);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

pub(crate) fn device(
    snap: &Snapshot,
    zone: &str,
    digest: &[u8; 32],
) -> Result<Option<Versioned<DeviceAuthorization>>> {
    get(
        &snap.table(T::Devices)?,
        &digest_key(zone, digest),
        decode_device,
    )
}

pub(crate) fn device_by_user_code(
    snap: &Snapshot,
    zone: &str,
    code: &str,
) -> Result<Option<Versioned<DeviceAuthorization>>> {
    let codes = snap.table(T::DeviceUserCodes)?;
    let Some(digest) = get(&codes, &user_code_key(zone, code), |bytes| {
        <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::Corrupt {
            what: "user code entry",
            detail: format!("{} bytes where a digest belongs", bytes.len()),
        })
    })?
    else {
        return Ok(None);
    };
    device(snap, zone, &digest)
}

/// A zone's device authorizations in device-code order, after `after`: a range of
/// the `devices` table, whose keys are the zone and then the digest's raw bytes.
pub(crate) fn devices(
    snap: &Snapshot,
    zone: &str,
    after: Option<&[u8; 32]>,
    limit: usize,
) -> Result<Vec<Versioned<DeviceAuthorization>>> {
    let prefix = Key::new().str(zone).into_vec();
    let start = match after {
        Some(a) => Bound::Excluded(digest_key(zone, a)),
        None => Bound::Included(prefix.clone()),
    };
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let table = snap.table(T::Devices)?;
    for item in range(&table, start, end_of(&prefix))? {
        let (_, value) = item?;
        out.push(decode_device(value.value())?);
        if out.len() == limit {
            break;
        }
    }
    Ok(out)
}

/// Walks an expiry index (`zone, expires, key`) up to `now`, at most `limit` entries,
/// and looks each one up.
fn expired<R>(
    index: &Table,
    zone: &str,
    now: Timestamp,
    limit: usize,
    mut lookup: impl FnMut(&[u8]) -> Result<Option<R>>,
) -> Result<Vec<R>> {
    let prefix = Key::new().str(zone).into_vec();
    let now = ms(&now);
    let mut out = Vec::new();
    for item in scan_prefix(index, &prefix)?.take(limit) {
        let (key, _) = item?;
        let key = key.value();
        let (at, rest) = take_millis(&key[prefix.len()..]).ok_or_else(|| corrupt_key("expiry"))?;
        if at > now {
            break;
        }
        if let Some(r) = lookup(rest)? {
            out.push(r);
        }
    }
    Ok(out)
}

pub(crate) fn expired_grants(
    snap: &Snapshot,
    zone: &str,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Versioned<Grant>>> {
    let grants = snap.table(T::Grants)?;
    expired(&snap.table(T::Expiry)?, zone, now, limit, |rest| {
        let id = rest_str(rest).ok_or_else(|| corrupt_key("grant expiry"))?;
        get(&grants, &record_key(zone, &id), decode_grant)
    })
}

/// Tokens whose expiry is at or before `now`, in `(expires_at, digest)` order.
pub(crate) fn expired_tokens(
    snap: &Snapshot,
    zone: &str,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Versioned<Token>>> {
    let tokens = snap.table(T::Tokens)?;
    expired(&snap.table(T::TokenExpiry)?, zone, now, limit, |rest| {
        let digest = rest.try_into().map_err(|_| corrupt_key("token expiry"))?;
        get(&tokens, &digest_key(zone, &digest), decode_token)
    })
}

pub(crate) fn expired_devices(
    snap: &Snapshot,
    zone: &str,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Versioned<DeviceAuthorization>>> {
    let devices = snap.table(T::Devices)?;
    expired(&snap.table(T::DeviceExpiry)?, zone, now, limit, |rest| {
        let digest = rest.try_into().map_err(|_| corrupt_key("device expiry"))?;
        get(&devices, &digest_key(zone, &digest), decode_device)
    })
}

pub(crate) fn authorization_code(
    snap: &Snapshot,
    zone: &str,
    digest: &[u8; 32],
) -> Result<Option<Versioned<AuthorizationCode>>> {
    get(
        &snap.table(T::Codes)?,
        &digest_key(zone, digest),
        decode_authorization_code,
    )
}

/// Authorization codes whose expiry is at or before `now`, in `(expires_at, code)`
/// order.
pub(crate) fn expired_authorization_codes(
    snap: &Snapshot,
    zone: &str,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Versioned<AuthorizationCode>>> {
    let codes = snap.table(T::Codes)?;
    expired(&snap.table(T::CodeExpiry)?, zone, now, limit, |rest| {
        let digest = rest
            .try_into()
            .map_err(|_| corrupt_key("authorization code expiry"))?;
        get(
            &codes,
            &digest_key(zone, &digest),
            decode_authorization_code,
        )
    })
}

pub(crate) fn corrupt_key(what: &'static str) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: "malformed index key".to_owned(),
    }
}

/// The `(created_at ms, id)` at the end of an index key with a prefix of `len` bytes.
fn index_tail(key: &[u8], len: usize) -> Result<(i64, String)> {
    let tail = key.get(len..).ok_or_else(|| corrupt_key("index"))?;
    let (at, rest) = take_millis(tail).ok_or_else(|| corrupt_key("index"))?;
    Ok((at, rest_str(rest).ok_or_else(|| corrupt_key("index"))?))
}

/// A grant index narrowed to one prefix.
struct Index {
    table: Table,
    prefix: Vec<u8>,
}

/// An index entry's `(created ms, id)`.
type Entry = Result<(i64, String)>;

impl Index {
    fn key(&self, k: (i64, &str)) -> Vec<u8> {
        Key::new()
            .raw(&self.prefix)
            .millis(k.0)
            .raw(k.1.as_bytes())
            .into_vec()
    }

    /// `(created ms, id)` of entries strictly above (`up`) or below `k` in key order,
    /// walking away from `k`.
    fn walk(
        &self,
        k: Option<(i64, &str)>,
        up: bool,
    ) -> Result<Box<dyn Iterator<Item = Entry> + '_>> {
        let low = match (k, up) {
            (Some(k), true) => Bound::Excluded(self.key(k)),
            _ => Bound::Included(self.prefix.clone()),
        };
        let high = match (k, up) {
            (Some(k), false) => Bound::Excluded(self.key(k)),
            _ => end_of(&self.prefix),
        };
        let entries = range(&self.table, low, high)?;
        let len = self.prefix.len();
        let entry = move |item: std::result::Result<_, redb::StorageError>| -> Entry {
            let (key, _): (redb::AccessGuard<'_, &[u8]>, _) = item?;
            index_tail(key.value(), len)
        };
        Ok(if up {
            Box::new(entries.map(entry))
        } else {
            Box::new(entries.rev().map(entry))
        })
    }
}

fn count_of(counts: &Table, key: &[u8]) -> Result<u64> {
    get(counts, key, |bytes| {
        read_u64(bytes).ok_or_else(|| corrupt_key("grant count"))
    })
    .map(Option::unwrap_or_default)
}

/// The narrowest index that covers the filter, as the in-memory store picks it: the
/// smallest of the user, resource, client and (for `revoked`) status indexes the
/// filter names, the first of equals winning, and the zone's creation index when it
/// names none. The rest of the filter is checked per item.
fn index_for(snap: &Snapshot, zone: &str, filter: &GrantFilter) -> Result<Index> {
    let candidates = [
        filter
            .user_id
            .as_deref()
            .map(|v| (T::ByUser, count::USER, Some(v))),
        filter
            .resource_id
            .as_deref()
            .map(|v| (T::ByResource, count::RESOURCE, Some(v))),
        filter
            .client_id
            .as_deref()
            .map(|v| (T::ByClient, count::CLIENT, Some(v))),
        // Revoked is final and stored as such, so its index is exact; active and
        // expired depend on the time and are checked per item.
        (filter.status == Some(GrantStatus::Revoked)).then_some((
            T::ByStatus,
            count::REVOKED,
            None,
        )),
    ];
    let counts = snap.table(T::Counts)?;
    let mut best: Option<(u64, T, Option<&str>)> = None;
    for (t, kind, value) in candidates.into_iter().flatten() {
        let size = count_of(&counts, &count_key(kind, zone, value))?;
        if best.is_none_or(|(b, _, _)| size < b) {
            best = Some((size, t, value));
        }
    }
    Ok(match best {
        Some((_, T::ByStatus, _)) => Index {
            table: snap.table(T::ByStatus)?,
            prefix: status_prefix(zone, GrantStatus::Revoked),
        },
        Some((_, t, value)) => Index {
            table: snap.table(t)?,
            prefix: index_prefix(t, zone, value),
        },
        None => Index {
            table: snap.table(T::ByCreated)?,
            prefix: index_prefix(T::ByCreated, zone, None),
        },
    })
}

/// One page of a listing; the same slice the in-memory store returns (see
/// [`GrantPage`]).
pub(crate) fn page(snap: &Snapshot, query: &GrantQuery) -> Result<GrantPage> {
    let index = index_for(snap, &query.zone_id, &query.filter)?;
    let grants = snap.table(T::Grants)?;
    let matching = |id: &str| -> Result<Option<Versioned<Grant>>> {
        Ok(get(&grants, &record_key(&query.zone_id, id), decode_grant)?
            .filter(|g| query.filter.matches(&g.record, query.now)))
    };
    let ascending = query.order == SortOrder::Ascending;
    // "Forward" is the listing's order; "backward" its reverse.
    let forward = |k: Option<(i64, &str)>| index.walk(k, ascending);
    let backward = |k: Option<(i64, &str)>| index.walk(k, !ascending);
    let take = |iter: Box<dyn Iterator<Item = Entry> + '_>, n: usize| {
        let mut items = Vec::with_capacity(n.min(128));
        for entry in iter {
            let (_, id) = entry?;
            if let Some(g) = matching(&id)? {
                if items.len() == n {
                    return Ok((items, true));
                }
                items.push(g);
            }
        }
        Ok::<_, StoreError>((items, false))
    };
    let exists = |iter: Box<dyn Iterator<Item = Entry> + '_>| {
        for entry in iter {
            let (_, id) = entry?;
            if matching(&id)?.is_some() {
                return Ok(true);
            }
        }
        Ok::<_, StoreError>(false)
    };
    // Whether the grant at the keyset itself matches: it is neither above nor below.
    let at = |k: (i64, &str)| -> Result<bool> {
        Ok(matching(k.1)?.is_some_and(|g| ms(&g.record.created_at) == k.0))
    };
    let keyset = |k: &Keyset| (ms(&k.created_at), k.id.clone());
    match &query.position {
        Position::First => {
            let (items, more_after) = take(forward(None)?, query.limit)?;
            Ok(GrantPage {
                items,
                more_before: false,
                more_after,
            })
        }
        Position::After(k) => {
            let (t, id) = keyset(k);
            let k = (t, id.as_str());
            let (items, more_after) = take(forward(Some(k))?, query.limit)?;
            let more_before = at(k)? || exists(backward(Some(k))?)?;
            Ok(GrantPage {
                items,
                more_before,
                more_after,
            })
        }
        Position::Before(k) => {
            let (t, id) = keyset(k);
            let k = (t, id.as_str());
            let (mut items, more_before) = take(backward(Some(k))?, query.limit)?;
            items.reverse();
            let more_after = at(k)? || exists(forward(Some(k))?)?;
            Ok(GrantPage {
                items,
                more_before,
                more_after,
            })
        }
    }
}

/// How many grants of the zone pass `filter` at `now`: one count read when the
/// filter names a single indexed value and nothing that depends on the time,
/// otherwise a walk of the narrowest index.
pub(crate) fn count_grants(
    snap: &Snapshot,
    zone: &str,
    filter: &GrantFilter,
    now: Timestamp,
) -> Result<u64> {
    let status = filter.status;
    let named = [
        filter.user_id.as_deref().map(|v| (count::USER, Some(v))),
        filter
            .resource_id
            .as_deref()
            .map(|v| (count::RESOURCE, Some(v))),
        filter
            .client_id
            .as_deref()
            .map(|v| (count::CLIENT, Some(v))),
    ];
    let mut named = named.into_iter().flatten();
    let counts = snap.table(T::Counts)?;
    match (named.next(), named.next(), status) {
        (None, _, None) => return count_of(&counts, &count_key(count::ZONE, zone, None)),
        (None, _, Some(GrantStatus::Revoked)) => {
            return count_of(&counts, &count_key(count::REVOKED, zone, None));
        }
        (Some((kind, value)), None, None) => {
            return count_of(&counts, &count_key(kind, zone, value));
        }
        _ => {}
    }
    let index = index_for(snap, zone, filter)?;
    let grants = snap.table(T::Grants)?;
    let mut n = 0;
    for entry in index.walk(None, true)? {
        let (_, id) = entry?;
        if get(&grants, &record_key(zone, &id), decode_grant)?
            .is_some_and(|g| filter.matches(&g.record, now))
        {
            n += 1;
        }
    }
    Ok(n)
}
