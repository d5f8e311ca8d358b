//! Opening a store of format 1, written before grants kept a refresh chain and
//! tokens a refresh generation, upgrades it in place: grants read with
//! `RefreshChain::LEGACY`, tokens with `Token::legacy_generation`, every token is
//! in the token expiry index, and the engine rotates an unspent legacy refresh token
//! and treats a spent one as reuse. An upgrade cut short, by hand or by SIGKILL at a
//! random moment, is finished when the store is opened again. A store of format 2
//! written before clients kept a previous secret and before authorization codes
//! were stored opens as it is, and takes both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration};
use tenure::{
    AuthorizationCode, ClientRegistration, Digest, Engine, Error, Expect, Grant, GrantStatus,
    ManualClock, RefreshChain, RefreshRequest, RetiringSecret, Secret, SecretKind, Storage,
    Timestamp, Token, TokenKind, Transition, TransitionReason, Versioned, Write, WriteSet,
};
use tenure_sled::{Durability, FORMAT_VERSION, OpenError, SledConfig, SledStorage, StoreError};

const ZONE: &str = "zone-1";
const CLIENT: &str = "calendar";

/// Format 1, written by hand exactly as tenure-sled's codec wrote it before format
/// 2: the grant, token and client layouts below are copies of that codec's
/// `GrantV1`, `TokenV1` and `ClientV1` (postcard writes no field names, so their
/// field order and types are the format), behind the format byte 1. Transitions
/// and every index have the same layout and keys in both formats, so a store of
/// format 1 is made by writing those through the current code, and its grants,
/// tokens and clients here. The client layout is also the one stores of format 2
/// held before clients kept the secret a rotation replaced.
mod legacy {
    use serde::Serialize;
    use tenure::{
        AccessType, Client, ClientType, Grant, GrantStatus, GrantType, ScopePolicy, Timestamp,
        Token, TokenKind,
    };

    #[derive(Serialize)]
    struct Time(i64, u32);

    impl From<Timestamp> for Time {
        fn from(t: Timestamp) -> Self {
            Time(t.timestamp(), t.timestamp_subsec_nanos())
        }
    }

    #[derive(Serialize)]
    enum StatusV1 {
        Active,
        Expired,
        Revoked,
    }

    #[derive(Serialize)]
    struct GrantV1 {
        version: u64,
        id: String,
        zone_id: String,
        organization_id: String,
        user_id: String,
        resource_id: String,
        provider_id: String,
        client_id: String,
        scopes: Vec<String>,
        status: StatusV1,
        created_at: Time,
        updated_at: Time,
        expires_at: Time,
        refreshed_at: Option<Time>,
        refresh_token_set: bool,
    }

    #[derive(Serialize)]
    struct TokenV1 {
        version: u64,
        digest: [u8; 32],
        zone_id: String,
        grant_id: String,
        client_id: String,
        user_id: String,
        refresh: bool,
        scopes: Vec<String>,
        issued_at: Time,
        expires_at: Time,
        spent_at: Option<Time>,
        revoked_at: Option<Time>,
    }

    /// A grant's record in format 1 (its refresh chain is not stored).
    pub fn grant(g: &Grant, version: u64) -> Vec<u8> {
        let record = GrantV1 {
            version,
            id: g.id.clone(),
            zone_id: g.zone_id.clone(),
            organization_id: g.organization_id.clone(),
            user_id: g.user_id.clone(),
            resource_id: g.resource_id.clone(),
            provider_id: g.provider_id.clone(),
            client_id: g.client_id.clone(),
            scopes: g.scopes.clone(),
            status: match g.status {
                GrantStatus::Active => StatusV1::Active,
                GrantStatus::Expired => StatusV1::Expired,
                GrantStatus::Revoked => StatusV1::Revoked,
            },
            created_at: g.created_at.into(),
            updated_at: g.updated_at.into(),
            expires_at: g.expires_at.into(),
            refreshed_at: g.refreshed_at.map(Into::into),
            refresh_token_set: g.refresh_token_set,
        };
        postcard::to_extend(&record, vec![1]).unwrap()
    }

    /// A token's record in format 1, spent at `spent_at` (its generation is not
    /// stored).
    pub fn token(t: &Token, version: u64, spent_at: Option<Timestamp>) -> Vec<u8> {
        let record = TokenV1 {
            version,
            digest: *t.digest.as_bytes(),
            zone_id: t.zone_id.clone(),
            grant_id: t.grant_id.clone(),
            client_id: t.client_id.clone(),
            user_id: t.user_id.clone(),
            refresh: t.kind == TokenKind::Refresh,
            scopes: t.scopes.clone(),
            issued_at: t.issued_at.into(),
            expires_at: t.expires_at.into(),
            spent_at: spent_at.map(Into::into),
            revoked_at: t.revoked_at.map(Into::into),
        };
        postcard::to_extend(&record, vec![1]).unwrap()
    }

