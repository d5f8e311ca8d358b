//! Reads: keyed lookups, and listings that walk an index from a keyset.
//!
//! The caller holds the store's read gate, so no commit runs while a function here
//! reads several keys: each call sees a consistent state.

use std::ops::Bound;

use sled::Tree;
use tenure::{
    AuthorizationCode, Client, DeviceAuthorization, Grant, GrantFacts, GrantFilter, GrantPage,
    GrantQuery, GrantStatus, Keyset, PersonalGrant, Position, SortOrder, Timestamp, Token,
    Transition, Versioned,
};

use crate::codec::{
    AuthorizationCodeV1, DeviceV1, GrantV2, PersonalGrantV1, TokenV2, TransitionV1, decode,
    decode_client, decode_grant_facts,
};
use crate::error::StoreError;
use crate::keys::{Key, ms, prefix_end, rest_str, take_millis};
use crate::trees::{
    T, Trees, count, count_key, digest_key, grant_key, index_prefix, read_u64, record_key,
    status_prefix, user_code_key,
};
use crate::write::decode_digests;

type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn grant(trees: &Trees, zone: &str, id: &str) -> Result<Option<Versioned<Grant>>> {
    trees
        .get(T::Grants)
        .get(record_key(zone, id))?
        .map(|b| decode::<GrantV2>("grant", &b).and_then(GrantV2::into_record))
        .transpose()
}

/// What introspection needs of a grant.
pub(crate) fn grant_facts(trees: &Trees, zone: &str, id: &str) -> Result<Option<GrantFacts>> {
    trees
        .get(T::Grants)
        .get(record_key(zone, id))?
        .map(|b| decode_grant_facts(&b))
        .transpose()
}

pub(crate) fn client(trees: &Trees, zone: &str, id: &str) -> Result<Option<Versioned<Client>>> {
    trees
        .get(T::Clients)
        .get(record_key(zone, id))?
        .map(|b| decode_client(&b))
        .transpose()
}

