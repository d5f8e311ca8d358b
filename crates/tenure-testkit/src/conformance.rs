//! The [`Storage`] contract, rule by rule.
//!
//! Each rule of the contract (see [`tenure::storage`]) is a `pub async fn` here that
//! takes a fresh, empty store, exercises the rule and panics with a message naming
//! what broke. [`conformance!`](crate::conformance!) turns the list into one named
//! test per rule, so a failure reads as `memory::zones_are_walls`, not as "the
//! conformance test failed".
//!
//! # Running the suite on a backend
//!
//! One line in an integration test of the backend's crate (say
//! `tests/conformance.rs`), with `tenure-testkit` as a dev-dependency:
//!
//! ```
//! use tenure_memory::MemoryStorage;
//!
//! tenure_testkit::conformance!(memory, MemoryStorage::new);
//! # fn main() {}
//! ```
//!
//! The first argument names the module the tests are put in, so the suite can run
//! several times in one file (the in-memory backend runs it bare and behind `Arc`,
//! `Box` and `Arc<dyn Storage>`). The second is the factory: anything callable with
//! no arguments that returns a fresh, empty store, such as
//! `|| SledStorage::temporary().unwrap()`. It is called once per test, inside the
//! test's tokio runtime, which the tests bring themselves: the backend's crate needs
//! no tokio dependency for them.
//!
//! A backend whose stores open asynchronously, or need setting up and tearing down
//! around each test, names a harness instead of a factory:
//! `tenure_testkit::conformance!(postgres, harness = support::run_rule);`. The
//! harness is a function `fn(worker_threads: usize, rule: F)` generic over
//! `F: FnOnce(Store) -> Fut` that builds the runtime and the store, awaits
//! `rule(store)`, and cleans up.
//!
//! The record builders ([`grant`], [`token`], [`client`], [`transition`]) and the
//! write builders ([`put_grant`], [`delete_token`], [`check`] with [`grant_key`], ...)
//! are public for other suites.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration};
use tenure::code::{DEFAULT_CODE_LIFETIME, MAX_CODE_LIFETIME};
use tenure::cursor::Listing;
use tenure::lifecycle::{STANDING_GRANT_LIFETIME, STANDING_PROVIDER};
use tenure::{
    AccessType, ActiveToken, Actor, AuthorizationCode, AuthorizeRequest, Client, ClientAuthMethod,
    ClientCredentials, ClientCredentialsRequest, ClientRegistration, ClientType, ClientUpdate,
    CodeRequest, CursorKey, DeviceAuthorization, DeviceState, Digest, Engine, EngineConfig, Error,
    Expect, Grant, GrantFacts, GrantFilter, GrantPage, GrantQuery, GrantStatus, GrantType,
    Introspection, InvalidGrantReason, Issued, IssuedCode, Keyset, ListGrants, MAX_SECRET_OVERLAP,
    ManualClock, Page, PersonalGrant, PkceRequirement, Position, RecordKey, RecordKind,
    RefreshChain, RefreshRequest, RegisteredClient, RetiringSecret, ScopePolicy, Secret, SortOrder,
    Storage, SweepReport, Timestamp, Token, TokenKind, Transition, TransitionReason, Version,
    Versioned, Write, WriteSet,
};

// ----- running the rules -----

/// Runs one rule on its own tokio runtime: current-thread for one worker, else a
/// multi-thread runtime with that many workers. Used by [`conformance!`](crate::conformance!).
#[doc(hidden)]
pub fn __run(worker_threads: usize, rule: impl Future<Output = ()>) {
    let mut builder = if worker_threads > 1 {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(worker_threads);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .expect("a tokio runtime for the rule")
        .block_on(rule);
}

/// Calls a store factory. Used by [`conformance!`](crate::conformance!), so that the
/// expansion holds no closure call for the caller's lints to flag.
#[doc(hidden)]
pub fn __fresh<S: Storage>(factory: impl FnOnce() -> S) -> S {
    factory()
}

/// Expands to one `#[test]` per rule of the storage contract, each on a fresh store
/// from the factory.
///
/// `conformance!(name, factory)` puts the tests in a module `name` (which sees the
/// caller's imports); `conformance!(factory)` puts them where the macro is called.
/// See the [module documentation](mod@crate::conformance) for an example.
#[macro_export]
macro_rules! conformance {
    ($module:ident, harness = $harness:path $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_rules!(harness $harness);
        }
    };
    ($module:ident, $factory:expr $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_rules!(factory $factory);
        }
    };
    ($factory:expr $(,)?) => {
        $crate::__conformance_rules!(factory $factory);
    };
}

/// The rule list behind [`conformance!`]: worker threads and name of each rule.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_rules {
    ($kind:ident $how:expr) => {
        $crate::__conformance_rules! {
            $kind $how;
            1 versioned_compare_and_set,
            1 deletes_check_the_version,
            1 delete_client_checks_the_version,
            1 write_set_is_all_or_nothing,
            2 readers_never_see_half_a_set,
            1 list_filters_alone_and_combined,
            1 list_status_is_read_at_query_time,
            1 list_orders_by_created_at_then_id,
            1 list_positions_and_flags,
            1 list_limit_edges,
            1 list_pages_slice_the_listing,
            1 list_walk_survives_concurrent_changes,
            2 engine_walk_survives_concurrent_changes,
            1 engine_rejects_forged_and_foreign_cursors,
            1 expired_grants_in_expiry_order,
            1 expiry_index_follows_status_and_deletion,
            1 tokens_by_digest_and_by_grant,
            1 token_and_grant_read_together,
            1 zones_are_walls,
            1 delete_grant_removes_every_trace,
            1 history_in_append_order,
            1 list_clients_by_id,
            1 count_grants_agrees_with_listing,
            1 personal_grants_by_user_newest_first,
            1 personal_grants_of_a_zone_by_id,
            1 user_codes_are_unique_in_a_zone,
            1 user_codes_are_unique_within_a_write_set,
            1 device_authorizations_by_code_and_expiry,
            1 device_authorizations_listed_by_code,
            1 checks_guard_without_writing,
            1 expired_tokens_in_expiry_order,
            1 grant_refresh_chain_round_trips,
            1 long_rotation_chain_keeps_constant_footprint,
            1 zones_are_listed,
            1 authorization_codes_by_digest_and_expiry,
            1 code_redeems_once_and_reuse_revokes_the_grant,
            1 code_is_bound_to_client_and_redirect_uri,
            1 pkce_is_s256_only_and_required_for_public_clients,
            1 code_expires_and_is_swept,
            1 code_redemption_applies_the_policy_now,
            1 code_lifetime_is_at_most_ten_minutes,
            1 client_credentials_reuse_one_standing_grant,
            1 client_credentials_tokens_stop_when_the_client_is_disabled,
            1 disabling_a_client_revokes_every_standing_grant,
            1 client_credentials_tokens_are_swept_at_expiry,
            1 client_authentication_methods,
            1 client_secret_rotation_keeps_the_old_secret_until_its_deadline,
            1 deleting_a_client_revokes_its_grants_and_stops_its_tokens,
        }
    };
    (factory $factory:expr; $($threads:literal $rule:ident,)+) => {
        $(
            #[test]
            fn $rule() {
                $crate::conformance::__run($threads, async {
                    $crate::conformance::$rule($crate::conformance::__fresh($factory)).await;
                });
            }
        )+
    };
    (harness $harness:expr; $($threads:literal $rule:ident,)+) => {
        $(
            #[test]
            fn $rule() {
                ($harness)($threads, $crate::conformance::$rule);
            }
        )+
    };
}

// ----- times, zones and records -----

/// The zone the rules write in.
pub const ZONE: &str = "zone-a";

/// A second zone, holding look-alike records that must never show through [`ZONE`].
pub const OTHER_ZONE: &str = "zone-b";

/// A zone nothing is ever written to.
pub const EMPTY_ZONE: &str = "zone-empty";

const NOW_MS: i64 = 100_000;

/// 2030-01-01T00:00:00Z: every time of the suite is an offset from it.
pub fn epoch() -> Timestamp {
    DateTime::from_timestamp(1_893_456_000, 0).expect("2030-01-01 is a valid time")
}

/// [`epoch`] plus `ms` milliseconds.
pub fn at(ms: i64) -> Timestamp {
    epoch() + Duration::milliseconds(ms)
}

/// The time the rules read listings at: [`epoch`] plus 100 seconds.
pub fn now() -> Timestamp {
    at(NOW_MS)
}

/// A time after every expiry the rules write.
pub fn far_future() -> Timestamp {
    at(1_000_000_000)
}

/// An active grant of `user-1` on `resource-1` to `client-1` with scope `read`, and
/// the default (never refreshed) [`RefreshChain`].
pub fn grant(zone: &str, id: &str, created_at: Timestamp, expires_at: Timestamp) -> Grant {
    Grant {
        id: id.into(),
        zone_id: zone.into(),
        organization_id: "org-1".into(),
        user_id: "user-1".into(),
        resource_id: "resource-1".into(),
        provider_id: "default".into(),
        client_id: "client-1".into(),
        scopes: vec!["read".into()],
        status: GrantStatus::Active,
        created_at,
        updated_at: created_at,
        expires_at,
        refreshed_at: None,
        refresh_token_set: true,
        refresh: RefreshChain::default(),
    }
}

/// A live token of `kind` under `grant`, keyed by the digest of `secret`, with the
/// grant's scopes, expiry and refresh generation.
pub fn token(grant: &Grant, secret: &str, kind: TokenKind) -> Token {
    Token {
        digest: Digest::of(secret),
        zone_id: grant.zone_id.clone(),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        user_id: grant.user_id.clone(),
        kind,
        scopes: grant.scopes.clone(),
        issued_at: grant.created_at,
        expires_at: grant.expires_at,
        generation: grant.refresh.generation,
        revoked_at: None,
    }
}

/// An enabled, offline, public client allowed scope `read`.
pub fn client(zone: &str, id: &str, name: &str) -> Client {
    Client {
        id: id.into(),
        zone_id: zone.into(),
        organization_id: "org-1".into(),
        tenant: None,
        name: name.into(),
        description: None,
        business_name: None,
        homepage_url: None,
        client_type: ClientType::Public,
        internal: false,
        owner_account_id: None,
        allowed_scopes: vec!["read".into()],
        allowed_grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope_policy: ScopePolicy::Explicit,
        access_type: AccessType::Offline,
        access_token_ttl_seconds: 3_600,
        refresh_token_ttl_seconds: 2_592_000,
        redirect_uris: Vec::new(),
        enabled: true,
        strong_auth_supported: false,
        claims_supported: false,
        secret_digest: None,
        previous_secret: None,
        created_at: epoch(),
        updated_at: epoch(),
        refresh_stopped_at: None,
        last_used_at: None,
    }
}

/// [`client`] with every field set: seed 003's descriptive fields, both secrets
/// and every optional time.
pub fn client_with_every_field(zone: &str, id: &str) -> Client {
    Client {
        tenant: Some("acme-solar".into()),
        description: Some("Reports, nightly".into()),
        business_name: Some("Acme Solar, Inc.".into()),
        homepage_url: Some("https://acme-solar.example/about?from=tenure".into()),
        client_type: ClientType::Confidential,
        internal: true,
        owner_account_id: Some("account-1".into()),
        allowed_scopes: vec!["read".into(), "write".into()],
        allowed_grants: vec![
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::DeviceCode,
        ],
        scope_policy: ScopePolicy::Inherit,
        access_type: AccessType::Online,
        access_token_ttl_seconds: 60,
        refresh_token_ttl_seconds: u32::MAX,
        redirect_uris: vec!["https://acme-solar.example/cb".into()],
        enabled: false,
        strong_auth_supported: true,
        claims_supported: true,
        secret_digest: Some(Digest::of("secret-2")),
        previous_secret: Some(RetiringSecret {
            digest: Digest::of("secret-1"),
            valid_until: at(90_000),
        }),
        created_at: at(1_000),
        updated_at: at(2_000),
        refresh_stopped_at: Some(at(1_500)),
        last_used_at: Some(at(1_800)),
        ..client(zone, id, "Every field")
    }
}

/// A history entry of `grant`, by the system.
pub fn transition(
    grant: &Grant,
    from: Option<GrantStatus>,
    to: GrantStatus,
    reason: TransitionReason,
    at: Timestamp,
) -> Transition {
    Transition {
        zone_id: grant.zone_id.clone(),
        grant_id: grant.id.clone(),
        from,
        to,
        reason,
        actor: Actor::System,
        at,
    }
}

/// A filter from its four optional parts.
pub fn filter(
    user_id: Option<&str>,
    resource_id: Option<&str>,
    client_id: Option<&str>,
    status: Option<GrantStatus>,
) -> GrantFilter {
    GrantFilter {
        user_id: user_id.map(Into::into),
        resource_id: resource_id.map(Into::into),
        client_id: client_id.map(Into::into),
        status,
    }
}

/// A listing query of `zone`, read at [`now`].
pub fn query(
    zone: &str,
    filter: GrantFilter,
    order: SortOrder,
    position: Position,
    limit: usize,
) -> GrantQuery {
    GrantQuery {
        zone_id: zone.into(),
        filter,
        order,
        position,
        limit,
        now: now(),
    }
}

/// A position in a listing.
pub fn key(created_ms: i64, id: &str) -> Keyset {
    Keyset {
        created_at: at(created_ms),
        id: id.into(),
    }
}

// ----- writes -----

/// [`Write::PutClient`].
pub fn put_client(client: &Client, expect: Expect) -> Write {
    Write::PutClient {
        client: client.clone(),
        expect,
    }
}

/// [`Write::PutGrant`].
pub fn put_grant(grant: &Grant, expect: Expect) -> Write {
    Write::PutGrant {
        grant: grant.clone(),
        expect,
    }
}

/// [`Write::PutToken`].
pub fn put_token(token: &Token, expect: Expect) -> Write {
    Write::PutToken {
        token: token.clone(),
        expect,
    }
}

/// [`Write::DeleteGrant`].
pub fn delete_grant(zone: &str, id: &str, expect: Version) -> Write {
    Write::DeleteGrant {
        zone_id: zone.into(),
        id: id.into(),
        expect,
    }
}

/// [`Write::DeleteClient`].
pub fn delete_client(zone: &str, id: &str, expect: Version) -> Write {
    Write::DeleteClient {
        zone_id: zone.into(),
        id: id.into(),
        expect,
    }
}

/// [`Write::DeleteToken`].
pub fn delete_token(zone: &str, digest: Digest, expect: Version) -> Write {
    Write::DeleteToken {
        zone_id: zone.into(),
        digest,
        expect,
    }
}

/// [`Write::Check`].
pub fn check(record: RecordKey, expect: Expect) -> Write {
    Write::Check { record, expect }
}

/// The key of a client, for a [`Write::Check`].
pub fn client_key(zone: &str, id: &str) -> RecordKey {
    RecordKey::Client {
        zone_id: zone.into(),
        id: id.into(),
    }
}

/// The key of a grant, for a [`Write::Check`].
pub fn grant_key(zone: &str, id: &str) -> RecordKey {
    RecordKey::Grant {
        zone_id: zone.into(),
        id: id.into(),
    }
}

/// The key of the token keyed by the digest of `secret`, for a [`Write::Check`].
pub fn token_key(zone: &str, secret: &str) -> RecordKey {
    RecordKey::Token {
        zone_id: zone.into(),
        digest: Digest::of(secret),
    }
}

/// [`Write::AppendTransition`].
pub fn append(transition: Transition) -> Write {
    Write::AppendTransition(transition)
}

/// A write set of `writes`, in order.
pub fn write_set(writes: impl IntoIterator<Item = Write>) -> WriteSet {
    WriteSet {
        writes: writes.into_iter().collect(),
    }
}

/// Applies `writes` as one set; panics if the store refuses it.
pub async fn commit<S: Storage + ?Sized>(store: &S, writes: impl IntoIterator<Item = Write>) {
    let set = write_set(writes);
    if let Err(e) = store.apply(set.clone()).await {
        panic!("a valid write set was refused ({e:?}): {set:?}");
    }
}

/// Applies `writes` as one set; panics unless the store answers [`Error::Conflict`].
pub async fn assert_conflict<S: Storage + ?Sized>(
    store: &S,
    writes: impl IntoIterator<Item = Write>,
    what: &str,
) {
    let result = store.apply(write_set(writes)).await;
    assert!(
        matches!(result, Err(Error::Conflict)),
        "{what}: expected Error::Conflict, got {result:?}"
    );
}

// ----- reads that panic on a backend error -----

async fn get_client<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    id: &str,
) -> Option<Versioned<Client>> {
    store.get_client(zone, id).await.expect("get_client")
}

async fn get_grant<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    id: &str,
) -> Option<Versioned<Grant>> {
    store.get_grant(zone, id).await.expect("get_grant")
}

async fn get_token<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    secret: &str,
) -> Option<Versioned<Token>> {
    store
        .get_token(zone, &Digest::of(secret))
        .await
        .expect("get_token")
}

async fn history<S: Storage + ?Sized>(store: &S, zone: &str, id: &str) -> Vec<Transition> {
    store.grant_history(zone, id).await.expect("grant_history")
}

/// A grant's tokens, ordered by digest (the trait returns them in no order).
async fn tokens_of<S: Storage + ?Sized>(store: &S, zone: &str, id: &str) -> Vec<Versioned<Token>> {
    let mut tokens = store.grant_tokens(zone, id).await.expect("grant_tokens");
    tokens.sort_by_key(|t| t.record.digest);
    tokens
}

async fn list<S: Storage + ?Sized>(store: &S, query: &GrantQuery) -> GrantPage {
    store
        .list_grants(query)
        .await
        .unwrap_or_else(|e| panic!("list_grants({query:?}) failed: {e:?}"))
}

/// Every grant of a listing, which must fit in one page of 100.
async fn list_all<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    filter: &GrantFilter,
    order: SortOrder,
    now: Timestamp,
) -> Vec<Versioned<Grant>> {
    let q = GrantQuery {
        now,
        ..query(zone, filter.clone(), order, Position::First, 100)
    };
    let page = list(store, &q).await;
    assert!(
        !page.more_before && !page.more_after,
        "a first page of 100 holding every match reports more: {q:?} -> {page:?}"
    );
    page.items
}

async fn count<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    filter: &GrantFilter,
    now: Timestamp,
) -> u64 {
    store
        .count_grants(zone, filter, now)
        .await
        .expect("count_grants")
}

async fn expired<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    now: Timestamp,
    limit: usize,
) -> Vec<Versioned<Grant>> {
    store
        .expired_grants(zone, now, limit)
        .await
        .expect("expired_grants")
}

async fn expired_tokens<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    now: Timestamp,
    limit: usize,
) -> Vec<Versioned<Token>> {
    store
        .expired_tokens(zone, now, limit)
        .await
        .expect("expired_tokens")
}

async fn clients<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    after: Option<&str>,
    limit: usize,
) -> Vec<Versioned<Client>> {
    store
        .list_clients(zone, after, limit)
        .await
        .expect("list_clients")
}

fn ids(items: &[Versioned<Grant>]) -> Vec<String> {
    items.iter().map(|g| g.record.id.clone()).collect()
}

fn grant_ids(items: &[Grant]) -> Vec<String> {
    items.iter().map(|g| g.id.clone()).collect()
}

fn reversed(ids: &[&str]) -> Vec<String> {
    ids.iter().rev().map(|s| (*s).to_owned()).collect()
}

fn v1<T>(record: T) -> Versioned<T> {
    Versioned { record, version: 1 }
}

/// Everything a zone shows through every read method, for the given grant ids and
/// token secrets.
#[derive(Debug, PartialEq)]
struct Snapshot {
    clients: Vec<Versioned<Client>>,
    grants: Vec<Option<Versioned<Grant>>>,
    listings: Vec<Vec<Versioned<Grant>>>,
    counts: Vec<u64>,
    expired: Vec<Versioned<Grant>>,
    expired_tokens: Vec<Versioned<Token>>,
    histories: Vec<Vec<Transition>>,
    tokens: Vec<Option<Versioned<Token>>>,
    grant_tokens: Vec<Vec<Versioned<Token>>>,
}

async fn snapshot<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    grant_ids: &[&str],
    secrets: &[&str],
) -> Snapshot {
    let mut snap = Snapshot {
        clients: clients(store, zone, None, 100).await,
        grants: Vec::new(),
        listings: Vec::new(),
        counts: Vec::new(),
        expired: expired(store, zone, far_future(), 100).await,
        expired_tokens: expired_tokens(store, zone, far_future(), 100).await,
        histories: Vec::new(),
        tokens: Vec::new(),
        grant_tokens: Vec::new(),
    };
    for status in [
        None,
        Some(GrantStatus::Active),
        Some(GrantStatus::Expired),
        Some(GrantStatus::Revoked),
    ] {
        let f = filter(None, None, None, status);
        snap.listings
            .push(list_all(store, zone, &f, SortOrder::Ascending, now()).await);
        snap.counts.push(count(store, zone, &f, now()).await);
    }
    for id in grant_ids {
        snap.grants.push(get_grant(store, zone, id).await);
        snap.histories.push(history(store, zone, id).await);
        snap.grant_tokens.push(tokens_of(store, zone, id).await);
    }
    for secret in secrets {
        snap.tokens.push(get_token(store, zone, secret).await);
    }
    snap
}

// ----- the listing fixture -----

/// One grant of a fixture: id, created (ms), user, resource, client, stored status,
/// expiry (ms).
type Row = (
    &'static str,
    i64,
    &'static str,
    &'static str,
    &'static str,
    GrantStatus,
    i64,
);

const ACTIVE: GrantStatus = GrantStatus::Active;
const EXPIRED: GrantStatus = GrantStatus::Expired;
const REVOKED: GrantStatus = GrantStatus::Revoked;

/// Ten grants of [`ZONE`], written in this order: three share a `created_at`, two
/// more share another one a millisecond from a third, ids do not follow creation, and
/// every status reading is present (active, active but due at or before [`now`],
/// stored expired, revoked past its expiry).
const LISTING: [Row; 10] = [
    ("g09", 3_000, "u2", "r2", "c1", EXPIRED, 60_000),
    ("g04", 6_000, "u2", "r1", "c1", ACTIVE, 99_999),
    ("g07", 1_000, "u1", "r1", "c1", ACTIVE, 200_000),
    ("g01", 3_000, "u1", "r1", "c2", REVOKED, 200_000),
    ("g10", 4_999, "u1", "r1", "c1", ACTIVE, 100_001),
    ("g06", 6_001, "u1", "r2", "c2", ACTIVE, 400_000),
    ("g02", 2_000, "u1", "r2", "c1", ACTIVE, NOW_MS),
    ("g08", 6_000, "u1", "r1", "c1", ACTIVE, 300_000),
    ("g05", 3_000, "u2", "r1", "c2", ACTIVE, 50_000),
    ("g03", 5_000, "u3", "r1", "c1", REVOKED, 10_000),
];

/// [`LISTING`] in ascending `(created_at, id)` order.
const ASCENDING: [&str; 10] = [
    "g07", "g02", "g01", "g05", "g09", "g10", "g03", "g04", "g08", "g06",
];

/// Look-alikes in [`OTHER_ZONE`]: one shares an id with a grant of [`ZONE`].
const DECOYS: [Row; 3] = [
    ("g01", 3_000, "u1", "r1", "c2", ACTIVE, 200_000),
    ("g11", 500, "u1", "r1", "c1", ACTIVE, 50_000),
    ("g12", 9_000, "u2", "r2", "c2", REVOKED, 1_000),
];

fn row_grant(zone: &str, (id, created, user, resource, client, status, expires): Row) -> Grant {
    Grant {
        user_id: user.into(),
        resource_id: resource.into(),
        client_id: client.into(),
        status,
        ..grant(zone, id, at(created), at(expires))
    }
}

/// The position of a grant of [`LISTING`].
fn ks(id: &str) -> Keyset {
    let row = LISTING
        .iter()
        .find(|r| r.0 == id)
        .unwrap_or_else(|| panic!("{id} is not in the listing fixture"));
    key(row.1, id)
}

/// Writes the listing fixture, ten grants in [`ZONE`] and three look-alikes in
/// [`OTHER_ZONE`], one set each, and returns them as stored (version 1).
pub async fn seed_listing<S: Storage + ?Sized>(store: &S) -> Vec<Versioned<Grant>> {
    let mut all = Vec::new();
    for (zone, rows) in [(ZONE, &LISTING[..]), (OTHER_ZONE, &DECOYS[..])] {
        for row in rows {
            let g = row_grant(zone, *row);
            commit(store, [put_grant(&g, Expect::Absent)]).await;
            all.push(v1(g));
        }
    }
    all
}

/// Filters over the listing fixture, alone and combined, with the ids each matches
/// at [`now`] in ascending order.
fn listing_cases() -> Vec<(GrantFilter, &'static [&'static str])> {
    vec![
        (filter(None, None, None, None), &ASCENDING[..]),
        (
            filter(Some("u1"), None, None, None),
            &["g07", "g02", "g01", "g10", "g08", "g06"],
        ),
        (filter(Some("u2"), None, None, None), &["g05", "g09", "g04"]),
        (filter(Some("u3"), None, None, None), &["g03"]),
        (filter(Some("nobody"), None, None, None), &[]),
        (
            filter(None, Some("r1"), None, None),
            &["g07", "g01", "g05", "g10", "g03", "g04", "g08"],
        ),
        (filter(None, Some("r2"), None, None), &["g02", "g09", "g06"]),
        (
            filter(None, None, Some("c1"), None),
            &["g07", "g02", "g09", "g10", "g03", "g04", "g08"],
        ),
        (filter(None, None, Some("c2"), None), &["g01", "g05", "g06"]),
        (
            filter(None, None, None, Some(ACTIVE)),
            &["g07", "g10", "g08", "g06"],
        ),
        (
            filter(None, None, None, Some(EXPIRED)),
            &["g02", "g05", "g09", "g04"],
        ),
        (filter(None, None, None, Some(REVOKED)), &["g01", "g03"]),
        (filter(Some("u1"), None, None, Some(EXPIRED)), &["g02"]),
        (filter(Some("u1"), None, None, Some(REVOKED)), &["g01"]),
        (
            filter(None, Some("r1"), None, Some(EXPIRED)),
            &["g05", "g04"],
        ),
        (
            filter(None, Some("r2"), None, Some(EXPIRED)),
            &["g02", "g09"],
        ),
        (
            filter(None, None, Some("c1"), Some(ACTIVE)),
            &["g07", "g10", "g08"],
        ),
        (filter(None, None, Some("c2"), Some(REVOKED)), &["g01"]),
        (
            filter(Some("u1"), Some("r1"), Some("c1"), None),
            &["g07", "g10", "g08"],
        ),
        (
            filter(Some("u2"), Some("r1"), Some("c2"), Some(EXPIRED)),
            &["g05"],
        ),
        (
            filter(Some("u1"), Some("r2"), Some("c2"), Some(REVOKED)),
            &[],
        ),
    ]
}

/// The page the contract prescribes for `query` over `grants` (of any zones), as
/// documented on [`GrantPage`]: the matching grants in the query's order form a list
/// `S`, and the page is the slice `S[i..j]` its position and limit pick.
pub fn expected_page(grants: &[Versioned<Grant>], query: &GrantQuery) -> GrantPage {
    let mut matching: Vec<&Versioned<Grant>> = grants
        .iter()
        .filter(|g| g.record.zone_id == query.zone_id && query.filter.matches(&g.record, query.now))
        .collect();
    matching.sort_by_key(|g| Keyset::of(&g.record));
    if query.order == SortOrder::Descending {
        matching.reverse();
    }
    let precedes = |g: &Versioned<Grant>, k: &Keyset| {
        let at = Keyset::of(&g.record);
        match query.order {
            SortOrder::Ascending => at < *k,
            SortOrder::Descending => at > *k,
        }
    };
    let len = matching.len();
    let (i, j) = match &query.position {
        Position::First => (0, query.limit.min(len)),
        Position::After(k) => {
            let i = matching
                .iter()
                .filter(|g| precedes(g, k) || Keyset::of(&g.record) == *k)
                .count();
            (i, (i + query.limit).min(len))
        }
        Position::Before(k) => {
            let j = matching.iter().filter(|g| precedes(g, k)).count();
            (j.saturating_sub(query.limit), j)
        }
    };
    GrantPage {
        items: matching[i..j].iter().map(|g| (*g).clone()).collect(),
        more_before: i > 0,
        more_after: j < len,
    }
}

// ----- rule 2: versions -----

/// Walks one record through the version rule: creation, refused writes of every
/// kind leaving it untouched, and updates.
async fn check_versions<S, T, P, G, F>(kind: &str, store: &S, revisions: [T; 3], put: P, get: G)
where
    S: Storage + ?Sized,
    T: Clone + PartialEq + Debug,
    P: Fn(&T, Expect) -> Write,
    G: Fn() -> F,
    F: Future<Output = Option<Versioned<T>>>,
{
    let [r0, r1, r2] = revisions;
    assert_eq!(get().await, None, "{kind}: a fresh store holds no record");
    assert_conflict(
        store,
        [put(&r0, Expect::Version(1))],
        &format!("{kind}: Expect::Version on a missing record"),
    )
    .await;
    assert_eq!(
        get().await,
        None,
        "{kind}: a refused creation stored a record"
    );

    commit(store, [put(&r0, Expect::Absent)]).await;
    let created = Versioned {
        record: r0,
        version: 1,
    };
    assert_eq!(
        get().await,
        Some(created.clone()),
        "{kind}: created with Expect::Absent is version 1"
    );

    for (expect, why) in [
        (Expect::Absent, "Expect::Absent on an existing record"),
        (Expect::Version(0), "version 0"),
        (Expect::Version(2), "a version ahead of the stored one"),
    ] {
        assert_conflict(store, [put(&r1, expect)], &format!("{kind}: {why}")).await;
        assert_eq!(
            get().await,
            Some(created.clone()),
            "{kind}: a refused write ({why}) changed the record"
        );
    }

    commit(store, [put(&r1, Expect::Version(1))]).await;
    let updated = Versioned {
        record: r1,
        version: 2,
    };
    assert_eq!(
        get().await,
        Some(updated.clone()),
        "{kind}: Expect::Version(1) stores version 2"
    );

    assert_conflict(
        store,
        [put(&r2, Expect::Version(1))],
        &format!("{kind}: a stale version"),
    )
    .await;
    assert_eq!(
        get().await,
        Some(updated),
        "{kind}: a write with a stale version changed the record"
    );

    commit(store, [put(&r2, Expect::Version(2))]).await;
    assert_eq!(
        get().await,
        Some(Versioned {
            record: r2,
            version: 3
        }),
        "{kind}: Expect::Version(2) stores version 3"
    );
}

