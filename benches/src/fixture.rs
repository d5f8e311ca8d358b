//! The records every benchmark starts from, shaped like the ones the engine writes:
//! UUID-length ids, two scopes, access tokens and a current refresh token per grant
//! (whose text carries its reference, as the engine's do), the grant's refresh chain
//! consistent with them, a creation transition.
//!
//! Every secret is deterministic, a function of its grant's index and its
//! generation, so that either side of a benchmark can name the token it presents.

use chrono::{DateTime, Duration};
use tenure::{
    Actor, Digest, Expect, Grant, GrantStatus, RefreshChain, RefreshReference, Secret, SecretBytes,
    Storage, Timestamp, Token, TokenKind, Transition, TransitionReason, Write, WriteSet,
};

use crate::OrDie;

/// The zone every benchmark works in.
pub const ZONE: &str = "bench-zone";

/// The client every grant is made to.
pub const CLIENT: &str = "bench-client";

/// Grants per user: a page of 50 with a user filter always has more behind it.
pub const GRANTS_PER_USER: u64 = 100;

/// Where every benchmark's clock starts: 2030-01-01T00:00:00Z.
pub fn epoch() -> Timestamp {
    DateTime::from_timestamp(1_893_456_000, 0).unwrap_or_default()
}

/// When the grants of [`family`] expire: 30 days after [`epoch`].
pub fn family_expiry() -> Timestamp {
    epoch() + Duration::days(30)
}

/// When the access tokens of [`family`] expire: an hour after [`epoch`].
pub fn access_expiry() -> Timestamp {
    epoch() + Duration::hours(1)
}

/// The id of grant `i`, as long as the engine's UUIDv7 ids.
pub fn grant_id(i: u64) -> String {
    format!("0192f000-0000-7000-8000-{i:012x}")
}

/// The user of grant `i`.
pub fn user_id(i: u64) -> String {
    format!("user-{}", i / GRANTS_PER_USER)
}

/// Grant `i`: active, created `i` milliseconds after a day before [`epoch`], and
/// expiring at `expires_at`; bare (no token issued yet, generation 0).
pub fn grant(i: u64, expires_at: Timestamp) -> Grant {
    let created = epoch() - Duration::days(1) + Duration::milliseconds(i as i64);
    Grant {
        id: grant_id(i),
        zone_id: ZONE.to_owned(),
        organization_id: "org-1".to_owned(),
        user_id: user_id(i),
        resource_id: format!("resource-{}", i % 1000),
        provider_id: "default".to_owned(),
        client_id: CLIENT.to_owned(),
        scopes: vec!["read".to_owned(), "write".to_owned()],
        status: GrantStatus::Active,
        created_at: created,
        updated_at: created,
        expires_at,
        refreshed_at: None,
        refresh_token_set: false,
        refresh: RefreshChain::default(),
    }
}

/// 256 deterministic bits, tagged by what they are for.
fn bits(tag: u8, grant: u64, n: u64) -> SecretBytes {
    let mut bytes = [0u8; 32];
    bytes[0] = tag;
    bytes[1..9].copy_from_slice(&grant.to_be_bytes());
    bytes[9..17].copy_from_slice(&n.to_be_bytes());
    SecretBytes::from_bytes(bytes)
}

/// The family secret every refresh token of grant `i` carries.
pub fn family_secret(i: u64) -> SecretBytes {
    bits(b'f', i, 0)
}

/// The access token of generation `generation` of grant `i`, as long as the
/// engine's access tokens.
pub fn access_secret(i: u64, generation: u64) -> String {
    Secret::from_bits(tenure::SecretKind::AccessToken, &bits(b'a', i, generation))
        .expose()
        .to_owned()
}

/// The refresh token of generation `generation` of grant `i`, expiring at
/// `expires_at`: its text carries its reference (grant, generation, expiry, the
/// grant's family secret), as the engine's refresh tokens do.
pub fn refresh_secret(i: u64, generation: u64, expires_at: Timestamp) -> String {
    let reference = RefreshReference {
        grant_id: grant_id(i),
        generation,
        expires_at,
        family: family_secret(i),
    };
    Secret::refresh_token(&reference, &bits(b'r', i, generation))
        .or_die("a fixture refresh token")
        .expose()
        .to_owned()
}

/// A live token of `grant` for `secret`, issued at `issued_at` at `generation`.
pub fn token(
    grant: &Grant,
    kind: TokenKind,
    secret: &str,
    issued_at: Timestamp,
    expires_at: Timestamp,
    generation: u64,
) -> Token {
    Token {
        digest: Digest::of(secret),
        zone_id: grant.zone_id.clone(),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        user_id: grant.user_id.clone(),
        kind,
        scopes: grant.scopes.clone(),
        issued_at,
        expires_at,
        generation,
        revoked_at: None,
    }
}

/// The transition that created `grant`.
pub fn created(grant: &Grant) -> Transition {
    Transition {
        zone_id: grant.zone_id.clone(),
        grant_id: grant.id.clone(),
        from: None,
        to: GrantStatus::Active,
        reason: TransitionReason::Created,
        actor: Actor::User {
            id: grant.user_id.clone(),
        },
        at: grant.created_at,
    }
}