pub(crate) fn clients(
    trees: &Trees,
    zone: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Versioned<Client>>> {
    by_id(trees, T::Clients, zone, after, limit, decode_client)
}

/// Every personal grant of a zone, by id.
pub(crate) fn personal_in_zone(
    trees: &Trees,
    zone: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Versioned<PersonalGrant>>> {
    by_id(trees, T::Personal, zone, after, limit, |value| {
        decode::<PersonalGrantV1>("personal grant", value).and_then(PersonalGrantV1::into_record)
    })
}

/// Records of a tree keyed by (zone, id), in id order, after `after`.
fn by_id<R>(
    trees: &Trees,
    tree: T,
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
    for item in trees.get(tree).range((start, end_of(&prefix))) {
        if out.len() == limit {
            break;
        }
        let (_, value) = item?;
        out.push(decode_value(&value)?);
    }
    Ok(out)
}

fn end_of(prefix: &[u8]) -> Bound<Vec<u8>> {
    prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded)
}

/// A token by digest, with what `grant` reads of its grant (`None` if the grant
/// is gone).
pub(crate) fn token_with<G>(
    trees: &Trees,
    zone: &str,
    digest: &[u8; 32],
    grant: impl FnOnce(&Trees, &str, &str) -> Result<Option<G>>,
) -> Result<Option<(Versioned<Token>, Option<G>)>> {
    let Some(token) = token(trees, zone, digest)? else {
        return Ok(None);
    };
    let grant = grant(trees, zone, &token.record.grant_id)?;
    Ok(Some((token, grant)))
}

pub(crate) fn token(
    trees: &Trees,
    zone: &str,
    digest: &[u8; 32],
) -> Result<Option<Versioned<Token>>> {
    trees
        .get(T::Tokens)
        .get(digest_key(zone, digest))?
        .map(|b| decode::<TokenV2>("token", &b).and_then(TokenV2::into_record))
        .transpose()
}

pub(crate) fn grant_tokens(
    trees: &Trees,
    zone: &str,
    grant: &str,
) -> Result<Vec<Versioned<Token>>> {
    let Some(list) = trees.get(T::TokensByGrant).get(grant_key(zone, grant))? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for digest in decode_digests(&list)? {
        if let Some(t) = token(trees, zone, &digest)? {
            out.push(t);
        }
    }
    Ok(out)
}

pub(crate) fn history(trees: &Trees, zone: &str, grant: &str) -> Result<Vec<Transition>> {
    trees
        .get(T::History)
        .scan_prefix(grant_key(zone, grant))
        .map(|item| {
            let (_, value) = item?;
            decode::<TransitionV1>("transition", &value).and_then(TransitionV1::into_record)
        })
        .collect()
}

pub(crate) fn personal(
    trees: &Trees,
    zone: &str,
    id: &str,
) -> Result<Option<Versioned<PersonalGrant>>> {
    trees
        .get(T::Personal)
        .get(record_key(zone, id))?
        .map(|b| {
            decode::<PersonalGrantV1>("personal grant", &b).and_then(PersonalGrantV1::into_record)
        })
        .transpose()
}

pub(crate) fn personal_of(
    trees: &Trees,
    zone: &str,
    user: &str,
    after: Option<&Keyset>,
    limit: usize,
) -> Result<Vec<Versioned<PersonalGrant>>> {
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
    for item in trees
        .get(T::PersonalByUser)
        .range((Bound::Included(prefix.clone()), end))
        .rev()
    {
        if out.len() == limit {
            break;
        }
        let (key, _) = item?;
        let (_, id) = index_tail(&key, prefix.len())?;
        if let Some(p) = personal(trees, zone, &id)? {
            out.push(p);
        }
    }
    Ok(out)
}

pub(crate) fn device(
    trees: &Trees,
    zone: &str,
    digest: &[u8; 32],
) -> Result<Option<Versioned<DeviceAuthorization>>> {
    trees
        .get(T::Devices)
        .get(digest_key(zone, digest))?
        .map(|b| decode::<DeviceV1>("device authorization", &b).and_then(DeviceV1::into_record))
        .transpose()
}

pub(crate) fn device_by_user_code(
    trees: &Trees,
    zone: &str,
    code: &str,
) -> Result<Option<Versioned<DeviceAuthorization>>> {
    let Some(digest) = trees
        .get(T::DeviceUserCodes)
        .get(user_code_key(zone, code))?
    else {
        return Ok(None);
    };
    let digest = digest
        .as_ref()
        .try_into()
        .map_err(|_| StoreError::Corrupt {
            what: "user code entry",
            detail: format!("{} bytes where a digest belongs", digest.len()),
        })?;
    device(trees, zone, &digest)
}

/// A zone's device authorizations in device-code order, after `after`: a range of
/// the `devices` tree, whose keys are the zone and then the digest's raw bytes.
pub(crate) fn devices(
    trees: &Trees,
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
    for item in trees.get(T::Devices).range((start, end_of(&prefix))) {
        if out.len() == limit {
            break;
        }
        let (_, value) = item?;
        out.push(
            decode::<DeviceV1>("device authorization", &value).and_then(DeviceV1::into_record)?,
        );
    }
    Ok(out)
}

/// Walks an expiry index (`zone, expires, key`) up to `now`, at most `limit` entries,
/// and looks each one up.
fn expired<R>(
    tree: &Tree,
    zone: &str,
    now: Timestamp,
    limit: usize,
    mut lookup: impl FnMut(&[u8]) -> Result<Option<R>>,
) -> Result<Vec<R>> {
    let prefix = Key::new().str(zone).into_vec();
    let now = ms(&now);
    let mut out = Vec::new();
    for item in tree.scan_prefix(&prefix).take(limit) {
        let (key, _) = item?;
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
    trees: &Trees,
    zone: &str,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Versioned<Grant>>> {
    expired(trees.get(T::Expiry), zone, now, limit, |rest| {
        let id = rest_str(rest).ok_or_else(|| corrupt_key("grant expiry"))?;
        grant(trees, zone, &id)
    })
}

/// Tokens whose expiry is at or before `now`, in `(expires_at, digest)` order.
pub(crate) fn expired_tokens(
    trees: &Trees,
    zone: &str,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Versioned<Token>>> {
    expired(trees.get(T::TokenExpiry), zone, now, limit, |rest| {
        let digest = rest.try_into().map_err(|_| corrupt_key("token expiry"))?;
        token(trees, zone, &digest)
    })
}

pub(crate) fn expired_devices(
    trees: &Trees,
    zone: &str,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Versioned<DeviceAuthorization>>> {
    expired(trees.get(T::DeviceExpiry), zone, now, limit, |rest| {
        let digest = rest.try_into().map_err(|_| corrupt_key("device expiry"))?;
        device(trees, zone, &digest)
    })
}

pub(crate) fn authorization_code(
    trees: &Trees,
    zone: &str,
    digest: &[u8; 32],
) -> Result<Option<Versioned<AuthorizationCode>>> {
    trees
        .get(T::Codes)
        .get(digest_key(zone, digest))?
        .map(|b| {
            decode::<AuthorizationCodeV1>("authorization code", &b)
                .and_then(AuthorizationCodeV1::into_record)
        })
        .transpose()
}

/// Authorization codes whose expiry is at or before `now`, in `(expires_at, code)`
/// order.
pub(crate) fn expired_authorization_codes(
    trees: &Trees,
    zone: &str,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Versioned<AuthorizationCode>>> {
    expired(trees.get(T::CodeExpiry), zone, now, limit, |rest| {
        let digest = rest
            .try_into()
            .map_err(|_| corrupt_key("authorization code expiry"))?;
        authorization_code(trees, zone, &digest)
    })
}

fn corrupt_key(what: &'static str) -> StoreError {
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
struct Index<'a> {
    tree: &'a Tree,
    prefix: Vec<u8>,
}

impl Index<'_> {
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
    ) -> Box<dyn Iterator<Item = Result<(i64, String)>> + '_> {
        let low = match (k, up) {
            (Some(k), true) => Bound::Excluded(self.key(k)),
            _ => Bound::Included(self.prefix.clone()),
        };
        let high = match (k, up) {
            (Some(k), false) => Bound::Excluded(self.key(k)),
            _ => end_of(&self.prefix),
        };
        let range = self.tree.range((low, high));
        let len = self.prefix.len();
        let entries = move |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (key, _) = item?;
            index_tail(&key, len)
        };
        if up {
            Box::new(range.map(entries))
        } else {
            Box::new(range.rev().map(entries))
        }
    }
}

fn count_of(trees: &Trees, key: &[u8]) -> Result<u64> {
    match trees.get(T::Counts).get(key)? {
        None => Ok(0),
        Some(bytes) => read_u64(&bytes).ok_or_else(|| corrupt_key("grant count")),
    }
}

/// The narrowest index that covers the filter, as the in-memory store picks it: the
/// smallest of the user, resource, client and (for `revoked`) status indexes the
/// filter names, the first of equals winning, and the zone's creation index when it
/// names none. The rest of the filter is checked per item.
fn index_for<'a>(trees: &'a Trees, zone: &str, filter: &GrantFilter) -> Result<Index<'a>> {
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
    let mut best: Option<(u64, T, Option<&str>)> = None;
    for (t, kind, value) in candidates.into_iter().flatten() {
        let size = count_of(trees, &count_key(kind, zone, value))?;
        if best.is_none_or(|(b, _, _)| size < b) {
            best = Some((size, t, value));
        }
    }
    Ok(match best {
        Some((_, T::ByStatus, _)) => Index {
            tree: trees.get(T::ByStatus),
            prefix: status_prefix(zone, GrantStatus::Revoked),
        },
        Some((_, t, value)) => Index {
            tree: trees.get(t),
            prefix: index_prefix(t, zone, value),
        },
        None => Index {
            tree: trees.get(T::ByCreated),
            prefix: index_prefix(T::ByCreated, zone, None),
        },
    })
}