/// Rule 2, versions: a client, a grant and a token written with [`Expect::Absent`]
/// are stored at version 1 and each write with `Expect::Version(v)` stores `v + 1`; a
/// stale version, `Absent` on an existing record and `Version` on a missing one are
/// [`Error::Conflict`] and change nothing. Every revision reads back whole: a client
/// with every field set ([`client_with_every_field`]), then with them cleared.
pub async fn versioned_compare_and_set<S: Storage>(store: S) {
    let s = &store;

    let c = client(ZONE, "client-1", "rev 0");
    let clients = [
        c.clone(),
        Client {
            name: "rev 1".into(),
            ..client_with_every_field(ZONE, "client-1")
        },
        Client {
            name: "rev 2".into(),
            allowed_scopes: vec!["read".into(), "write".into()],
            ..c
        },
    ];
    check_versions("client", s, clients, put_client, move || async move {
        get_client(s, ZONE, "client-1").await
    })
    .await;
    let full = client_with_every_field(ZONE, "client-full");
    commit(s, [put_client(&full, Expect::Absent)]).await;
    assert_eq!(
        s.list_clients(ZONE, Some("client-1"), 10)
            .await
            .expect("list_clients"),
        vec![v1(full)],
        "list_clients reads a client with every field set whole"
    );

    // The revisions move the grant between indexes (user, status, expiry) and its
    // refresh chain forward and back.
    let g = grant(ZONE, "grant-1", at(1_000), at(50_000));
    let grants = [
        g.clone(),
        Grant {
            user_id: "user-2".into(),
            scopes: vec!["read".into(), "write".into()],
            updated_at: at(2_000),
            refreshed_at: Some(at(2_000)),
            refresh: RefreshChain {
                generation: 2,
                family: Some(Digest::of("family-1")),
                current: Some(Digest::of("secret-2")),
                previous: Some(Digest::of("secret-1")),
            },
            ..g.clone()
        },
        Grant {
            status: GrantStatus::Revoked,
            updated_at: at(3_000),
            refresh_token_set: false,
            ..g.clone()
        },
    ];
    check_versions("grant", s, grants, put_grant, move || async move {
        get_grant(s, ZONE, "grant-1").await
    })
    .await;

    let t = token(&g, "secret-1", TokenKind::Refresh);
    let tokens = [
        t.clone(),
        Token {
            generation: 2,
            ..t.clone()
        },
        Token {
            revoked_at: Some(at(3_000)),
            ..t
        },
    ];
    check_versions("token", s, tokens, put_token, move || async move {
        get_token(s, ZONE, "secret-1").await
    })
    .await;
    assert_eq!(
        tokens_of(s, ZONE, "grant-1").await.len(),
        1,
        "token: updates keep one entry in grant_tokens"
    );
}

/// Rule 2 for deletions: [`Write::DeleteGrant`] and [`Write::DeleteToken`] with a
/// stale or future version, or of a missing record, are [`Error::Conflict`] and
/// delete nothing; with the stored version they delete, and a re-created record
/// starts again at version 1.
pub async fn deletes_check_the_version<S: Storage>(store: S) {
    let s = &store;
    let g = grant(ZONE, "grant-1", at(1_000), at(200_000));
    let t = token(&g, "secret-1", TokenKind::Refresh);
    commit(
        s,
        [put_grant(&g, Expect::Absent), put_token(&t, Expect::Absent)],
    )
    .await;
    let g2 = Grant {
        refreshed_at: Some(at(2_000)),
        ..g.clone()
    };
    let t2 = Token {
        revoked_at: Some(at(2_000)),
        ..t.clone()
    };
    commit(
        s,
        [
            put_grant(&g2, Expect::Version(1)),
            put_token(&t2, Expect::Version(1)),
        ],
    )
    .await;

    for stale in [1, 3] {
        assert_conflict(
            s,
            [delete_grant(ZONE, "grant-1", stale)],
            &format!("DeleteGrant expecting {stale} of a grant at 2"),
        )
        .await;
        assert_eq!(
            get_grant(s, ZONE, "grant-1").await,
            Some(Versioned {
                record: g2.clone(),
                version: 2
            }),
            "a refused DeleteGrant (expecting {stale}) changed the grant"
        );
        assert_conflict(
            s,
            [delete_token(ZONE, t.digest, stale)],
            &format!("DeleteToken expecting {stale} of a token at 2"),
        )
        .await;
        assert_eq!(
            get_token(s, ZONE, "secret-1").await,
            Some(Versioned {
                record: t2.clone(),
                version: 2
            }),
            "a refused DeleteToken (expecting {stale}) changed the token"
        );
    }
    assert_conflict(
        s,
        [delete_grant(ZONE, "grant-missing", 1)],
        "DeleteGrant of a missing grant",
    )
    .await;
    assert_conflict(
        s,
        [delete_token(ZONE, Digest::of("secret-missing"), 1)],
        "DeleteToken of a missing token",
    )
    .await;

    commit(s, [delete_token(ZONE, t.digest, 2)]).await;
    assert_eq!(
        get_token(s, ZONE, "secret-1").await,
        None,
        "DeleteToken with the stored version deletes"
    );
    commit(s, [delete_grant(ZONE, "grant-1", 2)]).await;
    assert_eq!(
        get_grant(s, ZONE, "grant-1").await,
        None,
        "DeleteGrant with the stored version deletes"
    );

    assert_conflict(
        s,
        [delete_grant(ZONE, "grant-1", 2)],
        "DeleteGrant of a deleted grant",
    )
    .await;
    assert_conflict(
        s,
        [delete_token(ZONE, t.digest, 2)],
        "DeleteToken of a deleted token",
    )
    .await;
    assert_conflict(
        s,
        [put_grant(&g, Expect::Version(2))],
        "Expect::Version on a deleted grant",
    )
    .await;

    commit(
        s,
        [put_grant(&g, Expect::Absent), put_token(&t, Expect::Absent)],
    )
    .await;
    assert_eq!(
        get_grant(s, ZONE, "grant-1").await,
        Some(v1(g)),
        "a re-created grant starts at version 1"
    );
    assert_eq!(
        get_token(s, ZONE, "secret-1").await,
        Some(v1(t)),
        "a re-created token starts at version 1"
    );
}

/// Rules 2, 3, 14 and 17 for clients: [`Write::DeleteClient`] with a stale or
/// future version, of a missing client, or in a set another write of which fails,
/// is [`Error::Conflict`] and changes nothing; with the stored version it deletes
/// the client alone, which then is neither found nor listed, while the same id in
/// another zone and the client's grants, their tokens and history stay. A zone whose
/// last client goes leaves [`Storage::zones`] unless it holds a grant, and a
/// re-created client starts again at version 1.
pub async fn delete_client_checks_the_version<S: Storage>(store: S) {
    let s = &store;
    let c = client(ZONE, "client-1", "One");
    let renamed = client(ZONE, "client-1", "Renamed");
    let other = client(OTHER_ZONE, "client-1", "Look-alike");
    let alone = client("zone-c", "client-1", "Alone");
    let g = grant(ZONE, "grant-1", at(1_000), far_future());
    let t = token(&g, "secret-1", TokenKind::Access);
    let created = transition(&g, None, ACTIVE, TransitionReason::Created, at(1_000));
    commit(
        s,
        [
            put_client(&c, Expect::Absent),
            put_client(&other, Expect::Absent),
            put_client(&alone, Expect::Absent),
            put_grant(&g, Expect::Absent),
            put_token(&t, Expect::Absent),
            append(created.clone()),
        ],
    )
    .await;
    commit(s, [put_client(&renamed, Expect::Version(1))]).await;
    let stored = Some(Versioned {
        record: renamed.clone(),
        version: 2,
    });

    for stale in [1, 3] {
        assert_conflict(
            s,
            [delete_client(ZONE, "client-1", stale)],
            &format!("DeleteClient expecting {stale} of a client at 2"),
        )
        .await;
        assert_eq!(
            get_client(s, ZONE, "client-1").await,
            stored,
            "a refused DeleteClient (expecting {stale}) changed the client"
        );
    }
    assert_conflict(
        s,
        [delete_client(ZONE, "client-missing", 1)],
        "DeleteClient of a missing client",
    )
    .await;
    assert_conflict(
        s,
        [delete_client(EMPTY_ZONE, "client-1", 1)],
        "DeleteClient through a zone that does not hold it",
    )
    .await;
    assert_conflict(
        s,
        [
            delete_client(ZONE, "client-1", 2),
            put_grant(&g, Expect::Version(5)),
        ],
        "DeleteClient in a set whose other write fails",
    )
    .await;
    assert_eq!(
        get_client(s, ZONE, "client-1").await,
        stored,
        "a refused set deleted the client"
    );

    commit(s, [delete_client(ZONE, "client-1", 2)]).await;
    assert_eq!(
        get_client(s, ZONE, "client-1").await,
        None,
        "DeleteClient with the stored version deletes"
    );
    assert!(
        clients(s, ZONE, None, 100).await.is_empty(),
        "a deleted client is still listed"
    );
    assert_eq!(
        get_client(s, OTHER_ZONE, "client-1").await,
        Some(v1(other.clone())),
        "deleting a client touched the same id in another zone"
    );
    assert_eq!(
        clients(s, OTHER_ZONE, None, 100).await,
        [v1(other)],
        "deleting a client changed another zone's listing"
    );
    assert_eq!(
        get_grant(s, ZONE, "grant-1").await,
        Some(v1(g.clone())),
        "deleting a client deleted its grant"
    );
    assert_eq!(
        get_token(s, ZONE, "secret-1").await,
        Some(v1(t)),
        "deleting a client deleted a token of its grant"
    );
    assert_eq!(
        history(s, ZONE, "grant-1").await,
        [created],
        "deleting a client changed its grant's history"
    );
    assert_conflict(
        s,
        [delete_client(ZONE, "client-1", 2)],
        "DeleteClient of a deleted client",
    )
    .await;
    assert_conflict(
        s,
        [put_client(&renamed, Expect::Version(2))],
        "Expect::Version on a deleted client",
    )
    .await;

    assert_eq!(
        s.zones(None, 10).await.expect("zones"),
        [ZONE, OTHER_ZONE, "zone-c"],
        "a zone holding a grant stays listed without its client"
    );
    commit(s, [delete_client("zone-c", "client-1", 1)]).await;
    assert_eq!(
        s.zones(None, 10).await.expect("zones"),
        [ZONE, OTHER_ZONE],
        "a zone whose last client went, holding no grant, is still listed"
    );

    commit(s, [put_client(&c, Expect::Absent)]).await;
    assert_eq!(
        get_client(s, ZONE, "client-1").await,
        Some(v1(c)),
        "a re-created client starts at version 1"
    );
}

// ----- rule 3: write sets -----

/// Rule 3, all or nothing: a set with one write or check whose expectation fails,
/// wherever it sits in the set, is [`Error::Conflict`] and changes nothing any read
/// method shows (records, listings, counts, the expiry indexes, histories, token
/// indexes); the same set without it applies every write.
pub async fn write_set_is_all_or_nothing<S: Storage>(store: S) {
    let s = &store;
    let c = client(ZONE, "client-1", "before");
    let taken = client(ZONE, "client-taken", "taken");
    let checked = client(ZONE, "client-checked", "checked");
    let g1 = grant(ZONE, "grant-1", at(1_000), at(50_000));
    let bumped = grant(ZONE, "grant-bumped", at(2_000), at(200_000));
    let doomed = grant(ZONE, "grant-doomed", at(3_000), at(200_000));
    let t1 = token(&g1, "secret-1", TokenKind::Access);
    let t_bad = token(&g1, "secret-bad", TokenKind::Refresh);
    let t_doomed = token(&doomed, "secret-doomed", TokenKind::Refresh);
    commit(
        s,
        [
            put_client(&c, Expect::Absent),
            put_client(&taken, Expect::Absent),
            put_client(&checked, Expect::Absent),
            put_grant(&g1, Expect::Absent),
            put_grant(&bumped, Expect::Absent),
            put_grant(&doomed, Expect::Absent),
            put_token(&t1, Expect::Absent),
            put_token(&t_bad, Expect::Absent),
            put_token(&t_doomed, Expect::Absent),
            append(transition(
                &g1,
                None,
                ACTIVE,
                TransitionReason::Created,
                at(1_000),
            )),
            append(transition(
                &doomed,
                None,
                ACTIVE,
                TransitionReason::Created,
                at(3_000),
            )),
        ],
    )
    .await;
    let bumped2 = Grant {
        scopes: vec!["read".into(), "write".into()],
        ..bumped
    };
    commit(s, [put_grant(&bumped2, Expect::Version(1))]).await;

    let renamed = Client {
        name: "after".into(),
        ..c.clone()
    };
    let revoked = Grant {
        status: REVOKED,
        updated_at: at(60_000),
        refresh_token_set: false,
        ..g1.clone()
    };
    let t1_revoked = Token {
        revoked_at: Some(at(60_000)),
        ..t1.clone()
    };
    let t4 = token(&g1, "secret-4", TokenKind::Access);
    let fresh = grant(ZONE, "grant-new", at(4_000), at(40_000));
    let revocation = transition(
        &g1,
        Some(ACTIVE),
        REVOKED,
        TransitionReason::Revoked,
        at(60_000),
    );
    let good = vec![
        put_client(&renamed, Expect::Version(1)),
        put_grant(&revoked, Expect::Version(1)),
        put_token(&t1_revoked, Expect::Version(1)),
        put_token(&t4, Expect::Absent),
        delete_token(ZONE, t_doomed.digest, 1),
        delete_grant(ZONE, "grant-doomed", 1),
        append(revocation.clone()),
        check(client_key(ZONE, "client-checked"), Expect::Version(1)),
        put_grant(&fresh, Expect::Absent),
        check(grant_key(ZONE, "grant-never"), Expect::Absent),
    ];
    let bad = [
        (
            "a stale grant version",
            put_grant(
                &Grant {
                    scopes: Vec::new(),
                    ..bumped2.clone()
                },
                Expect::Version(1),
            ),
        ),
        (
            "Expect::Absent on an existing client",
            put_client(&client(ZONE, "client-taken", "again"), Expect::Absent),
        ),
        (
            "Expect::Version on a missing token",
            put_token(
                &token(&g1, "secret-missing", TokenKind::Access),
                Expect::Version(1),
            ),
        ),
        (
            "a stale token deletion",
            delete_token(ZONE, t_bad.digest, 2),
        ),
        (
            "the deletion of a missing grant",
            delete_grant(ZONE, "grant-missing", 1),
        ),
        (
            "a check with a stale version",
            check(grant_key(ZONE, "grant-bumped"), Expect::Version(1)),
        ),
        (
            "a check expecting a present token absent",
            check(token_key(ZONE, "secret-bad"), Expect::Absent),
        ),
    ];

    let grant_ids = [
        "grant-1",
        "grant-bumped",
        "grant-doomed",
        "grant-new",
        "grant-missing",
    ];
    let secrets = [
        "secret-1",
        "secret-bad",
        "secret-doomed",
        "secret-4",
        "secret-missing",
    ];
    let before = snapshot(s, ZONE, &grant_ids, &secrets).await;
    for (why, bad_write) in &bad {
        for position in [0, good.len() / 2, good.len()] {
            let mut writes = good.clone();
            writes.insert(position, bad_write.clone());
            assert_conflict(
                s,
                writes,
                &format!("a set holding {why} at position {position}"),
            )
            .await;
            assert_eq!(
                snapshot(s, ZONE, &grant_ids, &secrets).await,
                before,
                "a refused set holding {why} at position {position} changed the store"
            );
        }
    }

    commit(s, good).await;
    assert_eq!(
        get_client(s, ZONE, "client-1").await,
        Some(Versioned {
            record: renamed,
            version: 2
        })
    );
    assert_eq!(get_client(s, ZONE, "client-taken").await, Some(v1(taken)));
    assert_eq!(
        get_client(s, ZONE, "client-checked").await,
        Some(v1(checked)),
        "a check writes nothing"
    );
    assert_eq!(get_grant(s, ZONE, "grant-never").await, None);
    assert_eq!(
        get_grant(s, ZONE, "grant-1").await,
        Some(Versioned {
            record: revoked,
            version: 2
        })
    );
    assert_eq!(
        get_grant(s, ZONE, "grant-bumped").await,
        Some(Versioned {
            record: bumped2,
            version: 2
        })
    );
    assert_eq!(get_grant(s, ZONE, "grant-doomed").await, None);
    assert_eq!(history(s, ZONE, "grant-doomed").await, Vec::new());
    assert_eq!(
        get_grant(s, ZONE, "grant-new").await,
        Some(v1(fresh.clone()))
    );
    assert_eq!(
        get_token(s, ZONE, "secret-1").await,
        Some(Versioned {
            record: t1_revoked.clone(),
            version: 2
        })
    );
    assert_eq!(get_token(s, ZONE, "secret-4").await, Some(v1(t4.clone())));
    assert_eq!(
        get_token(s, ZONE, "secret-bad").await,
        Some(v1(t_bad.clone()))
    );
    assert_eq!(get_token(s, ZONE, "secret-doomed").await, None);
    let mut expected_tokens = vec![
        Versioned {
            record: t1_revoked,
            version: 2,
        },
        v1(t4),
        v1(t_bad),
    ];
    expected_tokens.sort_by_key(|t| t.record.digest);
    assert_eq!(tokens_of(s, ZONE, "grant-1").await, expected_tokens);
    assert_eq!(
        history(s, ZONE, "grant-1").await,
        vec![
            transition(&g1, None, ACTIVE, TransitionReason::Created, at(1_000)),
            revocation
        ]
    );
    // The revoked grant left the expiry index; the new one, due, joined it.
    assert_eq!(expired(s, ZONE, now(), 10).await, vec![v1(fresh)]);
}

/// Re-reads the pair written together by [`readers_never_see_half_a_set`] through
/// single calls that return several records, and checks they agree.
async fn check_pair<S: Storage + ?Sized>(store: &S) {
    let tokens = store
        .grant_tokens(ZONE, "pair-a")
        .await
        .expect("grant_tokens");
    assert_eq!(
        tokens.len(),
        2,
        "grant_tokens lost or doubled a token: {tokens:?}"
    );
    assert_eq!(
        (&tokens[0].record.scopes, tokens[0].version),
        (&tokens[1].record.scopes, tokens[1].version),
        "grant_tokens showed half of a write set"
    );
    let page = list(
        store,
        &query(
            ZONE,
            GrantFilter::default(),
            SortOrder::Ascending,
            Position::First,
            10,
        ),
    )
    .await;
    assert_eq!(
        page.items.len(),
        2,
        "list_grants lost or doubled a grant: {page:?}"
    );
    assert_eq!(
        (&page.items[0].record.scopes, page.items[0].version),
        (&page.items[1].record.scopes, page.items[1].version),
        "list_grants showed half of a write set"
    );
    assert_ne!(
        page.items[0].record.scopes,
        ["torn"],
        "list_grants showed part of a refused set"
    );
    assert_ne!(
        tokens[0].record.scopes,
        ["torn"],
        "grant_tokens showed part of a refused set"
    );
    // The set swaps the two grants' users: user-1 always has exactly one of them.
    let mine = filter(Some("user-1"), None, None, None);
    let page = list(
        store,
        &query(
            ZONE,
            mine.clone(),
            SortOrder::Ascending,
            Position::First,
            10,
        ),
    )
    .await;
    assert_eq!(
        page.items.len(),
        1,
        "a user index showed half of a write set: {page:?}"
    );
    assert_eq!(
        count(store, ZONE, &mine, now()).await,
        1,
        "count_grants showed half of a write set"
    );
}

/// Sets a flag when dropped, so readers stop even if the writer panics.
struct RaiseOnDrop(Arc<AtomicBool>);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

async fn join<T>(task: tokio::task::JoinHandle<T>) -> T {
    match task.await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a task of the rule was cancelled: {e}"),
    }
}