    #[derive(Serialize)]
    enum GrantTypeV1 {
        AuthorizationCode,
        RefreshToken,
        ClientCredentials,
        DeviceCode,
    }

    #[derive(Serialize)]
    struct ClientV1 {
        version: u64,
        id: String,
        zone_id: String,
        organization_id: String,
        name: String,
        description: Option<String>,
        confidential: bool,
        owner_account_id: Option<String>,
        allowed_scopes: Vec<String>,
        allowed_grants: Vec<GrantTypeV1>,
        inherit_scopes: bool,
        offline: bool,
        access_token_ttl_seconds: u32,
        refresh_token_ttl_seconds: u32,
        redirect_uris: Vec<String>,
        enabled: bool,
        secret_digest: Option<[u8; 32]>,
        created_at: Time,
        updated_at: Time,
        refresh_stopped_at: Option<Time>,
        last_used_at: Option<Time>,
    }

    /// A client's record in format 1 (it has no place for a previous secret).
    pub fn client(c: &Client, version: u64) -> Vec<u8> {
        let record = ClientV1 {
            version,
            id: c.id.clone(),
            zone_id: c.zone_id.clone(),
            organization_id: c.organization_id.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            confidential: c.client_type == ClientType::Confidential,
            owner_account_id: c.owner_account_id.clone(),
            allowed_scopes: c.allowed_scopes.clone(),
            allowed_grants: c
                .allowed_grants
                .iter()
                .map(|g| match g {
                    GrantType::AuthorizationCode => GrantTypeV1::AuthorizationCode,
                    GrantType::RefreshToken => GrantTypeV1::RefreshToken,
                    GrantType::ClientCredentials => GrantTypeV1::ClientCredentials,
                    GrantType::DeviceCode => GrantTypeV1::DeviceCode,
                })
                .collect(),
            inherit_scopes: c.scope_policy == ScopePolicy::Inherit,
            offline: c.access_type == AccessType::Offline,
            access_token_ttl_seconds: c.access_token_ttl_seconds,
            refresh_token_ttl_seconds: c.refresh_token_ttl_seconds,
            redirect_uris: c.redirect_uris.clone(),
            enabled: c.enabled,
            secret_digest: c.secret_digest.map(|d| *d.as_bytes()),
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
            refresh_stopped_at: c.refresh_stopped_at.map(Into::into),
            last_used_at: c.last_used_at.map(Into::into),
        };
        postcard::to_extend(&record, vec![1]).unwrap()
    }

    /// The trees a store gained after format 2 was first written.
    pub const LATER_TREES: [&str; 2] = ["authorization_codes", "authorization_code_expiry"];

    /// The key of a record in `grants`, `tokens` or `clients`: the zone, escaped and
    /// terminated, then the id or digest raw.
    pub fn key(zone: &str, id: &[u8]) -> Vec<u8> {
        let mut key = Vec::new();
        for &b in zone.as_bytes() {
            key.push(b);
            if b == 0 {
                key.push(0xFF);
            }
        }
        key.extend_from_slice(&[0, 1]);
        key.extend_from_slice(id);
        key
    }
}

fn epoch() -> Timestamp {
    DateTime::from_timestamp(1_893_456_000, 0).unwrap()
}

/// A token as format 1 held it: the record (its generation aside) and when it was
/// spent.
#[derive(Debug, Clone)]
struct Old {
    token: Token,
    spent_at: Option<Timestamp>,
}

impl Old {
    /// The record the upgrade makes of it.
    fn upgraded(&self) -> Versioned<Token> {
        Versioned {
            record: Token {
                generation: Token::legacy_generation(self.spent_at.is_some()),
                ..self.token.clone()
            },
            version: 1,
        }
    }
}

fn grant(id: &str, status: GrantStatus, refreshed: bool) -> Grant {
    Grant {
        id: id.to_owned(),
        zone_id: ZONE.to_owned(),
        organization_id: "default".to_owned(),
        user_id: "alice".to_owned(),
        resource_id: "calendar-api".to_owned(),
        provider_id: "tenure".to_owned(),
        client_id: CLIENT.to_owned(),
        scopes: vec!["read".to_owned()],
        status,
        created_at: epoch() - Duration::days(1),
        updated_at: epoch() - Duration::hours(12),
        expires_at: epoch() + Duration::days(29),
        refreshed_at: refreshed.then(|| epoch() - Duration::hours(12)),
        refresh_token_set: status == GrantStatus::Active,
        // Not stored in format 1: whatever is here is lost, as it would be.
        refresh: RefreshChain {
            generation: 99,
            family: Some(Digest::from_bytes([9; 32])),
            current: None,
            previous: None,
        },
    }
}

