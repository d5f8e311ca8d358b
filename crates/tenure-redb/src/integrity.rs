//! A full check of a store: records against their keys, indexes against records.

use std::collections::HashMap;

use redb::ReadableTable;

use crate::codec::decode_client;
use crate::error::StoreError;
use crate::keys::{ms, take_digest, take_millis, take_str};
use crate::read::{
    Snapshot, Table, decode_authorization_code, decode_device, decode_grant, decode_personal,
    decode_token, decode_transition, get,
};
use crate::tables::{
    T, digest_key, expiry_key, grant_counts, grant_entries, grant_token_key, history_key,
    personal_index_key, read_u64, record_key, user_code_key,
};

/// The most problems a report spells out; the rest are only counted.
const MAX_LISTED: usize = 50;

/// What [`RedbStorage::check_integrity`](crate::RedbStorage::check_integrity) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// Clients checked.
    pub clients: u64,
    /// Grants checked.
    pub grants: u64,
    /// Tokens checked.
    pub tokens: u64,
    /// History entries checked.
    pub transitions: u64,
    /// Personal grants checked.
    pub personal_grants: u64,
    /// Device authorizations checked.
    pub device_authorizations: u64,
    /// Authorization codes checked.
    pub authorization_codes: u64,
    /// Tokens whose grant is not stored. Not a problem of the store (a write set may
    /// put a token of a grant that does not exist), but the engine never leaves one.
    pub orphan_tokens: u64,
    /// How many problems were found.
    pub problem_count: u64,
    /// The first problems found, described for a person.
    pub problems: Vec<String>,
}

