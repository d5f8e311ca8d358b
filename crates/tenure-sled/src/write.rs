//! Applying a write set: one sled transaction over every tree.
//!
//! Everything that can be computed without reading the store (encoded records,
//! keys) is computed once, before the transaction. The transaction's closure only
//! reads and writes through its transactional trees, so it has no side effects and
//! sled may run it again on a conflict. Like the in-memory store, it first checks
//! every expectation against the state before the set, then applies the writes in
//! order.

use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use tenure::{Expect, Grant, PersonalGrant, RecordKey, Token, Write, WriteSet};

use crate::codec::{
    AuthorizationCodeV1, ClientV2, DeviceV1, GrantV2, PersonalGrantV1, TokenV2, TransitionV1,
    decode, decode_version, encode,
};
use crate::error::StoreError;
use crate::keys::ms;
use crate::trees::{
    T, Trees, digest_key, expiry_key, grant_counts, grant_entries, grant_key, history_key,
    personal_index_key, read_u64, record_key, user_code_key,
};

/// Why a set was not applied.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// An expectation did not hold.
    Conflict,
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e)
    }
}

impl From<Refusal> for tenure::Error {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Conflict => tenure::Error::Conflict,
            Refusal::Store(e) => e.into(),
        }
    }
}

/// One write, ready to be checked and applied.
enum Prepared {
    PutClient {
        key: Vec<u8>,
        value: Vec<u8>,
        expect: Expect,
    },
    DeleteClient {
        key: Vec<u8>,
        expect: u64,
    },
    PutGrant {
        key: Vec<u8>,
        value: Vec<u8>,
        grant: Grant,
        expect: Expect,
    },
    DeleteGrant {
        key: Vec<u8>,
        zone: String,
        id: String,
        expect: u64,
    },
    PutToken {
        key: Vec<u8>,
        value: Vec<u8>,
        expect: Expect,
        list_key: Vec<u8>,
        digest: [u8; 32],
        expiry_key: Vec<u8>,
    },
    DeleteToken {
        key: Vec<u8>,
        zone: String,
        digest: [u8; 32],
        expect: u64,
    },
    AppendTransition {
        zone: String,
        grant: String,
        value: Vec<u8>,
    },
    PutPersonal {
        key: Vec<u8>,
        value: Vec<u8>,
        grant: PersonalGrant,
        expect: Expect,
    },
    DeletePersonal {
        key: Vec<u8>,
        expect: u64,
    },
    PutDevice {
        key: Vec<u8>,
        value: Vec<u8>,
        zone: String,
        digest: [u8; 32],
        code_key: Vec<u8>,
        expiry_key: Vec<u8>,
        expect: Expect,
    },
    DeleteDevice {
        key: Vec<u8>,
        zone: String,
        digest: [u8; 32],
        expect: u64,
    },
    PutCode {
        key: Vec<u8>,
        value: Vec<u8>,
        zone: String,
        digest: [u8; 32],
        expiry_key: Vec<u8>,
        expect: Expect,
    },
    DeleteCode {
        key: Vec<u8>,
        zone: String,
        digest: [u8; 32],
        expect: u64,
    },
    /// A guard: the record under `key` in `tree` must be as `expect` says.
    Check {
        tree: T,
        key: Vec<u8>,
        what: &'static str,
        expect: Expect,
    },
}

