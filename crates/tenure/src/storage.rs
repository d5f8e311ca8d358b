//! The `Storage` trait every backend implements, and the types it speaks.
//!
//! # Contract
//!
//! The core decides, the backends store. A backend never reads a clock, never
//! applies policy and never decides a status: it keeps records and their indexes and
//! applies write sets atomically. Every backend must guarantee:
//!
//! 1. **Zones are walls.** Every record is addressed by its zone. A record asked for
//!    through another zone is not found; the same id in two zones is two records.
//! 2. **Versions.** Every stored client, grant and token has a version. A record
//!    written with [`Expect::Absent`] is stored with version 1; one written with
//!    [`Expect::Version`]`(v)` is stored with version `v + 1`.
//! 3. **Write sets are all or nothing.** [`Storage::apply`] applies a [`WriteSet`]
//!    only if every record it touches is in the state its [`Expect`] says (absent, or
//!    present with that version). Otherwise it applies nothing and returns
//!    [`Error::Conflict`]. No reader ever sees part of a set.
//! 4. **Deleting a grant deletes its history.** [`Write::DeleteGrant`] removes the grant,
//!    its transitions and every index entry of it. Its tokens are deleted by the
//!    engine, one [`Write::DeleteToken`] each, in the same set.
//! 5. **Listing is keyset pagination pushed down.** [`Storage::list_grants`] answers from
//!    an index, so a page costs the same however many grants the zone holds. Matching
//!    grants are ordered by `(created_at, id)`, ascending or descending as asked.
//!    Status filters mean the status as it reads at [`GrantQuery::now`] (see
//!    [`Grant::status_at`]): the engine passes the time in and the backend compares.
//! 6. **The expiry index.** [`Storage::expired_grants`] yields the grants whose stored
//!    status is active and whose `expires_at` is at or before the given time, in order
//!    of `(expires_at, id)`, and only those.
//! 7. **Tokens are found by digest.** [`Storage::get_token`] is a keyed lookup.
//! 8. **User codes are unique in a zone.** A [`Write::PutDeviceAuthorization`] whose
//!    user code belongs to another device authorization of the zone, stored before
//!    the set or put earlier in the same set, is a [`Error::Conflict`].
//!    [`Storage::find_device_authorization`] finds one by user code.
//! 9. **Personal grants are listed per user**, newest first by `(created_at, id)`,
//!    from an index of that user's records.
//! 10. **Times are kept to the millisecond**, as the engine writes them; a token's
//!     `grant_id` and a record's zone and id never change once it is created.
//! 11. **Guards.** A [`Write::Check`] writes nothing: it holds the set to a record's
//!     state like any other write's [`Expect`], so that a decision that depends on a
//!     record it does not change (an access token revoked alone depends on its
//!     grant) need not rewrite that record to have it checked.
//! 12. **The token expiry index.** [`Storage::expired_tokens`] yields the tokens whose
//!     `expires_at` is at or before the given time, in order of `(expires_at,
//!     digest)`, and only those, so that pruning expired tokens costs in proportion
//!     to their number.
//! 13. **A grant's state is stored whole**, its [`RefreshChain`](crate::RefreshChain)
//!     included, and a token's `generation` with it: the engine decides which
//!     refresh token is current from them alone, so a rotation or a revocation
//!     writes one grant and never a grant's other tokens.
//! 14. **Zones are listed.** [`Storage::zones`] yields the ids of the zones that hold
//!     at least one client or grant, in byte order, from an index or a bounded
//!     scan, so that maintenance (a background sweeper) can visit every zone.
//! 15. **Authorization codes are found by digest**, versioned like every record, and
//!     [`Storage::expired_authorization_codes`] yields those whose `expires_at` is at
//!     or before the given time, in order of `(expires_at, code)`, and only those.
//! 16. **Device authorizations are listed by device code.**
//!     [`Storage::list_device_authorizations`] yields every device authorization
//!     stored in the zone, whatever its state or expiry, in byte order of the digest
//!     of its device code: those strictly after the given digest, at most `limit`,
//!     from a range of the store's own order, so that a page costs the same however
//!     many the zone holds. A deleted one is never listed.
//! 17. **Deleting a client deletes the client record alone.** [`Write::DeleteClient`]
//!     removes the client, expecting its version like every delete, and nothing
//!     else: its grants, their history and their tokens stay as they are (the engine
//!     revokes them first). Once deleted, the client is not found by
//!     [`Storage::get_client`] nor listed by [`Storage::list_clients`], and the same
//!     id may be created again ([`Expect::Absent`]), at version 1. A zone stays
//!     listed by [`Storage::zones`] (rule 14) while it holds a client or a grant, so
//!     a zone whose last client goes, and which holds no grant, is no longer listed.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::code::AuthorizationCode;
use crate::device::DeviceAuthorization;
use crate::error::{Error, Result};
use crate::model::{Client, Grant, GrantFacts, GrantStatus, Token, Transition};
use crate::personal::PersonalGrant;
use crate::secret::Digest;
use crate::time::Timestamp;