/// Rule 3, no reader sees part of a set: while a writer applies sets that change two
/// grants and two tokens together (same scopes, swapped users), and now and then a
/// set that must be refused, readers on other threads read the pair through single
/// calls (`grant_tokens`, `list_grants`, `count_grants`) and always see it whole.
pub async fn readers_never_see_half_a_set<S: Storage>(store: S) {
    const WRITES: u64 = 300;
    const READERS: usize = 2;
    // A bound on reads in case the writer stalls; the writer's end normally stops them.
    const MAX_READS: usize = 100_000;
    let store = Arc::new(store);
    let a = Grant {
        user_id: "user-1".into(),
        ..grant(ZONE, "pair-a", at(1_000), far_future())
    };
    let b = Grant {
        user_id: "user-2".into(),
        ..grant(ZONE, "pair-b", at(2_000), far_future())
    };
    let ta = token(&a, "pair-secret-1", TokenKind::Access);
    let tb = token(&a, "pair-secret-2", TokenKind::Refresh);
    commit(
        &*store,
        [
            put_grant(&a, Expect::Absent),
            put_grant(&b, Expect::Absent),
            put_token(&ta, Expect::Absent),
            put_token(&tb, Expect::Absent),
        ],
    )
    .await;
    check_pair(&*store).await;

    let done = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let store = store.clone();
        let raise = RaiseOnDrop(done.clone());
        async move {
            let _raise = raise;
            for n in 1..=WRITES {
                let (ua, ub) = if n % 2 == 1 {
                    ("user-2", "user-1")
                } else {
                    ("user-1", "user-2")
                };
                if n % 3 == 0 {
                    let torn = vec!["torn".to_owned()];
                    assert_conflict(
                        &*store,
                        [
                            put_grant(
                                &Grant {
                                    scopes: torn.clone(),
                                    ..a.clone()
                                },
                                Expect::Version(n),
                            ),
                            put_token(
                                &Token {
                                    scopes: torn.clone(),
                                    ..ta.clone()
                                },
                                Expect::Version(n),
                            ),
                            put_grant(
                                &Grant {
                                    scopes: torn,
                                    ..b.clone()
                                },
                                Expect::Version(n + 5),
                            ),
                        ],
                        "a set with one stale version",
                    )
                    .await;
                }
                let scopes = vec![format!("s{n}")];
                commit(
                    &*store,
                    [
                        put_grant(
                            &Grant {
                                user_id: ua.into(),
                                scopes: scopes.clone(),
                                ..a.clone()
                            },
                            Expect::Version(n),
                        ),
                        put_token(
                            &Token {
                                scopes: scopes.clone(),
                                ..ta.clone()
                            },
                            Expect::Version(n),
                        ),
                        put_grant(
                            &Grant {
                                user_id: ub.into(),
                                scopes: scopes.clone(),
                                ..b.clone()
                            },
                            Expect::Version(n),
                        ),
                        put_token(
                            &Token {
                                scopes,
                                ..tb.clone()
                            },
                            Expect::Version(n),
                        ),
                    ],
                )
                .await;
                tokio::task::yield_now().await;
            }
        }
    });
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let store = store.clone();
            let done = done.clone();
            tokio::spawn(async move {
                for _ in 0..MAX_READS {
                    let finished = done.load(Ordering::Acquire);
                    check_pair(&*store).await;
                    if finished {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    join(writer).await;
    for reader in readers {
        join(reader).await;
    }
    let last = vec![format!("s{WRITES}")];
    let a_now = get_grant(&*store, ZONE, "pair-a")
        .await
        .expect("pair-a is stored");
    assert_eq!((a_now.record.scopes, a_now.version), (last, WRITES + 1));
}

// ----- rule 5: listings -----

/// Rule 5, filters: each filter alone and combined (user, resource, client, status
/// at the query's time) lists exactly its grants of the zone, in both orders, and
/// `count_grants` agrees.
pub async fn list_filters_alone_and_combined<S: Storage>(store: S) {
    let s = &store;
    let all = seed_listing(s).await;
    for (f, expected) in listing_cases() {
        let asc = list_all(s, ZONE, &f, SortOrder::Ascending, now()).await;
        assert_eq!(ids(&asc), expected, "ascending listing of {f:?}");
        for item in &asc {
            assert!(
                all.contains(item),
                "listing of {f:?} returned a record never written to {ZONE}: {item:?}"
            );
            assert_eq!(
                item.record.zone_id, ZONE,
                "listing of {f:?} leaked another zone's grant"
            );
        }
        let desc = list_all(s, ZONE, &f, SortOrder::Descending, now()).await;
        assert_eq!(
            ids(&desc),
            reversed(expected),
            "descending listing of {f:?}"
        );
        assert_eq!(
            count(s, ZONE, &f, now()).await,
            expected.len() as u64,
            "count of {f:?}"
        );
    }
}

/// Rule 5, status at the query's time: an active grant matches `Active` until its
/// expiry and `Expired` from its expiry on (at `expires_at == now` it is expired); a
/// stored expired or revoked grant reads as stored whatever the time; and the backend
/// does not write the status it reads.
pub async fn list_status_is_read_at_query_time<S: Storage>(store: S) {
    let s = &store;
    let s1 = grant(ZONE, "s1", at(1_000), at(NOW_MS));
    let s2 = Grant {
        status: EXPIRED,
        ..grant(ZONE, "s2", at(2_000), at(200_000))
    };
    let s3 = Grant {
        status: REVOKED,
        ..grant(ZONE, "s3", at(3_000), at(50_000))
    };
    commit(
        s,
        [
            put_grant(&s1, Expect::Absent),
            put_grant(&s2, Expect::Absent),
            put_grant(&s3, Expect::Absent),
        ],
    )
    .await;
    let cases: [(i64, &[&str], &[&str]); 5] = [
        (10_000, &["s1"], &["s2"]),
        (NOW_MS - 1, &["s1"], &["s2"]),
        (NOW_MS, &[], &["s1", "s2"]),
        (NOW_MS + 1, &[], &["s1", "s2"]),
        (300_000, &[], &["s1", "s2"]),
    ];
    for (ms, active, expired_ids) in cases {
        for (status, expected) in [
            (ACTIVE, active),
            (EXPIRED, expired_ids),
            (REVOKED, &["s3"][..]),
        ] {
            let f = filter(None, None, None, Some(status));
            let items = list_all(s, ZONE, &f, SortOrder::Ascending, at(ms)).await;
            assert_eq!(ids(&items), expected, "{status} grants at {ms} ms");
            assert_eq!(
                count(s, ZONE, &f, at(ms)).await,
                expected.len() as u64,
                "count of {status} grants at {ms} ms"
            );
        }
        let everything = list_all(
            s,
            ZONE,
            &GrantFilter::default(),
            SortOrder::Ascending,
            at(ms),
        )
        .await;
        assert_eq!(
            ids(&everything),
            ["s1", "s2", "s3"],
            "unfiltered listing at {ms} ms"
        );
    }
    assert_eq!(
        get_grant(s, ZONE, "s1").await,
        Some(v1(s1)),
        "reading a due grant as expired must not write it"
    );
}

/// Rule 5, order: ascending and descending by `(created_at, id)`, ties on
/// `created_at` broken by id, times compared to the millisecond, whatever order the
/// grants were written in.
pub async fn list_orders_by_created_at_then_id<S: Storage>(store: S) {
    let s = &store;
    seed_listing(s).await;
    let f = GrantFilter::default();
    assert_eq!(
        ids(&list_all(s, ZONE, &f, SortOrder::Ascending, now()).await),
        ASCENDING
    );
    assert_eq!(
        ids(&list_all(s, ZONE, &f, SortOrder::Descending, now()).await),
        reversed(&ASCENDING)
    );
    // One by one, through After, gives the same order.
    for order in [SortOrder::Ascending, SortOrder::Descending] {
        let mut position = Position::First;
        let mut walked = Vec::new();
        for _ in 0..=ASCENDING.len() {
            let page = list(s, &query(ZONE, f.clone(), order, position.clone(), 1)).await;
            walked.extend(ids(&page.items));
            match page.items.last() {
                Some(last) if page.more_after => {
                    position = Position::After(Keyset::of(&last.record))
                }
                _ => break,
            }
        }
        let expected = match order {
            SortOrder::Ascending => ASCENDING.map(String::from).to_vec(),
            SortOrder::Descending => reversed(&ASCENDING),
        };
        assert_eq!(walked, expected, "{order:?} listing one grant a page");
    }
}

/// A listing query and the page it must give: order, filter, position, limit, ids,
/// `more_before`, `more_after`.
type PositionCase = (
    SortOrder,
    GrantFilter,
    Position,
    usize,
    &'static [&'static str],
    bool,
    bool,
);

/// A listing query and the shape of its page: order, filter, position, limit, number
/// of items, `more_before`, `more_after`.
type LimitCase = (SortOrder, GrantFilter, Position, usize, usize, bool, bool);

/// Rule 5, positions: `After(k)` and `Before(k)` pages and their `more_before` and
/// `more_after` flags, exactly as documented on [`GrantPage`], for keys of listed
/// grants, of grants the filter leaves out, of no grant, and of another zone's grant.
pub async fn list_positions_and_flags<S: Storage>(store: S) {
    use Position::{After, Before, First};
    use SortOrder::{Ascending as Asc, Descending as Desc};
    let s = &store;
    seed_listing(s).await;
    let none = GrantFilter::default;
    let status = |st| filter(None, None, None, Some(st));
    let nobody = || filter(Some("nobody"), None, None, None);
    let cases: Vec<PositionCase> = vec![
        (Asc, none(), First, 3, &["g07", "g02", "g01"], false, true),
        (
            Asc,
            none(),
            After(ks("g01")),
            3,
            &["g05", "g09", "g10"],
            true,
            true,
        ),
        (Asc, none(), After(ks("g08")), 3, &["g06"], true, false),
        (Asc, none(), After(ks("g06")), 3, &[], true, false),
        (
            Asc,
            none(),
            Before(ks("g05")),
            3,
            &["g07", "g02", "g01"],
            false,
            true,
        ),
        (
            Asc,
            none(),
            Before(ks("g10")),
            3,
            &["g01", "g05", "g09"],
            true,
            true,
        ),
        (Asc, none(), Before(ks("g07")), 3, &[], false, true),
        (Desc, none(), First, 2, &["g06", "g08"], false, true),
        (
            Desc,
            none(),
            After(ks("g05")),
            2,
            &["g01", "g02"],
            true,
            true,
        ),
        (
            Desc,
            none(),
            Before(ks("g09")),
            10,
            &["g06", "g08", "g04", "g03", "g10"],
            false,
            true,
        ),
        (Desc, none(), Before(ks("g06")), 2, &[], false, true),
        (Desc, none(), After(ks("g07")), 5, &[], true, false),
        // Keys of grants the filter leaves out.
        (
            Asc,
            status(ACTIVE),
            After(ks("g05")),
            2,
            &["g10", "g08"],
            true,
            true,
        ),
        (
            Asc,
            status(ACTIVE),
            Before(ks("g05")),
            2,
            &["g07"],
            false,
            true,
        ),
        (
            Desc,
            status(EXPIRED),
            After(ks("g10")),
            10,
            &["g09", "g05", "g02"],
            true,
            false,
        ),
        (
            Desc,
            status(EXPIRED),
            Before(ks("g10")),
            10,
            &["g04"],
            false,
            true,
        ),
        (
            Asc,
            status(REVOKED),
            After(ks("g01")),
            1,
            &["g03"],
            true,
            false,
        ),
        (
            Asc,
            status(REVOKED),
            Before(ks("g03")),
            1,
            &["g01"],
            false,
            true,
        ),
        // Keys of no grant: between tied grants, before and after everything.
        (
            Asc,
            none(),
            After(key(3_000, "g04")),
            2,
            &["g05", "g09"],
            true,
            true,
        ),
        (
            Asc,
            none(),
            Before(key(3_000, "g04")),
            2,
            &["g02", "g01"],
            true,
            true,
        ),
        (
            Asc,
            none(),
            After(key(-1, "a")),
            2,
            &["g07", "g02"],
            false,
            true,
        ),
        (
            Asc,
            none(),
            Before(key(999_999, "z")),
            2,
            &["g08", "g06"],
            true,
            false,
        ),
        (
            Desc,
            none(),
            After(key(999_999, "z")),
            2,
            &["g06", "g08"],
            false,
            true,
        ),
        (
            Desc,
            none(),
            Before(key(-1, "a")),
            2,
            &["g02", "g07"],
            true,
            false,
        ),
        // The key of another zone's grant is only a position.
        (
            Asc,
            none(),
            After(key(500, "g11")),
            1,
            &["g07"],
            false,
            true,
        ),
        // Nothing matches.
        (Asc, nobody(), First, 5, &[], false, false),
        (Asc, nobody(), After(ks("g01")), 5, &[], false, false),
        (Desc, nobody(), Before(ks("g01")), 5, &[], false, false),
    ];
    for (order, f, position, limit, expected, more_before, more_after) in cases {
        let q = query(ZONE, f, order, position, limit);
        let page = list(s, &q).await;
        assert_eq!(
            (ids(&page.items), page.more_before, page.more_after),
            (
                expected.iter().map(|s| (*s).to_owned()).collect(),
                more_before,
                more_after
            ),
            "(items, more_before, more_after) of {q:?}"
        );
    }
}

/// Rule 5, limits: a limit of 1, one less than the matches, exactly the matches and
/// more than the matches, from the start and from positions on both sides.
pub async fn list_limit_edges<S: Storage>(store: S) {
    use Position::{After, Before, First};
    use SortOrder::{Ascending as Asc, Descending as Desc};
    let s = &store;
    seed_listing(s).await;
    let none = GrantFilter::default;
    let r2 = || filter(None, Some("r2"), None, None);
    let cases: Vec<LimitCase> = vec![
        (Asc, none(), First, 1, 1, false, true),
        (Asc, none(), First, 9, 9, false, true),
        (Asc, none(), First, 10, 10, false, false),
        (Asc, none(), First, 11, 10, false, false),
        (Desc, none(), First, 10, 10, false, false),
        (Asc, r2(), First, 2, 2, false, true),
        (Asc, r2(), First, 3, 3, false, false),
        (Asc, r2(), First, 4, 3, false, false),
        (Asc, r2(), After(ks("g02")), 2, 2, true, false),
        (Asc, r2(), After(ks("g02")), 1, 1, true, true),
        (Asc, r2(), Before(ks("g06")), 2, 2, false, true),
        (Asc, r2(), Before(ks("g06")), 1, 1, true, true),
        (Desc, r2(), Before(ks("g02")), 2, 2, false, true),
        (Desc, r2(), Before(ks("g02")), 3, 2, false, true),
        (Desc, r2(), After(ks("g06")), 2, 2, true, false),
        (Desc, r2(), After(ks("g06")), 100, 2, true, false),
    ];
    for (order, f, position, limit, len, more_before, more_after) in cases {
        let q = query(ZONE, f, order, position, limit);
        let page = list(s, &q).await;
        assert_eq!(
            (page.items.len(), page.more_before, page.more_after),
            (len, more_before, more_after),
            "(items, more_before, more_after) of {q:?}"
        );
        assert_eq!(page, expected_page(&seed_rows(), &q), "page of {q:?}");
    }
}

/// The listing fixture as [`seed_listing`] stores it.
fn seed_rows() -> Vec<Versioned<Grant>> {
    LISTING
        .iter()
        .map(|r| row_grant(ZONE, *r))
        .chain(DECOYS.iter().map(|r| row_grant(OTHER_ZONE, *r)))
        .map(v1)
        .collect()
}

/// Rule 5, exhaustively: for many filters, both orders, every position (first, after
/// and before the key of every grant of both zones and of keys of no grant) and
/// limits of 1, 2, the number of matches and one more, the page equals the slice
/// [`expected_page`] computes from the documentation of [`GrantPage`].
pub async fn list_pages_slice_the_listing<S: Storage>(store: S) {
    let s = &store;
    let all = seed_listing(s).await;
    let mut positions = vec![Position::First];
    let mut keys: Vec<Keyset> = all.iter().map(|g| Keyset::of(&g.record)).collect();
    keys.extend([
        key(-1, "a"),
        key(3_000, "g0"),
        key(3_000, "g04"),
        key(3_000, "g10"),
        key(6_000, "g05"),
        key(999_999, "z"),
    ]);
    for k in keys {
        positions.push(Position::After(k.clone()));
        positions.push(Position::Before(k));
    }
    let cases = listing_cases();
    // A subset keeps the query count bounded for slow backends; every filter kind is in it.
    for i in [0, 1, 4, 6, 8, 9, 10, 11, 14, 18] {
        let (f, expected) = &cases[i];
        let n = expected.len();
        let mut limits = vec![1, 2, n, n + 1];
        limits.retain(|l| *l > 0);
        limits.sort_unstable();
        limits.dedup();
        for order in [SortOrder::Ascending, SortOrder::Descending] {
            for position in &positions {
                for limit in &limits {
                    let q = query(ZONE, f.clone(), order, position.clone(), *limit);
                    assert_eq!(list(s, &q).await, expected_page(&all, &q), "page of {q:?}");
                }
            }
        }
    }
}

// ----- walks under concurrent changes -----

const STABLE: usize = 16;
const DOOMED: usize = 8;
const WALKER: &str = "walker";

fn stable_id(i: usize) -> String {
    format!("stable-{i:02}")
}

/// Seeds a walk's zone: grants that stay throughout (ties in pairs), grants the walk
/// deletes, grants a concurrent writer deletes, and other users' grants.
async fn seed_walk<S: Storage + ?Sized>(store: &S, zone: &str) {
    let mut writes = Vec::new();
    let mut add = |id: String, created: i64, user: &str| {
        let g = Grant {
            user_id: user.into(),
            ..grant(zone, &id, at(created), far_future())
        };
        writes.push(put_grant(&g, Expect::Absent));
    };
    for i in 0..STABLE {
        add(stable_id(i), (i as i64 / 2) * 1_000, WALKER);
    }
    for i in 0..DOOMED {
        add(format!("doomed-{i}"), i as i64 * 2_000 + 500, WALKER);
        add(format!("doomed-bg-{i}"), i as i64 * 2_000 + 700, WALKER);
        add(format!("other-seed-{i}"), i as i64 * 1_000, "someone-else");
    }
    commit(store, writes).await;
}

/// Between two pages: inserts grants before, after and tied with the walk's
/// position (one of another user), deletes a doomed grant and updates a stable one.
/// Insertions stop after a few pages, since grants inserted ahead of the position
/// on every page could outrun the walk.
async fn disturb<S: Storage + ?Sized>(store: &S, zone: &str, step: usize, near: &Keyset) {
    const INSERTING_STEPS: usize = 6;
    let step_ms = step as i64;
    let mut writes = Vec::new();
    let inserts = if step < INSERTING_STEPS { 4 } else { 0 };
    for (id, created, user) in [
        (format!("new-{step}-early"), at(-1_000 - step_ms), WALKER),
        (format!("new-{step}-late"), at(100_000 + step_ms), WALKER),
        (format!("new-{step}-tie"), near.created_at, WALKER),
        (format!("other-{step}"), near.created_at, "someone-else"),
    ]
    .into_iter()
    .take(inserts)
    {
        let g = Grant {
            user_id: user.into(),
            ..grant(zone, &id, created, far_future())
        };
        writes.push(put_grant(&g, Expect::Absent));
    }
    let doomed = format!("doomed-{step}");
    if let Some(d) = get_grant(store, zone, &doomed).await {
        writes.push(delete_grant(zone, &doomed, d.version));
    }
    let stable = get_grant(store, zone, &stable_id(step % STABLE))
        .await
        .expect("stable grants are never deleted");
    let changed = Grant {
        scopes: vec![format!("step-{step}")],
        ..stable.record
    };
    writes.push(put_grant(&changed, Expect::Version(stable.version)));
    commit(store, writes).await;
}

/// Checks a walk: in strict listing order (so no grant twice), every stable grant
/// exactly once, and only grants the filter allows.
fn check_walk(what: &str, order: SortOrder, seen: &[Keyset], filtered: bool) {
    for pair in seen.windows(2) {
        let in_order = match order {
            SortOrder::Ascending => pair[0] < pair[1],
            SortOrder::Descending => pair[0] > pair[1],
        };
        assert!(
            in_order,
            "{what}: {:?} then {:?} is out of order or repeated",
            pair[0], pair[1]
        );
    }
    let ids: Vec<&str> = seen.iter().map(|k| k.id.as_str()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "{what}: a grant was visited twice: {ids:?}"
    );
    for i in 0..STABLE {
        let id = stable_id(i);
        assert!(
            unique.contains(id.as_str()),
            "{what}: {id}, present throughout, was never visited: {ids:?}"
        );
    }
    if filtered {
        for id in &ids {
            assert!(
                !id.starts_with("other"),
                "{what}: {id} belongs to another user: {ids:?}"
            );
        }
    }
}

/// Walks a listing through the store, forward with `After` or backward with
/// `Before` from the last page, disturbing the zone between pages.
async fn walk_store<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    f: &GrantFilter,
    order: SortOrder,
    backward: bool,
) -> Vec<Keyset> {
    const LIMIT: usize = 3;
    const MAX_PAGES: usize = 100;
    let page_at = |position| query(zone, f.clone(), order, position, LIMIT);
    let keys = |page: &GrantPage| -> Vec<Keyset> {
        page.items.iter().map(|g| Keyset::of(&g.record)).collect()
    };
    let mut page = list(store, &page_at(Position::First)).await;
    let mut seen = keys(&page);
    let mut step = 0;
    if backward {
        // Find the last page undisturbed, then walk back from it.
        while page.more_after {
            let last = page.items.last().expect("a page with more after has items");
            page = list(store, &page_at(Position::After(Keyset::of(&last.record)))).await;
            step += 1;
            assert!(
                step < MAX_PAGES,
                "{zone}: the walk to the last page does not end"
            );
        }
        seen = keys(&page);
        while page.more_before {
            let first = Keyset::of(
                &page
                    .items
                    .first()
                    .expect("a page with more before has items")
                    .record,
            );
            disturb(store, zone, step, &first).await;
            page = list(store, &page_at(Position::Before(first))).await;
            seen.splice(0..0, keys(&page));
            step += 1;
            assert!(
                step < 2 * MAX_PAGES,
                "{zone}: the backward walk does not end"
            );
        }
    } else {
        while page.more_after {
            let last = Keyset::of(
                &page
                    .items
                    .last()
                    .expect("a page with more after has items")
                    .record,
            );
            disturb(store, zone, step, &last).await;
            page = list(store, &page_at(Position::After(last))).await;
            seen.extend(keys(&page));
            step += 1;
            assert!(step < MAX_PAGES, "{zone}: the forward walk does not end");
        }
    }
    seen
}

/// Rule 5 under change, at the store: a full walk, forward with `After` and backward
/// with `Before` from the last page, in both orders, with and without a filter,
/// visits every grant present throughout exactly once, in order, while grants are
/// inserted on both sides of and tied with the position, deleted and updated between
/// pages.
pub async fn list_walk_survives_concurrent_changes<S: Storage>(store: S) {
    let s = &store;
    for order in [SortOrder::Ascending, SortOrder::Descending] {
        for backward in [false, true] {
            for filtered in [false, true] {
                let zone = format!(
                    "walk-{order:?}-{}-{}",
                    if backward { "back" } else { "forth" },
                    if filtered { "walker" } else { "all" }
                );
                seed_walk(s, &zone).await;
                let f = filter(filtered.then_some(WALKER), None, None, None);
                let seen = walk_store(s, &zone, &f, order, backward).await;
                check_walk(&zone, order, &seen, filtered);
            }
        }
    }
}

async fn engine_page(engine: &Engine, zone: &str, request: &ListGrants) -> Page {
    engine
        .list_grants(zone, request)
        .await
        .unwrap_or_else(|e| panic!("Engine::list_grants({zone}, {request:?}) failed: {e:?}"))
}

fn engine_over<S: Storage>(store: S) -> Engine {
    Engine::builder(Arc::new(store))
        .clock(Arc::new(ManualClock::new(now())))
        .build()
}

/// Walks a listing through the engine's cursors, disturbing the zone between pages.
async fn walk_engine(engine: &Engine, zone: &str, order: SortOrder, backward: bool) -> Vec<Keyset> {
    const MAX_PAGES: usize = 100;
    let store = engine.storage();
    let mut request = ListGrants {
        user_id: Some(WALKER.into()),
        order,
        limit: Some(3),
        ..ListGrants::default()
    };
    let keys = |page: &Page| -> Vec<Keyset> { page.items.iter().map(Keyset::of).collect() };
    let mut page = engine_page(engine, zone, &request).await;
    let mut seen = keys(&page);
    let mut step = 0;
    if backward {
        while let Some(cursor) = page.after_cursor.take() {
            request.after = Some(cursor);
            page = engine_page(engine, zone, &request).await;
            step += 1;
            assert!(
                step < MAX_PAGES,
                "{zone}: the walk to the last page does not end"
            );
        }
        request.after = None;
        seen = keys(&page);
        while let Some(cursor) = page.before_cursor.take() {
            // The last page is empty when what followed the previous one was
            // deleted in the meantime; its before cursor still leads back.
            if let Some(first) = page.items.first() {
                disturb(&**store, zone, step, &Keyset::of(first)).await;
            }
            request.before = Some(cursor);
            page = engine_page(engine, zone, &request).await;
            seen.splice(0..0, keys(&page));
            step += 1;
            assert!(
                step < 2 * MAX_PAGES,
                "{zone}: the backward walk does not end"
            );
        }
    } else {
        while let Some(cursor) = page.after_cursor.take() {
            let last = Keyset::of(
                page.items
                    .last()
                    .expect("a page with an after cursor has items"),
            );
            disturb(&**store, zone, step, &last).await;
            request.after = Some(cursor);
            page = engine_page(engine, zone, &request).await;
            seen.extend(keys(&page));
            step += 1;
            assert!(step < MAX_PAGES, "{zone}: the forward walk does not end");
        }
    }
    seen
}

/// Rule 5 under change, through the engine's cursors: a full walk of a user's grants,
/// forward with `after` cursors and backward with `before` cursors from the last page,
/// in both orders, visits every grant present throughout exactly once and no other
/// user's, while a concurrent task inserts and deletes grants and the walk itself
/// inserts, deletes and updates grants between pages.
pub async fn engine_walk_survives_concurrent_changes<S: Storage>(store: S) {
    const BACKGROUND: usize = 40;
    let engine = engine_over(store);
    for order in [SortOrder::Ascending, SortOrder::Descending] {
        for backward in [false, true] {
            let zone = format!(
                "engine-walk-{order:?}-{}",
                if backward { "back" } else { "forth" }
            );
            seed_walk(&**engine.storage(), &zone).await;
            let writer = tokio::spawn({
                let store = engine.storage().clone();
                let zone = zone.clone();
                async move {
                    for i in 0..BACKGROUND {
                        let created = at((i as i64 * 997) % 20_000 - 5_000);
                        let mut writes = Vec::new();
                        for (id, user) in [
                            (format!("bg-{i}"), WALKER),
                            (format!("other-bg-{i}"), "someone-else"),
                        ] {
                            let g = Grant {
                                user_id: user.into(),
                                ..grant(&zone, &id, created, far_future())
                            };
                            writes.push(put_grant(&g, Expect::Absent));
                        }
                        if i < DOOMED {
                            writes.push(delete_grant(&zone, &format!("doomed-bg-{i}"), 1));
                        }
                        commit(&*store, writes).await;
                        tokio::task::yield_now().await;
                    }
                }
            });
            let seen = walk_engine(&engine, &zone, order, backward).await;
            join(writer).await;
            check_walk(&zone, order, &seen, true);
        }
    }
}

async fn assert_invalid_cursor(engine: &Engine, zone: &str, request: &ListGrants, what: &str) {
    let result = engine.list_grants(zone, request).await;
    assert!(
        matches!(result, Err(Error::InvalidCursor { .. })),
        "{what}: expected Error::InvalidCursor, got {result:?}"
    );
}

/// Cursors, at the engine: garbage, a cut or lengthened cursor, a cursor with any one
/// character changed, and a cursor from another zone, filter, order, key or listing
/// (grants or personal grants) are [`Error::InvalidCursor`], as `after` and as
/// `before`; a cursor forged with the default key only moves within the caller's zone.
pub async fn engine_rejects_forged_and_foreign_cursors<S: Storage>(store: S) {
    let engine = engine_over(store);
    seed_listing(&**engine.storage()).await;
    let base = ListGrants {
        order: SortOrder::Ascending,
        limit: Some(2),
        ..ListGrants::default()
    };
    let first = engine_page(&engine, ZONE, &base).await;
    assert_eq!(grant_ids(&first.items), ["g07", "g02"]);
    let cursor = first
        .after_cursor
        .clone()
        .expect("a first page of 2 out of 10 has an after cursor");
    let next = engine_page(
        &engine,
        ZONE,
        &ListGrants {
            after: Some(cursor.clone()),
            ..base.clone()
        },
    )
    .await;
    assert_eq!(
        grant_ids(&next.items),
        ["g01", "g05"],
        "the cursor works where it was made"
    );
    let back = next
        .before_cursor
        .clone()
        .expect("a second page has a before cursor");
    let again = engine_page(
        &engine,
        ZONE,
        &ListGrants {
            before: Some(back),
            ..base.clone()
        },
    )
    .await;
    assert_eq!(
        grant_ids(&again.items),
        ["g07", "g02"],
        "the before cursor leads back"
    );

    let mut bad: Vec<(String, String)> = vec![
        ("garbage".into(), "not a cursor!".into()),
        ("an empty cursor".into(), String::new()),
        ("a run of A".into(), "A".repeat(40)),
        ("an over-long cursor".into(), "A".repeat(300)),
        (
            "a cursor with a character appended".into(),
            format!("{cursor}A"),
        ),
    ];
    for cut in [1, cursor.len() / 2, cursor.len() - 1] {
        bad.push((
            format!("a cursor cut to {cut} characters"),
            cursor[..cut].to_owned(),
        ));
    }
    for (i, c) in cursor.char_indices() {
        let mut altered = cursor.clone();
        let other = if c == 'A' { "B" } else { "A" };
        altered.replace_range(i..i + c.len_utf8(), other);
        bad.push((format!("a cursor with character {i} changed"), altered));
    }
    for (what, c) in &bad {
        let after = ListGrants {
            after: Some(c.clone()),
            ..base.clone()
        };
        assert_invalid_cursor(&engine, ZONE, &after, &format!("{what}, as after")).await;
        let before = ListGrants {
            before: Some(c.clone()),
            ..base.clone()
        };
        assert_invalid_cursor(&engine, ZONE, &before, &format!("{what}, as before")).await;
    }

    let with = |request: ListGrants| ListGrants {
        after: Some(cursor.clone()),
        ..request
    };
    assert_invalid_cursor(
        &engine,
        OTHER_ZONE,
        &with(base.clone()),
        "a cursor of another zone",
    )
    .await;
    assert_invalid_cursor(
        &engine,
        OTHER_ZONE,
        &ListGrants {
            before: Some(cursor.clone()),
            ..base.clone()
        },
        "a cursor of another zone, as before",
    )
    .await;
    let foreign: [(&str, ListGrants); 6] = [
        (
            "a cursor of the other order",
            ListGrants {
                order: SortOrder::Descending,
                ..base.clone()
            },
        ),
        (
            "a cursor without a user filter, with one",
            ListGrants {
                user_id: Some("u1".into()),
                ..base.clone()
            },
        ),
        (
            "a cursor without a resource filter, with one",
            ListGrants {
                resource_id: Some("r1".into()),
                ..base.clone()
            },
        ),
        (
            "a cursor without a client filter, with one",
            ListGrants {
                client_id: Some("c1".into()),
                ..base.clone()
            },
        ),
        (
            "a cursor without a status filter, with one",
            ListGrants {
                status: Some(ACTIVE),
                ..base.clone()
            },
        ),
        (
            "a cursor without active=true, with it",
            ListGrants {
                active: true,
                ..base.clone()
            },
        ),
    ];
    for (what, request) in foreign {
        assert_invalid_cursor(&engine, ZONE, &with(request), what).await;
    }
    // The page size is not part of the query a cursor is bound to.
    let larger = engine_page(
        &engine,
        ZONE,
        &with(ListGrants {
            limit: Some(5),
            ..base.clone()
        }),
    )
    .await;
    assert_eq!(
        grant_ids(&larger.items),
        ["g01", "g05", "g09", "g10", "g03"],
        "a cursor of a page of 2, for a page of 5"
    );

    let u1 = ListGrants {
        user_id: Some("u1".into()),
        ..base.clone()
    };
    let u1_cursor = engine_page(&engine, ZONE, &u1)
        .await
        .after_cursor
        .expect("u1 has more than two grants");
    for (what, user) in [
        ("a cursor of user u1, for user u2", Some("u2")),
        ("a cursor of user u1, for every user", None),
    ] {
        let request = ListGrants {
            user_id: user.map(Into::into),
            after: Some(u1_cursor.clone()),
            ..base.clone()
        };
        assert_invalid_cursor(&engine, ZONE, &request, what).await;
    }

    let keyed = Engine::builder(engine.storage().clone())
        .clock(Arc::new(ManualClock::new(now())))
        .cursor_key(CursorKey::new([7; 32]))
        .build();
    let keyed_cursor = engine_page(&keyed, ZONE, &base)
        .await
        .after_cursor
        .expect("a first page of 2 out of 10 has an after cursor");
    assert_invalid_cursor(
        &engine,
        ZONE,
        &ListGrants {
            after: Some(keyed_cursor),
            ..base.clone()
        },
        "a cursor made with another key",
    )
    .await;
    assert_invalid_cursor(
        &keyed,
        ZONE,
        &with(base.clone()),
        "a default-key cursor, at an engine with another key",
    )
    .await;

    // A cursor of one listing is refused by the other, even for the same zone, user
    // and order: grants of u1 newest first, personal grants of u1 (newest first).
    for (id, created) in [("p1", 1_000), ("p2", 2_000), ("p3", 3_000)] {
        let mine = personal_grant(ZONE, id, "u1", at(created));
        commit(
            &**engine.storage(),
            [put_personal_grant(&mine, Expect::Absent)],
        )
        .await;
    }
    let personal = engine
        .list_personal_grants(ZONE, "u1", None, Some(2))
        .await
        .expect("list_personal_grants");
    let personal_cursor = personal
        .next_cursor
        .expect("a first page of 2 out of 3 personal grants has a cursor");
    let newest_u1 = ListGrants {
        user_id: Some("u1".into()),
        order: SortOrder::Descending,
        ..base.clone()
    };
    let grants_cursor = engine_page(&engine, ZONE, &newest_u1)
        .await
        .after_cursor
        .expect("u1 has more than two grants");
    let result = engine
        .list_personal_grants(ZONE, "u1", Some(&grants_cursor), Some(2))
        .await;
    assert!(
        matches!(result, Err(Error::InvalidCursor { .. })),
        "a grants cursor, for personal grants: expected Error::InvalidCursor, got {result:?}"
    );
    let as_grants = ListGrants {
        after: Some(personal_cursor),
        ..newest_u1
    };
    assert_invalid_cursor(
        &engine,
        ZONE,
        &as_grants,
        "a personal-grants cursor, for grants",
    )
    .await;

    // Anyone can make a cursor for the default key; it still only picks a position in
    // the caller's zone, even the position of another zone's grant.
    let forged = tenure::cursor::encode(
        &CursorKey::default(),
        Listing::Grants,
        OTHER_ZONE,
        &GrantFilter::default(),
        SortOrder::Ascending,
        &ks("g10"),
    )
    .expect("encode");
    let page = engine_page(
        &engine,
        OTHER_ZONE,
        &ListGrants {
            after: Some(forged),
            ..base.clone()
        },
    )
    .await;
    assert_eq!(
        grant_ids(&page.items),
        ["g12"],
        "a forged cursor for {OTHER_ZONE}"
    );
    assert!(
        page.items.iter().all(|g| g.zone_id == OTHER_ZONE),
        "a forged cursor reached another zone: {page:?}"
    );
    let forged = tenure::cursor::encode(
        &CursorKey::default(),
        Listing::Grants,
        ZONE,
        &GrantFilter::default(),
        SortOrder::Ascending,
        &key(500, "g11"),
    )
    .expect("encode");
    let page = engine_page(
        &engine,
        ZONE,
        &ListGrants {
            after: Some(forged),
            ..base.clone()
        },
    )
    .await;
    assert_eq!(
        grant_ids(&page.items),
        ["g07", "g02"],
        "a forged cursor at another zone's grant"
    );
    assert!(
        page.items.iter().all(|g| g.zone_id == ZONE),
        "a forged cursor reached another zone: {page:?}"
    );
}

// ----- rule 6: the expiry index -----

/// Grants for the expiry index: (id, created ms, stored status, expiry ms). Created,
/// id and expiry orders all differ.
const EXPIRY: [(&str, i64, GrantStatus, i64); 8] = [
    ("x-b", 1_000, ACTIVE, 50_000),
    ("x-h", 2_000, ACTIVE, 900_000),
    ("x-a", 3_000, ACTIVE, 50_000),
    ("x-f", 4_000, REVOKED, 1_000),
    ("x-d", 5_000, ACTIVE, NOW_MS),
    ("x-g", 6_000, EXPIRED, 2_000),
    ("x-e", 7_000, ACTIVE, NOW_MS + 1),
    ("x-c", 8_000, ACTIVE, 10_000),
];

async fn seed_expiry<S: Storage + ?Sized>(store: &S) -> Vec<Grant> {
    let mut grants = Vec::new();
    for (id, created, status, expires) in EXPIRY {
        let g = Grant {
            status,
            ..grant(ZONE, id, at(created), at(expires))
        };
        commit(store, [put_grant(&g, Expect::Absent)]).await;
        grants.push(g);
    }
    // Due grants of another zone, one with an id of this zone's.
    for (id, expires) in [("x-a", 5_000), ("x-z", 1)] {
        commit(
            store,
            [put_grant(
                &grant(OTHER_ZONE, id, at(0), at(expires)),
                Expect::Absent,
            )],
        )
        .await;
    }
    grants
}

/// Rule 6: `expired_grants` yields exactly the grants stored active whose expiry is at
/// or before the given time (not revoked, not stored expired, not yet due, not of
/// another zone), ordered by `(expires_at, id)`, at most `limit`, and writes nothing.
pub async fn expired_grants_in_expiry_order<S: Storage>(store: S) {
    let s = &store;
    let grants = seed_expiry(s).await;
    let stored = |id: &str| {
        v1(grants
            .iter()
            .find(|g| g.id == id)
            .expect("an expiry fixture id")
            .clone())
    };
    assert_eq!(
        expired(s, ZONE, now(), 100).await,
        ["x-c", "x-a", "x-b", "x-d"].map(stored),
        "due grants at now, whole records, in (expires_at, id) order"
    );
    let cases: [(i64, usize, &[&str]); 9] = [
        (NOW_MS, 0, &[]),
        (NOW_MS, 1, &["x-c"]),
        (NOW_MS, 3, &["x-c", "x-a", "x-b"]),
        (NOW_MS, 4, &["x-c", "x-a", "x-b", "x-d"]),
        (NOW_MS - 1, 100, &["x-c", "x-a", "x-b"]),
        (50_000, 100, &["x-c", "x-a", "x-b"]),
        (49_999, 100, &["x-c"]),
        (9_999, 100, &[]),
        (1_000_000, 100, &["x-c", "x-a", "x-b", "x-d", "x-e", "x-h"]),
    ];
    for (ms, limit, expected) in cases {
        assert_eq!(
            ids(&expired(s, ZONE, at(ms), limit).await),
            expected,
            "expired_grants at {ms} ms, limit {limit}"
        );
    }
    assert_eq!(
        ids(&expired(s, OTHER_ZONE, now(), 100).await),
        ["x-z", "x-a"]
    );
    assert!(
        expired(s, OTHER_ZONE, now(), 100)
            .await
            .iter()
            .all(|g| g.record.zone_id == OTHER_ZONE)
    );
    assert_eq!(expired(s, EMPTY_ZONE, far_future(), 100).await, Vec::new());
    assert_eq!(
        get_grant(s, ZONE, "x-c").await,
        Some(stored("x-c")),
        "expired_grants must not write"
    );
}

/// Rule 6, upkeep: a grant leaves the expiry index when its stored status becomes
/// expired or revoked, when its expiry moves later, or when it is deleted; it joins
/// when its expiry moves earlier; updates never list it twice.
pub async fn expiry_index_follows_status_and_deletion<S: Storage>(store: S) {
    let s = &store;
    let grants = seed_expiry(s).await;
    let by_id = |id: &str| {
        grants
            .iter()
            .find(|g| g.id == id)
            .expect("an expiry fixture id")
            .clone()
    };
    commit(
        s,
        [
            put_grant(
                &Grant {
                    status: EXPIRED,
                    refresh_token_set: false,
                    ..by_id("x-c")
                },
                Expect::Version(1),
            ),
            put_grant(
                &Grant {
                    status: REVOKED,
                    ..by_id("x-a")
                },
                Expect::Version(1),
            ),
            put_grant(
                &Grant {
                    expires_at: at(500_000),
                    ..by_id("x-b")
                },
                Expect::Version(1),
            ),
            delete_grant(ZONE, "x-d", 1),
            put_grant(
                &Grant {
                    expires_at: at(20_000),
                    ..by_id("x-e")
                },
                Expect::Version(1),
            ),
            put_grant(
                &Grant {
                    scopes: vec!["once".into()],
                    ..by_id("x-h")
                },
                Expect::Version(1),
            ),
        ],
    )
    .await;
    commit(
        s,
        [put_grant(
            &Grant {
                scopes: vec!["twice".into()],
                ..by_id("x-h")
            },
            Expect::Version(2),
        )],
    )
    .await;
    assert_eq!(
        ids(&expired(s, ZONE, now(), 100).await),
        ["x-e"],
        "due grants at now after the changes"
    );
    assert_eq!(
        ids(&expired(s, ZONE, far_future(), 100).await),
        ["x-e", "x-b", "x-h"],
        "every grant stored active, after the changes"
    );
    let h = expired(s, ZONE, far_future(), 100)
        .await
        .pop()
        .expect("x-h is indexed");
    assert_eq!(
        (h.record.scopes, h.version),
        (vec!["twice".to_owned()], 3),
        "the index yields the grant as stored now"
    );
}

// ----- rule 7: tokens -----

/// Rule 7: `get_token` finds a token by digest in its zone only; `grant_tokens`
/// lists exactly a grant's tokens, once each however often they are updated; a
/// deleted token is gone from both.
pub async fn tokens_by_digest_and_by_grant<S: Storage>(store: S) {
    let s = &store;
    let g1 = grant(ZONE, "grant-1", at(1_000), at(200_000));
    let g2 = grant(ZONE, "grant-2", at(2_000), at(200_000));
    let t1 = token(&g1, "secret-1", TokenKind::Access);
    let t2 = token(&g1, "secret-2", TokenKind::Refresh);
    let t3 = token(&g1, "secret-3", TokenKind::Access);
    let t4 = token(&g2, "secret-4", TokenKind::Refresh);
    commit(
        s,
        [
            put_grant(&g1, Expect::Absent),
            put_token(&t1, Expect::Absent),
            put_token(&t2, Expect::Absent),
        ],
    )
    .await;
    commit(
        s,
        [
            put_grant(&g2, Expect::Absent),
            put_token(&t4, Expect::Absent),
        ],
    )
    .await;
    commit(s, [put_token(&t3, Expect::Absent)]).await;

    for (secret, t) in [
        ("secret-1", &t1),
        ("secret-2", &t2),
        ("secret-3", &t3),
        ("secret-4", &t4),
    ] {
        assert_eq!(
            get_token(s, ZONE, secret).await,
            Some(v1(t.clone())),
            "get_token of {secret}"
        );
        assert_eq!(
            get_token(s, OTHER_ZONE, secret).await,
            None,
            "get_token of {secret} through another zone"
        );
    }
    assert_eq!(get_token(s, ZONE, "secret-unknown").await, None);
    let sorted = |mut v: Vec<Versioned<Token>>| {
        v.sort_by_key(|t| t.record.digest);
        v
    };
    assert_eq!(
        tokens_of(s, ZONE, "grant-1").await,
        sorted(vec![v1(t1.clone()), v1(t2.clone()), v1(t3.clone())])
    );
    assert_eq!(tokens_of(s, ZONE, "grant-2").await, vec![v1(t4.clone())]);
    assert_eq!(tokens_of(s, ZONE, "grant-unknown").await, Vec::new());

    let renumbered = Token {
        generation: 3,
        ..t2.clone()
    };
    commit(s, [put_token(&renumbered, Expect::Version(1))]).await;
    let revoked = Token {
        revoked_at: Some(at(4_000)),
        ..renumbered
    };
    commit(s, [put_token(&revoked, Expect::Version(2))]).await;
    let revoked = Versioned {
        record: revoked,
        version: 3,
    };
    assert_eq!(
        tokens_of(s, ZONE, "grant-1").await,
        sorted(vec![v1(t1.clone()), revoked.clone(), v1(t3.clone())]),
        "an updated token is listed once, as stored now"
    );

    commit(s, [delete_token(ZONE, t1.digest, 1)]).await;
    assert_eq!(
        get_token(s, ZONE, "secret-1").await,
        None,
        "a deleted token is not found by digest"
    );
    assert_eq!(
        tokens_of(s, ZONE, "grant-1").await,
        sorted(vec![revoked, v1(t3.clone())]),
        "a deleted token leaves grant_tokens"
    );
    commit(
        s,
        [
            delete_token(ZONE, t2.digest, 3),
            delete_token(ZONE, t3.digest, 1),
        ],
    )
    .await;
    assert_eq!(tokens_of(s, ZONE, "grant-1").await, Vec::new());
    assert_eq!(
        tokens_of(s, ZONE, "grant-2").await,
        vec![v1(t4)],
        "other grants keep their tokens"
    );
}

/// Rule 7, introspection's read: `get_token_and_grant` answers exactly what
/// `get_token` and then `get_grant` of its grant answer, versions included, in the
/// token's zone only; `get_token_and_grant_facts` answers the same token with the
/// same grant's `GrantFacts` (status, expiry, refresh generation, resource).
pub async fn token_and_grant_read_together<S: Storage>(store: S) {
    let s = &store;
    let g = grant(ZONE, "grant-1", at(1_000), at(200_000));
    let t = token(&g, "secret-1", TokenKind::Access);
    let other = grant(OTHER_ZONE, "grant-9", at(1_000), at(300_000));
    let other_t = token(&other, "secret-1", TokenKind::Refresh);
    commit(
        s,
        [put_grant(&g, Expect::Absent), put_token(&t, Expect::Absent)],
    )
    .await;
    commit(
        s,
        [
            put_grant(&other, Expect::Absent),
            put_token(&other_t, Expect::Absent),
        ],
    )
    .await;
    let refreshed = Grant {
        refreshed_at: Some(at(2_000)),
        refresh: RefreshChain {
            generation: 3,
            ..RefreshChain::default()
        },
        ..g.clone()
    };
    commit(s, [put_grant(&refreshed, Expect::Version(1))]).await;

    let read = |zone: &'static str, secret: &'static str| async move {
        let whole = s
            .get_token_and_grant(zone, &Digest::of(secret))
            .await
            .expect("get_token_and_grant");
        let facts = s
            .get_token_and_grant_facts(zone, &Digest::of(secret))
            .await
            .expect("get_token_and_grant_facts");
        assert_eq!(
            facts,
            whole
                .clone()
                .map(|(t, g)| (t, g.map(|g| GrantFacts::from(g.record)))),
            "get_token_and_grant_facts narrows get_token_and_grant in {zone}"
        );
        whole
    };
    assert_eq!(
        read(ZONE, "secret-1").await,
        Some((
            v1(t.clone()),
            Some(Versioned {
                record: refreshed,
                version: 2
            })
        )),
        "the token with its grant as stored now"
    );
    assert_eq!(
        read(OTHER_ZONE, "secret-1").await,
        Some((v1(other_t), Some(v1(other)))),
        "the same digest in another zone is that zone's token and grant"
    );
    assert_eq!(read(ZONE, "secret-unknown").await, None, "unknown token");
    assert_eq!(read(EMPTY_ZONE, "secret-1").await, None, "empty zone");

    commit(s, [delete_token(ZONE, t.digest, 1)]).await;
    assert_eq!(read(ZONE, "secret-1").await, None, "a deleted token");
}

// ----- rule 1: zones -----

/// Rule 1: the same client, grant, token digest and history in two zones are two
/// records with their own versions; nothing of one zone is reachable through another
/// by any read method; a zone nothing was written to is empty; write sets in one zone
/// leave the other as it was.
pub async fn zones_are_walls<S: Storage>(store: S) {
    let s = &store;
    let mut per_zone = Vec::new();
    for zone in [ZONE, OTHER_ZONE] {
        let c = client(zone, "client-1", &format!("client of {zone}"));
        let g = Grant {
            scopes: vec![format!("scope-of-{zone}")],
            ..grant(zone, "grant-1", at(1_000), at(50_000))
        };
        let t = token(&g, "shared-secret", TokenKind::Refresh);
        let created = transition(&g, None, ACTIVE, TransitionReason::Created, at(1_000));
        // Expect::Absent holds in the second zone although the first holds the same ids.
        commit(
            s,
            [
                put_client(&c, Expect::Absent),
                put_grant(&g, Expect::Absent),
                put_token(&t, Expect::Absent),
                append(created.clone()),
            ],
        )
        .await;
        per_zone.push((c, g, t, created));
    }
    let only_a = grant(ZONE, "grant-2", at(2_000), at(60_000));
    let only_a_token = token(&only_a, "secret-2", TokenKind::Access);
    commit(
        s,
        [
            put_client(&client(ZONE, "client-2", "only in a"), Expect::Absent),
            put_grant(&only_a, Expect::Absent),
            put_token(&only_a_token, Expect::Absent),
            append(transition(
                &only_a,
                None,
                ACTIVE,
                TransitionReason::Created,
                at(2_000),
            )),
        ],
    )
    .await;

    for (c, g, t, created) in &per_zone {
        let zone = c.zone_id.as_str();
        assert_eq!(
            get_client(s, zone, "client-1").await,
            Some(v1(c.clone())),
            "get_client in {zone}"
        );
        assert_eq!(
            get_grant(s, zone, "grant-1").await,
            Some(v1(g.clone())),
            "get_grant in {zone}"
        );
        assert_eq!(
            get_token(s, zone, "shared-secret").await,
            Some(v1(t.clone())),
            "get_token in {zone}"
        );
        assert_eq!(
            tokens_of(s, zone, "grant-1").await,
            vec![v1(t.clone())],
            "grant_tokens in {zone}"
        );
        assert_eq!(
            history(s, zone, "grant-1").await,
            vec![created.clone()],
            "grant_history in {zone}"
        );
    }
    let (b_client, b_grant, _, _) = &per_zone[1];
    let b = OTHER_ZONE;
    assert_eq!(get_client(s, b, "client-2").await, None);
    assert_eq!(clients(s, b, None, 100).await, vec![v1(b_client.clone())]);
    assert_eq!(get_grant(s, b, "grant-2").await, None);
    assert_eq!(get_token(s, b, "secret-2").await, None);
    assert_eq!(tokens_of(s, b, "grant-2").await, Vec::new());
    assert_eq!(history(s, b, "grant-2").await, Vec::new());
    for f in [
        filter(None, None, None, None),
        filter(Some("user-1"), Some("resource-1"), Some("client-1"), None),
    ] {
        assert_eq!(
            list_all(s, b, &f, SortOrder::Ascending, now()).await,
            vec![v1(b_grant.clone())],
            "listing of {f:?} in {b}"
        );
        assert_eq!(count(s, b, &f, now()).await, 1, "count of {f:?} in {b}");
        assert_eq!(
            count(s, ZONE, &f, now()).await,
            2,
            "count of {f:?} in {ZONE}"
        );
    }
    assert_eq!(
        expired(s, b, far_future(), 100).await,
        vec![v1(b_grant.clone())]
    );
    assert_eq!(
        ids(&expired(s, ZONE, far_future(), 100).await),
        ["grant-1", "grant-2"]
    );
    let (_, _, b_token, _) = &per_zone[1];
    assert_eq!(
        expired_tokens(s, b, far_future(), 100).await,
        vec![v1(b_token.clone())],
        "expired_tokens in {b}"
    );
    assert_eq!(
        expired_tokens(s, ZONE, far_future(), 100).await,
        vec![v1(per_zone[0].2.clone()), v1(only_a_token.clone())],
        "expired_tokens in {ZONE}"
    );

    let e = EMPTY_ZONE;
    assert_eq!(get_client(s, e, "client-1").await, None);
    assert_eq!(clients(s, e, None, 100).await, Vec::new());
    assert_eq!(get_grant(s, e, "grant-1").await, None);
    assert_eq!(
        list_all(s, e, &GrantFilter::default(), SortOrder::Descending, now()).await,
        Vec::new()
    );
    assert_eq!(count(s, e, &GrantFilter::default(), now()).await, 0);
    assert_eq!(expired(s, e, far_future(), 100).await, Vec::new());
    assert_eq!(expired_tokens(s, e, far_future(), 100).await, Vec::new());
    assert_eq!(history(s, e, "grant-1").await, Vec::new());
    assert_eq!(get_token(s, e, "shared-secret").await, None);
    assert_eq!(tokens_of(s, e, "grant-1").await, Vec::new());

    // Writes addressed to the other zone do not reach this one's records.
    assert_conflict(
        s,
        [delete_grant(b, "grant-2", 1)],
        "deleting a grant of another zone",
    )
    .await;
    assert_conflict(
        s,
        [delete_token(b, only_a_token.digest, 1)],
        "deleting a token of another zone",
    )
    .await;
    assert_eq!(
        get_grant(s, ZONE, "grant-2").await,
        Some(v1(only_a.clone()))
    );

    let ids_b = ["grant-1", "grant-2"];
    let secrets = ["shared-secret", "secret-2"];
    let before = snapshot(s, b, &ids_b, &secrets).await;
    let (a_client, a_grant, a_token, _) = &per_zone[0];
    commit(
        s,
        [
            put_client(
                &Client {
                    name: "renamed".into(),
                    ..a_client.clone()
                },
                Expect::Version(1),
            ),
            put_grant(
                &Grant {
                    status: REVOKED,
                    ..a_grant.clone()
                },
                Expect::Version(1),
            ),
            delete_token(ZONE, a_token.digest, 1),
            append(transition(
                a_grant,
                Some(ACTIVE),
                REVOKED,
                TransitionReason::Revoked,
                at(3_000),
            )),
        ],
    )
    .await;
    commit(
        s,
        [
            delete_token(ZONE, only_a_token.digest, 1),
            delete_grant(ZONE, "grant-2", 1),
        ],
    )
    .await;
    commit(
        s,
        [put_grant(
            &grant(ZONE, "grant-3", at(3_000), at(4_000)),
            Expect::Absent,
        )],
    )
    .await;
    assert_eq!(
        snapshot(s, b, &ids_b, &secrets).await,
        before,
        "writes in {ZONE} changed {b}"
    );

    // Versions are per zone: the client is at 2 in one zone, still 1 in the other.
    assert_conflict(
        s,
        [put_client(b_client, Expect::Version(2))],
        "another zone's version",
    )
    .await;
    commit(s, [put_client(b_client, Expect::Version(1))]).await;
    assert_eq!(
        get_client(s, b, "client-1").await.map(|c| c.version),
        Some(2)
    );
    assert_eq!(
        get_client(s, ZONE, "client-1")
            .await
            .map(|c| (c.record.name, c.version)),
        Some(("renamed".to_owned(), 2))
    );
}

// ----- rule 4: deletion -----

/// Rule 4: after a grant is deleted (with its tokens, as the engine does), no read
/// method shows it: not `get_grant`, no listing under any filter or order, no count,
/// neither expiry index (grants, tokens), no history, no tokens; positions at its key
/// still work; a grant of another zone with its id stays; re-created, it starts
/// afresh.
pub async fn delete_grant_removes_every_trace<S: Storage>(store: S) {
    let s = &store;
    let all = seed_listing(s).await;
    let doomed = ["g10", "g02", "g01"];
    for id in doomed {
        let g = &all
            .iter()
            .find(|g| g.record.zone_id == ZONE && g.record.id == id)
            .expect("a listing id")
            .record;
        commit(
            s,
            [
                put_token(
                    &token(g, &format!("{id}-access"), TokenKind::Access),
                    Expect::Absent,
                ),
                put_token(
                    &token(g, &format!("{id}-refresh"), TokenKind::Refresh),
                    Expect::Absent,
                ),
                append(transition(
                    g,
                    None,
                    ACTIVE,
                    TransitionReason::Created,
                    g.created_at,
                )),
            ],
        )
        .await;
        assert_eq!(tokens_of(s, ZONE, id).await.len(), 2);
        assert_eq!(history(s, ZONE, id).await.len(), 1);
    }
    assert_eq!(
        ids(&expired(s, ZONE, now(), 100).await),
        ["g05", "g04", "g02"]
    );
    assert_eq!(
        expired_tokens(s, ZONE, far_future(), 100).await.len(),
        2 * doomed.len()
    );

    for id in doomed {
        commit(
            s,
            [
                delete_token(ZONE, Digest::of(&format!("{id}-access")), 1),
                delete_token(ZONE, Digest::of(&format!("{id}-refresh")), 1),
                delete_grant(ZONE, id, 1),
            ],
        )
        .await;
    }
    for id in doomed {
        assert_eq!(
            get_grant(s, ZONE, id).await,
            None,
            "get_grant of deleted {id}"
        );
        assert_eq!(
            history(s, ZONE, id).await,
            Vec::new(),
            "history of deleted {id}"
        );
        assert_eq!(
            tokens_of(s, ZONE, id).await,
            Vec::new(),
            "tokens of deleted {id}"
        );
        assert_eq!(get_token(s, ZONE, &format!("{id}-access")).await, None);
        assert_eq!(get_token(s, ZONE, &format!("{id}-refresh")).await, None);
    }
    assert_eq!(
        expired_tokens(s, ZONE, far_future(), 100).await,
        Vec::new(),
        "tokens deleted with their grants left the token expiry index"
    );
    for (f, expected) in listing_cases() {
        let remaining: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|id| !doomed.contains(id))
            .collect();
        let asc = list_all(s, ZONE, &f, SortOrder::Ascending, now()).await;
        assert_eq!(
            ids(&asc),
            remaining,
            "ascending listing of {f:?} after deletion"
        );
        let desc = list_all(s, ZONE, &f, SortOrder::Descending, now()).await;
        assert_eq!(
            ids(&desc),
            reversed(&remaining),
            "descending listing of {f:?} after deletion"
        );
        assert_eq!(
            count(s, ZONE, &f, now()).await,
            remaining.len() as u64,
            "count of {f:?} after deletion"
        );
    }
    assert_eq!(ids(&expired(s, ZONE, now(), 100).await), ["g05", "g04"]);
    assert_eq!(
        ids(&expired(s, ZONE, far_future(), 100).await),
        ["g05", "g04", "g07", "g08", "g06"]
    );

    let around = |position| {
        query(
            ZONE,
            GrantFilter::default(),
            SortOrder::Ascending,
            position,
            100,
        )
    };
    let page = list(s, &around(Position::After(ks("g10")))).await;
    assert_eq!(
        (ids(&page.items), page.more_before, page.more_after),
        (
            vec!["g03".into(), "g04".into(), "g08".into(), "g06".into()],
            true,
            false
        )
    );
    let page = list(s, &around(Position::Before(ks("g10")))).await;
    assert_eq!(
        (ids(&page.items), page.more_before, page.more_after),
        (vec!["g07".into(), "g05".into(), "g09".into()], false, true)
    );

    assert!(
        get_grant(s, OTHER_ZONE, "g01").await.is_some(),
        "deleting g01 of {ZONE} deleted {OTHER_ZONE}'s"
    );

    let again = grant(ZONE, "g10", at(4_999), at(100_001));
    commit(s, [put_grant(&again, Expect::Absent)]).await;
    assert_eq!(get_grant(s, ZONE, "g10").await, Some(v1(again)));
    assert_eq!(
        history(s, ZONE, "g10").await,
        Vec::new(),
        "a re-created grant has no history"
    );
    assert_eq!(
        tokens_of(s, ZONE, "g10").await,
        Vec::new(),
        "a re-created grant has no tokens"
    );
    let everything = list_all(
        s,
        ZONE,
        &GrantFilter::default(),
        SortOrder::Ascending,
        now(),
    )
    .await;
    assert_eq!(ids(&everything).iter().filter(|id| *id == "g10").count(), 1);
}