fn prepare(write: &Write) -> Result<Prepared, StoreError> {
    Ok(match write {
        Write::PutClient { client, expect } => Prepared::PutClient {
            key: record_key(&client.zone_id, &client.id),
            value: encode(&ClientV2::new(client, expect.next_version()))?,
            expect: *expect,
        },
        Write::DeleteClient {
            zone_id,
            id,
            expect,
        } => Prepared::DeleteClient {
            key: record_key(zone_id, id),
            expect: *expect,
        },
        Write::PutGrant { grant, expect } => Prepared::PutGrant {
            key: record_key(&grant.zone_id, &grant.id),
            value: encode(&GrantV2::new(grant, expect.next_version()))?,
            grant: grant.clone(),
            expect: *expect,
        },
        Write::DeleteGrant {
            zone_id,
            id,
            expect,
        } => Prepared::DeleteGrant {
            key: record_key(zone_id, id),
            zone: zone_id.clone(),
            id: id.clone(),
            expect: *expect,
        },
        Write::PutToken { token, expect } => Prepared::PutToken {
            key: digest_key(&token.zone_id, token.digest.as_bytes()),
            value: encode(&TokenV2::new(token, expect.next_version()))?,
            expect: *expect,
            list_key: grant_key(&token.zone_id, &token.grant_id),
            digest: *token.digest.as_bytes(),
            expiry_key: expiry_key(
                &token.zone_id,
                ms(&token.expires_at),
                token.digest.as_bytes(),
            ),
        },
        Write::DeleteToken {
            zone_id,
            digest,
            expect,
        } => Prepared::DeleteToken {
            key: digest_key(zone_id, digest.as_bytes()),
            zone: zone_id.clone(),
            digest: *digest.as_bytes(),
            expect: *expect,
        },
        Write::AppendTransition(t) => Prepared::AppendTransition {
            zone: t.zone_id.clone(),
            grant: t.grant_id.clone(),
            value: encode(&TransitionV1::new(t)?)?,
        },
        Write::PutPersonalGrant { grant, expect } => Prepared::PutPersonal {
            key: record_key(&grant.zone_id, &grant.id),
            value: encode(&PersonalGrantV1::new(grant, expect.next_version()))?,
            grant: grant.clone(),
            expect: *expect,
        },
        Write::DeletePersonalGrant {
            zone_id,
            id,
            expect,
        } => Prepared::DeletePersonal {
            key: record_key(zone_id, id),
            expect: *expect,
        },
        Write::PutDeviceAuthorization { device, expect } => {
            let digest = *device.device_code.as_bytes();
            Prepared::PutDevice {
                key: digest_key(&device.zone_id, &digest),
                value: encode(&DeviceV1::new(device, expect.next_version()))?,
                zone: device.zone_id.clone(),
                digest,
                code_key: user_code_key(&device.zone_id, &device.user_code),
                expiry_key: expiry_key(&device.zone_id, ms(&device.expires_at), &digest),
                expect: *expect,
            }
        }
        Write::DeleteDeviceAuthorization {
            zone_id,
            device_code,
            expect,
        } => Prepared::DeleteDevice {
            key: digest_key(zone_id, device_code.as_bytes()),
            zone: zone_id.clone(),
            digest: *device_code.as_bytes(),
            expect: *expect,
        },
        Write::PutAuthorizationCode { code, expect } => {
            let digest = *code.code.as_bytes();
            Prepared::PutCode {
                key: digest_key(&code.zone_id, &digest),
                value: encode(&AuthorizationCodeV1::new(code, expect.next_version()))?,
                zone: code.zone_id.clone(),
                digest,
                expiry_key: expiry_key(&code.zone_id, ms(&code.expires_at), &digest),
                expect: *expect,
            }
        }
        Write::DeleteAuthorizationCode {
            zone_id,
            code,
            expect,
        } => Prepared::DeleteCode {
            key: digest_key(zone_id, code.as_bytes()),
            zone: zone_id.clone(),
            digest: *code.as_bytes(),
            expect: *expect,
        },
        Write::Check { record, expect } => {
            let (tree, key, what) = match record {
                RecordKey::Client { zone_id, id } => {
                    (T::Clients, record_key(zone_id, id), "client")
                }
                RecordKey::Grant { zone_id, id } => (T::Grants, record_key(zone_id, id), "grant"),
                RecordKey::Token { zone_id, digest } => {
                    (T::Tokens, digest_key(zone_id, digest.as_bytes()), "token")
                }
                _ => return Err(StoreError::UnsupportedWrite),
            };
            Prepared::Check {
                tree,
                key,
                what,
                expect: *expect,
            }
        }
        _ => return Err(StoreError::UnsupportedWrite),
    })
}