/// A record's version, bumped by every write.
pub type Version = u64;

/// A record as stored, with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The record.
    pub record: T,
    /// Its version: 1 when created, bumped by every write.
    pub version: Version,
}

/// What a write expects of the record it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No record with this key exists.
    Absent,
    /// The record exists with this version.
    Version(Version),
}

impl Expect {
    /// Whether a record stored with `current` (or absent, `None`) meets the expectation.
    pub fn holds(self, current: Option<Version>) -> bool {
        match (self, current) {
            (Expect::Absent, None) => true,
            (Expect::Version(v), Some(c)) => v == c,
            _ => false,
        }
    }

    /// The version the record gets when the write is applied.
    pub fn next_version(self) -> Version {
        match self {
            Expect::Absent => 1,
            Expect::Version(v) => v + 1,
        }
    }
}

/// One write of a [`WriteSet`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Write {
    /// Creates or replaces a client.
    PutClient {
        /// The new state.
        client: Client,
        /// What must be stored now.
        expect: Expect,
    },
    /// Deletes a client record, and nothing else: its grants and their tokens stay.
    DeleteClient {
        /// The zone.
        zone_id: String,
        /// The client.
        id: String,
        /// The version that must be stored now.
        expect: Version,
    },
    /// Creates or replaces a grant.
    PutGrant {
        /// The new state.
        grant: Grant,
        /// What must be stored now.
        expect: Expect,
    },
    /// Deletes a grant, its history and every index entry of it.
    DeleteGrant {
        /// The zone.
        zone_id: String,
        /// The grant.
        id: String,
        /// The version that must be stored now.
        expect: Version,
    },
    /// Creates or replaces a token.
    PutToken {
        /// The new state.
        token: Token,
        /// What must be stored now.
        expect: Expect,
    },
    /// Deletes a token.
    DeleteToken {
        /// The zone.
        zone_id: String,
        /// The token's digest.
        digest: Digest,
        /// The version that must be stored now.
        expect: Version,
    },
    /// Writes nothing, but holds the set to `record` being in the state `expect` says.
    Check {
        /// The record.
        record: RecordKey,
        /// What must be stored now.
        expect: Expect,
    },
    /// Appends an entry to a grant's history. Not versioned: history only grows, and
    /// every set that appends also puts the grant, whose version guards it.
    AppendTransition(Transition),
    /// Creates or replaces a personal grant.
    PutPersonalGrant {
        /// The new state.
        grant: PersonalGrant,
        /// What must be stored now.
        expect: Expect,
    },
    /// Deletes a personal grant.
    DeletePersonalGrant {
        /// The zone.
        zone_id: String,
        /// The personal grant.
        id: String,
        /// The version that must be stored now.
        expect: Version,
    },
    /// Creates or replaces a device authorization. Its user code must not belong to
    /// another device authorization of the zone.
    PutDeviceAuthorization {
        /// The new state.
        device: DeviceAuthorization,
        /// What must be stored now.
        expect: Expect,
    },
    /// Deletes a device authorization.
    DeleteDeviceAuthorization {
        /// The zone.
        zone_id: String,
        /// The digest of its device code.
        device_code: Digest,
        /// The version that must be stored now.
        expect: Version,
    },
    /// Creates or replaces an authorization code.
    PutAuthorizationCode {
        /// The new state.
        code: AuthorizationCode,
        /// What must be stored now.
        expect: Expect,
    },
    /// Deletes an authorization code.
    DeleteAuthorizationCode {
        /// The zone.
        zone_id: String,
        /// The digest of the code.
        code: Digest,
        /// The version that must be stored now.
        expect: Version,
    },
}