struct TokenSpec {
    kind: TokenKind,
    issued: Duration,
    expires: Duration,
    spent: bool,
    revoked: bool,
}

fn token(g: &Grant, digest: Digest, spec: &TokenSpec) -> Old {
    Old {
        token: Token {
            digest,
            zone_id: ZONE.to_owned(),
            grant_id: g.id.clone(),
            client_id: CLIENT.to_owned(),
            user_id: g.user_id.clone(),
            kind: spec.kind,
            scopes: vec!["read".to_owned()],
            issued_at: epoch() + spec.issued,
            expires_at: epoch() + spec.expires,
            // Not stored in format 1.
            generation: 42,
            revoked_at: spec.revoked.then(|| epoch() - Duration::hours(1)),
        },
        spent_at: spec.spent.then(|| epoch() - Duration::hours(12)),
    }
}

/// Writes a store of format 1 at `path` holding the client, `grants` (each with its
/// `Created` history entry) and `tokens`, every record at version 1.
async fn write_format_1(path: &Path, grants: &[Grant], tokens: &[Old]) {
    let store =
        SledStorage::open_with(path, SledConfig::new().durability(Durability::Periodic)).unwrap();
    let engine = Engine::builder(Arc::new(store.clone()))
        .clock(Arc::new(ManualClock::new(epoch() - Duration::days(2))))
        .build();
    engine
        .register_client(
            ZONE,
            ClientRegistration::new("Calendar")
                .id(CLIENT)
                .scopes(["read"]),
        )
        .await
        .unwrap();
    for chunk in grants.chunks(100) {
        let mut set = WriteSet::new();
        for g in chunk {
            set.push(Write::PutGrant {
                grant: g.clone(),
                expect: Expect::Absent,
            });
            set.push(Write::AppendTransition(Transition {
                zone_id: ZONE.to_owned(),
                grant_id: g.id.clone(),
                from: None,
                to: GrantStatus::Active,
                reason: TransitionReason::Created,
                actor: tenure::Actor::User {
                    id: g.user_id.clone(),
                },
                at: g.created_at,
            }));
            if g.status == GrantStatus::Revoked {
                set.push(Write::AppendTransition(Transition {
                    zone_id: ZONE.to_owned(),
                    grant_id: g.id.clone(),
                    from: Some(GrantStatus::Active),
                    to: GrantStatus::Revoked,
                    reason: TransitionReason::Revoked,
                    actor: tenure::Actor::Admin,
                    at: g.updated_at,
                }));
            }
        }
        store.apply(set).await.unwrap();
    }
    for chunk in tokens.chunks(300) {
        let mut set = WriteSet::new();
        for t in chunk {
            set.push(Write::PutToken {
                token: t.token.clone(),
                expect: Expect::Absent,
            });
        }
        store.apply(set).await.unwrap();
    }
    let client = store.get_client(ZONE, CLIENT).await.unwrap().unwrap();
    drop(engine);
    drop(store);

    let raw = open_raw(path);
    write_legacy_client(&raw, &client);
    let stored = raw.open_tree("grants").unwrap();
    for g in grants {
        let key = legacy::key(ZONE, g.id.as_bytes());
        assert!(stored.contains_key(&key).unwrap(), "the key of {}", g.id);
        stored.insert(key, legacy::grant(g, 1)).unwrap();
    }
    let stored = raw.open_tree("tokens").unwrap();
    for t in tokens {
        let key = legacy::key(ZONE, t.token.digest.as_bytes());
        assert!(stored.contains_key(&key).unwrap());
        stored
            .insert(key, legacy::token(&t.token, 1, t.spent_at))
            .unwrap();
    }
    assert!(raw.drop_tree("token_expiry").unwrap());
    for tree in legacy::LATER_TREES {
        assert!(raw.drop_tree(tree).unwrap());
    }
    raw.open_tree("tenure_meta")
        .unwrap()
        .insert("format_version", &1u32.to_be_bytes())
        .unwrap();
    raw.flush().unwrap();
}

/// Rewrites a stored client in the layout of format 1.
fn write_legacy_client(raw: &sled::Db, client: &Versioned<tenure::Client>) {
    let key = legacy::key(&client.record.zone_id, client.record.id.as_bytes());
    let clients = raw.open_tree("clients").unwrap();
    assert!(clients.contains_key(&key).unwrap());
    clients
        .insert(key, legacy::client(&client.record, client.version))
        .unwrap();
}