// ----- history -----

/// History: `grant_history` returns a grant's transitions in the order they were
/// appended, across sets and within one set (equal times included), apart from other
/// grants' histories; a refused set appends nothing; an unknown grant's is empty.
pub async fn history_in_append_order<S: Storage>(store: S) {
    let s = &store;
    let h1 = grant(ZONE, "h1", at(1_000), at(200_000));
    let h2 = grant(ZONE, "h2", at(1_000), at(200_000));
    let created1 = transition(&h1, None, ACTIVE, TransitionReason::Created, at(1_000));
    let created2 = transition(&h2, None, ACTIVE, TransitionReason::Created, at(1_000));
    commit(
        s,
        [put_grant(&h1, Expect::Absent), append(created1.clone())],
    )
    .await;
    commit(
        s,
        [put_grant(&h2, Expect::Absent), append(created2.clone())],
    )
    .await;
    let by_client = Transition {
        actor: Actor::Client {
            id: "client-1".into(),
        },
        ..transition(
            &h1,
            Some(ACTIVE),
            ACTIVE,
            TransitionReason::Refreshed,
            at(5_000),
        )
    };
    let by_user = Transition {
        actor: Actor::User {
            id: "user-1".into(),
        },
        ..by_client.clone()
    };
    let revoked = Transition {
        actor: Actor::Admin,
        ..transition(
            &h1,
            Some(ACTIVE),
            REVOKED,
            TransitionReason::Revoked,
            at(5_000),
        )
    };
    commit(
        s,
        [
            put_grant(
                &Grant {
                    status: REVOKED,
                    ..h1.clone()
                },
                Expect::Version(1),
            ),
            append(by_client.clone()),
            append(by_user.clone()),
            append(revoked.clone()),
        ],
    )
    .await;
    let expired2 = transition(
        &h2,
        Some(ACTIVE),
        EXPIRED,
        TransitionReason::Expired,
        at(6_000),
    );
    commit(
        s,
        [
            put_grant(
                &Grant {
                    status: EXPIRED,
                    ..h2.clone()
                },
                Expect::Version(1),
            ),
            append(expired2.clone()),
        ],
    )
    .await;
    assert_conflict(
        s,
        [
            put_grant(&h2, Expect::Version(1)),
            append(transition(
                &h2,
                Some(EXPIRED),
                ACTIVE,
                TransitionReason::Created,
                at(7_000),
            )),
        ],
        "a stale set with an append",
    )
    .await;

    assert_eq!(
        history(s, ZONE, "h1").await,
        vec![created1, by_client, by_user, revoked]
    );
    assert_eq!(history(s, ZONE, "h2").await, vec![created2, expired2]);
    assert_eq!(history(s, ZONE, "unknown").await, Vec::new());
    assert_eq!(history(s, OTHER_ZONE, "h1").await, Vec::new());
}

// ----- clients -----

/// Clients: `list_clients` returns a zone's clients ordered by id, starting after
/// `after` (exclusive, whether or not a client has that id), at most `limit`.
pub async fn list_clients_by_id<S: Storage>(store: S) {
    let s = &store;
    for id in ["c-05", "c-01", "c-10", "c-03", "c-07"] {
        commit(s, [put_client(&client(ZONE, id, id), Expect::Absent)]).await;
    }
    for id in ["c-02", "c-04"] {
        commit(s, [put_client(&client(OTHER_ZONE, id, id), Expect::Absent)]).await;
    }
    commit(
        s,
        [put_client(
            &client(ZONE, "c-05", "renamed"),
            Expect::Version(1),
        )],
    )
    .await;
    let listed = |v: Vec<Versioned<Client>>| v.into_iter().map(|c| c.record.id).collect::<Vec<_>>();
    let cases: [(Option<&str>, usize, &[&str]); 10] = [
        (None, 100, &["c-01", "c-03", "c-05", "c-07", "c-10"]),
        (None, 5, &["c-01", "c-03", "c-05", "c-07", "c-10"]),
        (None, 4, &["c-01", "c-03", "c-05", "c-07"]),
        (None, 1, &["c-01"]),
        (None, 0, &[]),
        (Some("c-03"), 2, &["c-05", "c-07"]),
        (Some("c-02"), 100, &["c-03", "c-05", "c-07", "c-10"]),
        (Some("c-00"), 100, &["c-01", "c-03", "c-05", "c-07", "c-10"]),
        (Some("c-07"), 100, &["c-10"]),
        (Some("c-10"), 100, &[]),
    ];
    for (after, limit, expected) in cases {
        assert_eq!(
            listed(clients(s, ZONE, after, limit).await),
            expected,
            "list_clients after {after:?}, limit {limit}"
        );
    }
    let all = clients(s, ZONE, None, 100).await;
    assert_eq!(
        all[2],
        Versioned {
            record: client(ZONE, "c-05", "renamed"),
            version: 2
        }
    );
    assert!(
        all.iter()
            .filter(|c| c.record.id != "c-05")
            .all(|c| c.version == 1)
    );

    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let page = clients(s, ZONE, after.as_deref(), 2).await;
        let Some(last) = page.last() else { break };
        after = Some(last.record.id.clone());
        walked.extend(listed(page));
    }
    assert_eq!(
        walked,
        ["c-01", "c-03", "c-05", "c-07", "c-10"],
        "walking clients two at a time"
    );
    assert_eq!(
        listed(clients(s, OTHER_ZONE, None, 100).await),
        ["c-02", "c-04"]
    );
    assert_eq!(clients(s, EMPTY_ZONE, None, 100).await, Vec::new());
}

// ----- counts -----

/// Counts: `count_grants` agrees with a full listing for every filter at several
/// times, and with the expected number at [`now`].
pub async fn count_grants_agrees_with_listing<S: Storage>(store: S) {
    let s = &store;
    seed_listing(s).await;
    for (f, expected) in listing_cases() {
        assert_eq!(
            count(s, ZONE, &f, now()).await,
            expected.len() as u64,
            "count of {f:?} at now"
        );
        for ms in [0, 55_000, NOW_MS, 1_000_000] {
            let listed = list_all(s, ZONE, &f, SortOrder::Descending, at(ms))
                .await
                .len() as u64;
            assert_eq!(
                count(s, ZONE, &f, at(ms)).await,
                listed,
                "count and listing of {f:?} at {ms} ms"
            );
        }
    }
    assert_eq!(
        count(s, OTHER_ZONE, &GrantFilter::default(), now()).await,
        3
    );
    assert_eq!(
        count(s, EMPTY_ZONE, &GrantFilter::default(), now()).await,
        0
    );
}

// ----- rule 9: personal grants -----

/// An active personal grant of `user` that never expires.
pub fn personal_grant(zone: &str, id: &str, user: &str, created_at: Timestamp) -> PersonalGrant {
    PersonalGrant {
        id: id.into(),
        zone_id: zone.into(),
        user_id: user.into(),
        name: "Personal grant".into(),
        description: None,
        scopes: vec!["read".into()],
        challenge: format!("auth-grant:{id}"),
        status: GrantStatus::Active,
        created_at,
        updated_at: created_at,
        expires_at: None,
    }
}

/// [`Write::PutPersonalGrant`].
pub fn put_personal_grant(grant: &PersonalGrant, expect: Expect) -> Write {
    Write::PutPersonalGrant {
        grant: grant.clone(),
        expect,
    }
}

/// [`Write::DeletePersonalGrant`].
pub fn delete_personal_grant(zone: &str, id: &str, expect: Version) -> Write {
    Write::DeletePersonalGrant {
        zone_id: zone.into(),
        id: id.into(),
        expect,
    }
}

async fn personal_ids<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    user: &str,
    after: Option<&Keyset>,
    limit: usize,
) -> Vec<String> {
    store
        .list_personal_grants(zone, user, after, limit)
        .await
        .expect("list_personal_grants")
        .into_iter()
        .map(|g| g.record.id)
        .collect()
}

/// Rule: [`Storage::list_zone_personal_grants`] yields every personal grant of the
/// zone, whoever owns it, in id order, strictly after `after`, at most `limit`;
/// nothing of another zone, nothing deleted.
pub async fn personal_grants_of_a_zone_by_id<S: Storage>(store: S) {
    let s = &store;
    let rows = [
        ("p3", "u1"),
        ("p1", "u2"),
        ("p5", "u1"),
        ("p2", "u3"),
        ("p4", "u2"),
    ];
    for (i, (id, user)) in rows.into_iter().enumerate() {
        commit(
            s,
            [put_personal_grant(
                &personal_grant(ZONE, id, user, at(1_000 * i as i64)),
                Expect::Absent,
            )],
        )
        .await;
        commit(
            s,
            [put_personal_grant(
                &personal_grant(OTHER_ZONE, &format!("{id}-other"), user, at(1_000)),
                Expect::Absent,
            )],
        )
        .await;
    }
    let ids = |page: Vec<Versioned<PersonalGrant>>| -> Vec<String> {
        page.into_iter().map(|g| g.record.id).collect()
    };
    let all = s
        .list_zone_personal_grants(ZONE, None, 100)
        .await
        .expect("list_zone_personal_grants");
    assert!(
        all.iter().all(|g| g.record.zone_id == ZONE),
        "another zone's personal grant listed"
    );
    assert_eq!(
        ids(all),
        ["p1", "p2", "p3", "p4", "p5"],
        "every personal grant, by id"
    );
    let page = s
        .list_zone_personal_grants(ZONE, Some("p2"), 2)
        .await
        .expect("list_zone_personal_grants");
    assert_eq!(
        ids(page),
        ["p3", "p4"],
        "after is exclusive and limit holds"
    );
    let page = s
        .list_zone_personal_grants(ZONE, Some("p0-missing"), 1)
        .await
        .expect("list_zone_personal_grants");
    assert_eq!(ids(page), ["p1"], "after need not exist");
    let stored = s
        .get_personal_grant(ZONE, "p3")
        .await
        .expect("get_personal_grant")
        .expect("p3 is stored");
    commit(s, [delete_personal_grant(ZONE, "p3", stored.version)]).await;
    let all = s
        .list_zone_personal_grants(ZONE, None, 100)
        .await
        .expect("list_zone_personal_grants");
    assert_eq!(
        ids(all),
        ["p1", "p2", "p4", "p5"],
        "a deleted personal grant is gone"
    );
    assert!(
        s.list_zone_personal_grants(EMPTY_ZONE, None, 100)
            .await
            .expect("list_zone_personal_grants")
            .is_empty()
    );
}

