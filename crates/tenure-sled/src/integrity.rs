//! A full check of a store: records against their keys, indexes against records.

use std::collections::HashMap;

use tenure::Grant;

use crate::codec::{
    AuthorizationCodeV1, DeviceV1, GrantV2, PersonalGrantV1, TokenV2, TransitionV1, decode,
    decode_client,
};
use crate::error::StoreError;
use crate::keys::{ms, take_digest, take_millis, take_str};
use crate::trees::{
    T, Trees, digest_key, expiry_key, grant_counts, grant_entries, grant_key, history_key,
    personal_index_key, read_u64, record_key, user_code_key,
};
use crate::write::decode_digests;

/// The most problems a report spells out; the rest are only counted.
const MAX_LISTED: usize = 50;

/// What [`SledStorage::check_integrity`](crate::SledStorage::check_integrity) found.
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
    /// put a token under a grant that does not exist), but the engine never leaves
    /// one.
    pub orphan_tokens: u64,
    /// Tokens whose grant is stored but does not list them. Deleting a grant deletes
    /// the tokens it lists, so this store leaves none; a store written before it did
    /// (format 1) could hold one after a write set that deleted a grant, kept its
    /// tokens and created the grant again. The engine never builds such a set.
    pub unlisted_tokens: u64,
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

pub(crate) fn check(trees: &Trees) -> Result<IntegrityReport, StoreError> {
    let mut report = IntegrityReport::default();
    check_clients(trees, &mut report)?;
    check_grants(trees, &mut report)?;
    check_tokens(trees, &mut report)?;
    check_token_expiry(trees, &mut report)?;
    check_history(trees, &mut report)?;
    check_personal(trees, &mut report)?;
    check_devices(trees, &mut report)?;
    check_authorization_codes(trees, &mut report)?;
    Ok(report)
}

fn check_clients(trees: &Trees, report: &mut IntegrityReport) -> Result<(), StoreError> {
    for item in trees.get(T::Clients).iter() {
        let (key, value) = item?;
        report.clients += 1;
        match decode_client(&value) {
            Ok(c) if record_key(&c.record.zone_id, &c.record.id) == key.as_ref() => {}
            Ok(c) => {
                report.problem(|| format!("client {:?} is stored under another key", c.record.id))
            }
            Err(e) => report.problem(|| format!("client at {}: {e}", hex(&key))),
        }
    }
    Ok(())
}