/// One page of a listing; the same slice the in-memory store returns (see
/// [`GrantPage`]).
pub(crate) fn page(trees: &Trees, query: &GrantQuery) -> Result<GrantPage> {
    let index = index_for(trees, &query.zone_id, &query.filter)?;
    let matching =
        |id: &str| -> Result<Option<Versioned<Grant>>> {
            Ok(grant(trees, &query.zone_id, id)?
                .filter(|g| query.filter.matches(&g.record, query.now)))
        };
    let ascending = query.order == SortOrder::Ascending;
    // "Forward" is the listing's order; "backward" its reverse.
    let forward = |k: Option<(i64, &str)>| index.walk(k, ascending);
    let backward = |k: Option<(i64, &str)>| index.walk(k, !ascending);
    let take = |iter: Box<dyn Iterator<Item = Result<(i64, String)>> + '_>, n: usize| {
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
    let exists = |iter: Box<dyn Iterator<Item = Result<(i64, String)>> + '_>| {
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
            let (items, more_after) = take(forward(None), query.limit)?;
            Ok(GrantPage {
                items,
                more_before: false,
                more_after,
            })
        }
        Position::After(k) => {
            let (t, id) = keyset(k);
            let k = (t, id.as_str());
            let (items, more_after) = take(forward(Some(k)), query.limit)?;
            let more_before = at(k)? || exists(backward(Some(k)))?;
            Ok(GrantPage {
                items,
                more_before,
                more_after,
            })
        }
        Position::Before(k) => {
            let (t, id) = keyset(k);
            let k = (t, id.as_str());
            let (mut items, more_before) = take(backward(Some(k)), query.limit)?;
            items.reverse();
            let more_after = at(k)? || exists(forward(Some(k)))?;
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
    trees: &Trees,
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
    match (named.next(), named.next(), status) {
        (None, _, None) => return count_of(trees, &count_key(count::ZONE, zone, None)),
        (None, _, Some(GrantStatus::Revoked)) => {
            return count_of(trees, &count_key(count::REVOKED, zone, None));
        }
        (Some((kind, value)), None, None) => return count_of(trees, &count_key(kind, zone, value)),
        _ => {}
    }
    let index = index_for(trees, zone, filter)?;
    let mut n = 0;
    for entry in index.walk(None, true) {
        let (_, id) = entry?;
        if grant(trees, zone, &id)?.is_some_and(|g| filter.matches(&g.record, now)) {
            n += 1;
        }
    }
    Ok(n)
}

/// The zones holding a client or a grant, after `after`, at most `limit`: a seek
/// past each zone's keys in the clients and grants trees, so one step per zone.
pub(crate) fn zones(trees: &Trees, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
    let past = |zone: &str| prefix_end(&Key::new().str(zone).into_vec());
    let mut from = match after {
        Some(a) => past(a),
        None => Some(Vec::new()),
    };
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(start) = from else { break };
        let mut next: Option<String> = None;
        for tree in [T::Clients, T::Grants] {
            if let Some(item) = trees.get(tree).range(start.clone()..).next() {
                let (key, _) = item?;
                let (zone, _) = crate::keys::take_str(&key).ok_or_else(|| corrupt_key("zone"))?;
                if next.as_ref().is_none_or(|n| zone < *n) {
                    next = Some(zone);
                }
            }
        }
        let Some(zone) = next else { break };
        from = past(&zone);
        out.push(zone);
    }
    Ok(out)
}