/// How many grant and token records start with format byte 1, and how many with 2,
/// and the store's format marker.
fn formats(path: &Path) -> ([usize; 2], [usize; 2], u32) {
    let raw = open_raw(path);
    let count = |tree: &str| {
        let mut n = [0; 2];
        for item in raw.open_tree(tree).unwrap().iter() {
            let (_, value) = item.unwrap();
            match value[0] {
                1 => n[0] += 1,
                2 => n[1] += 1,
                other => panic!("a {tree} record of format {other}"),
            }
        }
        n
    };
    let marker = raw
        .open_tree("tenure_meta")
        .unwrap()
        .get("format_version")
        .unwrap()
        .map(|v| u32::from_be_bytes(v.as_ref().try_into().unwrap()))
        .unwrap();
    (count("grants"), count("tokens"), marker)
}

/// The tokens whose expiry is at or before `now`, in the order the expiry index
/// gives them.
fn expected_expired(tokens: &[Old], now: Timestamp) -> Vec<Versioned<Token>> {
    let mut due: Vec<_> = tokens
        .iter()
        .filter(|t| t.token.expires_at <= now)
        .map(Old::upgraded)
        .collect();
    due.sort_by_key(|t| (t.record.expires_at, t.record.digest));
    due
}

/// Checks that the store at `path` holds exactly the upgrade of `grants` and
/// `tokens`, with every index whole.
async fn check_upgraded(store: &SledStorage, grants: &[Grant], tokens: &[Old]) {
    let report = store.check_integrity().await.unwrap();
    assert!(report.is_consistent(), "{report:#?}");
    assert_eq!(
        (report.grants, report.tokens, report.orphan_tokens),
        (grants.len() as u64, tokens.len() as u64, 0)
    );
    assert_eq!(report.unlisted_tokens, 0);
    assert_eq!((report.clients, report.authorization_codes), (1, 0));
    // The client is left in format 1 and read without a previous secret.
    let client = store.get_client(ZONE, CLIENT).await.unwrap().unwrap();
    assert_eq!((client.version, client.record.previous_secret), (1, None));
    for g in grants {
        let stored = store.get_grant(ZONE, &g.id).await.unwrap().unwrap();
        let upgraded = Grant {
            refresh: RefreshChain::LEGACY,
            ..g.clone()
        };
        assert_eq!(
            stored,
            Versioned {
                record: upgraded,
                version: 1
            }
        );
    }
    for t in tokens {
        let stored = store.get_token(ZONE, &t.token.digest).await.unwrap();
        assert_eq!(stored, Some(t.upgraded()));
    }
    let later = epoch() + Duration::days(60);
    let all = store.expired_tokens(ZONE, later, usize::MAX).await.unwrap();
    assert_eq!(all, expected_expired(tokens, later));
}

/// One active grant rotated once before the upgrade (a spent refresh token, an
/// expired access token, a live pair), one rotated never, and one revoked then.
struct Small {
    grants: Vec<Grant>,
    tokens: Vec<Old>,
    /// The first grant's spent and current refresh tokens.
    spent: Secret,
    current: Secret,
    /// The second grant's spent and current refresh tokens.
    spent_2: Secret,
    current_2: Secret,
    /// The first grant's live access token.
    access: Secret,
}