/// Rules 2 and 9 for personal grants: they are versioned like every record; a
/// user's are listed newest first by `(created_at, id)`, strictly after `after`, at
/// most `limit`, never another user's or another zone's; a revoked one stays listed
/// once; a deleted one is gone.
pub async fn personal_grants_by_user_newest_first<S: Storage>(store: S) {
    let s = &store;
    let p = personal_grant(ZONE, "p-versioned", "u9", at(1_000));
    let revisions = [
        p.clone(),
        PersonalGrant {
            name: "renamed".into(),
            ..p.clone()
        },
        PersonalGrant {
            status: REVOKED,
            ..p
        },
    ];
    check_versions(
        "personal grant",
        s,
        revisions,
        put_personal_grant,
        move || async move {
            s.get_personal_grant(ZONE, "p-versioned")
                .await
                .expect("get_personal_grant")
        },
    )
    .await;

    // (id, user, created ms): ties on created_at, ids out of creation order.
    let rows = [
        ("p3", "u1", 3_000),
        ("p1", "u1", 5_000),
        ("p5", "u1", 3_000),
        ("p2", "u1", 1_000),
        ("p4", "u1", 5_000),
        ("q1", "u2", 4_000),
        ("q2", "u2", 2_000),
    ];
    for (id, user, created) in rows {
        commit(
            s,
            [put_personal_grant(
                &personal_grant(ZONE, id, user, at(created)),
                Expect::Absent,
            )],
        )
        .await;
    }
    commit(
        s,
        [put_personal_grant(
            &personal_grant(OTHER_ZONE, "p1", "u1", at(9_000)),
            Expect::Absent,
        )],
    )
    .await;
    commit(
        s,
        [put_personal_grant(
            &personal_grant(OTHER_ZONE, "p9", "u1", at(6_000)),
            Expect::Absent,
        )],
    )
    .await;

    let newest_first = ["p4", "p1", "p5", "p3", "p2"];
    let k = |ms, id| key(ms, id);
    let cases: [(Option<Keyset>, usize, &[&str]); 10] = [
        (None, 100, &newest_first),
        (None, 5, &newest_first),
        (None, 2, &["p4", "p1"]),
        (None, 0, &[]),
        (Some(k(5_000, "p1")), 2, &["p5", "p3"]),
        (Some(k(5_000, "p4")), 100, &["p1", "p5", "p3", "p2"]),
        (Some(k(3_000, "p4")), 100, &["p3", "p2"]),
        (Some(k(1_000, "p2")), 100, &[]),
        (Some(k(999_999, "z")), 100, &newest_first),
        (Some(k(6_000, "p9")), 1, &["p4"]),
    ];
    for (after, limit, expected) in cases {
        assert_eq!(
            personal_ids(s, ZONE, "u1", after.as_ref(), limit).await,
            expected,
            "personal grants of u1 after {after:?}, limit {limit}"
        );
    }
    assert_eq!(personal_ids(s, ZONE, "u2", None, 100).await, ["q1", "q2"]);
    assert_eq!(
        personal_ids(s, ZONE, "nobody", None, 100).await,
        Vec::<String>::new()
    );
    assert_eq!(
        personal_ids(s, OTHER_ZONE, "u1", None, 100).await,
        ["p1", "p9"]
    );
    assert_eq!(
        personal_ids(s, EMPTY_ZONE, "u1", None, 100).await,
        Vec::<String>::new()
    );
    let theirs = s
        .get_personal_grant(OTHER_ZONE, "p1")
        .await
        .expect("get_personal_grant");
    assert_eq!(
        theirs.map(|g| g.record.created_at),
        Some(at(9_000)),
        "the same id in two zones is two records"
    );
    assert_eq!(
        s.get_personal_grant(OTHER_ZONE, "p2")
            .await
            .expect("get_personal_grant"),
        None
    );

    let revoked = PersonalGrant {
        status: REVOKED,
        updated_at: at(7_000),
        ..personal_grant(ZONE, "p5", "u1", at(3_000))
    };
    commit(s, [put_personal_grant(&revoked, Expect::Version(1))]).await;
    assert_eq!(
        personal_ids(s, ZONE, "u1", None, 100).await,
        newest_first,
        "a revoked personal grant stays listed, once"
    );

    assert_conflict(
        s,
        [delete_personal_grant(ZONE, "p5", 1)],
        "DeletePersonalGrant with a stale version",
    )
    .await;
    assert_conflict(
        s,
        [delete_personal_grant(ZONE, "p-missing", 1)],
        "DeletePersonalGrant of a missing record",
    )
    .await;
    assert_conflict(
        s,
        [delete_personal_grant(OTHER_ZONE, "p4", 1)],
        "DeletePersonalGrant through another zone",
    )
    .await;
    commit(
        s,
        [
            delete_personal_grant(ZONE, "p5", 2),
            delete_personal_grant(ZONE, "p4", 1),
        ],
    )
    .await;
    assert_eq!(
        personal_ids(s, ZONE, "u1", None, 100).await,
        ["p1", "p3", "p2"]
    );
    assert_eq!(
        personal_ids(s, ZONE, "u1", Some(&k(5_000, "p4")), 100).await,
        ["p1", "p3", "p2"],
        "after a deleted one's key"
    );
    assert_eq!(
        s.get_personal_grant(ZONE, "p4")
            .await
            .expect("get_personal_grant"),
        None
    );
    assert_eq!(
        personal_ids(s, OTHER_ZONE, "u1", None, 100).await,
        ["p1", "p9"]
    );
}

// ----- rule 8: device authorizations -----

/// A pending device authorization of `client-1`, keyed by the digest of
/// `device_code`, with `user_code` (canonical: eight letters of
/// [`tenure::device::USER_CODE_ALPHABET`]).
pub fn device_authorization(
    zone: &str,
    device_code: &str,
    user_code: &str,
    expires_at: Timestamp,
) -> DeviceAuthorization {
    DeviceAuthorization {
        device_code: Digest::of(device_code),
        zone_id: zone.into(),
        user_code: user_code.into(),
        client_id: "client-1".into(),
        scopes: vec!["read".into()],
        resource_id: "resource-1".into(),
        state: DeviceState::Pending,
        user_id: None,
        grant_id: None,
        created_at: epoch(),
        expires_at,
        interval_seconds: 5,
        last_polled_at: None,
    }
}

/// [`Write::PutDeviceAuthorization`].
pub fn put_device(device: &DeviceAuthorization, expect: Expect) -> Write {
    Write::PutDeviceAuthorization {
        device: device.clone(),
        expect,
    }
}

/// [`Write::DeleteDeviceAuthorization`].
pub fn delete_device(zone: &str, device_code: &str, expect: Version) -> Write {
    Write::DeleteDeviceAuthorization {
        zone_id: zone.into(),
        device_code: Digest::of(device_code),
        expect,
    }
}

async fn device_by_code<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    device_code: &str,
) -> Option<Versioned<DeviceAuthorization>> {
    store
        .get_device_authorization(zone, &Digest::of(device_code))
        .await
        .expect("get_device_authorization")
}

async fn device_by_user_code<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    user_code: &str,
) -> Option<Digest> {
    store
        .find_device_authorization(zone, user_code)
        .await
        .expect("find_device_authorization")
        .map(|d| d.record.device_code)
}

/// Rule 8: a device authorization whose user code belongs to another stored device
/// authorization of the zone is [`Error::Conflict`] and stores nothing; the owner may
/// rewrite its own code or change it, which frees the old one; deletion frees it too;
/// another zone may hold the same code.
pub async fn user_codes_are_unique_in_a_zone<S: Storage>(store: S) {
    let s = &store;
    let d1 = device_authorization(ZONE, "device-1", "BCDFGHJK", at(600_000));
    commit(s, [put_device(&d1, Expect::Absent)]).await;
    let d2 = device_authorization(ZONE, "device-2", "BCDFGHJK", at(600_000));
    assert_conflict(
        s,
        [put_device(&d2, Expect::Absent)],
        "a second device authorization with a taken user code",
    )
    .await;
    assert_eq!(
        device_by_code(s, ZONE, "device-2").await,
        None,
        "a refused device authorization was stored"
    );
    assert_eq!(
        device_by_user_code(s, ZONE, "BCDFGHJK").await,
        Some(d1.device_code),
        "the user code still finds its owner"
    );

    let elsewhere = device_authorization(OTHER_ZONE, "device-2", "BCDFGHJK", at(600_000));
    commit(s, [put_device(&elsewhere, Expect::Absent)]).await;
    assert_eq!(
        device_by_user_code(s, OTHER_ZONE, "BCDFGHJK").await,
        Some(elsewhere.device_code)
    );
    assert_eq!(
        device_by_user_code(s, ZONE, "BCDFGHJK").await,
        Some(d1.device_code),
        "another zone's code does not shadow this one's"
    );

    let claimed = DeviceAuthorization {
        state: DeviceState::Claimed,
        user_id: Some("user-1".into()),
        ..d1.clone()
    };
    commit(s, [put_device(&claimed, Expect::Version(1))]).await;
    assert_eq!(
        device_by_user_code(s, ZONE, "BCDFGHJK").await,
        Some(d1.device_code),
        "rewriting one's own user code keeps it"
    );

    let recoded = DeviceAuthorization {
        user_code: "CDFGHJKL".into(),
        ..claimed
    };
    commit(s, [put_device(&recoded, Expect::Version(2))]).await;
    assert_eq!(
        device_by_user_code(s, ZONE, "BCDFGHJK").await,
        None,
        "a changed user code frees the old one"
    );
    assert_eq!(
        device_by_user_code(s, ZONE, "CDFGHJKL").await,
        Some(d1.device_code)
    );
    commit(s, [put_device(&d2, Expect::Absent)]).await;
    assert_eq!(
        device_by_user_code(s, ZONE, "BCDFGHJK").await,
        Some(d2.device_code)
    );

    commit(s, [delete_device(ZONE, "device-2", 1)]).await;
    assert_eq!(
        device_by_user_code(s, ZONE, "BCDFGHJK").await,
        None,
        "a deleted device authorization frees its user code"
    );
}

/// Rule 8 within one set: a set creating two device authorizations with one user
/// code is [`Error::Conflict`] and stores neither; otherwise the zone would hold two
/// device authorizations with the same code, one of them unreachable by it.
pub async fn user_codes_are_unique_within_a_write_set<S: Storage>(store: S) {
    let s = &store;
    let twin_a = device_authorization(ZONE, "device-3", "DFGHJKLM", at(600_000));
    let twin_b = device_authorization(ZONE, "device-4", "DFGHJKLM", at(600_000));
    assert_conflict(
        s,
        [
            put_device(&twin_a, Expect::Absent),
            put_device(&twin_b, Expect::Absent),
        ],
        "one set creating two device authorizations with one user code",
    )
    .await;
    assert_eq!(
        device_by_code(s, ZONE, "device-3").await,
        None,
        "a refused set stored a device authorization"
    );
    assert_eq!(
        device_by_code(s, ZONE, "device-4").await,
        None,
        "a refused set stored a device authorization"
    );
    assert_eq!(device_by_user_code(s, ZONE, "DFGHJKLM").await, None);
}

/// Rules 2 and 8 for device authorizations: versioned like every record, found by
/// device-code digest and by user code in their zone only; the expiry index yields
/// those whose expiry is at or before the given time, in `(expires_at, device code)`
/// order, at most `limit`, and follows updates and deletions.
pub async fn device_authorizations_by_code_and_expiry<S: Storage>(store: S) {
    let s = &store;
    let d = device_authorization(ZONE, "device-v", "GHJKLMNP", at(600_000));
    let revisions = [
        d.clone(),
        DeviceAuthorization {
            state: DeviceState::Claimed,
            user_id: Some("user-1".into()),
            ..d.clone()
        },
        DeviceAuthorization {
            state: DeviceState::Approved,
            user_id: Some("user-1".into()),
            grant_id: Some("grant-1".into()),
            ..d
        },
    ];
    check_versions(
        "device authorization",
        s,
        revisions,
        put_device,
        move || async move { device_by_code(s, ZONE, "device-v").await },
    )
    .await;
    assert_conflict(
        s,
        [delete_device(ZONE, "device-v", 2)],
        "DeleteDeviceAuthorization with a stale version",
    )
    .await;
    assert_conflict(
        s,
        [delete_device(ZONE, "device-missing", 1)],
        "DeleteDeviceAuthorization of a missing record",
    )
    .await;
    assert_conflict(
        s,
        [delete_device(OTHER_ZONE, "device-v", 3)],
        "DeleteDeviceAuthorization through another zone",
    )
    .await;
    commit(s, [delete_device(ZONE, "device-v", 3)]).await;
    assert_eq!(device_by_code(s, ZONE, "device-v").await, None);
    assert_eq!(device_by_user_code(s, ZONE, "GHJKLMNP").await, None);

    // (device code, user code, state, expiry ms): every state, ties on expiry.
    let rows = [
        ("dev-a", "BBBBBBBB", DeviceState::Pending, 50_000),
        ("dev-b", "CCCCCCCC", DeviceState::Claimed, 50_000),
        ("dev-c", "DDDDDDDD", DeviceState::Approved, 10_000),
        ("dev-d", "FFFFFFFF", DeviceState::Denied, NOW_MS),
        ("dev-e", "GGGGGGGG", DeviceState::Redeemed, NOW_MS + 1),
        ("dev-f", "HHHHHHHH", DeviceState::Pending, 900_000),
        ("dev-g", "JJJJJJJJ", DeviceState::Pending, 50_000),
    ];
    let mut devices = Vec::new();
    for (code, user_code, state, expires) in rows {
        let device = DeviceAuthorization {
            state,
            ..device_authorization(ZONE, code, user_code, at(expires))
        };
        commit(s, [put_device(&device, Expect::Absent)]).await;
        devices.push(device);
    }
    commit(
        s,
        [put_device(
            &device_authorization(OTHER_ZONE, "dev-a", "BBBBBBBB", at(1)),
            Expect::Absent,
        )],
    )
    .await;
    for device in &devices {
        assert_eq!(
            s.get_device_authorization(ZONE, &device.device_code)
                .await
                .expect("get_device_authorization"),
            Some(v1(device.clone()))
        );
        assert_eq!(
            device_by_user_code(s, ZONE, &device.user_code).await,
            Some(device.device_code)
        );
    }
    assert_eq!(device_by_user_code(s, ZONE, "KKKKKKKK").await, None);
    assert_eq!(
        device_by_code(s, OTHER_ZONE, "dev-a")
            .await
            .map(|d| d.record.expires_at),
        Some(at(1)),
        "the same device code in two zones is two records"
    );
    assert_eq!(device_by_code(s, OTHER_ZONE, "dev-b").await, None);
    assert_eq!(device_by_user_code(s, OTHER_ZONE, "CCCCCCCC").await, None);

    let due = |ms: i64| {
        let mut due: Vec<&DeviceAuthorization> =
            devices.iter().filter(|d| d.expires_at <= at(ms)).collect();
        due.sort_by_key(|d| (d.expires_at, d.device_code));
        due.into_iter().map(|d| v1(d.clone())).collect::<Vec<_>>()
    };
    let expired_devices = |zone: &'static str, ms: i64, limit: usize| async move {
        s.expired_device_authorizations(zone, at(ms), limit)
            .await
            .expect("expired_device_authorizations")
    };
    assert_eq!(
        due(NOW_MS).len(),
        5,
        "the fixture has five due device authorizations at now"
    );
    for ms in [9_999, 10_000, 50_000, NOW_MS, 1_000_000] {
        assert_eq!(
            expired_devices(ZONE, ms, 100).await,
            due(ms),
            "expired device authorizations at {ms} ms"
        );
    }
    for limit in [0, 1, 3] {
        let expected: Vec<_> = due(NOW_MS).into_iter().take(limit).collect();
        assert_eq!(
            expired_devices(ZONE, NOW_MS, limit).await,
            expected,
            "expired device authorizations, limit {limit}"
        );
    }
    assert_eq!(expired_devices(OTHER_ZONE, NOW_MS, 100).await.len(), 1);

    let later = DeviceAuthorization {
        expires_at: at(700_000),
        ..devices[2].clone()
    };
    commit(
        s,
        [
            put_device(&later, Expect::Version(1)),
            delete_device(ZONE, "dev-a", 1),
        ],
    )
    .await;
    let codes: Vec<Digest> = expired_devices(ZONE, NOW_MS, 100)
        .await
        .into_iter()
        .map(|d| d.record.device_code)
        .collect();
    let mut expected: Vec<(Timestamp, Digest)> = [&devices[1], &devices[3], &devices[6]]
        .into_iter()
        .map(|d| (d.expires_at, d.device_code))
        .collect();
    expected.sort();
    assert_eq!(
        codes,
        expected.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
        "the index follows a moved expiry and a deletion"
    );
}

// ----- rule 16: device authorizations listed by device code -----

async fn listed_devices<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    after: Option<Digest>,
    limit: usize,
) -> Vec<Versioned<DeviceAuthorization>> {
    store
        .list_device_authorizations(zone, after.as_ref(), limit)
        .await
        .expect("list_device_authorizations")
}

/// Rule 16: `list_device_authorizations` yields a zone's device authorizations in
/// every state, expired ones included, in byte order of their device-code digests;
/// `after` starts strictly after a digest, stored or not; `limit` cuts the list,
/// pages of it put end to end give all of it; a rewritten one shows its new version
/// and a deleted one is gone. Another zone's, and one of a zone whose id extends
/// this one's, never show through, even after one of their digests.
pub async fn device_authorizations_listed_by_code<S: Storage>(store: S) {
    let s = &store;
    let longer_zone = format!("{ZONE}b");
    assert!(listed_devices(s, ZONE, None, 100).await.is_empty());

    // (device code, user code, state, expiry ms): every state, some long expired.
    let rows = [
        ("list-a", "BBBBBBBB", DeviceState::Pending, 50_000),
        ("list-b", "CCCCCCCC", DeviceState::Claimed, 10_000),
        ("list-c", "DDDDDDDD", DeviceState::Approved, NOW_MS),
        ("list-d", "FFFFFFFF", DeviceState::Denied, 900_000),
        ("list-e", "GGGGGGGG", DeviceState::Redeemed, 1),
        ("list-f", "HHHHHHHH", DeviceState::Pending, 1),
        ("list-g", "JJJJJJJJ", DeviceState::Pending, 600_000),
    ];
    let mut devices = Vec::new();
    for (code, user_code, state, expires) in rows {
        let device = DeviceAuthorization {
            state,
            ..device_authorization(ZONE, code, user_code, at(expires))
        };
        commit(s, [put_device(&device, Expect::Absent)]).await;
        devices.push(device);
    }
    // Look-alikes: the same device code elsewhere, and codes only elsewhere.
    for (zone, code, user_code) in [
        (OTHER_ZONE, "list-a", "KKKKKKKK"),
        (OTHER_ZONE, "list-z", "LLLLLLLL"),
        (longer_zone.as_str(), "list-y", "KKKKKKKK"),
    ] {
        let device = device_authorization(zone, code, user_code, at(1));
        commit(s, [put_device(&device, Expect::Absent)]).await;
    }
    devices.sort_by_key(|d| d.device_code);
    let expected: Vec<_> = devices.iter().cloned().map(v1).collect();

    assert_eq!(
        listed_devices(s, ZONE, None, 100).await,
        expected,
        "every state, expired ones too, in device-code order"
    );
    assert!(listed_devices(s, EMPTY_ZONE, None, 100).await.is_empty());
    assert_eq!(listed_devices(s, OTHER_ZONE, None, 100).await.len(), 2);
    assert_eq!(listed_devices(s, &longer_zone, None, 100).await.len(), 1);
    for limit in [0, 1, 3, 6, 7, 8] {
        assert_eq!(
            listed_devices(s, ZONE, None, limit).await,
            expected.iter().take(limit).cloned().collect::<Vec<_>>(),
            "limit {limit}"
        );
    }
    for (i, device) in devices.iter().enumerate() {
        assert_eq!(
            listed_devices(s, ZONE, Some(device.device_code), 100).await,
            expected[i + 1..].to_vec(),
            "after the {i}th digest"
        );
    }
    for code in ["list-z", "list-y", "not-stored"] {
        let after = Digest::of(code);
        let following: Vec<_> = expected
            .iter()
            .filter(|d| d.record.device_code > after)
            .cloned()
            .collect();
        assert_eq!(
            listed_devices(s, ZONE, Some(after), 100).await,
            following,
            "after the digest of {code:?}, which this zone does not hold"
        );
    }
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = listed_devices(s, ZONE, after, 2).await;
        let Some(last) = page.last() else { break };
        after = Some(last.record.device_code);
        walked.extend(page);
    }
    assert_eq!(walked, expected, "pages of two, end to end");

    let decided = DeviceAuthorization {
        state: DeviceState::Denied,
        user_id: Some("user-1".into()),
        ..devices[0].clone()
    };
    let gone = [devices[1].clone(), devices[6].clone()];
    let mut writes = vec![put_device(&decided, Expect::Version(1))];
    for d in &gone {
        writes.push(Write::DeleteDeviceAuthorization {
            zone_id: ZONE.into(),
            device_code: d.device_code,
            expect: 1,
        });
    }
    commit(s, writes).await;
    let mut remaining = vec![Versioned {
        record: decided,
        version: 2,
    }];
    remaining.extend(expected[2..6].iter().cloned());
    assert_eq!(
        listed_devices(s, ZONE, None, 100).await,
        remaining,
        "a rewritten one at its new version, deleted ones gone"
    );
    assert_eq!(
        listed_devices(s, ZONE, Some(gone[0].device_code), 100).await,
        remaining[1..].to_vec(),
        "after the digest of a deleted one"
    );
    assert_eq!(
        listed_devices(s, OTHER_ZONE, None, 100).await.len(),
        2,
        "deleting in one zone leaves another's"
    );
}

// ----- rule 11: checks -----

/// The writes that ride along with a check in [`checks_guard_without_writing`]: a
/// client renamed (expecting `client_version`), and a new grant `side-{n}` with a
/// token and its creation entry.
fn side_writes(n: usize, client_version: Version) -> Vec<Write> {
    let g = grant(ZONE, &format!("side-{n}"), at(3_000), at(200_000));
    vec![
        put_client(
            &client(ZONE, "client-side", &format!("side {n}")),
            Expect::Version(client_version),
        ),
        put_grant(&g, Expect::Absent),
        put_token(
            &token(&g, &format!("side-secret-{n}"), TokenKind::Access),
            Expect::Absent,
        ),
        append(transition(
            &g,
            None,
            ACTIVE,
            TransitionReason::Created,
            at(3_000),
        )),
    ]
}

/// Rule 11, guards: a [`Write::Check`] of a client, a grant or a token with the
/// stored version lets its set apply and leaves the checked record as it was, at its
/// version; a check with a stale or future version, [`Expect::Absent`] on a present
/// record or [`Expect::Version`] on an absent one refuses the whole set with
/// [`Error::Conflict`], the other writes in it included, wherever it sits; a check
/// sees only its own zone's records.
pub async fn checks_guard_without_writing<S: Storage>(store: S) {
    let s = &store;
    // The checked records are at version 2 in ZONE; OTHER_ZONE holds look-alikes
    // with the same keys at version 1, and records ZONE does not hold at all.
    let c = client(ZONE, "client-1", "checked");
    let g = grant(ZONE, "grant-1", at(1_000), at(200_000));
    let t = token(&g, "secret-1", TokenKind::Access);
    commit(
        s,
        [
            put_client(&c, Expect::Absent),
            put_grant(&g, Expect::Absent),
            put_token(&t, Expect::Absent),
            put_client(&client(ZONE, "client-side", "side"), Expect::Absent),
        ],
    )
    .await;
    let c = Client {
        name: "checked, renamed".into(),
        ..c
    };
    let g = Grant {
        scopes: vec!["read".into(), "write".into()],
        updated_at: at(2_000),
        ..g
    };
    let t = Token {
        revoked_at: Some(at(2_000)),
        ..t
    };
    commit(
        s,
        [
            put_client(&c, Expect::Version(1)),
            put_grant(&g, Expect::Version(1)),
            put_token(&t, Expect::Version(1)),
        ],
    )
    .await;
    let other_g = grant(OTHER_ZONE, "grant-1", at(1_000), at(300_000));
    let other_only = grant(OTHER_ZONE, "grant-b", at(1_000), at(300_000));
    commit(
        s,
        [
            put_client(
                &client(OTHER_ZONE, "client-1", "look-alike"),
                Expect::Absent,
            ),
            put_client(&client(OTHER_ZONE, "client-b", "only in b"), Expect::Absent),
            put_grant(&other_g, Expect::Absent),
            put_grant(&other_only, Expect::Absent),
            put_token(
                &token(&other_g, "secret-1", TokenKind::Refresh),
                Expect::Absent,
            ),
            put_token(
                &token(&other_only, "secret-b", TokenKind::Access),
                Expect::Absent,
            ),
        ],
    )
    .await;
    let checked = || async {
        (
            get_client(s, ZONE, "client-1").await,
            get_grant(s, ZONE, "grant-1").await,
            get_token(s, ZONE, "secret-1").await,
        )
    };
    let as_stored = (
        Some(Versioned {
            record: c.clone(),
            version: 2,
        }),
        Some(Versioned {
            record: g.clone(),
            version: 2,
        }),
        Some(Versioned {
            record: t.clone(),
            version: 2,
        }),
    );
    assert_eq!(checked().await, as_stored);

    // (what, key in ZONE, key of the same id only OTHER_ZONE holds, key missing
    // everywhere, key of the look-alike in OTHER_ZONE)
    let kinds = [
        (
            "client",
            client_key(ZONE, "client-1"),
            client_key(ZONE, "client-b"),
            client_key(ZONE, "client-missing"),
            client_key(OTHER_ZONE, "client-1"),
        ),
        (
            "grant",
            grant_key(ZONE, "grant-1"),
            grant_key(ZONE, "grant-b"),
            grant_key(ZONE, "grant-missing"),
            grant_key(OTHER_ZONE, "grant-1"),
        ),
        (
            "token",
            token_key(ZONE, "secret-1"),
            token_key(ZONE, "secret-b"),
            token_key(ZONE, "secret-missing"),
            token_key(OTHER_ZONE, "secret-1"),
        ),
    ];

    let mut refused = Vec::new();
    let mut passing = Vec::new();
    for (kind, stored, elsewhere, missing, look_alike) in &kinds {
        for (expect, why) in [
            (Expect::Version(1), "a stale version"),
            (Expect::Version(3), "a version ahead of the stored one"),
            (Expect::Absent, "Expect::Absent on a present record"),
        ] {
            refused.push((
                format!("a {kind} check with {why}"),
                check(stored.clone(), expect),
            ));
        }
        refused.push((
            format!("a {kind} check expecting a version of a missing record"),
            check(missing.clone(), Expect::Version(1)),
        ));
        refused.push((
            format!("a {kind} check expecting a version of a record only another zone holds"),
            check(elsewhere.clone(), Expect::Version(1)),
        ));
        refused.push((
            format!("a {kind} check of another zone expecting this zone's version"),
            check(look_alike.clone(), Expect::Version(2)),
        ));
        passing.push((
            format!("a {kind} check with the stored version"),
            check(stored.clone(), Expect::Version(2)),
        ));
        passing.push((
            format!("a {kind} check expecting absent a record only another zone holds"),
            check(elsewhere.clone(), Expect::Absent),
        ));
        passing.push((
            format!("a {kind} check expecting absent a missing record"),
            check(missing.clone(), Expect::Absent),
        ));
        passing.push((
            format!("a {kind} check of another zone with that zone's version"),
            check(look_alike.clone(), Expect::Version(1)),
        ));
    }

    let grant_ids = ["grant-1", "grant-b", "grant-missing", "side-0"];
    let secrets = ["secret-1", "secret-b", "secret-missing", "side-secret-0"];
    let before = (
        snapshot(s, ZONE, &grant_ids, &secrets).await,
        snapshot(s, OTHER_ZONE, &grant_ids, &secrets).await,
    );
    let writes = side_writes(0, 1);
    for (why, bad) in &refused {
        for position in [0, writes.len() / 2, writes.len()] {
            let mut set = writes.clone();
            set.insert(position, bad.clone());
            assert_conflict(
                s,
                set,
                &format!("a set holding {why} at position {position}"),
            )
            .await;
            assert_eq!(
                (
                    snapshot(s, ZONE, &grant_ids, &secrets).await,
                    snapshot(s, OTHER_ZONE, &grant_ids, &secrets).await,
                ),
                before,
                "a refused set holding {why} at position {position} changed the store"
            );
        }
    }

    for (n, (why, good)) in passing.iter().enumerate() {
        let mut set = side_writes(n, n as Version + 1);
        let position = if n % 2 == 0 { 0 } else { set.len() };
        set.insert(position, good.clone());
        if let Err(e) = s.apply(write_set(set)).await {
            panic!("a set holding {why} was refused: {e:?}");
        }
        assert_eq!(
            checked().await,
            as_stored,
            "a set holding {why} changed a checked record or its version"
        );
        assert_eq!(
            get_grant(s, ZONE, &format!("side-{n}"))
                .await
                .map(|g| g.version),
            Some(1),
            "a set holding {why} did not apply its other writes"
        );
        assert_eq!(
            get_client(s, ZONE, "client-side").await.map(|c| c.version),
            Some(n as Version + 2),
            "a set holding {why} did not apply its other writes"
        );
    }
    assert_eq!(
        snapshot(s, OTHER_ZONE, &grant_ids, &secrets).await,
        before.1,
        "checks of {OTHER_ZONE}'s records changed them"
    );

    // A set of checks alone applies and writes nothing; a set of a check that holds
    // and one that fails applies nothing.
    let all_stored: Vec<Write> = kinds
        .iter()
        .map(|k| check(k.1.clone(), Expect::Version(2)))
        .collect();
    commit(s, all_stored.clone()).await;
    assert_eq!(checked().await, as_stored, "a set of checks alone wrote");
    let mut mixed = all_stored;
    mixed.push(check(grant_key(ZONE, "side-0"), Expect::Version(2)));
    assert_conflict(s, mixed, "checks that hold with one that fails").await;

    // The checked records are still at version 2: the next write expects 2.
    commit(
        s,
        [
            put_client(&c, Expect::Version(2)),
            put_grant(&g, Expect::Version(2)),
            put_token(&t, Expect::Version(2)),
        ],
    )
    .await;
    assert_eq!(
        checked().await,
        (
            Some(Versioned {
                record: c,
                version: 3,
            }),
            Some(Versioned {
                record: g,
                version: 3,
            }),
            Some(Versioned {
                record: t,
                version: 3,
            }),
        ),
        "a write after checks expects the version the checks saw"
    );
}