type TxResult<A> = ConflictableTransactionResult<A, Refusal>;

fn fail<A>(e: StoreError) -> TxResult<A> {
    Err(ConflictableTransactionError::Abort(Refusal::Store(e)))
}

/// The transactional trees of one run of the closure, by [`T`].
struct Tx<'a>(&'a [TransactionalTree]);

impl Tx<'_> {
    fn tree(&self, t: T) -> &TransactionalTree {
        &self.0[t as usize]
    }

    fn version(&self, t: T, key: &[u8], what: &'static str) -> TxResult<Option<u64>> {
        match self.tree(t).get(key)? {
            None => Ok(None),
            Some(bytes) => decode_version(what, &bytes).map(Some).or_else(fail),
        }
    }

    fn holds(&self, t: T, key: &[u8], what: &'static str, expect: Expect) -> TxResult<bool> {
        Ok(expect.holds(self.version(t, key, what)?))
    }

    fn put(&self, t: T, key: &[u8], value: &[u8]) -> TxResult<()> {
        self.tree(t).insert(key, value)?;
        Ok(())
    }

    fn remove(&self, t: T, key: &[u8]) -> TxResult<Option<sled::IVec>> {
        Ok(self.tree(t).remove(key)?)
    }

    fn read_u64(&self, t: T, key: &[u8], what: &'static str) -> TxResult<u64> {
        match self.tree(t).get(key)? {
            None => Ok(0),
            Some(bytes) => read_u64(&bytes).map(Ok).unwrap_or_else(|| {
                fail(StoreError::Corrupt {
                    what,
                    detail: format!("{} bytes where a u64 belongs", bytes.len()),
                })
            }),
        }
    }

    /// Adds `delta` to a count, removing it at zero.
    fn add_count(&self, key: &[u8], delta: i64) -> TxResult<()> {
        let current = self.read_u64(T::Counts, key, "grant count")?;
        let next = current.saturating_add_signed(delta);
        if next == 0 {
            self.remove(T::Counts, key)?;
        } else {
            self.put(T::Counts, key, &next.to_be_bytes())?;
        }
        Ok(())
    }

    fn old_grant(&self, key: &[u8]) -> TxResult<Option<Grant>> {
        match self.tree(T::Grants).get(key)? {
            None => Ok(None),
            Some(bytes) => {
                match decode::<GrantV2>("grant", &bytes).and_then(GrantV2::into_record) {
                    Ok(g) => Ok(Some(g.record)),
                    Err(e) => fail(e),
                }
            }
        }
    }

    fn old_token(&self, bytes: Option<sled::IVec>) -> TxResult<Option<Token>> {
        match bytes {
            None => Ok(None),
            Some(bytes) => {
                match decode::<TokenV2>("token", &bytes).and_then(TokenV2::into_record) {
                    Ok(t) => Ok(Some(t.record)),
                    Err(e) => fail(e),
                }
            }
        }
    }

    /// Moves a grant's index entries and counts from `old` to `new`, touching only
    /// what changed.
    fn reindex(&self, old: Option<&Grant>, new: Option<&Grant>) -> TxResult<()> {
        let old_entries = old.map(grant_entries).unwrap_or_default();
        let new_entries = new.map(grant_entries).unwrap_or_default();
        for (t, key) in &old_entries {
            if !new_entries.iter().any(|(nt, nk)| nt == t && nk == key) {
                self.remove(*t, key)?;
            }
        }
        for (t, key) in &new_entries {
            if !old_entries.iter().any(|(ot, ok)| ot == t && ok == key) {
                self.put(*t, key, &[])?;
            }
        }
        let old_counts = old.map(grant_counts).unwrap_or_default();
        let new_counts = new.map(grant_counts).unwrap_or_default();
        for key in &old_counts {
            if !new_counts.contains(key) {
                self.add_count(key, -1)?;
            }
        }
        for key in &new_counts {
            if !old_counts.contains(key) {
                self.add_count(key, 1)?;
            }
        }
        Ok(())
    }

    fn token_list(&self, key: &[u8]) -> TxResult<Vec<[u8; 32]>> {
        match self.tree(T::TokensByGrant).get(key)? {
            None => Ok(Vec::new()),
            Some(bytes) => match decode_digests(&bytes) {
                Ok(list) => Ok(list),
                Err(e) => fail(e),
            },
        }
    }

    fn set_token_list(&self, key: &[u8], list: &[[u8; 32]]) -> TxResult<()> {
        if list.is_empty() {
            self.remove(T::TokensByGrant, key)?;
        } else {
            self.put(T::TokensByGrant, key, &list.concat())?;
        }
        Ok(())
    }

    fn check(&self, write: &Prepared) -> TxResult<bool> {
        match write {
            Prepared::PutClient { key, expect, .. } => {
                self.holds(T::Clients, key, "client", *expect)
            }
            Prepared::DeleteClient { key, expect } => {
                self.holds(T::Clients, key, "client", Expect::Version(*expect))
            }
            Prepared::PutGrant { key, expect, .. } => self.holds(T::Grants, key, "grant", *expect),
            Prepared::DeleteGrant { key, expect, .. } => {
                self.holds(T::Grants, key, "grant", Expect::Version(*expect))
            }
            Prepared::PutToken { key, expect, .. } => self.holds(T::Tokens, key, "token", *expect),
            Prepared::DeleteToken { key, expect, .. } => {
                self.holds(T::Tokens, key, "token", Expect::Version(*expect))
            }
            Prepared::AppendTransition { .. } => Ok(true),
            Prepared::PutPersonal { key, expect, .. } => {
                self.holds(T::Personal, key, "personal grant", *expect)
            }
            Prepared::DeletePersonal { key, expect, .. } => {
                self.holds(T::Personal, key, "personal grant", Expect::Version(*expect))
            }
            Prepared::PutDevice {
                key,
                code_key,
                digest,
                expect,
                ..
            } => {
                let code_free = match self.tree(T::DeviceUserCodes).get(code_key)? {
                    None => true,
                    Some(owner) => owner.as_ref() == digest.as_slice(),
                };
                Ok(code_free && self.holds(T::Devices, key, "device authorization", *expect)?)
            }
            Prepared::DeleteDevice { key, expect, .. } => self.holds(
                T::Devices,
                key,
                "device authorization",
                Expect::Version(*expect),
            ),
            Prepared::PutCode { key, expect, .. } => {
                self.holds(T::Codes, key, "authorization code", *expect)
            }
            Prepared::DeleteCode { key, expect, .. } => self.holds(
                T::Codes,
                key,
                "authorization code",
                Expect::Version(*expect),
            ),
            Prepared::Check {
                tree,
                key,
                what,
                expect,
            } => self.holds(*tree, key, what, *expect),
        }
    }

    fn apply(&self, write: &Prepared) -> TxResult<()> {
        match write {
            Prepared::PutClient { key, value, .. } => self.put(T::Clients, key, value),
            Prepared::DeleteClient { key, .. } => {
                self.remove(T::Clients, key)?;
                Ok(())
            }
            Prepared::PutGrant {
                key, value, grant, ..
            } => {
                let old = self.old_grant(key)?;
                self.reindex(old.as_ref(), Some(grant))?;
                self.put(T::Grants, key, value)
            }
            Prepared::DeleteGrant { key, zone, id, .. } => {
                if let Some(old) = self.old_grant(key)? {
                    self.reindex(Some(&old), None)?;
                    self.remove(T::Grants, key)?;
                }
                let grant_key = grant_key(zone, id);
                let len = self.read_u64(T::HistoryLen, &grant_key, "history length")?;
                for seq in 0..len {
                    self.remove(T::History, &history_key(zone, id, seq))?;
                }
                self.remove(T::HistoryLen, &grant_key)?;
                // The engine deletes a grant's tokens in the same set; any it left
                // would outlive their grant, so they go too, as in the in-memory
                // store.
                for digest in self.token_list(&grant_key)? {
                    let token_key = digest_key(zone, &digest);
                    if let Some(old) = self.old_token(self.remove(T::Tokens, &token_key)?)? {
                        self.remove(
                            T::TokenExpiry,
                            &expiry_key(zone, ms(&old.expires_at), &digest),
                        )?;
                    }
                }
                self.remove(T::TokensByGrant, &grant_key)?;
                Ok(())
            }
            Prepared::PutToken {
                key,
                value,
                expect,
                list_key,
                digest,
                expiry_key: entry,
            } => {
                if *expect == Expect::Absent {
                    let mut list = self.token_list(list_key)?;
                    list.push(*digest);
                    self.set_token_list(list_key, &list)?;
                } else if let Some(old) = self.old_token(self.tree(T::Tokens).get(key)?)? {
                    // A replacement may move the token's expiry.
                    let old_entry = expiry_key(&old.zone_id, ms(&old.expires_at), digest);
                    if old_entry != *entry {
                        self.remove(T::TokenExpiry, &old_entry)?;
                    }
                }
                self.put(T::TokenExpiry, entry, &[])?;
                self.put(T::Tokens, key, value)
            }
            Prepared::DeleteToken {
                key, zone, digest, ..
            } => {
                if let Some(old) = self.old_token(self.remove(T::Tokens, key)?)? {
                    self.remove(
                        T::TokenExpiry,
                        &expiry_key(zone, ms(&old.expires_at), digest),
                    )?;
                    let list_key = grant_key(zone, &old.grant_id);
                    let mut list = self.token_list(&list_key)?;
                    if !list.is_empty() {
                        list.retain(|d| d != digest);
                        self.set_token_list(&list_key, &list)?;
                    }
                }
                Ok(())
            }
            Prepared::AppendTransition { zone, grant, value } => {
                let len_key = grant_key(zone, grant);
                let len = self.read_u64(T::HistoryLen, &len_key, "history length")?;
                self.put(T::History, &history_key(zone, grant, len), value)?;
                self.put(T::HistoryLen, &len_key, &(len + 1).to_be_bytes())
            }
            Prepared::PutPersonal {
                key, value, grant, ..
            } => {
                if let Some(old) = self.old_personal(key)? {
                    self.remove(
                        T::PersonalByUser,
                        &personal_index_key(
                            &old.zone_id,
                            &old.user_id,
                            ms(&old.created_at),
                            &old.id,
                        ),
                    )?;
                }
                self.put(
                    T::PersonalByUser,
                    &personal_index_key(
                        &grant.zone_id,
                        &grant.user_id,
                        ms(&grant.created_at),
                        &grant.id,
                    ),
                    &[],
                )?;
                self.put(T::Personal, key, value)
            }
            Prepared::DeletePersonal { key, .. } => {
                if let Some(old) = self.old_personal(key)? {
                    self.remove(
                        T::PersonalByUser,
                        &personal_index_key(
                            &old.zone_id,
                            &old.user_id,
                            ms(&old.created_at),
                            &old.id,
                        ),
                    )?;
                    self.remove(T::Personal, key)?;
                }
                Ok(())
            }
            Prepared::PutDevice {
                key,
                value,
                zone,
                digest,
                code_key,
                expiry_key,
                ..
            } => {
                self.unindex_device(key, zone, digest)?;
                self.put(T::DeviceUserCodes, code_key, digest)?;
                self.put(T::DeviceExpiry, expiry_key, &[])?;
                self.put(T::Devices, key, value)
            }
            Prepared::DeleteDevice {
                key, zone, digest, ..
            } => {
                if self.unindex_device(key, zone, digest)? {
                    self.remove(T::Devices, key)?;
                }
                Ok(())
            }
            Prepared::PutCode {
                key,
                value,
                zone,
                digest,
                expiry_key,
                ..
            } => {
                self.unindex_code(key, zone, digest)?;
                self.put(T::CodeExpiry, expiry_key, &[])?;
                self.put(T::Codes, key, value)
            }
            Prepared::DeleteCode {
                key, zone, digest, ..
            } => {
                if self.unindex_code(key, zone, digest)? {
                    self.remove(T::Codes, key)?;
                }
                Ok(())
            }
            Prepared::Check { .. } => Ok(()),
        }
    }

    fn old_personal(&self, key: &[u8]) -> TxResult<Option<PersonalGrant>> {
        match self.tree(T::Personal).get(key)? {
            None => Ok(None),
            Some(bytes) => match decode::<PersonalGrantV1>("personal grant", &bytes)
                .and_then(PersonalGrantV1::into_record)
            {
                Ok(p) => Ok(Some(p.record)),
                Err(e) => fail(e),
            },
        }
    }

    /// Removes a stored device authorization's index entries; whether it existed.
    fn unindex_device(&self, key: &[u8], zone: &str, digest: &[u8; 32]) -> TxResult<bool> {
        let Some(bytes) = self.tree(T::Devices).get(key)? else {
            return Ok(false);
        };
        let old = match decode::<DeviceV1>("device authorization", &bytes)
            .and_then(DeviceV1::into_record)
        {
            Ok(d) => d.record,
            Err(e) => return fail(e),
        };
        self.remove(T::DeviceUserCodes, &user_code_key(zone, &old.user_code))?;
        self.remove(
            T::DeviceExpiry,
            &expiry_key(zone, ms(&old.expires_at), digest),
        )?;
        Ok(true)
    }

    /// Removes a stored authorization code's expiry entry; whether it existed.
    fn unindex_code(&self, key: &[u8], zone: &str, digest: &[u8; 32]) -> TxResult<bool> {
        let Some(bytes) = self.tree(T::Codes).get(key)? else {
            return Ok(false);
        };
        let old = match decode::<AuthorizationCodeV1>("authorization code", &bytes)
            .and_then(AuthorizationCodeV1::into_record)
        {
            Ok(c) => c.record,
            Err(e) => return fail(e),
        };
        self.remove(
            T::CodeExpiry,
            &expiry_key(zone, ms(&old.expires_at), digest),
        )?;
        Ok(true)
    }
}