fn small() -> Small {
    let secret = |kind| Secret::generate(kind).unwrap();
    let (spent, current, access) = (
        secret(SecretKind::RefreshToken),
        secret(SecretKind::RefreshToken),
        secret(SecretKind::AccessToken),
    );
    let (spent_2, current_2) = (
        secret(SecretKind::RefreshToken),
        secret(SecretKind::RefreshToken),
    );
    let g1 = grant("grant-1", GrantStatus::Active, true);
    let g2 = grant("grant-2", GrantStatus::Active, true);
    let g3 = grant("grant-3", GrantStatus::Revoked, false);
    let spec = |kind, issued: i64, expires: i64, spent, revoked| TokenSpec {
        kind,
        issued: Duration::minutes(issued),
        expires: Duration::minutes(expires),
        spent,
        revoked,
    };
    let (access_k, refresh_k) = (TokenKind::Access, TokenKind::Refresh);
    let month = 29 * 24 * 60;
    let tokens = vec![
        token(
            &g1,
            secret(SecretKind::AccessToken).digest(),
            &spec(access_k, -1440, -1380, false, false),
        ),
        token(
            &g1,
            spent.digest(),
            &spec(refresh_k, -1440, month, true, false),
        ),
        token(&g1, access.digest(), &spec(access_k, -30, 30, false, false)),
        token(
            &g1,
            current.digest(),
            &spec(refresh_k, -720, month, false, false),
        ),
        token(
            &g2,
            spent_2.digest(),
            &spec(refresh_k, -1440, month, true, false),
        ),
        token(
            &g2,
            current_2.digest(),
            &spec(refresh_k, -720, month, false, false),
        ),
        // Format 1 revoked a grant's tokens with it.
        token(
            &g3,
            Digest::from_bytes([3; 32]),
            &spec(access_k, -1440, -1380, false, true),
        ),
        token(
            &g3,
            Digest::from_bytes([4; 32]),
            &spec(refresh_k, -1440, month, false, true),
        ),
        // Two tokens that expire at the same moment: ordered by digest.
        token(
            &g3,
            Digest::from_bytes([6; 32]),
            &spec(access_k, -1440, -60, false, true),
        ),
        token(
            &g3,
            Digest::from_bytes([5; 32]),
            &spec(access_k, -1440, -60, false, true),
        ),
    ];
    Small {
        grants: vec![g1, g2, g3],
        tokens,
        spent,
        current,
        spent_2,
        current_2,
        access,
    }
}

fn engine_on(store: &SledStorage, now: Timestamp) -> Engine {
    Engine::builder(Arc::new(store.clone()))
        .clock(Arc::new(ManualClock::new(now)))
        .build()
}

#[tokio::test]
async fn a_format_1_store_is_upgraded_in_place_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let fixture = small();
    write_format_1(&path, &fixture.grants, &fixture.tokens).await;
    assert_eq!(formats(&path), ([3, 0], [10, 0], 1));

    let store = SledStorage::open(&path).unwrap();
    check_upgraded(&store, &fixture.grants, &fixture.tokens).await;
    // The expiry index finds the upgraded tokens, in (expires_at, digest) order.
    let due = store.expired_tokens(ZONE, epoch(), 100).await.unwrap();
    assert_eq!(due, expected_expired(&fixture.tokens, epoch()));
    let digests: Vec<_> = due.iter().map(|t| t.record.digest).collect();
    assert_eq!(digests.len(), 4);
    assert_eq!(
        digests[2..],
        [Digest::from_bytes([5; 32]), Digest::from_bytes([6; 32])]
    );
    assert_eq!(
        store.expired_tokens(ZONE, epoch(), 1).await.unwrap(),
        due[..1]
    );
    drop(store);
    assert_eq!(formats(&path), ([0, 3], [0, 10], FORMAT_VERSION));

    // Opening it again changes nothing.
    let store = SledStorage::open(&path).unwrap();
    check_upgraded(&store, &fixture.grants, &fixture.tokens).await;
    let report = store.check_integrity().await.unwrap();
    assert_eq!(report.transitions, 4);

    // And the sweep prunes upgraded tokens through the index.
    let engine = engine_on(&store, epoch());
    let swept = engine.sweep_expired(ZONE, 100).await.unwrap();
    assert_eq!((swept.expired, swept.tokens_removed), (0, 4));
    assert!(
        store
            .expired_tokens(ZONE, epoch(), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.check_integrity().await.unwrap().is_consistent());
}

