//! Applying write sets inside a redb write transaction.
//!
//! Everything that can be computed without reading the store (encoded records,
//! keys) is computed once, by [`prepare`], before the transaction begins. Inside
//! it, like the in-memory store, a set first checks every expectation against the
//! state before the set, reading only, and then applies its writes in order. A set
//! whose expectation fails has therefore written nothing when it is refused, and
//! the sets after it in the same transaction (see [`crate::commit`]) go on.

use std::ops::Bound;

use redb::{ReadableTable, Table, WriteTransaction};
use tenure::{
    AuthorizationCode, DeviceAuthorization, Expect, Grant, PersonalGrant, RecordKey, Token, Write,
    WriteSet,
};

use crate::codec::{
    AuthorizationCodeV1, ClientV2, DeviceV1, GrantV1, PersonalGrantV1, TokenV1, TransitionV1,
    decode_version, encode,
};
use crate::error::StoreError;
use crate::keys::{ms, take_digest};
use crate::read::{
    corrupt_key, decode_authorization_code, decode_device, decode_grant, decode_personal,
    decode_token, end_of, get, range,
};
use crate::tables::{
    T, TABLES, digest_key, expiry_key, grant_counts, grant_entries, grant_prefix, grant_token_key,
    history_key, personal_index_key, read_u64, record_key, user_code_key,
};

/// Why a set was not applied.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// An expectation did not hold; nothing of the set was written.
    Conflict,
    /// The store failed; the transaction must be abandoned.
    Store(StoreError),
}

impl<E: Into<StoreError>> From<E> for Refusal {
    fn from(e: E) -> Self {
        Refusal::Store(e.into())
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

type Result<T, E = Refusal> = std::result::Result<T, E>;

/// One write, ready to be checked and applied.
pub(crate) enum Prepared {
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
        token: Token,
        expect: Expect,
    },
    DeleteToken {
        key: Vec<u8>,
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
        digest: [u8; 32],
        code_key: Vec<u8>,
        expiry_key: Vec<u8>,
        expect: Expect,
    },
    DeleteDevice {
        key: Vec<u8>,
        expect: u64,
    },
    PutCode {
        key: Vec<u8>,
        value: Vec<u8>,
        expiry_key: Vec<u8>,
        expect: Expect,
    },
    DeleteCode {
        key: Vec<u8>,
        expect: u64,
    },
    /// A guard: the record under `key` in `table` must be as `expect` says.
    Check {
        table: T,
        key: Vec<u8>,
        what: &'static str,
        expect: Expect,
    },
}

/// Encodes a set's records and builds its keys; refuses a write this backend does
/// not know, or a record its format cannot hold.
pub(crate) fn prepare(set: &WriteSet) -> Result<Vec<Prepared>, StoreError> {
    set.writes.iter().map(prepare_one).collect()
}

fn prepare_one(write: &Write) -> Result<Prepared, StoreError> {
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
            value: encode(&GrantV1::new(grant, expect.next_version()))?,
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
            value: encode(&TokenV1::new(token, expect.next_version()))?,
            token: token.clone(),
            expect: *expect,
        },
        Write::DeleteToken {
            zone_id,
            digest,
            expect,
        } => Prepared::DeleteToken {
            key: digest_key(zone_id, digest.as_bytes()),
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
            expect: *expect,
        },
        Write::PutAuthorizationCode { code, expect } => {
            let digest = code.code.as_bytes();
            Prepared::PutCode {
                key: digest_key(&code.zone_id, digest),
                value: encode(&AuthorizationCodeV1::new(code, expect.next_version()))?,
                expiry_key: expiry_key(&code.zone_id, ms(&code.expires_at), digest),
                expect: *expect,
            }
        }
        Write::DeleteAuthorizationCode {
            zone_id,
            code,
            expect,
        } => Prepared::DeleteCode {
            key: digest_key(zone_id, code.as_bytes()),
            expect: *expect,
        },
        Write::Check { record, expect } => {
            let (table, key, what) = match record {
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
                table,
                key,
                what,
                expect: *expect,
            }
        }
        _ => return Err(StoreError::UnsupportedWrite),
    })
}

/// The tables of one write transaction, open for the whole of it, by [`T`].
pub(crate) struct Tx<'txn>(Vec<Table<'txn, &'static [u8], &'static [u8]>>);