// ----- rule 12: the token expiry index -----

/// Tokens for the token expiry index: (zone, grant, secret, kind, expiry ms),
/// written one set each in this order. Four share an expiry (so the digest breaks
/// the tie), two share [`NOW_MS`]; one of them is revoked alone and one grant is
/// stored revoked, which the index ignores.
const TOKEN_EXPIRY: [(&str, &str, &str, TokenKind, i64); 11] = [
    (ZONE, "tx-a", "tok-1", TokenKind::Access, 50_000),
    (ZONE, "tx-b", "tok-2", TokenKind::Refresh, 50_000),
    (ZONE, "tx-a", "tok-3", TokenKind::Refresh, 50_000),
    (ZONE, "tx-b", "tok-4", TokenKind::Access, 50_000),
    (ZONE, "tx-a", "tok-5", TokenKind::Access, 10_000),
    (ZONE, "tx-b", "tok-6", TokenKind::Access, NOW_MS),
    (ZONE, "tx-a", "tok-7", TokenKind::Refresh, NOW_MS + 1),
    (ZONE, "tx-b", "tok-8", TokenKind::Refresh, 900_000),
    (ZONE, "tx-a", "tok-9", TokenKind::Access, NOW_MS),
    (OTHER_ZONE, "tx-a", "tok-1", TokenKind::Access, 5_000),
    (OTHER_ZONE, "tx-a", "tok-z", TokenKind::Refresh, 1),
];

/// The tokens of `model` in `zone` whose expiry is at or before `ms`, in
/// `(expires_at, digest)` order: what `expired_tokens` must answer.
fn due_tokens(model: &[Versioned<Token>], zone: &str, ms: i64) -> Vec<Versioned<Token>> {
    let mut due: Vec<Versioned<Token>> = model
        .iter()
        .filter(|t| t.record.zone_id == zone && t.record.expires_at <= at(ms))
        .cloned()
        .collect();
    due.sort_by_key(|t| (t.record.expires_at, t.record.digest));
    due
}

/// Replaces or adds `token` in `model`.
fn model_put(model: &mut Vec<Versioned<Token>>, token: Versioned<Token>) {
    let key = (token.record.zone_id.clone(), token.record.digest);
    model.retain(|t| (t.record.zone_id.clone(), t.record.digest) != key);
    model.push(token);
}

/// Removes the token of `zone` keyed by the digest of `secret` from `model`.
fn model_delete(model: &mut Vec<Versioned<Token>>, zone: &str, secret: &str) {
    let digest = Digest::of(secret);
    model.retain(|t| !(t.record.zone_id == zone && t.record.digest == digest));
}

/// Rule 12: `expired_tokens` yields exactly a zone's tokens whose expiry is at or
/// before the given time (whether revoked or not, whatever their grant's status),
/// whole, ordered by `(expires_at, digest)`, at most `limit` (the first ones), and
/// writes nothing; the index follows deletions (alone, or with the grant), moved
/// expiries and updates, and lists a token once.
pub async fn expired_tokens_in_expiry_order<S: Storage>(store: S) {
    let s = &store;
    let tx_a = grant(ZONE, "tx-a", at(0), far_future());
    let tx_b = Grant {
        status: REVOKED,
        ..grant(ZONE, "tx-b", at(0), far_future())
    };
    let other_a = grant(OTHER_ZONE, "tx-a", at(0), far_future());
    commit(
        s,
        [
            put_grant(&tx_a, Expect::Absent),
            put_grant(&tx_b, Expect::Absent),
            put_grant(&other_a, Expect::Absent),
        ],
    )
    .await;
    let mut model = Vec::new();
    for (zone, grant_id, secret, kind, expires) in TOKEN_EXPIRY {
        let of = match (zone, grant_id) {
            (ZONE, "tx-a") => &tx_a,
            (ZONE, _) => &tx_b,
            _ => &other_a,
        };
        let t = Token {
            expires_at: at(expires),
            revoked_at: (secret == "tok-4").then(|| at(1_000)),
            ..token(of, secret, kind)
        };
        commit(s, [put_token(&t, Expect::Absent)]).await;
        model.push(v1(t));
    }
    let tied: Vec<Digest> = TOKEN_EXPIRY
        .iter()
        .filter(|row| row.0 == ZONE && row.4 == 50_000)
        .map(|row| Digest::of(row.2))
        .collect();
    assert!(
        tied.windows(2).any(|w| w[0] > w[1]),
        "the fixture's tied tokens must not be written in digest order"
    );

    let due_now = due_tokens(&model, ZONE, NOW_MS);
    assert_eq!(due_now.len(), 7, "the fixture has seven due tokens at now");
    assert_eq!(
        expired_tokens(s, ZONE, now(), 100).await,
        due_now,
        "due tokens at now, whole records, in (expires_at, digest) order"
    );
    for ms in [
        0,
        9_999,
        10_000,
        49_999,
        50_000,
        NOW_MS - 1,
        NOW_MS,
        NOW_MS + 1,
        1_000_000,
    ] {
        assert_eq!(
            expired_tokens(s, ZONE, at(ms), 100).await,
            due_tokens(&model, ZONE, ms),
            "expired_tokens at {ms} ms"
        );
    }
    for limit in [0, 1, 2, 3, 4, 6, 7] {
        let expected: Vec<_> = due_now.iter().take(limit).cloned().collect();
        assert_eq!(
            expired_tokens(s, ZONE, now(), limit).await,
            expected,
            "expired_tokens at now, limit {limit}"
        );
    }
    assert_eq!(
        expired_tokens(s, OTHER_ZONE, now(), 100).await,
        due_tokens(&model, OTHER_ZONE, NOW_MS),
        "expired_tokens of {OTHER_ZONE}"
    );
    assert_eq!(
        due_tokens(&model, OTHER_ZONE, NOW_MS).len(),
        2,
        "the fixture has two due tokens in {OTHER_ZONE}"
    );
    assert_eq!(
        expired_tokens(s, EMPTY_ZONE, far_future(), 100).await,
        Vec::new()
    );
    assert_eq!(
        get_token(s, ZONE, "tok-1").await,
        Some(v1(model[0].record.clone())),
        "expired_tokens must not write"
    );

    // A token deleted alone; a grant deleted with its tokens.
    commit(s, [delete_token(ZONE, Digest::of("tok-3"), 1)]).await;
    model_delete(&mut model, ZONE, "tok-3");
    let mut deletion = Vec::new();
    for secret in ["tok-2", "tok-4", "tok-6", "tok-8"] {
        deletion.push(delete_token(ZONE, Digest::of(secret), 1));
        model_delete(&mut model, ZONE, secret);
    }
    deletion.push(delete_grant(ZONE, "tx-b", 1));
    commit(s, deletion).await;
    assert_eq!(
        expired_tokens(s, ZONE, far_future(), 100).await,
        due_tokens(&model, ZONE, 1_000_000_000),
        "deleted tokens left the index"
    );

    // A due token replaced with a later expiry, a later one with an earlier expiry,
    // one updated with its expiry unchanged, and a new one put with an early expiry.
    let by_secret = |model: &[Versioned<Token>], secret: &str| {
        model
            .iter()
            .find(|t| t.record.zone_id == ZONE && t.record.digest == Digest::of(secret))
            .map(|t| t.record.clone())
            .expect("a token of the fixture")
    };
    let later = Token {
        expires_at: at(800_000),
        ..by_secret(&model, "tok-1")
    };
    let earlier = Token {
        expires_at: at(20_000),
        ..by_secret(&model, "tok-7")
    };
    let revoked = Token {
        revoked_at: Some(at(3_000)),
        ..by_secret(&model, "tok-9")
    };
    let fresh = Token {
        expires_at: at(2_000),
        ..token(&tx_a, "tok-10", TokenKind::Access)
    };
    commit(
        s,
        [
            put_token(&later, Expect::Version(1)),
            put_token(&earlier, Expect::Version(1)),
        ],
    )
    .await;
    commit(s, [put_token(&revoked, Expect::Version(1))]).await;
    commit(s, [put_token(&fresh, Expect::Absent)]).await;
    for (t, version) in [(later, 2), (earlier, 2), (revoked, 2), (fresh, 1)] {
        model_put(&mut model, Versioned { record: t, version });
    }
    for ms in [0, 2_000, 20_000, NOW_MS, 800_000, 1_000_000_000] {
        assert_eq!(
            expired_tokens(s, ZONE, at(ms), 100).await,
            due_tokens(&model, ZONE, ms),
            "expired_tokens at {ms} ms after moved expiries and updates"
        );
    }
    assert_eq!(
        expired_tokens(s, ZONE, now(), 2).await,
        due_tokens(&model, ZONE, NOW_MS)[..2],
        "a limit after the changes"
    );
    assert_eq!(
        expired_tokens(s, OTHER_ZONE, far_future(), 100).await,
        due_tokens(&model, OTHER_ZONE, 1_000_000_000),
        "changes in {ZONE} reached {OTHER_ZONE}'s index"
    );
}

// ----- rule 13: a grant's state is stored whole -----

/// Reads `grants` (of [`ZONE`], in `created_at` order, all due at [`now`]) and
/// `tokens` back through every read method that returns them, and checks each shows
/// them exactly as given, versions included.
async fn check_stored_whole<S: Storage + ?Sized>(
    store: &S,
    grants: &[Versioned<Grant>],
    tokens: &[Versioned<Token>],
    when: &str,
) {
    for g in grants {
        assert_eq!(
            get_grant(store, ZONE, &g.record.id).await.as_ref(),
            Some(g),
            "get_grant of {} {when}",
            g.record.id
        );
    }
    for f in [
        GrantFilter::default(),
        filter(Some("user-1"), None, None, Some(EXPIRED)),
    ] {
        assert_eq!(
            list_all(store, ZONE, &f, SortOrder::Ascending, now()).await,
            grants,
            "list_grants of {f:?} {when}"
        );
    }
    let mut by_expiry = grants.to_vec();
    by_expiry.sort_by_key(|g| (g.record.expires_at, g.record.id.clone()));
    assert_eq!(
        expired(store, ZONE, now(), 100).await,
        by_expiry,
        "expired_grants {when}"
    );
    for t in tokens {
        let of = grants
            .iter()
            .find(|g| g.record.id == t.record.grant_id)
            .cloned();
        assert_eq!(
            store
                .get_token_and_grant(ZONE, &t.record.digest)
                .await
                .expect("get_token_and_grant"),
            Some((t.clone(), of)),
            "get_token_and_grant of a token of generation {} {when}",
            t.record.generation
        );
    }
    let mut by_expiry = tokens.to_vec();
    by_expiry.sort_by_key(|t| (t.record.expires_at, t.record.digest));
    assert_eq!(
        expired_tokens(store, ZONE, now(), 100).await,
        by_expiry,
        "expired_tokens {when}"
    );
}

/// Rule 13: a grant's [`RefreshChain`] with every field set (a generation near
/// `u64::MAX`, distinct family, current and previous digests) and the default one
/// are stored and read back exactly by `get_grant`, `list_grants`, `expired_grants`
/// and `get_token_and_grant`; a grant written with a new chain (the next generation,
/// another current token, fields cleared) reads back the new one; a token's
/// `generation` round-trips at 0, 1 and `u64::MAX`.
pub async fn grant_refresh_chain_round_trips<S: Storage>(store: S) {
    let s = &store;
    let chain = RefreshChain {
        generation: u64::MAX - 1,
        family: Some(Digest::of("family")),
        current: Some(Digest::of("current")),
        previous: Some(Digest::of("previous")),
    };
    let full = Grant {
        refreshed_at: Some(at(3_000)),
        updated_at: at(3_000),
        refresh: chain,
        ..grant(ZONE, "chain-full", at(1_000), at(50_000))
    };
    let plain = grant(ZONE, "chain-default", at(2_000), at(60_000));
    assert_eq!(plain.refresh, RefreshChain::default());
    let tokens = [
        Token {
            generation: 0,
            ..token(&full, "gen-zero", TokenKind::Access)
        },
        Token {
            generation: 1,
            ..token(&plain, "gen-one", TokenKind::Refresh)
        },
        Token {
            generation: u64::MAX,
            ..token(&full, "gen-max", TokenKind::Refresh)
        },
    ];
    let mut writes = vec![
        put_grant(&full, Expect::Absent),
        put_grant(&plain, Expect::Absent),
    ];
    writes.extend(tokens.iter().map(|t| put_token(t, Expect::Absent)));
    commit(s, writes).await;
    let mut stored_tokens = tokens.clone().map(v1);
    check_stored_whole(
        s,
        &[v1(full.clone()), v1(plain.clone())],
        &stored_tokens,
        "as created",
    )
    .await;

    // A rotation's write: the next generation, another current token, the old one
    // previous; and a never-refreshed grant upgraded to the legacy chain.
    let next = Grant {
        refreshed_at: Some(at(4_000)),
        updated_at: at(4_000),
        refresh: RefreshChain {
            generation: chain.generation + 1,
            current: Some(Digest::of("current-2")),
            previous: chain.current,
            ..chain
        },
        ..full.clone()
    };
    let upgraded = Grant {
        updated_at: at(4_000),
        refresh: RefreshChain::LEGACY,
        ..plain.clone()
    };
    let renumbered = Token {
        generation: u64::MAX,
        ..tokens[1].clone()
    };
    commit(
        s,
        [
            put_grant(&next, Expect::Version(1)),
            put_grant(&upgraded, Expect::Version(1)),
            put_token(&renumbered, Expect::Version(1)),
        ],
    )
    .await;
    stored_tokens[1] = Versioned {
        record: renumbered,
        version: 2,
    };
    let as_next = [
        Versioned {
            record: next.clone(),
            version: 2,
        },
        Versioned {
            record: upgraded.clone(),
            version: 2,
        },
    ];
    check_stored_whole(s, &as_next, &stored_tokens, "after a new chain").await;

    // Fields set before and cleared now read back cleared; set now, set.
    let cleared = Grant {
        refresh: RefreshChain {
            generation: 0,
            family: None,
            current: None,
            previous: next.refresh.previous,
        },
        ..next
    };
    let started = Grant {
        refresh: RefreshChain {
            generation: 1,
            family: Some(Digest::of("family-2")),
            current: Some(Digest::of("gen-one")),
            previous: None,
        },
        ..upgraded
    };
    commit(
        s,
        [
            put_grant(&cleared, Expect::Version(2)),
            put_grant(&started, Expect::Version(2)),
        ],
    )
    .await;
    let as_cleared = [
        Versioned {
            record: cleared,
            version: 3,
        },
        Versioned {
            record: started,
            version: 3,
        },
    ];
    check_stored_whole(s, &as_cleared, &stored_tokens, "after fields were cleared").await;
}

/// One grant driven through [`long_rotation_chain_keeps_constant_footprint`].
#[derive(Debug)]
struct Rotated {
    grant_id: String,
    /// The refresh tokens issued, by rotation: 0 is the authorization's.
    refresh: Vec<Secret>,
    /// The access tokens issued, by rotation.
    access: Vec<Secret>,
}

impl Rotated {
    fn current_refresh(&self) -> &Secret {
        self.refresh
            .last()
            .expect("a rotated grant has a refresh token")
    }

    fn current_access(&self) -> &Secret {
        self.access
            .last()
            .expect("a rotated grant has an access token")
    }
}

async fn introspects_active(engine: &Engine, secret: &Secret) -> bool {
    engine
        .introspect(ZONE, secret.expose())
        .await
        .expect("introspect")
        .is_active()
}

async fn grant_tokens_of(engine: &Engine, grant_id: &str) -> Vec<Versioned<Token>> {
    tokens_of(&**engine.storage(), ZONE, grant_id).await
}

/// Rule 13 at the engine, a grant's footprint does not grow with its history: three
/// grants each refreshed 300 times through an [`Engine`] keep the current refresh
/// token's record and no spent one, a stored history no longer than after their
/// first rotation (read through the engine: created, then the latest refresh), and
/// their access tokens only until they expire, after which a sweep leaves the
/// current access and refresh tokens alone. Their current tokens introspect active;
/// presenting the refresh token of rotation 1, 150 or 299 again is
/// [`Error::RefreshTokenReused`] and revokes the grant.
pub async fn long_rotation_chain_keeps_constant_footprint<S: Storage>(store: S) {
    const ROTATIONS: usize = 300;
    const ACCESS_TTL_SECONDS: u32 = 600;
    const REUSED: [usize; 3] = [1, 150, 299];
    let clock = Arc::new(ManualClock::new(now()));
    let engine = Engine::builder(Arc::new(store))
        .clock(clock.clone())
        .build();
    let storage = engine.storage().clone();
    engine
        .register_client(
            ZONE,
            ClientRegistration::new("Rotating")
                .id("rotator")
                .scopes(["read"])
                .lifetimes(ACCESS_TTL_SECONDS, 30 * 24 * 3_600),
        )
        .await
        .expect("register_client");
    let mut grants = Vec::new();
    for n in 0..REUSED.len() {
        let issued = engine
            .authorize(
                ZONE,
                AuthorizeRequest::new("rotator", format!("user-{n}"), "resource-1", ["read"]),
            )
            .await
            .expect("authorize");
        grants.push(Rotated {
            grant_id: issued.grant.id.clone(),
            refresh: vec![
                issued
                    .refresh_token
                    .expect("an offline client gets a refresh token"),
            ],
            access: vec![issued.access_token],
        });
    }

    let mut first_history = Vec::new();
    for rotation in 1..=ROTATIONS {
        clock.advance(Duration::seconds(1));
        for g in &mut grants {
            let issued = engine
                .refresh(ZONE, RefreshRequest::new("rotator", g.current_refresh()))
                .await
                .unwrap_or_else(|e| panic!("rotation {rotation} of {}: {e:?}", g.grant_id));
            g.refresh.push(
                issued
                    .refresh_token
                    .expect("a refresh of an offline client issues a refresh token"),
            );
            g.access.push(issued.access_token);
        }
        if rotation == 1 {
            for g in &grants {
                first_history.push(history(&*storage, ZONE, &g.grant_id).await.len());
            }
        }
    }

    let last_rotation = engine.now();
    for (g, first) in grants.iter().zip(&first_history) {
        let id = &g.grant_id;
        let stored = get_grant(&*storage, ZONE, id)
            .await
            .expect("the rotated grant is stored");
        assert_eq!(
            stored.record.refresh.generation,
            ROTATIONS as u64 + 1,
            "{id}: the generation counts the rotations (1 at authorization)"
        );
        let tokens = grant_tokens_of(&engine, id).await;
        let refresh: Vec<Digest> = tokens
            .iter()
            .filter(|t| t.record.kind == TokenKind::Refresh)
            .map(|t| t.record.digest)
            .collect();
        assert_eq!(
            refresh,
            [g.current_refresh().digest()],
            "{id}: after {ROTATIONS} rotations the grant keeps the current refresh token's record alone"
        );
        let issued: BTreeSet<Digest> = g.access.iter().map(Secret::digest).collect();
        let access: Vec<&Versioned<Token>> = tokens
            .iter()
            .filter(|t| t.record.kind == TokenKind::Access)
            .collect();
        assert!(
            access.len() <= ROTATIONS + 1
                && access
                    .iter()
                    .all(|t| issued.contains(&t.record.digest)
                        && t.record.expires_at > last_rotation),
            "{id}: the grant holds tokens other than its live access tokens: {access:?}"
        );
        assert_eq!(
            history(&*storage, ZONE, id).await.len(),
            *first,
            "{id}: the stored history grew with rotations"
        );
        let read = engine.grant_history(ZONE, id).await.expect("grant_history");
        assert_eq!(
            read.iter().map(|t| t.reason).collect::<Vec<_>>(),
            [TransitionReason::Created, TransitionReason::Refreshed],
            "{id}: the history reads as created, then the latest refresh: {read:?}"
        );
        assert_eq!(
            read[1].at, last_rotation,
            "{id}: the refresh in the history is the latest"
        );
        assert!(
            introspects_active(&engine, g.current_access()).await
                && introspects_active(&engine, g.current_refresh()).await,
            "{id}: the current tokens introspect active after {ROTATIONS} rotations"
        );
    }

    // Every access token but the last has expired half a second ago.
    clock.advance(Duration::seconds(ACCESS_TTL_SECONDS.into()) - Duration::milliseconds(500));
    let mut held = 0;
    for g in &grants {
        held += grant_tokens_of(&engine, &g.grant_id).await.len();
    }
    let report = engine
        .sweep_expired(ZONE, 10_000)
        .await
        .expect("sweep_expired");
    assert_eq!(
        report.tokens_removed,
        held - 2 * grants.len(),
        "the sweep removes every expired token: {report:?}"
    );
    assert_eq!(
        expired_tokens(&*storage, ZONE, engine.now(), 100).await,
        Vec::new(),
        "expired tokens remain after the sweep"
    );
    for g in &grants {
        let id = &g.grant_id;
        let left: BTreeSet<Digest> = grant_tokens_of(&engine, id)
            .await
            .iter()
            .map(|t| t.record.digest)
            .collect();
        assert_eq!(
            left,
            BTreeSet::from([g.current_access().digest(), g.current_refresh().digest()]),
            "{id}: after the sweep the grant holds its current access and refresh tokens"
        );
        assert!(
            introspects_active(&engine, g.current_access()).await
                && introspects_active(&engine, g.current_refresh()).await,
            "{id}: the current tokens introspect active after the sweep"
        );
    }

    for (g, rotation) in grants.iter().zip(REUSED) {
        let id = &g.grant_id;
        let result = engine
            .refresh(ZONE, RefreshRequest::new("rotator", &g.refresh[rotation]))
            .await;
        assert!(
            matches!(&result, Err(Error::RefreshTokenReused { grant_id }) if grant_id == id),
            "{id}: the refresh token of rotation {rotation} presented again: expected \
             RefreshTokenReused, got {result:?}"
        );
        let after = engine.get_grant(ZONE, id).await.expect("get_grant");
        assert_eq!(
            after.status, REVOKED,
            "{id}: reuse of the token of rotation {rotation} revokes the grant"
        );
        let read = engine.grant_history(ZONE, id).await.expect("grant_history");
        assert_eq!(
            read.last().map(|t| t.reason),
            Some(TransitionReason::ReuseDetected),
            "{id}: the history says why the grant was revoked: {read:?}"
        );
        assert!(
            !introspects_active(&engine, g.current_access()).await
                && !introspects_active(&engine, g.current_refresh()).await,
            "{id}: the current tokens of a grant revoked for reuse still introspect active"
        );
    }
}

// ----- rule 14: zones are listed -----

/// Rule 14: [`Storage::zones`] lists the zones holding a client or a grant, in byte
/// order, after a position, at most a limit; a zone whose last record is deleted
/// leaves the list, and a zone holding only other kinds of records is not in it.
pub async fn zones_are_listed<S: Storage>(store: S) {
    let s = &store;
    assert!(
        s.zones(None, 10).await.expect("zones").is_empty(),
        "an empty store"
    );
    // A client in "z-b", grants in "z-a" and "z-c" (the latter with no client).
    commit(s, [put_client(&client("z-b", "c", "C"), Expect::Absent)]).await;
    let a = grant("z-a", "g1", at(1_000), far_future());
    let c = grant("z-c", "g2", at(1_000), far_future());
    commit(s, [put_grant(&a, Expect::Absent)]).await;
    commit(s, [put_grant(&c, Expect::Absent)]).await;
    let all = s.zones(None, 10).await.expect("zones");
    assert_eq!(all, ["z-a", "z-b", "z-c"], "every zone, in byte order");
    assert_eq!(
        s.zones(None, 2).await.expect("zones"),
        ["z-a", "z-b"],
        "a limit"
    );
    assert_eq!(
        s.zones(Some("z-a"), 10).await.expect("zones"),
        ["z-b", "z-c"],
        "after"
    );
    assert_eq!(
        s.zones(Some("z-b"), 1).await.expect("zones"),
        ["z-c"],
        "after, limited"
    );
    assert!(
        s.zones(Some("z-c"), 10).await.expect("zones").is_empty(),
        "past the end"
    );
    assert_eq!(
        s.zones(Some("z-"), 10).await.expect("zones"),
        ["z-a", "z-b", "z-c"],
        "after a prefix of the ids"
    );
    // The last grant of z-a goes: so does the zone.
    commit(s, [delete_grant("z-a", "g1", 1)]).await;
    assert_eq!(
        s.zones(None, 10).await.expect("zones"),
        ["z-b", "z-c"],
        "a zone emptied"
    );
}

// ----- rule 15: authorization codes -----

/// The redirect URI the code rules register and send.
pub const REDIRECT_URI: &str = "https://app.example/callback";

/// The code verifier of RFC 7636 Appendix B.
pub const RFC7636_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// The `S256` code challenge of [`RFC7636_VERIFIER`], as RFC 7636 Appendix B gives it.
pub const RFC7636_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An unredeemed authorization code of `client-1`, approved by `user-1` for
/// `resource-1` with scope `read`, keyed by the digest of `code`, to be redirected
/// to [`REDIRECT_URI`], with the challenge of [`RFC7636_VERIFIER`].
pub fn authorization_code(zone: &str, code: &str, expires_at: Timestamp) -> AuthorizationCode {
    AuthorizationCode {
        code: Digest::of(code),
        zone_id: zone.into(),
        client_id: "client-1".into(),
        user_id: "user-1".into(),
        resource_id: "resource-1".into(),
        provider_id: "default".into(),
        organization_id: None,
        scopes: vec!["read".into()],
        redirect_uri: REDIRECT_URI.into(),
        // An S256 challenge is the SHA-256 of the verifier, which is its digest.
        code_challenge: Some(Digest::of(RFC7636_VERIFIER)),
        created_at: epoch(),
        expires_at,
        grant_id: None,
    }
}

/// [`Write::PutAuthorizationCode`].
pub fn put_code(code: &AuthorizationCode, expect: Expect) -> Write {
    Write::PutAuthorizationCode {
        code: code.clone(),
        expect,
    }
}

/// [`Write::DeleteAuthorizationCode`] of the code keyed by the digest of `code`.
pub fn delete_code(zone: &str, code: &str, expect: Version) -> Write {
    Write::DeleteAuthorizationCode {
        zone_id: zone.into(),
        code: Digest::of(code),
        expect,
    }
}

async fn code_by_digest<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    code: &str,
) -> Option<Versioned<AuthorizationCode>> {
    store
        .get_authorization_code(zone, &Digest::of(code))
        .await
        .expect("get_authorization_code")
}

async fn expired_codes<S: Storage + ?Sized>(
    store: &S,
    zone: &str,
    ms: i64,
    limit: usize,
) -> Vec<Versioned<AuthorizationCode>> {
    store
        .expired_authorization_codes(zone, at(ms), limit)
        .await
        .expect("expired_authorization_codes")
}