#[tokio::test]
async fn upgraded_legacy_refresh_tokens_rotate_and_their_reuse_revokes_the_grant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let fixture = small();
    write_format_1(&path, &fixture.grants, &fixture.tokens).await;
    let store = SledStorage::open(&path).unwrap();
    let engine = engine_on(&store, epoch());
    let active = |secret: &Secret| {
        let engine = engine.clone();
        let text = secret.expose().to_owned();
        async move { engine.introspect(ZONE, &text).await.unwrap().is_active() }
    };
    assert!(active(&fixture.current).await, "the unspent refresh token");
    assert!(active(&fixture.access).await, "the live access token");
    assert!(!active(&fixture.spent).await, "the spent refresh token");

    // The unspent one rotates.
    let issued = engine
        .refresh(ZONE, RefreshRequest::new(CLIENT, &fixture.current))
        .await
        .unwrap();
    let next = issued.refresh_token.clone().expect("a new refresh token");
    assert!(active(&next).await);
    assert!(!active(&fixture.current).await, "spent by the rotation");
    let rotated = store.get_grant(ZONE, "grant-1").await.unwrap().unwrap();
    assert_eq!(rotated.record.refresh.generation, 2);
    assert!(rotated.record.refresh.family.is_some(), "a family is drawn");

    // The one spent before the upgrade is reuse: the grant is revoked.
    let reused = engine
        .refresh(ZONE, RefreshRequest::new(CLIENT, &fixture.spent))
        .await
        .unwrap_err();
    assert!(
        matches!(&reused, Error::RefreshTokenReused { grant_id } if grant_id == "grant-1"),
        "{reused:?}"
    );
    let revoked = store.get_grant(ZONE, "grant-1").await.unwrap().unwrap();
    assert_eq!(revoked.record.status, GrantStatus::Revoked);
    assert!(!active(&next).await, "revoked with its grant");
    assert!(!active(&fixture.access).await, "revoked with its grant");
    let history = store.grant_history(ZONE, "grant-1").await.unwrap();
    assert_eq!(
        history.last().map(|t| t.reason),
        Some(TransitionReason::ReuseDetected)
    );

    // The same on a grant that never rotated since the upgrade.
    let reused = engine
        .refresh(ZONE, RefreshRequest::new(CLIENT, &fixture.spent_2))
        .await
        .unwrap_err();
    assert!(
        matches!(&reused, Error::RefreshTokenReused { grant_id } if grant_id == "grant-2"),
        "{reused:?}"
    );
    let revoked = store.get_grant(ZONE, "grant-2").await.unwrap().unwrap();
    assert_eq!(revoked.record.status, GrantStatus::Revoked);
    assert!(!active(&fixture.current_2).await);
    assert!(
        engine
            .refresh(ZONE, RefreshRequest::new(CLIENT, &fixture.current_2))
            .await
            .is_err()
    );
    assert!(store.check_integrity().await.unwrap().is_consistent());
}

/// An upgrade that stopped after rewriting some records (the grant and token
/// records a crash could leave in format 1 are put back in it, and the token's
/// expiry entry removed, since a token and its entry are written together) is
/// finished when the store is opened again, with the same result.
#[tokio::test]
async fn an_upgrade_cut_short_is_finished_when_the_store_is_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let fixture = small();
    write_format_1(&path, &fixture.grants, &fixture.tokens).await;
    drop(SledStorage::open(&path).unwrap());
    {
        let raw = open_raw(&path);
        let g = &fixture.grants[1];
        raw.open_tree("grants")
            .unwrap()
            .insert(legacy::key(ZONE, g.id.as_bytes()), legacy::grant(g, 1))
            .unwrap();
        let tokens = raw.open_tree("tokens").unwrap();
        let expiry = raw.open_tree("token_expiry").unwrap();
        for t in &fixture.tokens[4..] {
            let digest = t.token.digest.as_bytes();
            tokens
                .insert(
                    legacy::key(ZONE, digest),
                    legacy::token(&t.token, 1, t.spent_at),
                )
                .unwrap();
            let entry = expiry
                .iter()
                .keys()
                .map(Result::unwrap)
                .find(|k| k.ends_with(digest))
                .unwrap();
            expiry.remove(entry).unwrap();
        }
        raw.open_tree("tenure_meta")
            .unwrap()
            .insert("format_version", &1u32.to_be_bytes())
            .unwrap();
        raw.flush().unwrap();
    }
    assert_eq!(formats(&path), ([1, 2], [6, 4], 1));
    let store = SledStorage::open(&path).unwrap();
    check_upgraded(&store, &fixture.grants, &fixture.tokens).await;
    drop(store);
    assert_eq!(formats(&path), ([0, 3], [0, 10], FORMAT_VERSION));
}

/// A record the upgrade cannot read stops it with an error naming the store, and
/// leaves the store in format 1; once the record is mended, opening finishes it.
#[tokio::test]
async fn an_upgrade_that_fails_says_so_and_can_be_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let fixture = small();
    write_format_1(&path, &fixture.grants, &fixture.tokens).await;
    let broken = &fixture.tokens[7];
    let key = legacy::key(ZONE, broken.token.digest.as_bytes());
    {
        let raw = open_raw(&path);
        raw.open_tree("tokens")
            .unwrap()
            .insert(&key, &[1, 0xFF, 0xFF][..])
            .unwrap();
        raw.flush().unwrap();
    }
    match SledStorage::open(&path) {
        Err(OpenError::Upgrade {
            path: p,
            from,
            to,
            source,
        }) => {
            assert_eq!((p, from, to), (path.clone(), 1, FORMAT_VERSION));
            assert!(
                matches!(source, StoreError::Decode { what: "token", .. }),
                "{source:?}"
            );
        }
        other => panic!("expected an upgrade error, got {other:?}"),
    }
    let (grants, tokens, marker) = formats(&path);
    assert_eq!((grants, marker), ([0, 3], 1), "grants were done first");
    assert_eq!(tokens[0] + tokens[1], 10);
    {
        let raw = open_raw(&path);
        raw.open_tree("tokens")
            .unwrap()
            .insert(&key, legacy::token(&broken.token, 1, broken.spent_at))
            .unwrap();
        raw.flush().unwrap();
    }
    let store = SledStorage::open(&path).unwrap();
    check_upgraded(&store, &fixture.grants, &fixture.tokens).await;
}