/// Splits a token list into digests.
pub(crate) fn decode_digests(bytes: &[u8]) -> Result<Vec<[u8; 32]>, StoreError> {
    if bytes.len() % 32 != 0 {
        return Err(StoreError::Corrupt {
            what: "token list",
            detail: format!("{} bytes is not a whole number of digests", bytes.len()),
        });
    }
    Ok(bytes
        .chunks_exact(32)
        .filter_map(|c| c.first_chunk::<32>().copied())
        .collect())
}

/// Applies `set` atomically, or nothing.
pub(crate) fn apply(trees: &Trees, set: &WriteSet) -> Result<(), Refusal> {
    let prepared = set
        .writes
        .iter()
        .map(prepare)
        .collect::<Result<Vec<_>, _>>()?;
    let result = trees.all().transaction(|view: &Vec<TransactionalTree>| {
        let tx = Tx(view);
        // User codes claimed by earlier writes of this set: two devices taking one
        // code in one set would leave the code leading to only one of them.
        let mut claimed: Vec<(&[u8], &[u8; 32])> = Vec::new();
        for write in &prepared {
            let mut holds = tx.check(write)?;
            if let Prepared::PutDevice {
                code_key, digest, ..
            } = write
            {
                holds &= claimed
                    .iter()
                    .all(|(code, owner)| *code != code_key.as_slice() || *owner == digest);
                claimed.push((code_key, digest));
            }
            if !holds {
                return Err(ConflictableTransactionError::Abort(Refusal::Conflict));
            }
        }
        for write in &prepared {
            tx.apply(write)?;
        }
        Ok(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(TransactionError::Abort(refusal)) => Err(refusal),
        Err(TransactionError::Storage(e)) => Err(Refusal::Store(StoreError::Sled(e))),
    }
}
