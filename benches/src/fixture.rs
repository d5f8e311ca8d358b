//! The records every benchmark starts from, shaped like the ones the engine writes:
//! UUID-length ids, two scopes, an access and a refresh token per grant, a
//! creation transition.

use chrono::{DateTime, Duration};
use tenure::{
    Actor, Digest, Expect, Grant, GrantStatus, Storage, Timestamp, Token, TokenKind, Transition,
    TransitionReason, Write, WriteSet,
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

/// The id of grant `i`, as long as the engine's UUIDv7 ids.
pub fn grant_id(i: u64) -> String {
    format!("0192f000-0000-7000-8000-{i:012x}")
}

/// The user of grant `i`.
pub fn user_id(i: u64) -> String {
    format!("user-{}", i / GRANTS_PER_USER)
}

/// Grant `i`: active, created `i` milliseconds after a day before [`epoch`], and
/// expiring at `expires_at`.
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
        refresh_token_set: true,
    }
}

/// The secret of token `n` of grant `i`, as long as the engine's secrets.
pub fn secret(kind: TokenKind, grant: u64, n: u64) -> String {
    let prefix = match kind {
        TokenKind::Access => "tnr_at_",
        _ => "tnr_rt_",
    };
    format!("{prefix}{grant:020}x{n:022}")
}

/// A live token of `grant` for `secret`.
pub fn token(grant: &Grant, kind: TokenKind, secret: &str, expires_at: Timestamp) -> Token {
    Token {
        digest: Digest::of(secret),
        zone_id: grant.zone_id.clone(),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        user_id: grant.user_id.clone(),
        kind,
        scopes: grant.scopes.clone(),
        issued_at: grant.created_at,
        expires_at,
        spent_at: None,
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
    /// The plaintext of its access token.
    pub access: String,
    /// The plaintext of its refresh token.
    pub refresh: String,
}

/// Grant `i` holding `tokens` live tokens: with two, as authorization leaves it (an
/// access token for an hour, a refresh token and the grant for 30 days); with one,
/// only the access token; with more, further access tokens, as refreshes within
/// the hour leave them.
pub fn family(i: u64, tokens: usize) -> Family {
    let grant = grant(i, epoch() + Duration::days(30));
    let access = secret(TokenKind::Access, i, 0);
    let refresh = secret(TokenKind::Refresh, i, 0);
    let hour = epoch() + Duration::hours(1);
    let mut held = vec![token(&grant, TokenKind::Access, &access, hour)];
    if tokens >= 2 {
        held.push(token(
            &grant,
            TokenKind::Refresh,
            &refresh,
            grant.expires_at,
        ));
    }
    for n in 2..tokens {
        let s = secret(TokenKind::Access, i, n as u64);
        held.push(token(&grant, TokenKind::Access, &s, hour));
    }
    let tokens = held;
    let transitions = vec![created(&grant)];
    Family {
        grant,
        tokens,
        transitions,
        access,
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