// ----- killed while upgrading -----

const CHILD_ENV: &str = "TENURE_SLED_UPGRADE_STORE";

/// Opens (and so upgrades) the store the parent names, saying when it starts and
/// how long opening took.
#[test]
#[ignore = "the child half of an_upgrade_killed_at_any_moment_is_finished_when_opened_again"]
fn upgrade_child() {
    let path = std::env::var_os(CHILD_ENV).expect("run by the parent test, which sets the store");
    println!("START");
    let started = Instant::now();
    let store = SledStorage::open(&path).unwrap();
    println!("OPENED {}", started.elapsed().as_micros());
    drop(store);
}

/// A store large enough for its upgrade to take a while: grants with an expired
/// access token, a spent refresh token and a current pair each.
fn large(n: usize) -> (Vec<Grant>, Vec<Old>) {
    let mut grants = Vec::with_capacity(n);
    let mut tokens = Vec::with_capacity(4 * n);
    for i in 0..n {
        let g = grant(&format!("grant-{i:06}"), GrantStatus::Active, true);
        let digest = |kind: u8| {
            let mut bytes = [0xAB; 32];
            bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
            bytes[8] = kind;
            Digest::from_bytes(bytes)
        };
        let minutes = i as i64 % 120;
        for (kind, token_kind, issued, expires, spent) in [
            (0, TokenKind::Access, -1440, -1380 + minutes, false),
            (1, TokenKind::Refresh, -1440, 40_000 + minutes, true),
            (2, TokenKind::Access, -30, 30 + minutes, false),
            (3, TokenKind::Refresh, -720, 40_000 + minutes, false),
        ] {
            tokens.push(token(
                &g,
                digest(kind),
                &TokenSpec {
                    kind: token_kind,
                    issued: Duration::minutes(issued),
                    expires: Duration::minutes(expires),
                    spent,
                    revoked: false,
                },
            ));
        }
        grants.push(g);
    }
    (grants, tokens)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn random(below: u64) -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes) % below.max(1)
}

/// Runs the child on `path`; kills it `after` its start if given, or waits for
/// it. Returns how long opening took, if it said.
fn run_child(path: &Path, after: Option<StdDuration>) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "upgrade_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The harness prints the test's name on the same line: searched, not expected
    // at the start.
    for line in lines.by_ref() {
        if line.unwrap().contains("START") {
            break;
        }
    }
    if let Some(after) = after {
        std::thread::sleep(after);
        // SIGKILL on unix.
        child.kill().unwrap();
    }
    // Read to the end, so that the child never writes to a closed pipe.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let opened = rest.iter().find_map(|line| {
        let at = line.find("OPENED ")?;
        line[at + 7..].trim().parse().ok()
    });
    let status = child.wait().unwrap();
    if after.is_none() {
        assert!(status.success(), "the child failed");
    }
    opened
}

/// Kill cycles: `TENURE_SLED_UPGRADE_KILLS` when set, 8 otherwise.
fn kills() -> usize {
    std::env::var("TENURE_SLED_UPGRADE_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8)
}

#[test]
fn an_upgrade_killed_at_any_moment_is_finished_when_opened_again() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template");
    let (grants, tokens) = large(2_000);
    runtime.block_on(write_format_1(&template, &grants, &tokens));
    assert_eq!(formats(&template), ([2_000, 0], [8_000, 0], 1));

    // How long a whole upgrade takes here, in a child like the ones killed.
    let whole = dir.path().join("whole");
    copy_dir(&template, &whole);
    let took = run_child(&whole, None).expect("the child opened the store");
    assert_eq!(formats(&whole).2, FORMAT_VERSION);

    let mut cut_short = 0;
    for cycle in 0..kills() {
        let path = dir.path().join(format!("cycle-{cycle}"));
        copy_dir(&template, &path);
        // Anywhere from before the upgrade starts to a little after it ends.
        let after = StdDuration::from_micros(random(took + took / 4));
        run_child(&path, Some(after));
        let (g, t, marker) = formats(&path);
        if marker == 1 && (g[1] > 0 || t[1] > 0) {
            cut_short += 1;
        }
        let store = SledStorage::open(&path).unwrap();
        runtime.block_on(check_upgraded(&store, &grants, &tokens));
        drop(store);
        std::fs::remove_dir_all(&path).unwrap();
    }
    eprintln!(
        "a whole upgrade took {took} µs; {cut_short} of {} kills stopped one midway",
        kills()
    );
}