/// The address of a versioned record, for a [`Write::Check`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKey {
    /// A client.
    Client {
        /// The zone.
        zone_id: String,
        /// The client's id.
        id: String,
    },
    /// A grant.
    Grant {
        /// The zone.
        zone_id: String,
        /// The grant's id.
        id: String,
    },
    /// A token.
    Token {
        /// The zone.
        zone_id: String,
        /// The token's digest.
        digest: Digest,
    },
}

/// Writes applied together or not at all.
///
/// A set touches each record at most once, and a set that deletes a grant deletes
/// its tokens too; the engine never builds any other. What a backend does with a set
/// that breaks either is not part of the contract. A backend that meets a kind of
/// [`Write`] it does not know fails the set with [`Error::Backend`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteSet {
    /// The writes, in order.
    pub writes: Vec<Write>,
}

impl WriteSet {
    /// An empty set.
    pub fn new() -> Self {
        WriteSet::default()
    }

    /// Adds a write.
    pub fn push(&mut self, write: Write) -> &mut Self {
        self.writes.push(write);
        self
    }

    /// Whether the set writes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// The order of a listing, by `(created_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortOrder {
    /// Oldest first (`sort=created_at`).
    Ascending,
    /// Newest first (`sort=-created_at`); the default.
    #[default]
    Descending,
}

/// A grant's place in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Keyset {
    /// The grant's creation time.
    pub created_at: Timestamp,
    /// The grant's id; breaks ties.
    pub id: String,
}

impl Keyset {
    /// The keyset of a grant.
    pub fn of(grant: &Grant) -> Self {
        Keyset {
            created_at: grant.created_at,
            id: grant.id.clone(),
        }
    }
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Position {
    /// At the start of the listing.
    #[default]
    First,
    /// Right after this keyset, in the listing's order.
    After(Keyset),
    /// Right before this keyset: the `limit` items immediately preceding it, still in
    /// the listing's order.
    Before(Keyset),
}

/// Which grants a listing holds. Every field narrows; `None` means any.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct GrantFilter {
    /// Only this user's grants.
    pub user_id: Option<String>,
    /// Only grants on this resource.
    pub resource_id: Option<String>,
    /// Only grants to this client.
    pub client_id: Option<String>,
    /// Only grants with this status as it reads at the query's time.
    pub status: Option<GrantStatus>,
}

impl GrantFilter {
    /// Whether `grant` passes the filter at `now`.
    pub fn matches(&self, grant: &Grant, now: Timestamp) -> bool {
        self.user_id.as_ref().is_none_or(|u| *u == grant.user_id)
            && self
                .resource_id
                .as_ref()
                .is_none_or(|r| *r == grant.resource_id)
            && self
                .client_id
                .as_ref()
                .is_none_or(|c| *c == grant.client_id)
            && self.status.is_none_or(|s| s == grant.status_at(now))
    }
}

/// A listing of grants, pushed down to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantQuery {
    /// The zone.
    pub zone_id: String,
    /// Which grants.
    pub filter: GrantFilter,
    /// Which way.
    pub order: SortOrder,
    /// From where.
    pub position: Position,
    /// How many at most; the engine passes 1 to 100.
    pub limit: usize,
    /// The time status filters are evaluated at.
    pub now: Timestamp,
}