fn stored_grant(trees: &Trees, zone: &str, id: &str) -> Result<Option<Grant>, StoreError> {
    Ok(crate::read::grant(trees, zone, id)
        .ok()
        .flatten()
        .map(|g| g.record))
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

fn check_grants(trees: &Trees, report: &mut IntegrityReport) -> Result<(), StoreError> {
    let mut counts: HashMap<Vec<u8>, u64> = HashMap::new();
    for item in trees.get(T::Grants).iter() {
        let (key, value) = item?;
        report.grants += 1;
        let grant = match decode::<GrantV2>("grant", &value).and_then(GrantV2::into_record) {
            Ok(g) => g.record,
            Err(e) => {
                report.problem(|| format!("grant at {}: {e}", hex(&key)));
                continue;
            }
        };
        if record_key(&grant.zone_id, &grant.id) != key.as_ref() {
            report.problem(|| format!("grant {:?} is stored under another key", grant.id));
        }
        for (t, entry) in grant_entries(&grant) {
            if !trees.get(t).contains_key(&entry)? {
                report.problem(|| format!("grant {:?} is missing from index {t:?}", grant.id));
            }
        }
        for count in grant_counts(&grant) {
            *counts.entry(count).or_default() += 1;
        }
    }
    for t in [
        T::ByCreated,
        T::ByUser,
        T::ByResource,
        T::ByClient,
        T::ByStatus,
        T::Expiry,
    ] {
        for item in trees.get(t).iter() {
            let (key, _) = item?;
            let Some((zone, id)) = parse_grant_entry(t, &key) else {
                report.problem(|| format!("malformed entry {} in index {t:?}", hex(&key)));
                continue;
            };
            let agrees = stored_grant(trees, &zone, &id)?.is_some_and(|g| {
                grant_entries(&g)
                    .iter()
                    .any(|(et, ek)| *et == t && ek.as_slice() == key.as_ref())
            });
            if !agrees {
                report.problem(|| {
                    format!("index {t:?} has an entry for grant {id:?} of zone {zone:?} that no such grant has")
                });
            }
        }
    }
    for item in trees.get(T::Counts).iter() {
        let (key, value) = item?;
        let stored = read_u64(&value);
        let expected = counts.remove(key.as_ref());
        if stored != expected {
            report.problem(|| {
                format!(
                    "count {} is {stored:?}, its index holds {expected:?}",
                    hex(&key)
                )
            });
        }
    }
    for (key, n) in counts {
        report.problem(|| format!("count {} is missing; its index holds {n}", hex(&key)));
    }
    Ok(())
}

fn check_tokens(trees: &Trees, report: &mut IntegrityReport) -> Result<(), StoreError> {
    for item in trees.get(T::Tokens).iter() {
        let (key, value) = item?;
        report.tokens += 1;
        let token = match decode::<TokenV2>("token", &value).and_then(TokenV2::into_record) {
            Ok(t) => t.record,
            Err(e) => {
                report.problem(|| format!("token at {}: {e}", hex(&key)));
                continue;
            }
        };
        let digest = *token.digest.as_bytes();
        if digest_key(&token.zone_id, &digest) != key.as_ref() {
            report.problem(|| {
                format!(
                    "token {} is stored under another key",
                    token.digest.to_hex()
                )
            });
        }
        let entry = expiry_key(&token.zone_id, ms(&token.expires_at), &digest);
        if !trees.get(T::TokenExpiry).contains_key(entry)? {
            report.problem(|| {
                format!(
                    "token {} is missing from the token expiry index",
                    token.digest.to_hex()
                )
            });
        }
        if stored_grant(trees, &token.zone_id, &token.grant_id)?.is_none() {
            report.orphan_tokens += 1;
        } else {
            let listed = trees
                .get(T::TokensByGrant)
                .get(grant_key(&token.zone_id, &token.grant_id))?
                .and_then(|l| decode_digests(&l).ok())
                .is_some_and(|l| l.contains(&digest));
            if !listed {
                report.unlisted_tokens += 1;
            }
        }
    }
    for item in trees.get(T::TokensByGrant).iter() {
        let (key, value) = item?;
        let Some((zone, rest)) = take_str(&key) else {
            report.problem(|| format!("malformed token list key {}", hex(&key)));
            continue;
        };
        let Some((grant, _)) = take_str(rest) else {
            report.problem(|| format!("malformed token list key {}", hex(&key)));
            continue;
        };
        let list = match decode_digests(&value) {
            Ok(list) => list,
            Err(e) => {
                report.problem(|| format!("token list of grant {grant:?}: {e}"));
                continue;
            }
        };
        for (i, digest) in list.iter().enumerate() {
            if list[..i].contains(digest) {
                report.problem(|| format!("grant {grant:?} lists token {} twice", hex(digest)));
            }
            let belongs = crate::read::token(trees, &zone, digest)
                .ok()
                .flatten()
                .is_some_and(|t| t.record.grant_id == grant);
            if !belongs {
                report.problem(|| {
                    format!(
                        "grant {grant:?} lists token {}, which is not one of its tokens",
                        hex(digest)
                    )
                });
            }
        }
    }
    Ok(())
}

/// Every entry of the token expiry index leads to a token that expires then.
fn check_token_expiry(trees: &Trees, report: &mut IntegrityReport) -> Result<(), StoreError> {
    for item in trees.get(T::TokenExpiry).iter() {
        let (key, _) = item?;
        let parsed = take_str(&key).and_then(|(zone, rest)| {
            let (at, rest) = take_millis(rest)?;
            let (digest, rest) = take_digest(rest)?;
            rest.is_empty().then_some((zone, at, digest))
        });
        let agrees = match &parsed {
            Some((zone, at, digest)) => crate::read::token(trees, zone, digest)
                .ok()
                .flatten()
                .is_some_and(|t| ms(&t.record.expires_at) == *at),
            None => false,
        };
        if !agrees {
            report.problem(|| format!("token expiry entry {} has no such token", hex(&key)));
        }
    }
    Ok(())
}

fn check_history(trees: &Trees, report: &mut IntegrityReport) -> Result<(), StoreError> {
    for item in trees.get(T::HistoryLen).iter() {
        let (key, value) = item?;
        let parsed = take_str(&key).and_then(|(zone, rest)| Some((zone, take_str(rest)?.0)));
        let (Some((zone, grant)), Some(len)) = (parsed, read_u64(&value)) else {
            report.problem(|| format!("malformed history length {}", hex(&key)));
            continue;
        };
        let mut seq = 0;
        for entry in trees.get(T::History).scan_prefix(&key) {
            let (entry_key, value) = entry?;
            report.transitions += 1;
            if entry_key.as_ref() != history_key(&zone, &grant, seq) {
                report
                    .problem(|| format!("history of grant {grant:?} has a gap before entry {seq}"));
            }
            match decode::<TransitionV1>("transition", &value).and_then(TransitionV1::into_record) {
                Ok(t) if t.zone_id == zone && t.grant_id == grant => {}
                Ok(_) => report
                    .problem(|| format!("history of grant {grant:?} holds another grant's entry")),
                Err(e) => report.problem(|| format!("history of grant {grant:?}: {e}")),
            }
            seq += 1;
        }
        if seq != len {
            report.problem(|| {
                format!("history of grant {grant:?} has {seq} entries, its length says {len}")
            });
        }
    }
    for item in trees.get(T::History).iter() {
        let (key, _) = item?;
        let owner = take_str(&key)
            .and_then(|(zone, rest)| Some((zone, take_str(rest)?)))
            .map(|(zone, (grant, _))| grant_key(&zone, &grant));
        let counted = match &owner {
            Some(k) => trees.get(T::HistoryLen).contains_key(k)?,
            None => false,
        };
        if !counted {
            report.problem(|| format!("history entry {} belongs to no history", hex(&key)));
        }
    }
    Ok(())
}

fn check_personal(trees: &Trees, report: &mut IntegrityReport) -> Result<(), StoreError> {
    for item in trees.get(T::Personal).iter() {
        let (key, value) = item?;
        report.personal_grants += 1;
        match decode::<PersonalGrantV1>("personal grant", &value)
            .and_then(PersonalGrantV1::into_record)
        {
            Ok(p) => {
                let p = p.record;
                if record_key(&p.zone_id, &p.id) != key.as_ref() {
                    report.problem(|| {
                        format!("personal grant {:?} is stored under another key", p.id)
                    });
                }
                let entry = personal_index_key(&p.zone_id, &p.user_id, ms(&p.created_at), &p.id);
                if !trees.get(T::PersonalByUser).contains_key(entry)? {
                    report.problem(|| {
                        format!("personal grant {:?} is missing from its user's index", p.id)
                    });
                }
            }
            Err(e) => report.problem(|| format!("personal grant at {}: {e}", hex(&key))),
        }
    }
    for item in trees.get(T::PersonalByUser).iter() {
        let (key, _) = item?;
        let parsed = take_str(&key).and_then(|(zone, rest)| {
            let (user, rest) = take_str(rest)?;
            let (_, id) = take_millis(rest)?;
            Some((zone, user, String::from_utf8(id.to_vec()).ok()?))
        });
        let agrees = match &parsed {
            Some((zone, _, id)) => crate::read::personal(trees, zone, id)
                .ok()
                .flatten()
                .is_some_and(|p| {
                    let p = p.record;
                    personal_index_key(&p.zone_id, &p.user_id, ms(&p.created_at), &p.id)
                        == key.as_ref()
                }),
            None => false,
        };
        if !agrees {
            report.problem(|| {
                format!(
                    "personal index entry {} has no such personal grant",
                    hex(&key)
                )
            });
        }
    }
    Ok(())
}

fn check_devices(trees: &Trees, report: &mut IntegrityReport) -> Result<(), StoreError> {
    for item in trees.get(T::Devices).iter() {
        let (key, value) = item?;
        report.device_authorizations += 1;
        let device = match decode::<DeviceV1>("device authorization", &value)
            .and_then(DeviceV1::into_record)
        {
            Ok(d) => d.record,
            Err(e) => {
                report.problem(|| format!("device authorization at {}: {e}", hex(&key)));
                continue;
            }
        };
        let digest = *device.device_code.as_bytes();
        if digest_key(&device.zone_id, &digest) != key.as_ref() {
            report.problem(|| {
                format!(
                    "device authorization {} is stored under another key",
                    hex(&digest)
                )
            });
        }
        let owner = trees
            .get(T::DeviceUserCodes)
            .get(user_code_key(&device.zone_id, &device.user_code))?;
        if owner.as_deref() != Some(digest.as_slice()) {
            report.problem(|| {
                format!(
                    "user code {:?} does not lead to its device authorization",
                    device.user_code
                )
            });
        }
        let expiry = expiry_key(&device.zone_id, ms(&device.expires_at), &digest);
        if !trees.get(T::DeviceExpiry).contains_key(expiry)? {
            report.problem(|| {
                format!(
                    "device authorization {} is missing from the expiry index",
                    hex(&digest)
                )
            });
        }
    }
    for item in trees.get(T::DeviceUserCodes).iter() {
        let (key, value) = item?;
        let parsed = take_str(&key).and_then(|(zone, rest)| Some((zone, take_str(rest)?.0)));
        let agrees = match (&parsed, <[u8; 32]>::try_from(value.as_ref())) {
            (Some((zone, code)), Ok(digest)) => crate::read::device(trees, zone, &digest)
                .ok()
                .flatten()
                .is_some_and(|d| d.record.user_code == *code),
            _ => false,
        };
        if !agrees {
            report.problem(|| {
                format!(
                    "user code entry {} has no such device authorization",
                    hex(&key)
                )
            });
        }
    }
    for item in trees.get(T::DeviceExpiry).iter() {
        let (key, _) = item?;
        let parsed = take_str(&key).and_then(|(zone, rest)| {
            let (at, rest) = take_millis(rest)?;
            let (digest, rest) = take_digest(rest)?;
            rest.is_empty().then_some((zone, at, digest))
        });
        let agrees = match &parsed {
            Some((zone, at, digest)) => crate::read::device(trees, zone, digest)
                .ok()
                .flatten()
                .is_some_and(|d| ms(&d.record.expires_at) == *at),
            None => false,
        };
        if !agrees {
            report.problem(|| {
                format!(
                    "device expiry entry {} has no such device authorization",
                    hex(&key)
                )
            });
        }
    }
    Ok(())
}

fn check_authorization_codes(
    trees: &Trees,
    report: &mut IntegrityReport,
) -> Result<(), StoreError> {
    for item in trees.get(T::Codes).iter() {
        let (key, value) = item?;
        report.authorization_codes += 1;
        let code = match decode::<AuthorizationCodeV1>("authorization code", &value)
            .and_then(AuthorizationCodeV1::into_record)
        {
            Ok(c) => c.record,
            Err(e) => {
                report.problem(|| format!("authorization code at {}: {e}", hex(&key)));
                continue;
            }
        };
        let digest = *code.code.as_bytes();
        if digest_key(&code.zone_id, &digest) != key.as_ref() {
            report.problem(|| {
                format!(
                    "authorization code {} is stored under another key",
                    hex(&digest)
                )
            });
        }
        let expiry = expiry_key(&code.zone_id, ms(&code.expires_at), &digest);
        if !trees.get(T::CodeExpiry).contains_key(expiry)? {
            report.problem(|| {
                format!(
                    "authorization code {} is missing from the expiry index",
                    hex(&digest)
                )
            });
        }
    }
    for item in trees.get(T::CodeExpiry).iter() {
        let (key, _) = item?;
        let parsed = take_str(&key).and_then(|(zone, rest)| {
            let (at, rest) = take_millis(rest)?;
            let (digest, rest) = take_digest(rest)?;
            rest.is_empty().then_some((zone, at, digest))
        });
        let agrees = match &parsed {
            Some((zone, at, digest)) => crate::read::authorization_code(trees, zone, digest)
                .ok()
                .flatten()
                .is_some_and(|c| ms(&c.record.expires_at) == *at),
            None => false,
        };
        if !agrees {
            report.problem(|| {
                format!(
                    "authorization code expiry entry {} has no such authorization code",
                    hex(&key)
                )
            });
        }
    }
    Ok(())
}