/// Rules 2, 1 and 15 for authorization codes: versioned like every record (the
/// redemption is an update at the version read), found by digest in their zone
/// only, deleted only at the stored version and then gone from every read; the
/// expiry index yields those whose expiry is at or before the given time, redeemed
/// or not, in `(expires_at, code)` order, at most `limit`, and follows updates and
/// deletions. A client's retiring secret is stored whole.
pub async fn authorization_codes_by_digest_and_expiry<S: Storage>(store: S) {
    let s = &store;
    let c = authorization_code(ZONE, "code-v", at(160_000));
    let revisions = [
        c.clone(),
        AuthorizationCode {
            grant_id: Some("grant-1".into()),
            ..c.clone()
        },
        AuthorizationCode {
            organization_id: Some("org-2".into()),
            code_challenge: None,
            grant_id: Some("grant-1".into()),
            expires_at: at(170_000),
            ..c
        },
    ];
    let stored = Versioned {
        record: revisions[2].clone(),
        version: 3,
    };
    check_versions(
        "authorization code",
        s,
        revisions,
        put_code,
        move || async move { code_by_digest(s, ZONE, "code-v").await },
    )
    .await;

    assert_eq!(
        code_by_digest(s, OTHER_ZONE, "code-v").await,
        None,
        "a code shows through another zone"
    );
    assert_eq!(
        expired_codes(s, OTHER_ZONE, 1_000_000, 100).await,
        Vec::new(),
        "a code shows in another zone's expiry index"
    );
    let look_alike = authorization_code(OTHER_ZONE, "code-v", at(1));
    assert_conflict(
        s,
        [put_code(&look_alike, Expect::Version(3))],
        "PutAuthorizationCode through another zone at the stored version",
    )
    .await;
    assert_conflict(
        s,
        [delete_code(OTHER_ZONE, "code-v", 3)],
        "DeleteAuthorizationCode through another zone",
    )
    .await;
    commit(s, [put_code(&look_alike, Expect::Absent)]).await;
    assert_eq!(
        code_by_digest(s, OTHER_ZONE, "code-v").await,
        Some(v1(look_alike.clone())),
        "the same digest in another zone is another record"
    );
    assert_eq!(
        code_by_digest(s, ZONE, "code-v").await,
        Some(stored.clone()),
        "another zone's writes changed this zone's code"
    );

    assert_conflict(
        s,
        [delete_code(ZONE, "code-v", 2)],
        "DeleteAuthorizationCode with a stale version",
    )
    .await;
    assert_conflict(
        s,
        [delete_code(ZONE, "code-missing", 1)],
        "DeleteAuthorizationCode of a missing record",
    )
    .await;
    assert_eq!(
        code_by_digest(s, ZONE, "code-v").await,
        Some(stored),
        "a refused deletion changed the code"
    );
    commit(s, [delete_code(ZONE, "code-v", 3)]).await;
    assert_eq!(code_by_digest(s, ZONE, "code-v").await, None);
    assert_eq!(
        expired_codes(s, ZONE, 1_000_000, 100).await,
        Vec::new(),
        "a deleted code stays in the expiry index"
    );
    assert_eq!(
        code_by_digest(s, OTHER_ZONE, "code-v").await,
        Some(v1(look_alike)),
        "a deletion reached another zone's code"
    );

    // (code, expiry ms, redeemed): ties on expiry, the `now` boundary, redeemed
    // codes, and a deleted code's digest created again.
    let rows = [
        ("code-a", 50_000, false),
        ("code-b", 50_000, true),
        ("code-c", 10_000, false),
        ("code-d", NOW_MS, true),
        ("code-e", NOW_MS + 1, false),
        ("code-f", 900_000, false),
        ("code-g", 50_000, false),
        ("code-v", 900_001, false),
    ];
    let mut codes = Vec::new();
    for (code, expires, redeemed) in rows {
        let record = AuthorizationCode {
            grant_id: redeemed.then(|| format!("grant-of-{code}")),
            ..authorization_code(ZONE, code, at(expires))
        };
        commit(s, [put_code(&record, Expect::Absent)]).await;
        codes.push(record);
    }
    commit(
        s,
        [put_code(
            &authorization_code(OTHER_ZONE, "code-a", at(1)),
            Expect::Absent,
        )],
    )
    .await;
    for (record, (code, ..)) in codes.iter().zip(rows) {
        assert_eq!(
            code_by_digest(s, ZONE, code).await,
            Some(v1(record.clone())),
            "{code} is stored whole at version 1"
        );
    }

    let due = |ms: i64| {
        let mut due: Vec<&AuthorizationCode> =
            codes.iter().filter(|c| c.expires_at <= at(ms)).collect();
        due.sort_by_key(|c| (c.expires_at, c.code));
        due.into_iter().map(|c| v1(c.clone())).collect::<Vec<_>>()
    };
    assert_eq!(
        due(NOW_MS).len(),
        5,
        "the fixture has five due codes at now"
    );
    for ms in [9_999, 10_000, 50_000, NOW_MS, 1_000_000] {
        assert_eq!(
            expired_codes(s, ZONE, ms, 100).await,
            due(ms),
            "expired authorization codes at {ms} ms"
        );
    }
    for limit in [0, 1, 3] {
        let expected: Vec<_> = due(NOW_MS).into_iter().take(limit).collect();
        assert_eq!(
            expired_codes(s, ZONE, NOW_MS, limit).await,
            expected,
            "expired authorization codes, limit {limit}"
        );
    }
    assert_eq!(
        expired_codes(s, OTHER_ZONE, NOW_MS, 100)
            .await
            .into_iter()
            .map(|c| c.record.code)
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([Digest::of("code-a"), Digest::of("code-v")]),
        "another zone's expiry index holds its own codes"
    );

    let later = AuthorizationCode {
        expires_at: at(700_000),
        grant_id: Some("grant-late".into()),
        ..codes[2].clone()
    };
    commit(
        s,
        [
            put_code(&later, Expect::Version(1)),
            delete_code(ZONE, "code-a", 1),
        ],
    )
    .await;
    let left: Vec<Digest> = expired_codes(s, ZONE, NOW_MS, 100)
        .await
        .into_iter()
        .map(|c| c.record.code)
        .collect();
    let mut expected: Vec<(Timestamp, Digest)> = [&codes[1], &codes[3], &codes[6]]
        .into_iter()
        .map(|c| (c.expires_at, c.code))
        .collect();
    expected.sort();
    assert_eq!(
        left,
        expected.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
        "the index follows a moved expiry and a deletion"
    );
    assert_eq!(code_by_digest(s, ZONE, "code-a").await, None);

    let rotated = Client {
        client_type: ClientType::Confidential,
        secret_digest: Some(Digest::of("secret-2")),
        previous_secret: Some(RetiringSecret {
            digest: Digest::of("secret-1"),
            valid_until: at(86_400_000),
        }),
        ..client(ZONE, "rotated", "Rotated")
    };
    commit(s, [put_client(&rotated, Expect::Absent)]).await;
    assert_eq!(
        get_client(s, ZONE, "rotated").await,
        Some(v1(rotated.clone())),
        "a client with a retiring secret is stored whole"
    );
    let settled = Client {
        previous_secret: None,
        ..rotated
    };
    commit(s, [put_client(&settled, Expect::Version(1))]).await;
    assert_eq!(
        get_client(s, ZONE, "rotated").await,
        Some(Versioned {
            record: settled,
            version: 2
        }),
        "a retiring secret, once cleared, is gone"
    );
}

// ----- authorization codes at the engine -----

/// An engine over `store` with `config`, on a manual clock standing at [`now`].
fn engine_on_clock<S: Storage>(store: S, config: EngineConfig) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now()));
    let engine = Engine::builder(Arc::new(store))
        .clock(clock.clone())
        .config(config)
        .build();
    (engine, clock)
}

/// Another engine over the store and clock of `engine`, with `config`.
fn engine_beside(engine: &Engine, clock: &Arc<ManualClock>, config: EngineConfig) -> Engine {
    Engine::builder(engine.storage().clone())
        .clock(clock.clone())
        .config(config)
        .build()
}

async fn register(engine: &Engine, registration: ClientRegistration) -> RegisteredClient {
    let id = registration.id.clone();
    engine
        .register_client(ZONE, registration)
        .await
        .unwrap_or_else(|e| panic!("register_client({id:?}): {e:?}"))
}

async fn update(engine: &Engine, id: &str, change: ClientUpdate) -> Client {
    engine
        .update_client(ZONE, id, &change)
        .await
        .unwrap_or_else(|e| panic!("update_client({id}, {change:?}): {e:?}"))
}

async fn grant_now(engine: &Engine, id: &str) -> Grant {
    engine
        .get_grant(ZONE, id)
        .await
        .unwrap_or_else(|e| panic!("get_grant({id}): {e:?}"))
}

async fn history_now(engine: &Engine, id: &str) -> Vec<Transition> {
    engine
        .grant_history(ZONE, id)
        .await
        .unwrap_or_else(|e| panic!("grant_history({id}): {e:?}"))
}

async fn sweep(engine: &Engine, limit: usize) -> SweepReport {
    engine
        .sweep_expired(ZONE, limit)
        .await
        .expect("sweep_expired")
}

/// What introspection says of an active token; panics if it is inactive.
async fn introspect_active(engine: &Engine, secret: &Secret, what: &str) -> ActiveToken {
    match engine
        .introspect(ZONE, secret.expose())
        .await
        .expect("introspect")
    {
        Introspection::Active(token) => token,
        Introspection::Inactive => panic!("{what}: the token introspects inactive"),
    }
}

/// Asserts that the last entry of a grant's history says it was revoked by the
/// system for `reason` at `when`.
fn assert_revoked_for(
    history: &[Transition],
    reason: TransitionReason,
    when: Timestamp,
    what: &str,
) {
    let last = history
        .last()
        .map(|t| (t.from, t.to, t.reason, &t.actor, t.at));
    assert_eq!(
        last,
        Some((
            Some(GrantStatus::Active),
            GrantStatus::Revoked,
            reason,
            &Actor::System,
            when
        )),
        "{what}: the history does not end in the revocation: {history:?}"
    );
}

fn assert_invalid_grant<T: Debug>(
    result: &Result<T, Error>,
    reason: InvalidGrantReason,
    what: &str,
) {
    assert!(
        matches!(result, Err(Error::InvalidGrant { reason: r }) if *r == reason),
        "{what}: expected Error::InvalidGrant {{ {reason:?} }}, got {result:?}"
    );
}

fn assert_invalid_input<T: Debug>(result: &Result<T, Error>, field: &str, what: &str) {
    assert!(
        matches!(result, Err(Error::InvalidInput { field: f, .. }) if *f == field),
        "{what}: expected Error::InvalidInput on {field}, got {result:?}"
    );
}

fn assert_client_not_found<T: Debug>(result: &Result<T, Error>, id: &str, what: &str) {
    assert!(
        matches!(result, Err(Error::NotFound { kind: RecordKind::Client, id: i }) if i == id),
        "{what}: expected Error::NotFound of client {id}, got {result:?}"
    );
}

/// A public client `id` allowed `read` and `write` through `authorization_code` and
/// `refresh_token`, redirecting to [`REDIRECT_URI`] alone.
fn code_client(id: &str) -> ClientRegistration {
    ClientRegistration {
        redirect_uris: vec![REDIRECT_URI.into()],
        ..ClientRegistration::new(format!("Client {id}"))
            .id(id)
            .scopes(["read", "write"])
    }
}

/// `user-1`'s approval of `scopes` on `resource-1` for `client_id`, to be redirected
/// to [`REDIRECT_URI`], with the challenge of RFC 7636 Appendix B.
fn approval(client_id: &str, scopes: &[&str]) -> CodeRequest {
    CodeRequest::new(
        client_id,
        "user-1",
        "resource-1",
        scopes.iter().copied(),
        REDIRECT_URI,
    )
    .challenge(RFC7636_CHALLENGE)
}

/// [`approval`] without a challenge.
fn unchallenged(client_id: &str, scopes: &[&str]) -> CodeRequest {
    CodeRequest {
        code_challenge: None,
        code_challenge_method: None,
        ..approval(client_id, scopes)
    }
}

async fn issue(engine: &Engine, request: CodeRequest) -> IssuedCode {
    let what = format!("{request:?}");
    engine
        .issue_code(ZONE, request)
        .await
        .unwrap_or_else(|e| panic!("issue_code({what}): {e:?}"))
}

async fn redeem(
    engine: &Engine,
    client_id: &str,
    code: &Secret,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<Issued, Error> {
    engine
        .redeem_code(ZONE, client_id, code.expose(), redirect_uri, verifier)
        .await
}

/// Redeems `code` as an [`approval`] asks: by `client_id`, naming [`REDIRECT_URI`],
/// with [`RFC7636_VERIFIER`].
async fn redeem_as_approved(
    engine: &Engine,
    client_id: &str,
    code: &Secret,
) -> Result<Issued, Error> {
    redeem(
        engine,
        client_id,
        code,
        Some(REDIRECT_URI),
        Some(RFC7636_VERIFIER),
    )
    .await
}

/// The stored code and its version, for a code the engine issued.
async fn stored_code(engine: &Engine, code: &Secret) -> Option<(Option<String>, Version)> {
    code_by_digest(&**engine.storage(), ZONE, code.expose())
        .await
        .map(|c| (c.record.grant_id, c.version))
}

/// Authorization codes (RFC 6749 §4.1.2, RFC 9700 §4.5): a code redeems once, into
/// an active grant of its client, user, resource and scopes, with tokens, and is
/// kept, marked with that grant; presented again it is
/// [`InvalidGrantReason::CodeReused`] and revokes that grant, with a history entry
/// saying why, so its tokens introspect inactive and its refresh token is
/// [`InvalidGrantReason::TokenRevoked`]; later presentations are refused alike and
/// change nothing more.
pub async fn code_redeems_once_and_reuse_revokes_the_grant<S: Storage>(store: S) {
    let (engine, clock) = engine_on_clock(store, EngineConfig::default());
    register(&engine, code_client("app")).await;
    let code = issue(&engine, approval("app", &["read"])).await.code;
    let issued = redeem_as_approved(&engine, "app", &code)
        .await
        .unwrap_or_else(|e| panic!("the first redemption of a code: {e:?}"));
    let grant = &issued.grant;
    assert_eq!(
        (
            grant.client_id.as_str(),
            grant.user_id.as_str(),
            grant.resource_id.as_str(),
            grant.scopes.as_slice(),
            grant.status,
        ),
        (
            "app",
            "user-1",
            "resource-1",
            &["read".to_owned()][..],
            ACTIVE
        ),
        "the grant a code creates is the approval's: {grant:?}"
    );
    assert_eq!(issued.scopes, ["read"]);
    let refresh = issued
        .refresh_token
        .clone()
        .expect("an offline client redeeming a code gets a refresh token");
    assert_eq!(
        history_now(&engine, &grant.id)
            .await
            .iter()
            .map(|t| (t.reason, t.actor.clone()))
            .collect::<Vec<_>>(),
        [(
            TransitionReason::Created,
            Actor::User {
                id: "user-1".into()
            }
        )],
        "the grant is created by the approving user"
    );
    assert_eq!(
        stored_code(&engine, &code).await,
        Some((Some(grant.id.clone()), 2)),
        "a redeemed code is kept, marked with its grant, until its expiry"
    );
    assert_eq!(
        introspect_active(&engine, &issued.access_token, "the access token")
            .await
            .resource_id,
        "resource-1"
    );
    assert!(introspects_active(&engine, &refresh).await);

    clock.advance(Duration::seconds(1));
    let reuse_at = engine.now();
    let again = redeem_as_approved(&engine, "app", &code).await;
    assert_invalid_grant(
        &again,
        InvalidGrantReason::CodeReused,
        "a code presented a second time",
    );
    assert_eq!(
        grant_now(&engine, &grant.id).await.status,
        REVOKED,
        "reuse of its code revokes the grant"
    );
    let history_after = history_now(&engine, &grant.id).await;
    assert_revoked_for(
        &history_after,
        TransitionReason::CodeReused,
        reuse_at,
        "a grant revoked for its code's reuse",
    );
    assert!(
        !introspects_active(&engine, &issued.access_token).await
            && !introspects_active(&engine, &refresh).await,
        "the tokens of a grant revoked for its code's reuse still introspect active"
    );
    let refreshed = engine
        .refresh(ZONE, RefreshRequest::new("app", &refresh))
        .await;
    assert_invalid_grant(
        &refreshed,
        InvalidGrantReason::TokenRevoked,
        "the refresh token of a grant revoked for its code's reuse",
    );

    clock.advance(Duration::seconds(1));
    let third = redeem_as_approved(&engine, "app", &code).await;
    assert_invalid_grant(
        &third,
        InvalidGrantReason::CodeReused,
        "a code presented a third time",
    );
    assert_eq!(
        history_now(&engine, &grant.id).await,
        history_after,
        "a further reuse changed the revoked grant's history"
    );
}

/// A code is bound to its client and redirect URI (RFC 6749 §4.1.3, RFC 9700
/// §4.1.3): issuing refuses a redirect URI that is not exactly one the client
/// registered; redemption by another client is
/// [`InvalidGrantReason::ClientMismatch`], and a redirect URI that differs from the
/// approval's in any character, or is missing, is
/// [`InvalidGrantReason::RedirectUriMismatch`]; neither consumes the code, which
/// then redeems for its own client, and another client's presentation after that
/// does not revoke its grant.
pub async fn code_is_bound_to_client_and_redirect_uri<S: Storage>(store: S) {
    let (engine, _clock) = engine_on_clock(store, EngineConfig::default());
    register(&engine, code_client("app")).await;
    register(&engine, code_client("other")).await;
    for uri in [
        "https://app.example/elsewhere",
        "https://app.example/callback/",
        "https://app.example/callback?next=1",
        "http://app.example/callback",
        "https://APP.example/callback",
    ] {
        let result = engine
            .issue_code(
                ZONE,
                CodeRequest {
                    redirect_uri: uri.into(),
                    ..approval("app", &["read"])
                },
            )
            .await;
        assert_invalid_input(
            &result,
            "redirect_uri",
            &format!("issuing a code for the unregistered redirect URI {uri}"),
        );
    }
    let unknown = engine.issue_code(ZONE, approval("nobody", &["read"])).await;
    assert_client_not_found(&unknown, "nobody", "issuing a code for an unknown client");

    let code = issue(&engine, approval("app", &["read"])).await.code;
    let stolen = redeem_as_approved(&engine, "other", &code).await;
    assert_invalid_grant(
        &stolen,
        InvalidGrantReason::ClientMismatch,
        "a code redeemed by another client",
    );
    for uri in [
        Some("https://app.example/callback/"),
        Some("https://app.example/callback?next=1"),
        Some("https://APP.example/callback"),
        Some(""),
        None,
    ] {
        let result = redeem(&engine, "app", &code, uri, Some(RFC7636_VERIFIER)).await;
        assert_invalid_grant(
            &result,
            InvalidGrantReason::RedirectUriMismatch,
            &format!("a code redeemed naming the redirect URI {uri:?}"),
        );
    }
    assert_eq!(
        stored_code(&engine, &code).await,
        Some((None, 1)),
        "a refused redemption consumed the code"
    );
    let issued = redeem_as_approved(&engine, "app", &code)
        .await
        .unwrap_or_else(|e| panic!("the code, by its own client, after refusals: {e:?}"));
    assert_eq!(issued.grant.client_id, "app");

    let late = redeem_as_approved(&engine, "other", &code).await;
    assert_invalid_grant(
        &late,
        InvalidGrantReason::ClientMismatch,
        "a redeemed code presented by another client",
    );
    assert_eq!(
        grant_now(&engine, &issued.grant.id).await.status,
        ACTIVE,
        "another client presenting a redeemed code revoked its grant"
    );
}

/// PKCE (RFC 7636, RFC 9700 §2.1.1): `S256` is the only challenge method (`plain`,
/// or no method, is refused at issue); a public client must send a challenge, a
/// confidential client must where [`EngineConfig::pkce`] says so
/// ([`PkceRequirement::AllClients`], or [`PkceRequirement::AllClientsIn`] naming
/// its zone) and may otherwise; a wrong verifier, or a verifier for a code issued
/// without a challenge, is [`InvalidGrantReason::PkceFailed`]; a missing or
/// malformed verifier is refused as input; the verifier and challenge of RFC 7636
/// Appendix B redeem.
pub async fn pkce_is_s256_only_and_required_for_public_clients<S: Storage>(store: S) {
    let (engine, clock) = engine_on_clock(store, EngineConfig::default());
    register(&engine, code_client("app")).await;
    register(&engine, code_client("service").confidential()).await;

    for client_id in ["app", "service"] {
        for method in [Some("plain"), None] {
            let result = engine
                .issue_code(
                    ZONE,
                    CodeRequest {
                        code_challenge: Some(RFC7636_VERIFIER.into()),
                        code_challenge_method: method.map(Into::into),
                        ..approval(client_id, &["read"])
                    },
                )
                .await;
            assert_invalid_input(
                &result,
                "code_challenge_method",
                &format!("{client_id}: a challenge with method {method:?}"),
            );
        }
    }

    for (pkce, required) in [
        (PkceRequirement::PublicClients, false),
        (
            PkceRequirement::AllClientsIn(vec![OTHER_ZONE.into()]),
            false,
        ),
        (PkceRequirement::AllClients, true),
        (PkceRequirement::AllClientsIn(vec![ZONE.into()]), true),
    ] {
        let config = EngineConfig {
            pkce: pkce.clone(),
            ..EngineConfig::default()
        };
        let under = engine_beside(&engine, &clock, config);
        let public = under.issue_code(ZONE, unchallenged("app", &["read"])).await;
        assert_invalid_input(
            &public,
            "code_challenge",
            &format!("{pkce:?}: a public client without a challenge"),
        );
        let confidential = under
            .issue_code(ZONE, unchallenged("service", &["read"]))
            .await;
        if required {
            assert_invalid_input(
                &confidential,
                "code_challenge",
                &format!("{pkce:?}: a confidential client without a challenge"),
            );
        } else {
            let code = confidential
                .unwrap_or_else(|e| {
                    panic!("{pkce:?}: a confidential client without a challenge: {e:?}")
                })
                .code;
            let issued = redeem(&under, "service", &code, Some(REDIRECT_URI), None).await;
            assert!(
                issued.is_ok(),
                "{pkce:?}: a code issued without a challenge, redeemed without a verifier: \
                 {issued:?}"
            );
        }
        let challenged = issue(&under, approval("service", &["read"])).await.code;
        let issued = redeem_as_approved(&under, "service", &challenged).await;
        assert!(
            issued.is_ok(),
            "{pkce:?}: a confidential client's challenged code: {issued:?}"
        );
    }

    let code = issue(&engine, approval("app", &["read"])).await.code;
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
    let result = redeem(&engine, "app", &code, Some(REDIRECT_URI), Some(wrong)).await;
    assert_invalid_grant(&result, InvalidGrantReason::PkceFailed, "a wrong verifier");
    let code = issue(&engine, approval("app", &["read"])).await.code;
    let result = redeem(
        &engine,
        "app",
        &code,
        Some(REDIRECT_URI),
        Some(RFC7636_CHALLENGE),
    )
    .await;
    assert_invalid_grant(
        &result,
        InvalidGrantReason::PkceFailed,
        "the challenge presented as its own verifier",
    );
    for (verifier, what) in [
        (None, "no verifier"),
        (Some("too-short"), "a verifier of 9 characters"),
    ] {
        let code = issue(&engine, approval("app", &["read"])).await.code;
        let result = redeem(&engine, "app", &code, Some(REDIRECT_URI), verifier).await;
        assert_invalid_input(
            &result,
            "code_verifier",
            &format!("{what} for a challenged code"),
        );
    }
    let code = issue(&engine, approval("service", &["read"])).await.code;
    let result = redeem(&engine, "service", &code, Some(REDIRECT_URI), None).await;
    assert_invalid_input(
        &result,
        "code_verifier",
        "no verifier for a confidential client's challenged code",
    );

    let code = issue(&engine, unchallenged("service", &["read"]))
        .await
        .code;
    let result = redeem(
        &engine,
        "service",
        &code,
        Some(REDIRECT_URI),
        Some(RFC7636_VERIFIER),
    )
    .await;
    assert_invalid_grant(
        &result,
        InvalidGrantReason::PkceFailed,
        "a verifier for a code issued without a challenge",
    );

    let code = issue(&engine, approval("app", &["read"])).await.code;
    let issued = redeem_as_approved(&engine, "app", &code).await;
    assert!(
        issued.is_ok(),
        "the verifier and challenge of RFC 7636 Appendix B: {issued:?}"
    );
}

/// A code expires (RFC 6749 §4.1.2): it redeems a millisecond before its expiry and
/// is [`InvalidGrantReason::CodeExpired`] at it; a sweep before the expiry removes
/// nothing, and at it removes every due code, redeemed or not, in batches of its
/// limit, reporting them in [`SweepReport::codes_removed`], and leaves codes not yet
/// due; a swept code, a code of another zone and a code never issued are
/// [`InvalidGrantReason::UnknownCode`].
pub async fn code_expires_and_is_swept<S: Storage>(store: S) {
    let (engine, clock) = engine_on_clock(store, EngineConfig::default());
    register(&engine, code_client("app")).await;
    let issued_at = engine.now();
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(issue(&engine, approval("app", &["read"])).await.code);
    }
    clock.advance(Duration::seconds(30));
    let later = issue(&engine, approval("app", &["read"])).await.code;

    let expiry = issued_at + DEFAULT_CODE_LIFETIME;
    clock.set(expiry - Duration::milliseconds(1));
    let early = sweep(&engine, 100).await;
    assert_eq!(
        early.codes_removed, 0,
        "a sweep before the codes' expiry: {early:?}"
    );
    let redeemed = redeem_as_approved(&engine, "app", &codes[0]).await;
    assert!(
        redeemed.is_ok(),
        "a code a millisecond before its expiry: {redeemed:?}"
    );

    clock.set(expiry);
    let expired = redeem_as_approved(&engine, "app", &codes[1]).await;
    assert_invalid_grant(
        &expired,
        InvalidGrantReason::CodeExpired,
        "a code at its expiry",
    );
    assert_eq!(
        stored_code(&engine, &codes[1]).await,
        Some((None, 1)),
        "an expired code, refused, is left for the sweep"
    );
    let first = sweep(&engine, 2).await;
    assert_eq!(
        (first.codes_removed, first.more),
        (2, true),
        "a sweep limited to 2 of 3 due codes: {first:?}"
    );
    let second = sweep(&engine, 2).await;
    assert_eq!(
        (second.codes_removed, second.more),
        (1, false),
        "the next sweep takes the last due code: {second:?}"
    );
    for (n, code) in codes.iter().enumerate() {
        assert_eq!(
            stored_code(&engine, code).await,
            None,
            "due code {n} (redeemed: {}) is still stored after the sweep",
            n == 0
        );
    }
    for (n, code) in codes.iter().enumerate().skip(1) {
        let result = redeem_as_approved(&engine, "app", code).await;
        assert_invalid_grant(
            &result,
            InvalidGrantReason::UnknownCode,
            &format!("swept code {n}"),
        );
    }
    assert_eq!(
        stored_code(&engine, &later).await,
        Some((None, 1)),
        "the sweep removed a code not yet due"
    );
    let elsewhere = engine
        .redeem_code(
            OTHER_ZONE,
            "app",
            later.expose(),
            Some(REDIRECT_URI),
            Some(RFC7636_VERIFIER),
        )
        .await;
    assert_invalid_grant(
        &elsewhere,
        InvalidGrantReason::UnknownCode,
        "a code presented in another zone",
    );
    let never = Secret::from_presented("tnr_ac_never-issued");
    let result = redeem_as_approved(&engine, "app", &never).await;
    assert_invalid_grant(
        &result,
        InvalidGrantReason::UnknownCode,
        "a code never issued",
    );
    let issued = redeem_as_approved(&engine, "app", &later).await;
    assert!(
        issued.is_ok(),
        "a code not yet due, after the sweep: {issued:?}"
    );
}

/// Redemption applies the client's policy as it is then, not as it was at issue
/// (RFC 6749 §4.1.3): a client disabled, or no longer allowed
/// `authorization_code`, since the code was issued is refused
/// ([`Error::ClientDisabled`], [`Error::GrantTypeNotAllowed`]) and the code is not
/// consumed; a client narrowed since gets a grant of the scopes it is still allowed,
/// and [`Error::InvalidScope`] with the approved scopes when none is left. Issuing a
/// code to a disabled client is refused too.
pub async fn code_redemption_applies_the_policy_now<S: Storage>(store: S) {
    let (engine, _clock) = engine_on_clock(store, EngineConfig::default());
    register(&engine, code_client("app")).await;
    let code = issue(&engine, approval("app", &["read", "write"]))
        .await
        .code;
    let narrowed = issue(&engine, approval("app", &["read", "write"]))
        .await
        .code;
    let write_only = issue(&engine, approval("app", &["write"])).await.code;

    update(
        &engine,
        "app",
        ClientUpdate {
            enabled: Some(false),
            ..ClientUpdate::default()
        },
    )
    .await;
    let result = redeem_as_approved(&engine, "app", &code).await;
    assert!(
        matches!(&result, Err(Error::ClientDisabled { client_id }) if client_id == "app"),
        "a code of a client disabled since: expected Error::ClientDisabled, got {result:?}"
    );
    let refused = engine.issue_code(ZONE, approval("app", &["read"])).await;
    assert!(
        matches!(&refused, Err(Error::ClientDisabled { client_id }) if client_id == "app"),
        "issuing a code to a disabled client: expected Error::ClientDisabled, got {refused:?}"
    );
    update(
        &engine,
        "app",
        ClientUpdate {
            enabled: Some(true),
            allowed_grants: Some(vec![GrantType::RefreshToken]),
            ..ClientUpdate::default()
        },
    )
    .await;
    let result = redeem_as_approved(&engine, "app", &code).await;
    assert!(
        matches!(
            &result,
            Err(Error::GrantTypeNotAllowed { client_id, grant_type: GrantType::AuthorizationCode })
                if client_id == "app"
        ),
        "a code of a client no longer allowed authorization_code: expected \
         Error::GrantTypeNotAllowed, got {result:?}"
    );
    assert_eq!(
        stored_code(&engine, &code).await,
        Some((None, 1)),
        "a redemption refused by the client's policy consumed the code"
    );

    update(
        &engine,
        "app",
        ClientUpdate {
            allowed_grants: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
            allowed_scopes: Some(vec!["read".into()]),
            ..ClientUpdate::default()
        },
    )
    .await;
    let issued = redeem_as_approved(&engine, "app", &narrowed)
        .await
        .unwrap_or_else(|e| panic!("a code of a client narrowed since: {e:?}"));
    assert_eq!(
        (issued.scopes.as_slice(), issued.grant.scopes.as_slice()),
        (&["read".to_owned()][..], &["read".to_owned()][..]),
        "a code of a client narrowed since grants only what it still allows"
    );
    let result = redeem_as_approved(&engine, "app", &write_only).await;
    assert!(
        matches!(&result, Err(Error::InvalidScope { scopes }) if scopes == &["write"]),
        "a code of scopes the client no longer allows: expected Error::InvalidScope, got \
         {result:?}"
    );
    assert_eq!(
        stored_code(&engine, &write_only).await,
        Some((None, 1)),
        "a redemption refused for its scopes consumed the code"
    );
    let issued = redeem_as_approved(&engine, "app", &code).await;
    assert!(
        issued.is_ok(),
        "the code refused while the client was disabled, once it is allowed again: {issued:?}"
    );
}