/// A grant with its tokens and history, as the engine would have written them.
#[derive(Debug, Clone)]
pub struct Family {
    /// The grant.
    pub grant: Grant,
    /// Its tokens.
    pub tokens: Vec<Token>,
    /// Its history.
    pub transitions: Vec<Transition>,
    /// The plaintext of its latest access token.
    pub access: String,
    /// The plaintext of its current refresh token.
    pub refresh: String,
}

/// Grant `i` expiring at [`family_expiry`] and holding `access` access tokens (at
/// least one) and its current refresh token: the state its authorization and
/// `access - 1` rotations within the hour leave it in (see [`family_expiring`]).
/// With one access token, a grant as authorization leaves it.
pub fn family(i: u64, access: u64) -> Family {
    family_expiring(i, access, family_expiry())
}

/// Grant `i` expiring at `expires_at`, as its authorization and `access - 1`
/// rotations leave it, all before [`epoch`] and within the access tokens' hour:
/// generation `access`, an access token of every generation from 1 (each expiring
/// at [`access_expiry`]), the refresh token of the current generation (expiring
/// with the grant; the spent ones' records are gone), the chain naming it current
/// and the one before it previous, `refreshed_at` at the last rotation, and the
/// creation as its only transition (a rotation appends none).
pub fn family_expiring(i: u64, access: u64, expires_at: Timestamp) -> Family {
    let generation = access.max(1);
    let created = grant(i, expires_at).created_at;
    // Rotation `n` (issuing generation `n + 1`) happens `n` ms after creation.
    let minted = |generation: u64| created + Duration::milliseconds(generation as i64 - 1);
    build(i, generation, 1, &minted, &|_| access_expiry(), expires_at)
}

/// Grant `i` expiring at `expires_at` after `rotations` rotations, the last at
/// `last`, with the access tokens of the earlier ones expired and pruned, as a
/// server that sweeps leaves it (see [`crate::rotation`]): generation
/// `rotations + 1`, the last rotation's access token (for an hour from `last`) and
/// refresh token (to the grant's expiry), the chain naming them, `refreshed_at`
/// at `last`, and the creation as its only transition.
pub fn rotated_family(i: u64, rotations: u64, last: Timestamp, expires_at: Timestamp) -> Family {
    let generation = rotations + 1;
    let created = grant(i, expires_at).created_at;
    let minted = |g: u64| if g == 1 { created } else { last };
    build(
        i,
        generation,
        generation,
        &minted,
        &|g| minted(g) + Duration::hours(1),
        expires_at,
    )
}

/// Grant `i` at `generation`, holding the access tokens of generations
/// `first_access..=generation` and the current refresh token; generation `g` was
/// minted at `minted(g)`, its access token expiring at `access_expiry(g)`.
fn build(
    i: u64,
    generation: u64,
    first_access: u64,
    minted: &dyn Fn(u64) -> Timestamp,
    access_expiry: &dyn Fn(u64) -> Timestamp,
    expires_at: Timestamp,
) -> Family {
    let mut grant = grant(i, expires_at);
    let latest = minted(generation);
    let refresh = refresh_secret(i, generation, expires_at);
    let access_text = access_secret(i, generation);
    grant.refresh_token_set = true;
    grant.refresh = RefreshChain {
        generation,
        family: Some(family_secret(i).digest()),
        current: Some(Digest::of(&refresh)),
        previous: (generation > 1)
            .then(|| Digest::of(&refresh_secret(i, generation - 1, expires_at))),
    };
    if generation > 1 {
        grant.refreshed_at = Some(latest);
        grant.updated_at = latest;
    }
    let mut tokens: Vec<Token> = (first_access..=generation)
        .map(|g| {
            token(
                &grant,
                TokenKind::Access,
                &access_secret(i, g),
                minted(g),
                access_expiry(g),
                g,
            )
        })
        .collect();
    tokens.push(token(
        &grant,
        TokenKind::Refresh,
        &refresh,
        latest,
        expires_at,
        generation,
    ));
    let transitions = vec![created(&grant)];
    Family {
        grant,
        tokens,
        transitions,
        access: access_text,
        refresh,
    }
}

/// Writes families into an engine store, `batch` grants per write set.
pub async fn put_families(
    storage: &dyn Storage,
    families: impl IntoIterator<Item = Family>,
    batch: usize,
) {
    let mut set = WriteSet::new();
    let mut in_set = 0;
    for f in families {
        set.push(Write::PutGrant {
            grant: f.grant,
            expect: Expect::Absent,
        });
        for token in f.tokens {
            set.push(Write::PutToken {
                token,
                expect: Expect::Absent,
            });
        }
        for t in f.transitions {
            set.push(Write::AppendTransition(t));
        }
        in_set += 1;
        if in_set == batch {
            storage
                .apply(std::mem::take(&mut set))
                .await
                .or_die("loading fixtures");
            in_set = 0;
        }
    }
    if !set.is_empty() {
        storage.apply(set).await.or_die("loading fixtures");
    }
}

/// Writes bare grants (no tokens, no history) into an engine store.
pub async fn put_grants(storage: &dyn Storage, grants: impl IntoIterator<Item = Grant>) {
    let mut set = WriteSet::new();
    for grant in grants {
        set.push(Write::PutGrant {
            grant,
            expect: Expect::Absent,
        });
        if set.writes.len() == 1000 {
            storage
                .apply(std::mem::take(&mut set))
                .await
                .or_die("loading grants");
        }
    }
    if !set.is_empty() {
        storage.apply(set).await.or_die("loading grants");
    }
}