/// A store of format 2 written before clients kept a previous secret and before
/// authorization codes were stored (a format 1 client, no authorization code trees)
/// opens as it is: the client reads without a previous secret, the code trees are
/// created empty, and both can then be written.
#[tokio::test]
async fn a_store_written_before_authorization_codes_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = SledStorage::open(&path).unwrap();
    engine_on(&store, epoch())
        .register_client(
            ZONE,
            ClientRegistration::new("Calendar")
                .id(CLIENT)
                .scopes(["read"]),
        )
        .await
        .unwrap();
    let client = store.get_client(ZONE, CLIENT).await.unwrap().unwrap();
    drop(store);
    let raw = open_raw(&path);
    write_legacy_client(&raw, &client);
    for tree in legacy::LATER_TREES {
        assert!(raw.drop_tree(tree).unwrap());
    }
    raw.flush().unwrap();
    drop(raw);

    let store = SledStorage::open(&path).unwrap();
    let report = store.check_integrity().await.unwrap();
    assert!(report.is_consistent(), "{report:#?}");
    assert_eq!((report.clients, report.authorization_codes), (1, 0));
    let read = store.get_client(ZONE, CLIENT).await.unwrap().unwrap();
    assert_eq!(read, client, "a format 1 client reads as it was written");
    let digest = Digest::from_bytes([1; 32]);
    assert_eq!(
        store.get_authorization_code(ZONE, &digest).await.unwrap(),
        None
    );
    let later = epoch() + Duration::days(1);
    assert!(
        store
            .expired_authorization_codes(ZONE, later, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let code = AuthorizationCode {
        code: digest,
        zone_id: ZONE.to_owned(),
        client_id: CLIENT.to_owned(),
        user_id: "alice".to_owned(),
        resource_id: "calendar-api".to_owned(),
        provider_id: "tenure".to_owned(),
        organization_id: None,
        scopes: vec!["read".to_owned()],
        redirect_uri: "https://app.example/cb".to_owned(),
        code_challenge: Some(Digest::from_bytes([2; 32])),
        created_at: epoch(),
        expires_at: epoch() + Duration::seconds(60),
        grant_id: None,
    };
    let rotated = tenure::Client {
        secret_digest: Some(Digest::from_bytes([3; 32])),
        previous_secret: Some(RetiringSecret {
            digest: Digest::from_bytes([4; 32]),
            valid_until: epoch() + Duration::hours(1),
        }),
        ..client.record.clone()
    };
    let mut set = WriteSet::new();
    set.push(Write::PutAuthorizationCode {
        code: code.clone(),
        expect: Expect::Absent,
    });
    set.push(Write::PutClient {
        client: rotated.clone(),
        expect: Expect::Version(client.version),
    });
    store.apply(set).await.unwrap();
    drop(store);

    let store = SledStorage::open(&path).unwrap();
    let stored = store.get_authorization_code(ZONE, &digest).await.unwrap();
    let expected = Versioned {
        record: code,
        version: 1,
    };
    assert_eq!(stored.as_ref(), Some(&expected));
    assert_eq!(
        store
            .expired_authorization_codes(ZONE, later, 10)
            .await
            .unwrap(),
        [expected]
    );
    let read = store.get_client(ZONE, CLIENT).await.unwrap().unwrap();
    assert_eq!(
        read,
        Versioned {
            record: rotated,
            version: client.version + 1
        }
    );
    let report = store.check_integrity().await.unwrap();
    assert!(report.is_consistent(), "{report:#?}");
    assert_eq!((report.clients, report.authorization_codes), (1, 1));
    drop(store);
    let raw = open_raw(&path);
    let key = legacy::key(ZONE, CLIENT.as_bytes());
    let value = raw.open_tree("clients").unwrap().get(key).unwrap().unwrap();
    assert_eq!(value[0], 2, "a client put again is written in format 2");
}

/// Opens a store's directory as a plain sled database, waiting while the
/// background writes of a store just dropped still hold sled's lock on its files.
fn open_raw(path: &Path) -> sled::Db {
    let deadline = Instant::now() + StdDuration::from_secs(5);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if Instant::now() < deadline => {
                assert!(e.to_string().contains("could not acquire lock"), "{e}");
                std::thread::sleep(StdDuration::from_millis(5));
            }
            Err(e) => panic!("opening {}: {e}", path.display()),
        }
    }
}