/// One page of grants.
///
/// Think of the matching grants in the query's order as a list `S`; the page is a
/// slice `S[i..j]`. `more_before` is `i > 0`, `more_after` is `j < S.len()`. For
/// [`Position::After`]`(k)`, `i` is the number of items at or before `k`; for
/// [`Position::Before`]`(k)`, `j` is the number of items before `k`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GrantPage {
    /// The grants, in the query's order.
    pub items: Vec<Versioned<Grant>>,
    /// Whether matching grants precede the page.
    pub more_before: bool,
    /// Whether matching grants follow the page.
    pub more_after: bool,
}

/// A token and its grant, as [`Storage::get_token_and_grant`] reads them.
pub type TokenAndGrant = (Versioned<Token>, Option<Versioned<Grant>>);

/// A token and what introspection needs of its grant, as
/// [`Storage::get_token_and_grant_facts`] reads them.
pub type TokenAndGrantFacts = (Versioned<Token>, Option<GrantFacts>);

/// The domain-level store behind an [`Engine`](crate::Engine). See the module
/// documentation for the contract every implementation must keep; the
/// `tenure-testkit` crate checks it.
#[async_trait]
pub trait Storage: fmt::Debug + Send + Sync + 'static {
    /// The zones that hold at least one client or grant, in byte order of their ids,
    /// those after `after` (exclusive), at most `limit`.
    async fn zones(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>>;

    /// A client by id.
    async fn get_client(&self, zone_id: &str, id: &str) -> Result<Option<Versioned<Client>>>;

    /// Clients of a zone ordered by id, those after `after` (exclusive), at most `limit`.
    async fn list_clients(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned<Client>>>;

    /// A grant by id.
    async fn get_grant(&self, zone_id: &str, id: &str) -> Result<Option<Versioned<Grant>>>;

    /// One page of a listing.
    async fn list_grants(&self, query: &GrantQuery) -> Result<GrantPage>;

    /// How many grants of the zone pass `filter` at `now`.
    async fn count_grants(
        &self,
        zone_id: &str,
        filter: &GrantFilter,
        now: Timestamp,
    ) -> Result<u64>;

    /// Grants whose stored status is active and whose expiry is at or before `now`,
    /// in order of `(expires_at, id)`, at most `limit`.
    async fn expired_grants(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<Grant>>>;

    /// The history of a grant, oldest first; empty for an unknown grant.
    async fn grant_history(&self, zone_id: &str, grant_id: &str) -> Result<Vec<Transition>>;

    /// A token by the digest of its secret.
    async fn get_token(&self, zone_id: &str, digest: &Digest) -> Result<Option<Versioned<Token>>>;

    /// A token by digest together with its grant (`None` if the grant is gone):
    /// introspection's read, on the path of every request. Backends that can read
    /// both at once (one lock, one round trip) should; the default reads the token
    /// and then the grant.
    async fn get_token_and_grant(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> Result<Option<TokenAndGrant>> {
        let Some(token) = self.get_token(zone_id, digest).await? else {
            return Ok(None);
        };
        let grant = self.get_grant(zone_id, &token.record.grant_id).await?;
        Ok(Some((token, grant)))
    }

    /// [`Storage::get_token_and_grant`] narrowed to what introspection needs of the
    /// grant: the same token, and the same grant's [`GrantFacts`]. Introspection is
    /// the read behind every request; a backend that keeps grants compact should
    /// read only these fields rather than rebuild the record. The default narrows
    /// [`Storage::get_token_and_grant`].
    async fn get_token_and_grant_facts(
        &self,
        zone_id: &str,
        digest: &Digest,
    ) -> Result<Option<TokenAndGrantFacts>> {
        Ok(self
            .get_token_and_grant(zone_id, digest)
            .await?
            .map(|(token, grant)| (token, grant.map(|g| GrantFacts::from(g.record)))))
    }

    /// Every token of a grant, in no particular order.
    async fn grant_tokens(&self, zone_id: &str, grant_id: &str) -> Result<Vec<Versioned<Token>>>;

    /// Tokens whose expiry is at or before `now`, in order of `(expires_at, digest)`,
    /// at most `limit`.
    async fn expired_tokens(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<Token>>>;

    /// A personal grant by id.
    async fn get_personal_grant(
        &self,
        zone_id: &str,
        id: &str,
    ) -> Result<Option<Versioned<PersonalGrant>>>;

    /// A user's personal grants, newest first by `(created_at, id)`, those strictly
    /// after `after` in that order, at most `limit`.
    async fn list_personal_grants(
        &self,
        zone_id: &str,
        user_id: &str,
        after: Option<&Keyset>,
        limit: usize,
    ) -> Result<Vec<Versioned<PersonalGrant>>>;

    /// Every personal grant of a zone, whoever owns it, ordered by id: those after
    /// `after` (exclusive), at most `limit`. For export and maintenance, never for a
    /// user's own view.
    async fn list_zone_personal_grants(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned<PersonalGrant>>>;

    /// A device authorization by the digest of its device code.
    async fn get_device_authorization(
        &self,
        zone_id: &str,
        device_code: &Digest,
    ) -> Result<Option<Versioned<DeviceAuthorization>>>;

    /// A device authorization by its canonical user code.
    async fn find_device_authorization(
        &self,
        zone_id: &str,
        user_code: &str,
    ) -> Result<Option<Versioned<DeviceAuthorization>>>;

    /// Device authorizations whose expiry is at or before `now`, in order of
    /// `(expires_at, device_code)`, at most `limit`.
    async fn expired_device_authorizations(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<DeviceAuthorization>>>;

    /// Every stored device authorization of the zone, whatever its state, in byte
    /// order of the digest of its device code: those strictly after `after`, at most
    /// `limit`. For an administrator's list, never for a device.
    async fn list_device_authorizations(
        &self,
        zone_id: &str,
        after: Option<&Digest>,
        limit: usize,
    ) -> Result<Vec<Versioned<DeviceAuthorization>>>;

    /// An authorization code by its digest.
    async fn get_authorization_code(
        &self,
        zone_id: &str,
        code: &Digest,
    ) -> Result<Option<Versioned<AuthorizationCode>>>;

    /// Authorization codes whose expiry is at or before `now`, in order of
    /// `(expires_at, code)`, at most `limit`.
    async fn expired_authorization_codes(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<AuthorizationCode>>>;

    /// Applies a write set atomically, or nothing and [`Error::Conflict`].
    async fn apply(&self, set: WriteSet) -> Result<()>;
}

/// A shared, type-erased store.
pub type DynStorage = dyn Storage;

macro_rules! forward_storage {
    ($ty:ty) => {
        #[async_trait]
        impl<T: Storage + ?Sized> Storage for $ty {
            async fn zones(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
                (**self).zones(after, limit).await
            }
            async fn get_client(
                &self,
                zone_id: &str,
                id: &str,
            ) -> Result<Option<Versioned<Client>>> {
                (**self).get_client(zone_id, id).await
            }
            async fn list_clients(
                &self,
                zone_id: &str,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<Versioned<Client>>> {
                (**self).list_clients(zone_id, after, limit).await
            }
            async fn get_grant(&self, zone_id: &str, id: &str) -> Result<Option<Versioned<Grant>>> {
                (**self).get_grant(zone_id, id).await
            }
            async fn list_grants(&self, query: &GrantQuery) -> Result<GrantPage> {
                (**self).list_grants(query).await
            }
            async fn count_grants(
                &self,
                zone_id: &str,
                filter: &GrantFilter,
                now: Timestamp,
            ) -> Result<u64> {
                (**self).count_grants(zone_id, filter, now).await
            }
            async fn expired_grants(
                &self,
                zone_id: &str,
                now: Timestamp,
                limit: usize,
            ) -> Result<Vec<Versioned<Grant>>> {
                (**self).expired_grants(zone_id, now, limit).await
            }
            async fn grant_history(
                &self,
                zone_id: &str,
                grant_id: &str,
            ) -> Result<Vec<Transition>> {
                (**self).grant_history(zone_id, grant_id).await
            }
            async fn get_token(
                &self,
                zone_id: &str,
                digest: &Digest,
            ) -> Result<Option<Versioned<Token>>> {
                (**self).get_token(zone_id, digest).await
            }
            async fn get_token_and_grant(
                &self,
                zone_id: &str,
                digest: &Digest,
            ) -> Result<Option<TokenAndGrant>> {
                (**self).get_token_and_grant(zone_id, digest).await
            }
            async fn get_token_and_grant_facts(
                &self,
                zone_id: &str,
                digest: &Digest,
            ) -> Result<Option<TokenAndGrantFacts>> {
                (**self).get_token_and_grant_facts(zone_id, digest).await
            }
            async fn grant_tokens(
                &self,
                zone_id: &str,
                grant_id: &str,
            ) -> Result<Vec<Versioned<Token>>> {
                (**self).grant_tokens(zone_id, grant_id).await
            }
            async fn expired_tokens(
                &self,
                zone_id: &str,
                now: Timestamp,
                limit: usize,
            ) -> Result<Vec<Versioned<Token>>> {
                (**self).expired_tokens(zone_id, now, limit).await
            }
            async fn get_personal_grant(
                &self,
                zone_id: &str,
                id: &str,
            ) -> Result<Option<Versioned<PersonalGrant>>> {
                (**self).get_personal_grant(zone_id, id).await
            }
            async fn list_personal_grants(
                &self,
                zone_id: &str,
                user_id: &str,
                after: Option<&Keyset>,
                limit: usize,
            ) -> Result<Vec<Versioned<PersonalGrant>>> {
                (**self)
                    .list_personal_grants(zone_id, user_id, after, limit)
                    .await
            }
            async fn list_zone_personal_grants(
                &self,
                zone_id: &str,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<Versioned<PersonalGrant>>> {
                (**self)
                    .list_zone_personal_grants(zone_id, after, limit)
                    .await
            }
            async fn get_device_authorization(
                &self,
                zone_id: &str,
                device_code: &Digest,
            ) -> Result<Option<Versioned<DeviceAuthorization>>> {
                (**self)
                    .get_device_authorization(zone_id, device_code)
                    .await
            }
            async fn find_device_authorization(
                &self,
                zone_id: &str,
                user_code: &str,
            ) -> Result<Option<Versioned<DeviceAuthorization>>> {
                (**self).find_device_authorization(zone_id, user_code).await
            }
            async fn expired_device_authorizations(
                &self,
                zone_id: &str,
                now: Timestamp,
                limit: usize,
            ) -> Result<Vec<Versioned<DeviceAuthorization>>> {
                (**self)
                    .expired_device_authorizations(zone_id, now, limit)
                    .await
            }
            async fn list_device_authorizations(
                &self,
                zone_id: &str,
                after: Option<&Digest>,
                limit: usize,
            ) -> Result<Vec<Versioned<DeviceAuthorization>>> {
                (**self)
                    .list_device_authorizations(zone_id, after, limit)
                    .await
            }
            async fn get_authorization_code(
                &self,
                zone_id: &str,
                code: &Digest,
            ) -> Result<Option<Versioned<AuthorizationCode>>> {
                (**self).get_authorization_code(zone_id, code).await
            }
            async fn expired_authorization_codes(
                &self,
                zone_id: &str,
                now: Timestamp,
                limit: usize,
            ) -> Result<Vec<Versioned<AuthorizationCode>>> {
                (**self)
                    .expired_authorization_codes(zone_id, now, limit)
                    .await
            }
            async fn apply(&self, set: WriteSet) -> Result<()> {
                (**self).apply(set).await
            }
        }
    };
}

forward_storage!(Arc<T>);
forward_storage!(Box<T>);

/// Shorthand for a backend's failure, keeping its source.
pub fn backend_error(
    backend: &'static str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Backend {
        backend,
        source: Box::new(source),
    }
}