/// A code lives [`DEFAULT_CODE_LIFETIME`] (60 s) unless configured otherwise, and
/// never longer than [`MAX_CODE_LIFETIME`] (10 minutes, RFC 6749 §4.1.2): a longer
/// setting is held to it, in `expires_in` and in the stored expiry alike.
pub async fn code_lifetime_is_at_most_ten_minutes<S: Storage>(store: S) {
    let (engine, clock) = engine_on_clock(store, EngineConfig::default());
    register(&engine, code_client("app")).await;
    assert_eq!(DEFAULT_CODE_LIFETIME, Duration::seconds(60));
    assert_eq!(MAX_CODE_LIFETIME, Duration::minutes(10));
    for (configured, lifetime) in [
        (None, Duration::seconds(60)),
        (Some(Duration::minutes(5)), Duration::minutes(5)),
        (Some(Duration::minutes(20)), Duration::minutes(10)),
    ] {
        let config = EngineConfig {
            code_lifetime: configured.unwrap_or(EngineConfig::default().code_lifetime),
            ..EngineConfig::default()
        };
        let under = engine_beside(&engine, &clock, config);
        let issued_at = engine.now();
        let issued = issue(&under, approval("app", &["read"])).await;
        assert_eq!(
            issued.expires_in,
            lifetime.num_seconds(),
            "expires_in of a code, lifetime configured {configured:?}"
        );
        let stored = code_by_digest(&**engine.storage(), ZONE, issued.code.expose())
            .await
            .expect("an issued code is stored");
        assert_eq!(
            (stored.record.created_at, stored.record.expires_at),
            (issued_at, issued_at + lifetime),
            "the stored life of a code, lifetime configured {configured:?}"
        );
        clock.advance(lifetime);
        let result = redeem_as_approved(&under, "app", &issued.code).await;
        assert_invalid_grant(
            &result,
            InvalidGrantReason::CodeExpired,
            &format!("a code at the end of its life, lifetime configured {configured:?}"),
        );
    }
}

// ----- client credentials -----

/// A confidential client `id` allowed `read` and `write` through
/// `client_credentials` and `refresh_token` (offline, so only the grant type keeps
/// refresh tokens from it), with ten-minute access tokens.
fn machine_client(id: &str) -> ClientRegistration {
    ClientRegistration::new(format!("Machine {id}"))
        .id(id)
        .confidential()
        .scopes(["read", "write"])
        .grants([GrantType::ClientCredentials, GrantType::RefreshToken])
        .lifetimes(600, 30 * 24 * 3_600)
}

async fn client_token(
    engine: &Engine,
    client_id: &str,
    scopes: Option<&[&str]>,
    resource: Option<&str>,
) -> Result<Issued, Error> {
    let request = ClientCredentialsRequest {
        scopes: scopes.map(|s| s.iter().map(|&s| s.to_owned()).collect()),
        resource: resource.map(Into::into),
    };
    engine.client_credentials(ZONE, client_id, request).await
}

async fn issued_client_token(
    engine: &Engine,
    client_id: &str,
    scopes: Option<&[&str]>,
    resource: Option<&str>,
) -> Issued {
    client_token(engine, client_id, scopes, resource)
        .await
        .unwrap_or_else(|e| {
            panic!("client_credentials({client_id}, {scopes:?}, {resource:?}): {e:?}")
        })
}

fn assert_grant_type_not_allowed<T: Debug>(
    result: &Result<T, Error>,
    id: &str,
    grant: GrantType,
    what: &str,
) {
    assert!(
        matches!(
            result,
            Err(Error::GrantTypeNotAllowed { client_id, grant_type }) if client_id == id && *grant_type == grant
        ),
        "{what}: expected Error::GrantTypeNotAllowed of {grant:?}, got {result:?}"
    );
}

/// Client credentials (RFC 6749 §4.4): a confidential client allowed the grant type
/// gets an access token for itself and no refresh token (§4.4.3), under one
/// standing grant per resource (provider [`STANDING_PROVIDER`], user the client,
/// created once, by the client), reused by every request while active, so the store
/// holds one grant per resource however many tokens are asked for; `resource` sets
/// the audience (the client itself when absent); scopes narrower than allowed are
/// honoured, wider are [`Error::InvalidScope`]; a public client, or a client not
/// allowed the grant type, is [`Error::GrantTypeNotAllowed`]; no user's grant may
/// take the standing grants' provider.
pub async fn client_credentials_reuse_one_standing_grant<S: Storage>(store: S) {
    const REQUESTS: usize = 10;
    let (engine, clock) = engine_on_clock(store, EngineConfig::default());
    register(&engine, machine_client("service")).await;

    let first = issued_client_token(&engine, "service", None, None).await;
    let standing = first.grant.clone();
    assert_eq!(
        (
            standing.client_id.as_str(),
            standing.user_id.as_str(),
            standing.resource_id.as_str(),
            standing.provider_id.as_str(),
            standing.status,
            standing.refresh_token_set,
        ),
        (
            "service",
            "service",
            "service",
            STANDING_PROVIDER,
            ACTIVE,
            false
        ),
        "a client's standing grant: {standing:?}"
    );
    assert!(
        first.refresh_token.is_none(),
        "client credentials issued a refresh token"
    );
    assert_eq!(first.scopes, ["read", "write"]);
    assert_eq!(first.expires_in(), 600);
    let token = introspect_active(&engine, &first.access_token, "a client's own token").await;
    assert_eq!(
        (
            token.kind,
            token.client_id.as_str(),
            token.user_id.as_str(),
            token.resource_id.as_str(),
            token.scopes.as_slice(),
        ),
        (
            TokenKind::Access,
            "service",
            "service",
            "service",
            &["read".to_owned(), "write".to_owned()][..]
        ),
        "a client's own token, without a resource"
    );
    assert_eq!(
        history_now(&engine, &standing.id)
            .await
            .iter()
            .map(|t| (t.reason, t.actor.clone()))
            .collect::<Vec<_>>(),
        [(
            TransitionReason::Created,
            Actor::Client {
                id: "service".into()
            }
        )],
        "the standing grant is created by the client"
    );

    clock.advance(Duration::seconds(1));
    let second = issued_client_token(&engine, "service", None, None).await;
    assert_eq!(
        second.grant.id, standing.id,
        "a second request makes another grant"
    );
    assert_ne!(
        second.access_token.digest(),
        first.access_token.digest(),
        "a second request returns the first token"
    );
    assert!(
        introspects_active(&engine, &first.access_token).await
            && introspects_active(&engine, &second.access_token).await,
        "the tokens of two requests are both live"
    );

    let narrow = issued_client_token(&engine, "service", Some(&["read"]), Some("api-1")).await;
    let api = narrow.grant.clone();
    assert_ne!(
        api.id, standing.id,
        "a second resource shares the first one's grant"
    );
    assert_eq!(narrow.scopes, ["read"], "narrower scopes are honoured");
    let token = introspect_active(&engine, &narrow.access_token, "a token for api-1").await;
    assert_eq!(
        (token.resource_id.as_str(), token.scopes.as_slice()),
        ("api-1", &["read".to_owned()][..]),
        "the resource is the token's audience"
    );
    for _ in 0..REQUESTS {
        clock.advance(Duration::seconds(1));
        let again = issued_client_token(&engine, "service", None, Some("api-1")).await;
        assert_eq!(again.grant.id, api.id, "a repeated request makes a grant");
    }
    let s = &**engine.storage();
    for (resource, tokens) in [("service", 2), ("api-1", REQUESTS + 1)] {
        assert_eq!(
            count(
                s,
                ZONE,
                &filter(None, Some(resource), Some("service"), None),
                now()
            )
            .await,
            1,
            "grants of the client on {resource}"
        );
        let held = tokens_of(
            s,
            ZONE,
            if resource == "api-1" {
                &api.id
            } else {
                &standing.id
            },
        )
        .await;
        assert!(
            held.len() == tokens && held.iter().all(|t| t.record.kind == TokenKind::Access),
            "the standing grant on {resource} holds other than its {tokens} access tokens: {held:?}"
        );
    }

    let wider = client_token(&engine, "service", Some(&["read", "admin"]), None).await;
    assert!(
        matches!(&wider, Err(Error::InvalidScope { scopes }) if scopes == &["admin"]),
        "scopes wider than allowed: expected Error::InvalidScope, got {wider:?}"
    );
    let unknown = client_token(&engine, "nobody", None, None).await;
    assert_client_not_found(
        &unknown,
        "nobody",
        "client credentials of an unknown client",
    );

    register(
        &engine,
        code_client("app").grants([GrantType::ClientCredentials, GrantType::AuthorizationCode]),
    )
    .await;
    let public = client_token(&engine, "app", None, None).await;
    assert_grant_type_not_allowed(
        &public,
        "app",
        GrantType::ClientCredentials,
        "client credentials of a public client",
    );
    register(&engine, code_client("web").confidential()).await;
    let web = client_token(&engine, "web", None, None).await;
    assert_grant_type_not_allowed(
        &web,
        "web",
        GrantType::ClientCredentials,
        "client credentials of a client not allowed them",
    );
    let posing = engine
        .issue_code(
            ZONE,
            CodeRequest {
                provider_id: STANDING_PROVIDER.into(),
                ..approval("app", &["read"])
            },
        )
        .await;
    assert_invalid_input(
        &posing,
        "provider_id",
        "a code for a grant posing as a standing grant",
    );
    let posing = engine
        .authorize(
            ZONE,
            AuthorizeRequest {
                provider_id: STANDING_PROVIDER.into(),
                ..AuthorizeRequest::new("app", "service", "service", ["read"])
            },
        )
        .await;
    assert_invalid_input(
        &posing,
        "provider_id",
        "a user's grant posing as a standing grant",
    );
    assert_eq!(
        count(s, ZONE, &filter(None, None, None, None), now()).await,
        2,
        "refused requests made grants"
    );
}

/// A client that may no longer use client credentials, disabled or with the grant
/// type taken away, loses its standing grants in the same change: each is revoked,
/// its history ending in [`TransitionReason::ClientDisabled`], and its tokens
/// introspect inactive; requests are refused meanwhile. An unrelated change revokes
/// nothing. Enabled again, the client's next request works under a new grant.
pub async fn client_credentials_tokens_stop_when_the_client_is_disabled<S: Storage>(store: S) {
    let (engine, clock) = engine_on_clock(store, EngineConfig::default());
    register(&engine, machine_client("service")).await;
    let own = issued_client_token(&engine, "service", None, None).await;
    let api = issued_client_token(&engine, "service", None, Some("api-1")).await;

    clock.advance(Duration::seconds(1));
    update(
        &engine,
        "service",
        ClientUpdate {
            name: Some("Renamed".into()),
            ..ClientUpdate::default()
        },
    )
    .await;
    assert!(
        introspects_active(&engine, &own.access_token).await
            && introspects_active(&engine, &api.access_token).await,
        "renaming a client stopped its tokens"
    );

    clock.advance(Duration::seconds(1));
    let disabled_at = engine.now();
    update(
        &engine,
        "service",
        ClientUpdate {
            enabled: Some(false),
            ..ClientUpdate::default()
        },
    )
    .await;
    for issued in [&own, &api] {
        let id = &issued.grant.id;
        assert_eq!(
            grant_now(&engine, id).await.status,
            REVOKED,
            "{id}: disabling the client left its standing grant active"
        );
        assert_revoked_for(
            &history_now(&engine, id).await,
            TransitionReason::ClientDisabled,
            disabled_at,
            id,
        );
        assert!(
            !introspects_active(&engine, &issued.access_token).await,
            "{id}: a disabled client's own token still introspects active"
        );
    }
    let refused = client_token(&engine, "service", None, None).await;
    assert!(
        matches!(&refused, Err(Error::ClientDisabled { client_id }) if client_id == "service"),
        "client credentials of a disabled client: expected Error::ClientDisabled, got \
         {refused:?}"
    );

    clock.advance(Duration::seconds(1));
    update(
        &engine,
        "service",
        ClientUpdate {
            enabled: Some(true),
            ..ClientUpdate::default()
        },
    )
    .await;
    let renewed = issued_client_token(&engine, "service", None, None).await;
    assert_ne!(
        renewed.grant.id, own.grant.id,
        "a client enabled again reuses its revoked grant"
    );
    assert!(introspects_active(&engine, &renewed.access_token).await);
    assert!(
        !introspects_active(&engine, &own.access_token).await,
        "enabling the client again revived a token revoked with its grant"
    );

    clock.advance(Duration::seconds(1));
    let withdrawn_at = engine.now();
    update(
        &engine,
        "service",
        ClientUpdate {
            allowed_grants: Some(vec![GrantType::RefreshToken]),
            ..ClientUpdate::default()
        },
    )
    .await;
    let id = &renewed.grant.id;
    assert_revoked_for(
        &history_now(&engine, id).await,
        TransitionReason::ClientDisabled,
        withdrawn_at,
        "a standing grant of a client no longer allowed client credentials",
    );
    assert!(
        !introspects_active(&engine, &renewed.access_token).await,
        "the token of a client no longer allowed client credentials still introspects active"
    );
    let refused = client_token(&engine, "service", None, None).await;
    assert_grant_type_not_allowed(
        &refused,
        "service",
        GrantType::ClientCredentials,
        "client credentials of a client no longer allowed them",
    );
}

/// Disabling a client revokes every one of its standing grants, however many
/// resources it holds tokens for: more than one page of them.
pub async fn disabling_a_client_revokes_every_standing_grant<S: Storage>(store: S) {
    let resources = tenure::validate::MAX_PAGE_LIMIT + 1;
    let (engine, clock) = engine_on_clock(store, EngineConfig::default());
    register(&engine, machine_client("service")).await;
    let mut tokens = Vec::new();
    for n in 0..resources {
        clock.advance(Duration::milliseconds(1));
        let resource = format!("api-{n:03}");
        tokens.push(issued_client_token(&engine, "service", None, Some(&resource)).await);
    }
    update(
        &engine,
        "service",
        ClientUpdate {
            enabled: Some(false),
            ..ClientUpdate::default()
        },
    )
    .await;
    let still = filter(None, None, Some("service"), Some(ACTIVE));
    assert_eq!(
        count(&**engine.storage(), ZONE, &still, engine.now()).await,
        0,
        "standing grants of a disabled client with {resources} resources are still active"
    );
    for (n, issued) in tokens.iter().enumerate() {
        assert!(
            !introspects_active(&engine, &issued.access_token).await,
            "the token for api-{n:03} of a disabled client still introspects active"
        );
    }
}

/// A client's own tokens are pruned by the sweep at their expiry, leaving the
/// standing grant, which the next request reuses; a standing grant lives
/// [`STANDING_GRANT_LIFETIME`], caps its tokens' expiry at its own, and the first
/// request after it has expired starts a new one.
pub async fn client_credentials_tokens_are_swept_at_expiry<S: Storage>(store: S) {
    let (engine, clock) = engine_on_clock(store, EngineConfig::default());
    register(&engine, machine_client("service")).await;
    let s = &**engine.storage();
    let started = engine.now();
    let first = issued_client_token(&engine, "service", None, None).await;
    let standing = first.grant.clone();
    assert_eq!(standing.expires_at, started + STANDING_GRANT_LIFETIME);
    clock.advance(Duration::seconds(100));
    let second = issued_client_token(&engine, "service", None, None).await;

    clock.set(first.access_expires_at);
    let report = sweep(&engine, 100).await;
    assert_eq!(
        (report.tokens_removed, report.expired),
        (1, 0),
        "a sweep at the first token's expiry: {report:?}"
    );
    assert_eq!(
        tokens_of(s, ZONE, &standing.id)
            .await
            .iter()
            .map(|t| t.record.digest)
            .collect::<Vec<_>>(),
        [second.access_token.digest()],
        "the standing grant keeps its live token alone"
    );
    assert!(
        !introspects_active(&engine, &first.access_token).await
            && introspects_active(&engine, &second.access_token).await
    );
    clock.set(second.access_expires_at);
    let report = sweep(&engine, 100).await;
    assert_eq!(report.tokens_removed, 1, "{report:?}");
    assert_eq!(tokens_of(s, ZONE, &standing.id).await, Vec::new());
    assert_eq!(
        grant_now(&engine, &standing.id).await.status,
        ACTIVE,
        "the sweep of its tokens touched the standing grant"
    );
    let third = issued_client_token(&engine, "service", None, None).await;
    assert_eq!(
        third.grant.id, standing.id,
        "a request after the sweep starts a new grant"
    );

    clock.set(standing.expires_at - Duration::seconds(100));
    let last = issued_client_token(&engine, "service", None, None).await;
    assert_eq!(last.grant.id, standing.id);
    assert_eq!(
        last.access_expires_at, standing.expires_at,
        "a token outliving its standing grant"
    );
    clock.set(standing.expires_at);
    let next = issued_client_token(&engine, "service", None, None).await;
    assert_ne!(
        next.grant.id, standing.id,
        "a request after the standing grant's expiry reuses it"
    );
    assert_eq!(grant_now(&engine, &standing.id).await.status, EXPIRED);
    let report = sweep(&engine, 100).await;
    assert_eq!(
        (report.expired, report.tokens_removed),
        (1, 2),
        "a sweep at the standing grant's expiry: {report:?}"
    );
    assert_eq!(tokens_of(s, ZONE, &standing.id).await, Vec::new());
    assert!(introspects_active(&engine, &next.access_token).await);
}

// ----- client authentication -----

async fn authenticate(engine: &Engine, credentials: &ClientCredentials) -> Result<Client, Error> {
    engine.authenticate_client(ZONE, credentials).await
}

fn assert_authenticated(result: &Result<Client, Error>, id: &str, what: &str) {
    assert!(
        matches!(result, Ok(client) if client.id == id),
        "{what}: expected client {id}, got {result:?}"
    );
}

fn assert_invalid_client<T: Debug>(
    result: &Result<T, Error>,
    method: ClientAuthMethod,
    what: &str,
) {
    assert!(
        matches!(result, Err(Error::InvalidClient { method: m }) if *m == method),
        "{what}: expected Error::InvalidClient by {method:?}, got {result:?}"
    );
}

/// A secret presented `method`'s way, or none.
fn presented(id: &str, secret: Option<&str>, method: ClientAuthMethod) -> ClientCredentials {
    ClientCredentials {
        client_id: id.into(),
        secret: secret.map(Secret::from_presented),
        method,
    }
}

/// Client authentication (RFC 6749 §2.3): a confidential client by its secret, by
/// HTTP Basic or in the form; a public client by its id alone. A wrong or missing
/// secret, an unknown or malformed client id, a client of another zone, another
/// client's secret, a public client presenting a secret and a confidential client
/// presenting none are all [`Error::InvalidClient`] carrying the method used. A
/// disabled client authenticates (what it may do is decided later).
pub async fn client_authentication_methods<S: Storage>(store: S) {
    const BASIC: ClientAuthMethod = ClientAuthMethod::ClientSecretBasic;
    const POST: ClientAuthMethod = ClientAuthMethod::ClientSecretPost;
    const NONE: ClientAuthMethod = ClientAuthMethod::None;
    let (engine, _clock) = engine_on_clock(store, EngineConfig::default());
    let registered = register(&engine, machine_client("service")).await;
    let secret = registered
        .secret
        .expect("a confidential client gets a secret");
    let secret = secret.expose();
    let other = register(&engine, machine_client("service-2")).await;
    let other = other.secret.expect("a confidential client gets a secret");
    register(&engine, code_client("app")).await;

    let basic = authenticate(&engine, &ClientCredentials::basic("service", secret)).await;
    assert_authenticated(&basic, "service", "client_secret_basic with the secret");
    let post = authenticate(&engine, &ClientCredentials::post("service", secret)).await;
    assert_authenticated(&post, "service", "client_secret_post with the secret");
    let public = authenticate(&engine, &ClientCredentials::public("app")).await;
    assert_authenticated(&public, "app", "a public client by its id");

    let wrong = format!("{secret}x");
    let cases: Vec<(ClientCredentials, &str)> = vec![
        (presented("service", Some(&wrong), BASIC), "a wrong secret"),
        (presented("service", Some(&wrong), POST), "a wrong secret"),
        (presented("service", Some(""), POST), "an empty secret"),
        (presented("service", None, BASIC), "no secret"),
        (presented("service", None, POST), "no secret"),
        (
            presented("service", Some(other.expose()), BASIC),
            "another client's secret",
        ),
        (
            presented("service", None, NONE),
            "a confidential client by its id alone",
        ),
        (
            presented("service", Some(secret), NONE),
            "a secret sent with method none",
        ),
        (
            presented("nobody", Some(secret), BASIC),
            "an unknown client",
        ),
        (presented("nobody", None, NONE), "an unknown client"),
        (presented("", Some(secret), POST), "an empty client id"),
        (
            presented("app", Some(secret), BASIC),
            "a public client presenting a secret",
        ),
        (
            presented("app", Some(secret), POST),
            "a public client presenting a secret",
        ),
        (
            presented("app", None, BASIC),
            "a public client by Basic without a secret",
        ),
    ];
    for (credentials, what) in &cases {
        let result = authenticate(&engine, credentials).await;
        assert_invalid_client(
            &result,
            credentials.method,
            &format!("{what}: {credentials:?}"),
        );
    }
    let foreign = engine
        .authenticate_client(OTHER_ZONE, &ClientCredentials::basic("service", secret))
        .await;
    assert_invalid_client(&foreign, BASIC, "a client of another zone");

    update(
        &engine,
        "service",
        ClientUpdate {
            enabled: Some(false),
            ..ClientUpdate::default()
        },
    )
    .await;
    let disabled = authenticate(&engine, &ClientCredentials::basic("service", secret)).await;
    assert_authenticated(&disabled, "service", "a disabled client");
}

/// Secret rotation: the replaced secret keeps working beside the new one until the
/// deadline given (stored as the client's [`RetiringSecret`]) and stops at it; a
/// second rotation stops the secret the first replaced at once; a deadline already
/// past stops the replaced secret at once; a deadline beyond
/// [`MAX_SECRET_OVERLAP`] (90 days) and a public client are refused as input and
/// change nothing.
pub async fn client_secret_rotation_keeps_the_old_secret_until_its_deadline<S: Storage>(store: S) {
    let (engine, clock) = engine_on_clock(store, EngineConfig::default());
    let registered = register(&engine, machine_client("service")).await;
    let first = registered
        .secret
        .expect("a confidential client gets a secret");
    let works = |secret: &Secret| {
        let engine = &engine;
        let basic = ClientCredentials::basic("service", secret.expose());
        let post = ClientCredentials::post("service", secret.expose());
        async move {
            let by_basic = authenticate(engine, &basic).await.is_ok();
            let by_post = authenticate(engine, &post).await.is_ok();
            assert_eq!(by_basic, by_post, "Basic and post disagree on a secret");
            by_basic
        }
    };
    let rotate = |deadline: Timestamp| {
        let engine = &engine;
        async move {
            engine
                .rotate_client_secret(ZONE, "service", deadline)
                .await
                .unwrap_or_else(|e| panic!("rotate_client_secret(until {deadline}): {e:?}"))
        }
    };

    let deadline = engine.now() + Duration::hours(1);
    let rotated = rotate(deadline).await;
    let second = rotated.secret.expect("a rotation returns the new secret");
    assert_ne!(second.digest(), first.digest());
    let retiring = Some(RetiringSecret {
        digest: first.digest(),
        valid_until: deadline,
    });
    assert_eq!(rotated.client.previous_secret, retiring);
    assert_eq!(
        get_client(&**engine.storage(), ZONE, "service")
            .await
            .map(|c| (c.record.secret_digest, c.record.previous_secret)),
        Some((Some(second.digest()), retiring)),
        "the stored client after a rotation"
    );
    assert!(
        works(&first).await && works(&second).await,
        "after a rotation, the old and the new secret"
    );
    clock.set(deadline - Duration::milliseconds(1));
    assert!(
        works(&first).await,
        "the old secret a millisecond before its deadline"
    );
    clock.set(deadline);
    assert!(!works(&first).await, "the old secret at its deadline");
    assert!(
        works(&second).await,
        "the new secret after the old one's deadline"
    );

    let third = rotate(engine.now() + Duration::hours(1))
        .await
        .secret
        .expect("a rotation returns the new secret");
    assert!(works(&second).await && works(&third).await);
    let fourth = rotate(engine.now() + Duration::hours(1))
        .await
        .secret
        .expect("a rotation returns the new secret");
    assert!(
        !works(&second).await,
        "a second rotation left the secret the first replaced working"
    );
    assert!(works(&third).await && works(&fourth).await);

    let fifth = rotate(engine.now() - Duration::seconds(1))
        .await
        .secret
        .expect("a rotation returns the new secret");
    assert!(
        !works(&fourth).await && works(&fifth).await,
        "a rotation with a deadline already past stops the old secret at once"
    );

    let before = get_client(&**engine.storage(), ZONE, "service").await;
    let at_limit = engine.now() + MAX_SECRET_OVERLAP;
    let too_far = engine
        .rotate_client_secret(ZONE, "service", at_limit + Duration::milliseconds(1))
        .await;
    assert_invalid_input(
        &too_far,
        "previous_secret_valid_until",
        "a deadline past 90 days",
    );
    assert_eq!(
        get_client(&**engine.storage(), ZONE, "service").await,
        before,
        "a refused rotation changed the client"
    );
    assert!(works(&fifth).await);
    let longest = rotate(at_limit).await;
    assert_eq!(
        longest
            .client
            .previous_secret
            .map(|p| (p.digest, p.valid_until)),
        Some((fifth.digest(), at_limit)),
        "a deadline exactly 90 days ahead"
    );

    register(&engine, code_client("app")).await;
    let public = engine
        .rotate_client_secret(ZONE, "app", engine.now() + Duration::hours(1))
        .await;
    assert_invalid_input(&public, "client_type", "rotating a public client's secret");
    let unknown = engine
        .rotate_client_secret(ZONE, "nobody", engine.now() + Duration::hours(1))
        .await;
    assert_client_not_found(&unknown, "nobody", "rotating an unknown client's secret");
}

// ----- deleting a client -----

/// Deleting a client ([`Engine::delete_client`]) first revokes every active grant
/// made to it, by [`Actor::Admin`] and with a history entry each, so their access
/// and refresh tokens introspect inactive at once and a refresh token, rotated or
/// not, is refused ([`InvalidGrantReason::ClientMismatch`]: there is no client to
/// refresh for); the grants stay listed, revoked. The client is then not found,
/// deleting it again is [`Error::NotFound`], and the same id registered again is a
/// new client with no active grant, under which the old tokens stay refused.
pub async fn deleting_a_client_revokes_its_grants_and_stops_its_tokens<S: Storage>(store: S) {
    let (engine, clock) = engine_on_clock(store, EngineConfig::default());
    let registration = ClientRegistration::new("App").id("app").scopes(["read"]);
    register(&engine, registration.clone()).await;
    let authorize = |resource: &str| {
        engine.authorize(
            ZONE,
            AuthorizeRequest::new("app", "user-1", resource, ["read"]),
        )
    };
    let kept = authorize("resource-1")
        .await
        .unwrap_or_else(|e| panic!("authorize: {e:?}"));
    let first = authorize("resource-2")
        .await
        .unwrap_or_else(|e| panic!("authorize: {e:?}"));
    clock.advance(Duration::seconds(1));
    let first_refresh = first
        .refresh_token
        .clone()
        .expect("an offline client gets a refresh token");
    let refreshed = engine
        .refresh(ZONE, RefreshRequest::new("app", &first_refresh))
        .await
        .unwrap_or_else(|e| panic!("refresh: {e:?}"));
    let mut access = vec![
        kept.access_token.clone(),
        first.access_token.clone(),
        refreshed.access_token.clone(),
    ];
    let refresh_tokens = [
        kept.refresh_token.clone().expect("a refresh token"),
        refreshed.refresh_token.clone().expect("a refresh token"),
    ];
    for secret in access.iter().chain(&refresh_tokens) {
        assert!(
            introspects_active(&engine, secret).await,
            "a token of the client is inactive before the deletion"
        );
    }

    clock.advance(Duration::seconds(1));
    let deleted_at = engine.now();
    engine
        .delete_client(ZONE, "app")
        .await
        .unwrap_or_else(|e| panic!("delete_client: {e:?}"));

    for grant in [&kept.grant, &first.grant] {
        assert_eq!(
            grant_now(&engine, &grant.id).await.status,
            GrantStatus::Revoked,
            "a grant of a deleted client is not revoked"
        );
        let history = history_now(&engine, &grant.id).await;
        let last = history
            .last()
            .map(|t| (t.from, t.to, t.reason, &t.actor, t.at));
        assert_eq!(
            last,
            Some((
                Some(GrantStatus::Active),
                GrantStatus::Revoked,
                TransitionReason::Revoked,
                &Actor::Admin,
                deleted_at
            )),
            "the history of a grant of a deleted client: {history:?}"
        );
    }
    let listed = engine
        .list_grants(
            ZONE,
            &ListGrants {
                client_id: Some("app".into()),
                ..ListGrants::default()
            },
        )
        .await
        .expect("list_grants");
    assert_eq!(
        listed.items.len(),
        2,
        "the grants of a deleted client are still listed"
    );
    access.push(first_refresh.clone());
    for secret in access.iter().chain(&refresh_tokens) {
        assert!(
            !introspects_active(&engine, secret).await,
            "a token of a deleted client introspects active"
        );
    }
    for secret in refresh_tokens.iter().chain([&first_refresh]) {
        let result = engine
            .refresh(ZONE, RefreshRequest::new("app", secret))
            .await;
        // The engine finds no client to refresh for: the same refusal as a refresh
        // token presented by a client it was not issued to.
        assert_invalid_grant(
            &result,
            InvalidGrantReason::ClientMismatch,
            "a refresh token of a deleted client",
        );
    }
    assert_client_not_found(
        &engine.get_client(ZONE, "app").await,
        "app",
        "a deleted client",
    );
    assert_client_not_found(
        &engine.delete_client(ZONE, "app").await,
        "app",
        "deleting a deleted client",
    );

    register(&engine, registration).await;
    let active = filter(None, None, Some("app"), Some(ACTIVE));
    assert_eq!(
        count(&**engine.storage(), ZONE, &active, engine.now()).await,
        0,
        "a client registered again under a deleted client's id has its active grants"
    );
    for secret in access.iter().chain(&refresh_tokens) {
        assert!(
            !introspects_active(&engine, secret).await,
            "a token of a deleted client introspects active once its id is registered again"
        );
    }
    let result = engine
        .refresh(ZONE, RefreshRequest::new("app", &refresh_tokens[0]))
        .await;
    assert_invalid_grant(
        &result,
        InvalidGrantReason::TokenRevoked,
        "the old refresh token, once the id is registered again",
    );
}