impl<'txn> Tx<'txn> {
    /// Opens every table of the store in `txn`.
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Tx<'txn>, StoreError> {
        let tables = TABLES
            .iter()
            .map(|def| txn.open_table(*def))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Tx(tables))
    }

    fn table(&self, t: T) -> &Table<'txn, &'static [u8], &'static [u8]> {
        &self.0[t as usize]
    }

    fn table_mut(&mut self, t: T) -> &mut Table<'txn, &'static [u8], &'static [u8]> {
        &mut self.0[t as usize]
    }

    /// Checks every expectation of `set` against the store as it is, then applies
    /// its writes in order; or refuses it, having written nothing, with
    /// [`Refusal::Conflict`]. After [`Refusal::Store`], what the transaction holds
    /// is undefined and it must be aborted.
    pub(crate) fn apply(&mut self, set: &[Prepared]) -> Result<()> {
        // User codes claimed by earlier writes of this set: two devices taking one
        // code in one set would leave the code leading to only one of them.
        let mut claimed: Vec<(&[u8], &[u8; 32])> = Vec::new();
        for write in set {
            let mut holds = self.check(write)?;
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
                return Err(Refusal::Conflict);
            }
        }
        for write in set {
            self.write(write)?;
        }
        Ok(())
    }

    fn version(&self, t: T, key: &[u8], what: &'static str) -> Result<Option<u64>> {
        Ok(get(self.table(t), key, |bytes| {
            decode_version(what, bytes)
        })?)
    }

    fn holds(&self, t: T, key: &[u8], what: &'static str, expect: Expect) -> Result<bool> {
        Ok(expect.holds(self.version(t, key, what)?))
    }

    fn check(&self, write: &Prepared) -> Result<bool> {
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
                let code_free = self
                    .table(T::DeviceUserCodes)
                    .get(code_key.as_slice())?
                    .is_none_or(|owner| owner.value() == digest.as_slice());
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
                table,
                key,
                what,
                expect,
            } => self.holds(*table, key, what, *expect),
        }
    }

    fn put(&mut self, t: T, key: &[u8], value: &[u8]) -> Result<()> {
        self.table_mut(t).insert(key, value)?;
        Ok(())
    }

    fn remove(&mut self, t: T, key: &[u8]) -> Result<()> {
        self.table_mut(t).remove(key)?;
        Ok(())
    }

    /// Removes and decodes the record under `key`.
    fn take<R>(
        &mut self,
        t: T,
        key: &[u8],
        decode_value: impl FnOnce(&[u8]) -> Result<R, StoreError>,
    ) -> Result<Option<R>> {
        match self.table_mut(t).remove(key)? {
            None => Ok(None),
            Some(old) => Ok(Some(decode_value(old.value())?)),
        }
    }

    /// Every key of `t` that starts with `prefix`.
    fn keys_with_prefix(&self, t: T, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        for item in range(
            self.table(t),
            Bound::Included(prefix.to_vec()),
            end_of(prefix),
        )? {
            let (key, _) = item?;
            keys.push(key.value().to_vec());
        }
        Ok(keys)
    }

    /// Adds `delta` to a count, removing it at zero.
    fn add_count(&mut self, key: &[u8], delta: i64) -> Result<()> {
        let current = get(self.table(T::Counts), key, |bytes| {
            read_u64(bytes).ok_or_else(|| corrupt_key("grant count"))
        })?
        .unwrap_or(0);
        let next = current.saturating_add_signed(delta);
        if next == 0 {
            self.remove(T::Counts, key)
        } else {
            self.put(T::Counts, key, &next.to_be_bytes())
        }
    }

    /// Moves a grant's index entries and counts from `old` to `new`, touching only
    /// what changed.
    fn reindex(&mut self, old: Option<&Grant>, new: Option<&Grant>) -> Result<()> {
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

    /// Removes a stored token's entries in the token indexes.
    fn unindex_token(&mut self, old: &Token) -> Result<()> {
        let digest = old.digest.as_bytes();
        self.remove(
            T::TokenExpiry,
            &expiry_key(&old.zone_id, ms(&old.expires_at), digest),
        )?;
        self.remove(
            T::TokensByGrant,
            &grant_token_key(&old.zone_id, &old.grant_id, digest),
        )
    }

    fn write(&mut self, write: &Prepared) -> Result<()> {
        match write {
            Prepared::PutClient { key, value, .. } => self.put(T::Clients, key, value),
            Prepared::DeleteClient { key, .. } => self.remove(T::Clients, key),
            Prepared::PutGrant {
                key, value, grant, ..
            } => {
                let old = get(self.table(T::Grants), key, decode_grant)?;
                self.reindex(old.as_ref().map(|g| &g.record), Some(grant))?;
                self.put(T::Grants, key, value)
            }
            Prepared::DeleteGrant { key, zone, id, .. } => {
                if let Some(old) = self.take(T::Grants, key, decode_grant)? {
                    self.reindex(Some(&old.record), None)?;
                }
                let prefix = grant_prefix(zone, id);
                for entry in self.keys_with_prefix(T::History, &prefix)? {
                    self.remove(T::History, &entry)?;
                }
                // Tokens still stored go with their grant, as in the in-memory
                // store; the engine deletes them in the same set, so there are
                // usually none left.
                for entry in self.keys_with_prefix(T::TokensByGrant, &prefix)? {
                    let digest = entry
                        .get(prefix.len()..)
                        .and_then(take_digest)
                        .map(|(d, _)| d)
                        .ok_or_else(|| corrupt_key("token of a grant"))?;
                    if let Some(old) =
                        self.take(T::Tokens, &digest_key(zone, &digest), decode_token)?
                    {
                        self.unindex_token(&old.record)?;
                    }
                    self.remove(T::TokensByGrant, &entry)?;
                }
                Ok(())
            }
            Prepared::PutToken {
                key, value, token, ..
            } => {
                if let Some(old) = get(self.table(T::Tokens), key, decode_token)? {
                    self.unindex_token(&old.record)?;
                }
                let digest = token.digest.as_bytes();
                self.put(
                    T::TokenExpiry,
                    &expiry_key(&token.zone_id, ms(&token.expires_at), digest),
                    &[],
                )?;
                self.put(
                    T::TokensByGrant,
                    &grant_token_key(&token.zone_id, &token.grant_id, digest),
                    &[],
                )?;
                self.put(T::Tokens, key, value)
            }
            Prepared::DeleteToken { key, .. } => {
                if let Some(old) = self.take(T::Tokens, key, decode_token)? {
                    self.unindex_token(&old.record)?;
                }
                Ok(())
            }
            Prepared::AppendTransition { zone, grant, value } => {
                let prefix = grant_prefix(zone, grant);
                let last = range(
                    self.table(T::History),
                    Bound::Included(prefix.clone()),
                    end_of(&prefix),
                )?
                .next_back()
                .transpose()?
                .map(|(key, _)| {
                    key.value()
                        .get(prefix.len()..)
                        .and_then(read_u64)
                        .ok_or_else(|| corrupt_key("history"))
                })
                .transpose()?;
                let seq = last.map_or(0, |s| s + 1);
                self.put(T::History, &history_key(zone, grant, seq), value)
            }
            Prepared::PutPersonal {
                key, value, grant, ..
            } => {
                if let Some(old) = get(self.table(T::Personal), key, decode_personal)? {
                    self.unindex_personal(&old.record)?;
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
                if let Some(old) = self.take(T::Personal, key, decode_personal)? {
                    self.unindex_personal(&old.record)?;
                }
                Ok(())
            }
            Prepared::PutDevice {
                key,
                value,
                digest,
                code_key,
                expiry_key,
                ..
            } => {
                if let Some(old) = get(self.table(T::Devices), key, decode_device)? {
                    self.unindex_device(&old.record)?;
                }
                self.put(T::DeviceUserCodes, code_key, digest)?;
                self.put(T::DeviceExpiry, expiry_key, &[])?;
                self.put(T::Devices, key, value)
            }
            Prepared::DeleteDevice { key, .. } => {
                if let Some(old) = self.take(T::Devices, key, decode_device)? {
                    self.unindex_device(&old.record)?;
                }
                Ok(())
            }
            Prepared::PutCode {
                key,
                value,
                expiry_key,
                ..
            } => {
                if let Some(old) = get(self.table(T::Codes), key, decode_authorization_code)? {
                    self.unindex_code(&old.record)?;
                }
                self.put(T::CodeExpiry, expiry_key, &[])?;
                self.put(T::Codes, key, value)
            }
            Prepared::DeleteCode { key, .. } => {
                if let Some(old) = self.take(T::Codes, key, decode_authorization_code)? {
                    self.unindex_code(&old.record)?;
                }
                Ok(())
            }
            Prepared::Check { .. } => Ok(()),
        }
    }

    fn unindex_personal(&mut self, old: &PersonalGrant) -> Result<()> {
        self.remove(
            T::PersonalByUser,
            &personal_index_key(&old.zone_id, &old.user_id, ms(&old.created_at), &old.id),
        )
    }

    /// Removes a stored device authorization's index entries.
    fn unindex_device(&mut self, old: &DeviceAuthorization) -> Result<()> {
        self.remove(
            T::DeviceUserCodes,
            &user_code_key(&old.zone_id, &old.user_code),
        )?;
        self.remove(
            T::DeviceExpiry,
            &expiry_key(
                &old.zone_id,
                ms(&old.expires_at),
                old.device_code.as_bytes(),
            ),
        )
    }

    /// Removes a stored authorization code's expiry entry.
    fn unindex_code(&mut self, old: &AuthorizationCode) -> Result<()> {
        self.remove(
            T::CodeExpiry,
            &expiry_key(&old.zone_id, ms(&old.expires_at), old.code.as_bytes()),
        )
    }
}