impl IntegrityReport {
    /// Whether no problem was found.
    pub fn is_consistent(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, what: impl FnOnce() -> String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(what());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn check(snap: &Snapshot) -> Result<IntegrityReport, StoreError> {
    let mut report = IntegrityReport::default();
    check_clients(snap, &mut report)?;
    check_grants(snap, &mut report)?;
    check_tokens(snap, &mut report)?;
    check_history(snap, &mut report)?;
    check_personal(snap, &mut report)?;
    check_devices(snap, &mut report)?;
    check_authorization_codes(snap, &mut report)?;
    Ok(report)
}

fn contains(table: &Table, key: &[u8]) -> Result<bool, StoreError> {
    Ok(table.get(key)?.is_some())
}

fn check_clients(snap: &Snapshot, report: &mut IntegrityReport) -> Result<(), StoreError> {
    for item in snap.table(T::Clients)?.iter()? {
        let (key, value) = item?;
        let key = key.value();
        report.clients += 1;
        match decode_client(value.value()) {
            Ok(c) if record_key(&c.record.zone_id, &c.record.id) == key => {}
            Ok(c) => {
                report.problem(|| format!("client {:?} is stored under another key", c.record.id))
            }
            Err(e) => report.problem(|| format!("client at {}: {e}", hex(key))),
        }
    }
    Ok(())
}

/// The zone and id of a grant index entry.
fn parse_grant_entry(t: T, key: &[u8]) -> Option<(String, String)> {
    let (zone, rest) = take_str(key)?;
    let rest = match t {
        T::ByUser | T::ByResource | T::ByClient => take_str(rest)?.1,
        T::ByStatus => rest.get(1..)?,
        _ => rest,
    };
    let (_, id) = take_millis(rest)?;
    Some((zone, String::from_utf8(id.to_vec()).ok()?))
}

fn check_grants(snap: &Snapshot, report: &mut IntegrityReport) -> Result<(), StoreError> {
    let grants = snap.table(T::Grants)?;
    let indexes = [
        T::ByCreated,
        T::ByUser,
        T::ByResource,
        T::ByClient,
        T::ByStatus,
        T::Expiry,
    ]
    .into_iter()
    .map(|t| Ok((t, snap.table(t)?)))
    .collect::<Result<Vec<_>, StoreError>>()?;
    let mut counts: HashMap<Vec<u8>, u64> = HashMap::new();
    for item in grants.iter()? {
        let (key, value) = item?;
        let key = key.value();
        report.grants += 1;
        let grant = match decode_grant(value.value()) {
            Ok(g) => g.record,
            Err(e) => {
                report.problem(|| format!("grant at {}: {e}", hex(key)));
                continue;
            }
        };
        if record_key(&grant.zone_id, &grant.id) != key {
            report.problem(|| format!("grant {:?} is stored under another key", grant.id));
        }
        for (t, entry) in grant_entries(&grant) {
            let index = indexes.iter().find(|(it, _)| *it == t).map(|(_, i)| i);
            if !index
                .map(|i| contains(i, &entry))
                .transpose()?
                .unwrap_or(false)
            {
                report.problem(|| format!("grant {:?} is missing from index {t:?}", grant.id));
            }
        }
        for count in grant_counts(&grant) {
            *counts.entry(count).or_default() += 1;
        }
    }
    for (t, index) in &indexes {
        let t = *t;
        for item in index.iter()? {
            let (key, _) = item?;
            let key = key.value();
            let Some((zone, id)) = parse_grant_entry(t, key) else {
                report.problem(|| format!("malformed entry {} in index {t:?}", hex(key)));
                continue;
            };
            let stored = get(&grants, &record_key(&zone, &id), decode_grant)
                .ok()
                .flatten();
            let agrees = stored.is_some_and(|g| {
                grant_entries(&g.record)
                    .iter()
                    .any(|(et, ek)| *et == t && ek.as_slice() == key)
            });
            if !agrees {
                report.problem(|| {
                    format!("index {t:?} has an entry for grant {id:?} of zone {zone:?} that no such grant has")
                });
            }
        }
    }
    for item in snap.table(T::Counts)?.iter()? {
        let (key, value) = item?;
        let key = key.value();
        let stored = read_u64(value.value());
        let expected = counts.remove(key);
        if stored != expected {
            report.problem(|| {
                format!(
                    "count {} is {stored:?}, its index holds {expected:?}",
                    hex(key)
                )
            });
        }
    }
    for (key, n) in counts {
        report.problem(|| format!("count {} is missing; its index holds {n}", hex(&key)));
    }
    Ok(())
}

fn check_tokens(snap: &Snapshot, report: &mut IntegrityReport) -> Result<(), StoreError> {
    let grants = snap.table(T::Grants)?;
    let tokens = snap.table(T::Tokens)?;
    let by_grant = snap.table(T::TokensByGrant)?;
    let expiry = snap.table(T::TokenExpiry)?;
    for item in tokens.iter()? {
        let (key, value) = item?;
        let key = key.value();
        report.tokens += 1;
        let token = match decode_token(value.value()) {
            Ok(t) => t.record,
            Err(e) => {
                report.problem(|| format!("token at {}: {e}", hex(key)));
                continue;
            }
        };
        let digest = *token.digest.as_bytes();
        if digest_key(&token.zone_id, &digest) != key {
            report.problem(|| {
                format!(
                    "token {} is stored under another key",
                    token.digest.to_hex()
                )
            });
        }
        let entry = expiry_key(&token.zone_id, ms(&token.expires_at), &digest);
        if !contains(&expiry, &entry)? {
            report.problem(|| {
                format!(
                    "token {} is missing from the token expiry index",
                    token.digest.to_hex()
                )
            });
        }
        let listed = grant_token_key(&token.zone_id, &token.grant_id, &digest);
        if !contains(&by_grant, &listed)? {
            report.problem(|| {
                format!(
                    "token {} is missing from its grant's tokens",
                    token.digest.to_hex()
                )
            });
        }
        if !contains(&grants, &record_key(&token.zone_id, &token.grant_id))? {
            report.orphan_tokens += 1;
        }
    }
    for item in by_grant.iter()? {
        let (key, _) = item?;
        let key = key.value();
        let parsed = take_str(key).and_then(|(zone, rest)| {
            let (grant, rest) = take_str(rest)?;
            let (digest, rest) = take_digest(rest)?;
            rest.is_empty().then_some((zone, grant, digest))
        });
        let agrees = match &parsed {
            Some((zone, grant, digest)) => get(&tokens, &digest_key(zone, digest), decode_token)
                .ok()
                .flatten()
                .is_some_and(|t| t.record.grant_id == *grant),
            None => false,
        };
        if !agrees {
            report.problem(|| format!("grant token entry {} has no such token", hex(key)));
        }
    }
    for item in expiry.iter()? {
        let (key, _) = item?;
        let key = key.value();
        let parsed = take_str(key).and_then(|(zone, rest)| {
            let (at, rest) = take_millis(rest)?;
            let (digest, rest) = take_digest(rest)?;
            rest.is_empty().then_some((zone, at, digest))
        });
        let agrees = match &parsed {
            Some((zone, at, digest)) => get(&tokens, &digest_key(zone, digest), decode_token)
                .ok()
                .flatten()
                .is_some_and(|t| ms(&t.record.expires_at) == *at),
            None => false,
        };
        if !agrees {
            report.problem(|| format!("token expiry entry {} has no such token", hex(key)));
        }
    }
    Ok(())
}

/// Every history entry decodes, belongs to the grant its key names, and the
/// sequence numbers of each grant's history run from 0 without a gap.
fn check_history(snap: &Snapshot, report: &mut IntegrityReport) -> Result<(), StoreError> {
    let mut expected: Option<(String, String, u64)> = None;
    for item in snap.table(T::History)?.iter()? {
        let (key, value) = item?;
        let key = key.value();
        report.transitions += 1;
        let parsed = take_str(key).and_then(|(zone, rest)| {
            let (grant, rest) = take_str(rest)?;
            Some((zone, grant, read_u64(rest)?))
        });
        let Some((zone, grant, seq)) = parsed else {
            report.problem(|| format!("malformed history entry {}", hex(key)));
            continue;
        };
        let next = match &expected {
            Some((z, g, next)) if *z == zone && *g == grant => *next,
            _ => 0,
        };
        if seq != next || history_key(&zone, &grant, seq) != key {
            report.problem(|| format!("history of grant {grant:?} has a gap before entry {seq}"));
        }
        match decode_transition(value.value()) {
            Ok(t) if t.zone_id == zone && t.grant_id == grant => {}
            Ok(_) => {
                report.problem(|| format!("history of grant {grant:?} holds another grant's entry"))
            }
            Err(e) => report.problem(|| format!("history of grant {grant:?}: {e}")),
        }
        expected = Some((zone, grant, seq + 1));
    }
    Ok(())
}

fn check_personal(snap: &Snapshot, report: &mut IntegrityReport) -> Result<(), StoreError> {
    let records = snap.table(T::Personal)?;
    let index = snap.table(T::PersonalByUser)?;
    for item in records.iter()? {
        let (key, value) = item?;
        let key = key.value();
        report.personal_grants += 1;
        match decode_personal(value.value()) {
            Ok(p) => {
                let p = p.record;
                if record_key(&p.zone_id, &p.id) != key {
                    report.problem(|| {
                        format!("personal grant {:?} is stored under another key", p.id)
                    });
                }
                let entry = personal_index_key(&p.zone_id, &p.user_id, ms(&p.created_at), &p.id);
                if !contains(&index, &entry)? {
                    report.problem(|| {
                        format!("personal grant {:?} is missing from its user's index", p.id)
                    });
                }
            }
            Err(e) => report.problem(|| format!("personal grant at {}: {e}", hex(key))),
        }
    }
    for item in index.iter()? {
        let (key, _) = item?;
        let key = key.value();
        let parsed = take_str(key).and_then(|(zone, rest)| {
            let (user, rest) = take_str(rest)?;
            let (_, id) = take_millis(rest)?;
            Some((zone, user, String::from_utf8(id.to_vec()).ok()?))
        });
        let agrees = match &parsed {
            Some((zone, _, id)) => get(&records, &record_key(zone, id), decode_personal)
                .ok()
                .flatten()
                .is_some_and(|p| {
                    let p = p.record;
                    personal_index_key(&p.zone_id, &p.user_id, ms(&p.created_at), &p.id) == key
                }),
            None => false,
        };
        if !agrees {
            report.problem(|| {
                format!(
                    "personal index entry {} has no such personal grant",
                    hex(key)
                )
            });
        }
    }
    Ok(())
}

fn check_devices(snap: &Snapshot, report: &mut IntegrityReport) -> Result<(), StoreError> {
    let devices = snap.table(T::Devices)?;
    let codes = snap.table(T::DeviceUserCodes)?;
    let expiry = snap.table(T::DeviceExpiry)?;
    for item in devices.iter()? {
        let (key, value) = item?;
        let key = key.value();
        report.device_authorizations += 1;
        let device = match decode_device(value.value()) {
            Ok(d) => d.record,
            Err(e) => {
                report.problem(|| format!("device authorization at {}: {e}", hex(key)));
                continue;
            }
        };
        let digest = *device.device_code.as_bytes();
        if digest_key(&device.zone_id, &digest) != key {
            report.problem(|| {
                format!(
                    "device authorization {} is stored under another key",
                    hex(&digest)
                )
            });
        }
        let owner = codes.get(user_code_key(&device.zone_id, &device.user_code).as_slice())?;
        if owner.as_ref().map(|o| o.value()) != Some(digest.as_slice()) {
            report.problem(|| {
                format!(
                    "user code {:?} does not lead to its device authorization",
                    device.user_code
                )
            });
        }
        let entry = expiry_key(&device.zone_id, ms(&device.expires_at), &digest);
        if !contains(&expiry, &entry)? {
            report.problem(|| {
                format!(
                    "device authorization {} is missing from the expiry index",
                    hex(&digest)
                )
            });
        }
    }
    for item in codes.iter()? {
        let (key, value) = item?;
        let key = key.value();
        let parsed = take_str(key).and_then(|(zone, rest)| Some((zone, take_str(rest)?.0)));
        let agrees = match (&parsed, <[u8; 32]>::try_from(value.value())) {
            (Some((zone, code)), Ok(digest)) => {
                get(&devices, &digest_key(zone, &digest), decode_device)
                    .ok()
                    .flatten()
                    .is_some_and(|d| d.record.user_code == *code)
            }
            _ => false,
        };
        if !agrees {
            report.problem(|| {
                format!(
                    "user code entry {} has no such device authorization",
                    hex(key)
                )
            });
        }
    }
    for item in expiry.iter()? {
        let (key, _) = item?;
        let key = key.value();
        let parsed = take_str(key).and_then(|(zone, rest)| {
            let (at, rest) = take_millis(rest)?;
            let (digest, rest) = take_digest(rest)?;
            rest.is_empty().then_some((zone, at, digest))
        });
        let agrees = match &parsed {
            Some((zone, at, digest)) => get(&devices, &digest_key(zone, digest), decode_device)
                .ok()
                .flatten()
                .is_some_and(|d| ms(&d.record.expires_at) == *at),
            None => false,
        };
        if !agrees {
            report.problem(|| {
                format!(
                    "device expiry entry {} has no such device authorization",
                    hex(key)
                )
            });
        }
    }
    Ok(())
}

fn check_authorization_codes(
    snap: &Snapshot,
    report: &mut IntegrityReport,
) -> Result<(), StoreError> {
    let codes = snap.table(T::Codes)?;
    let expiry = snap.table(T::CodeExpiry)?;
    for item in codes.iter()? {
        let (key, value) = item?;
        let key = key.value();
        report.authorization_codes += 1;
        let code = match decode_authorization_code(value.value()) {
            Ok(c) => c.record,
            Err(e) => {
                report.problem(|| format!("authorization code at {}: {e}", hex(key)));
                continue;
            }
        };
        let digest = *code.code.as_bytes();
        if digest_key(&code.zone_id, &digest) != key {
            report.problem(|| {
                format!(
                    "authorization code {} is stored under another key",
                    hex(&digest)
                )
            });
        }
        let entry = expiry_key(&code.zone_id, ms(&code.expires_at), &digest);
        if !contains(&expiry, &entry)? {
            report.problem(|| {
                format!(
                    "authorization code {} is missing from the expiry index",
                    hex(&digest)
                )
            });
        }
    }
    for item in expiry.iter()? {
        let (key, _) = item?;
        let key = key.value();
        let parsed = take_str(key).and_then(|(zone, rest)| {
            let (at, rest) = take_millis(rest)?;
            let (digest, rest) = take_digest(rest)?;
            rest.is_empty().then_some((zone, at, digest))
        });
        let agrees = match &parsed {
            Some((zone, at, digest)) => {
                get(&codes, &digest_key(zone, digest), decode_authorization_code)
                    .ok()
                    .flatten()
                    .is_some_and(|c| ms(&c.record.expires_at) == *at)
            }
            None => false,
        };
        if !agrees {
            report.problem(|| {
                format!(
                    "authorization code expiry entry {} has no such authorization code",
                    hex(key)
                )
            });
        }
    }
    Ok(())
}
