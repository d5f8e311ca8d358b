//! The lifecycle rules, as pure functions over records, a command and the time.
//!
//! No function here reads a clock, touches storage or draws randomness: the engine
//! loads the records, draws fresh ids and secrets, calls a rule, and commits the
//! [`Changes`] it returns as one write set. That keeps every rule cheap to test and
//! the same on every backend.

use chrono::Duration;

use crate::error::{Error, InvalidGrantReason, Result};
use crate::event::Event;
use crate::model::{
    Actor, Client, Grant, GrantStatus, GrantType, Token, TokenKind, Transition, TransitionReason,
};
use crate::secret::Digest;
use crate::time::Timestamp;

/// What a rule decided: records to write and events to send once they are written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// The client's new state, if it changes (its `last_used_at`).
    pub client: Option<Client>,
    /// The grant's new state, if it changes.
    pub grant: Option<Grant>,
    /// Existing tokens in their new state.
    pub updated_tokens: Vec<Token>,
    /// Tokens issued now.
    pub issued_tokens: Vec<Token>,
    /// Tokens to delete.
    pub removed_tokens: Vec<Digest>,
    /// History entries to append.
    pub transitions: Vec<Transition>,
    /// Events to send after commit.
    pub events: Vec<Event>,
}

impl Changes {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.client.is_none()
            && self.grant.is_none()
            && self.updated_tokens.is_empty()
            && self.issued_tokens.is_empty()
            && self.removed_tokens.is_empty()
            && self.transitions.is_empty()
    }
}

/// Fresh values the engine drew for a rule that issues tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fresh {
    /// The id for a new grant.
    pub grant_id: String,
    /// The digest of the new access token.
    pub access: Digest,
    /// The digest of the new refresh token, used if one is issued.
    pub refresh: Digest,
}

/// A request to create a grant, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    /// The zone.
    pub zone_id: String,
    /// The organization.
    pub organization_id: String,
    /// The user granting.
    pub user_id: String,
    /// The resource.
    pub resource_id: String,
    /// The provider.
    pub provider_id: String,
    /// Checked, de-duplicated scopes.
    pub scopes: Vec<String>,
    /// The grant's expiry, or `None` for the client's default.
    pub expires_at: Option<Timestamp>,
    /// The grant type the grant is made through.
    pub grant_type: GrantType,
    /// Who made it.
    pub actor: Actor,
}

/// Bumps `updated_at` to `now`, never backwards.
pub fn touch(grant: &mut Grant, now: Timestamp) {
    if now > grant.updated_at {
        grant.updated_at = now;
    }
}

/// Turns a grant into its expired self: status expired, `updated_at` no earlier than
/// its expiry, no refresh token held. The same whether a sweep writes it or a read
/// shows it before any sweep.
pub fn mark_expired(grant: &mut Grant) {
    grant.status = GrantStatus::Expired;
    grant.refresh_token_set = false;
    let at = grant.expires_at;
    touch(grant, at);
}

/// The history entry of a grant's expiry, dated at the expiry itself.
pub fn expiry_transition(grant: &Grant) -> Transition {
    Transition {
        zone_id: grant.zone_id.clone(),
        grant_id: grant.id.clone(),
        from: Some(GrantStatus::Active),
        to: GrantStatus::Expired,
        reason: TransitionReason::Expired,
        actor: Actor::System,
        at: grant.expires_at,
    }
}

fn check_client_may(client: &Client, grant_type: GrantType) -> Result<()> {
    if !client.enabled {
        return Err(Error::ClientDisabled {
            client_id: client.id.clone(),
        });
    }
    if !client.allows(grant_type) {
        return Err(Error::GrantTypeNotAllowed {
            client_id: client.id.clone(),
            grant_type,
        });
    }
    Ok(())
}

fn issue_token(
    grant: &Grant,
    kind: TokenKind,
    digest: Digest,
    scopes: Vec<String>,
    ttl_seconds: u32,
    now: Timestamp,
) -> Token {
    let expires_at = (now + Duration::seconds(i64::from(ttl_seconds))).min(grant.expires_at);
    Token {
        digest,
        zone_id: grant.zone_id.clone(),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        user_id: grant.user_id.clone(),
        kind,
        scopes,
        issued_at: now,
        expires_at,
        spent_at: None,
        revoked_at: None,
    }
}

/// Authorization: creates a grant and issues an access token, plus a refresh token
/// when the client is offline-access and allows `refresh_token`.
///
/// `allowed` is what the client may be given right now (its scope policy applied).
pub fn authorize(
    client: &Client,
    allowed: &[String],
    request: NewGrant,
    fresh: &Fresh,
    now: Timestamp,
) -> Result<(Grant, Changes)> {
    let (grant, mut changes) = create_grant(client, allowed, request, &fresh.grant_id, now)?;
    let (grant, issued) = issue_tokens(&grant, client, fresh, now);
    changes.issued_tokens = issued;
    changes.grant = Some(grant.clone());
    Ok((grant, changes))
}

/// Creates a grant without tokens yet: the first half of [`authorize`], and what a
/// device approval does (the device's next poll gets the tokens, see [`redeem`]).
pub fn create_grant(
    client: &Client,
    allowed: &[String],
    request: NewGrant,
    grant_id: &str,
    now: Timestamp,
) -> Result<(Grant, Changes)> {
    check_client_may(client, request.grant_type)?;
    if request.scopes.is_empty() {
        return Err(Error::invalid_input(
            "scopes",
            "at least one scope is needed",
        ));
    }
    let refused: Vec<String> = request
        .scopes
        .iter()
        .filter(|s| !allowed.contains(s))
        .cloned()
        .collect();
    if !refused.is_empty() {
        return Err(Error::InvalidScope { scopes: refused });
    }
    let expires_at = match request.expires_at {
        Some(at) if at <= now => {
            return Err(Error::invalid_input(
                "expires_at",
                "must be later than the current time",
            ));
        }
        Some(at) => at,
        None => {
            let ttl = if client.issues_refresh_tokens() {
                client
                    .refresh_token_ttl_seconds
                    .max(client.access_token_ttl_seconds)
            } else {
                client.access_token_ttl_seconds
            };
            now + Duration::seconds(i64::from(ttl))
        }
    };
    let grant = Grant {
        id: grant_id.to_owned(),
        zone_id: request.zone_id,
        organization_id: request.organization_id,
        user_id: request.user_id,
        resource_id: request.resource_id,
        provider_id: request.provider_id,
        client_id: client.id.clone(),
        scopes: request.scopes,
        status: GrantStatus::Active,
        created_at: now,
        updated_at: now,
        expires_at,
        refreshed_at: None,
        refresh_token_set: false,
    };
    let changes = Changes {
        transitions: vec![Transition {
            zone_id: grant.zone_id.clone(),
            grant_id: grant.id.clone(),
            from: None,
            to: GrantStatus::Active,
            reason: TransitionReason::Created,
            actor: request.actor,
            at: now,
        }],
        events: vec![Event::GrantCreated {
            zone_id: grant.zone_id.clone(),
            grant_id: grant.id.clone(),
            client_id: grant.client_id.clone(),
            user_id: grant.user_id.clone(),
            at: now,
        }],
        grant: Some(grant.clone()),
        ..Changes::default()
    };
    Ok((grant, changes))
}

/// The first tokens of a grant: an access token, and a refresh token if the client
/// issues them. Returns the grant with `refresh_token_set` brought up to date.
fn issue_tokens(
    grant: &Grant,
    client: &Client,
    fresh: &Fresh,
    now: Timestamp,
) -> (Grant, Vec<Token>) {
    let mut grant = grant.clone();
    let mut issued = vec![issue_token(
        &grant,
        TokenKind::Access,
        fresh.access,
        grant.scopes.clone(),
        client.access_token_ttl_seconds,
        now,
    )];
    if client.issues_refresh_tokens() {
        issued.push(issue_token(
            &grant,
            TokenKind::Refresh,
            fresh.refresh,
            grant.scopes.clone(),
            client.refresh_token_ttl_seconds,
            now,
        ));
        grant.refresh_token_set = true;
    }
    (grant, issued)
}

/// Issues the first tokens of a grant a device approval created (RFC 8628 §3.5):
/// the client must still be enabled and allowed the device-code grant, and the
/// grant still active.
pub fn redeem(
    grant: &Grant,
    client: &Client,
    fresh: &Fresh,
    now: Timestamp,
) -> Result<(Grant, Changes)> {
    check_client_may(client, GrantType::DeviceCode)?;
    if grant.status_at(now) != GrantStatus::Active {
        return Err(Error::InvalidGrant {
            reason: InvalidGrantReason::GrantInactive,
        });
    }
    let (mut next, issued) = issue_tokens(grant, client, fresh, now);
    touch(&mut next, now);
    Ok((
        next.clone(),
        Changes {
            grant: Some(next),
            issued_tokens: issued,
            ..Changes::default()
        },
    ))
}

/// Whether a client's `last_used_at` is due to be written at `now`: at most once per
/// `period`, however often the client is used. Returns the client to write.
pub fn record_use(client: &Client, now: Timestamp, period: Duration) -> Option<Client> {
    let due = client.last_used_at.is_none_or(|last| now - last >= period);
    due.then(|| Client {
        last_used_at: Some(now),
        ..client.clone()
    })
}

/// Revokes an active grant and every live token under it.
///
/// Revoking a revoked grant changes nothing (`Ok(None)`); revoking an expired grant
/// is refused with [`Error::InvalidTransition`] naming both states. Spent refresh
/// tokens stay spent, so a later presentation is still recognised as reuse.
pub fn revoke(
    grant: &Grant,
    tokens: &[Token],
    reason: TransitionReason,
    actor: Actor,
    now: Timestamp,
) -> Result<Option<Changes>> {
    match grant.status_at(now) {
        GrantStatus::Revoked => Ok(None),
        GrantStatus::Expired => Err(Error::InvalidTransition {
            from: GrantStatus::Expired,
            to: GrantStatus::Revoked,
        }),
        GrantStatus::Active => {
            let mut next = grant.clone();
            next.status = GrantStatus::Revoked;
            next.refresh_token_set = false;
            touch(&mut next, now);
            let updated_tokens = tokens
                .iter()
                .filter(|t| t.spent_at.is_none() && t.revoked_at.is_none())
                .map(|t| Token {
                    revoked_at: Some(now),
                    ..t.clone()
                })
                .collect();
            Ok(Some(Changes {
                transitions: vec![Transition {
                    zone_id: grant.zone_id.clone(),
                    grant_id: grant.id.clone(),
                    from: Some(GrantStatus::Active),
                    to: GrantStatus::Revoked,
                    reason,
                    actor: actor.clone(),
                    at: now,
                }],
                events: vec![Event::GrantRevoked {
                    zone_id: grant.zone_id.clone(),
                    grant_id: grant.id.clone(),
                    reason,
                    actor,
                    at: now,
                }],
                updated_tokens,
                grant: Some(next),
                ..Changes::default()
            }))
        }
    }
}

/// Persists an expiry: for a grant stored active whose expiry has passed, the
/// expired record, its history entry, and the deletion of its tokens (all of which
/// expired with it). `None` for any other grant.
pub fn expire(grant: &Grant, tokens: &[Token], now: Timestamp) -> Option<Changes> {
    if grant.status != GrantStatus::Active || grant.expires_at > now {
        return None;
    }
    let mut next = grant.clone();
    mark_expired(&mut next);
    Some(Changes {
        transitions: vec![expiry_transition(grant)],
        events: vec![Event::GrantExpired {
            zone_id: grant.zone_id.clone(),
            grant_id: grant.id.clone(),
            at: grant.expires_at,
        }],
        removed_tokens: tokens.iter().map(|t| t.digest).collect(),
        grant: Some(next),
        ..Changes::default()
    })
}

/// A refresh request, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh<'a> {
    /// The client presenting the token.
    pub client_id: &'a str,
    /// What the client may be given right now (its scope policy applied).
    pub allowed: &'a [String],
    /// Checked, de-duplicated scopes asked for; `None` for the grant's.
    pub scopes: Option<&'a [String]>,
    /// How long after being spent a refresh token may still be redeemed (for a lost
    /// response); zero by default.
    pub reuse_grace: Duration,
}

/// What a refresh decided.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshOutcome {
    /// The presented token was spent and new tokens issued under the grant, which
    /// is also in the changes.
    Rotated(Box<Grant>, Changes),
    /// The presented token had been spent already: commit these changes (the grant's
    /// revocation, empty if it was no longer active) and answer
    /// [`Error::RefreshTokenReused`].
    Reused(Changes),
}

/// Refresh with rotation (RFC 6749 §6, RFC 9700 §4.14.2).
///
/// Checks, in order: the token is a refresh token of this client and not expired; a
/// spent token is reuse (outside the grace window) and revokes the grant; a revoked
/// token or an inactive grant is refused; the client must be enabled and allow
/// `refresh_token`; the scopes asked for (default: the grant's) must lie within the
/// grant's, and are intersected with what the client is allowed now.
/// Tokens of the grant that have expired are pruned in the same write.
pub fn refresh(
    grant: &Grant,
    presented: &Token,
    tokens: &[Token],
    client: &Client,
    request: &Refresh<'_>,
    fresh: &Fresh,
    now: Timestamp,
) -> Result<RefreshOutcome> {
    let invalid = |reason| Err(Error::InvalidGrant { reason });
    if presented.kind != TokenKind::Refresh {
        return invalid(InvalidGrantReason::NotARefreshToken);
    }
    if presented.client_id != request.client_id {
        return invalid(InvalidGrantReason::ClientMismatch);
    }
    if now >= presented.expires_at {
        return invalid(InvalidGrantReason::TokenExpired);
    }
    let grant_active = grant.status_at(now) == GrantStatus::Active;
    let mut in_grace = false;
    if let Some(spent_at) = presented.spent_at {
        in_grace = request.reuse_grace > Duration::zero()
            && grant_active
            && presented.revoked_at.is_none()
            && now < spent_at + request.reuse_grace;
        if !in_grace {
            let mut changes = revoke(
                grant,
                tokens,
                TransitionReason::ReuseDetected,
                Actor::System,
                now,
            )
            .ok()
            .flatten()
            .unwrap_or_default();
            changes.events.insert(
                0,
                Event::RefreshTokenReused {
                    zone_id: grant.zone_id.clone(),
                    grant_id: grant.id.clone(),
                    client_id: request.client_id.to_owned(),
                    at: now,
                },
            );
            return Ok(RefreshOutcome::Reused(changes));
        }
    }
    if presented.revoked_at.is_some() {
        return invalid(InvalidGrantReason::TokenRevoked);
    }
    if !grant_active {
        return invalid(InvalidGrantReason::GrantInactive);
    }
    check_client_may(client, GrantType::RefreshToken)?;
    if client.stopped_refresh_token(presented.issued_at) {
        return invalid(InvalidGrantReason::RefreshStopped);
    }

    let asked: &[String] = request.scopes.unwrap_or(&grant.scopes);
    let beyond: Vec<String> = asked
        .iter()
        .filter(|s| !grant.scopes.contains(s))
        .cloned()
        .collect();
    if !beyond.is_empty() {
        return Err(Error::InvalidScope { scopes: beyond });
    }
    let scopes: Vec<String> = asked
        .iter()
        .filter(|s| request.allowed.contains(s))
        .cloned()
        .collect();
    if scopes.is_empty() {
        return Err(Error::InvalidScope {
            scopes: asked.to_vec(),
        });
    }

    let mut next = grant.clone();
    next.refreshed_at = Some(now);
    touch(&mut next, now);
    let mut updated_tokens = vec![Token {
        spent_at: Some(now),
        ..presented.clone()
    }];
    let mut removed_tokens = Vec::new();
    for token in tokens.iter().filter(|t| t.digest != presented.digest) {
        if token.expires_at <= now {
            removed_tokens.push(token.digest);
        } else if in_grace && token.kind == TokenKind::Refresh && token.is_live(now) {
            // Redeeming a token inside the grace window spends the successor the client
            // never received, so the grant keeps one live refresh token.
            updated_tokens.push(Token {
                spent_at: Some(now),
                ..token.clone()
            });
        }
    }
    let mut issued_tokens = vec![issue_token(
        &next,
        TokenKind::Access,
        fresh.access,
        scopes.clone(),
        client.access_token_ttl_seconds,
        now,
    )];
    let issues_refresh = client.issues_refresh_tokens();
    if issues_refresh {
        issued_tokens.push(issue_token(
            &next,
            TokenKind::Refresh,
            fresh.refresh,
            scopes,
            client.refresh_token_ttl_seconds,
            now,
        ));
    }
    next.refresh_token_set = issues_refresh;
    Ok(RefreshOutcome::Rotated(
        Box::new(next.clone()),
        Changes {
            client: None,
            transitions: vec![Transition {
                zone_id: grant.zone_id.clone(),
                grant_id: grant.id.clone(),
                from: Some(GrantStatus::Active),
                to: GrantStatus::Active,
                reason: TransitionReason::Refreshed,
                actor: Actor::Client {
                    id: request.client_id.to_owned(),
                },
                at: now,
            }],
            events: vec![Event::GrantRefreshed {
                zone_id: grant.zone_id.clone(),
                grant_id: grant.id.clone(),
                at: now,
            }],
            grant: Some(next),
            updated_tokens,
            issued_tokens,
            removed_tokens,
        },
    ))
}

/// Revokes one token (RFC 7009). An access token is revoked alone; a live refresh
/// token takes its grant, and so every access token of it, with it. A token that is
/// already unusable changes nothing: spent, revoked, expired, under an inactive
/// grant, or a refresh token its client stopped (`client`: `None` when the client
/// is gone).
pub fn revoke_token(
    presented: &Token,
    grant: &Grant,
    tokens: &[Token],
    client: Option<&Client>,
    actor: Actor,
    now: Timestamp,
) -> Changes {
    if !presented.is_live(now) || grant.status_at(now) != GrantStatus::Active {
        return Changes::default();
    }
    if presented.kind == TokenKind::Refresh
        && client.is_none_or(|c| c.stopped_refresh_token(presented.issued_at))
    {
        return Changes::default();
    }
    match presented.kind {
        TokenKind::Access => Changes {
            updated_tokens: vec![Token {
                revoked_at: Some(now),
                ..presented.clone()
            }],
            events: vec![Event::TokenRevoked {
                zone_id: grant.zone_id.clone(),
                grant_id: grant.id.clone(),
                kind: TokenKind::Access,
                at: now,
            }],
            ..Changes::default()
        },
        TokenKind::Refresh => revoke(
            grant,
            tokens,
            TransitionReason::RefreshTokenRevoked,
            actor,
            now,
        )
        .ok()
        .flatten()
        .unwrap_or_default(),
    }
}

/// What introspection says of a token (RFC 7662).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// Unknown, expired, spent, revoked, or its grant is no longer active. Nothing
    /// more is said.
    Inactive,
    /// The token is good now.
    Active(ActiveToken),
}

impl Introspection {
    /// Whether the token is active.
    pub fn is_active(&self) -> bool {
        matches!(self, Introspection::Active(_))
    }
}

/// What introspection says of an active token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    /// Access or refresh.
    pub kind: TokenKind,
    /// The scopes it was issued with.
    pub scopes: Vec<String>,
    /// The client it was issued to.
    pub client_id: String,
    /// The user who granted it (`sub`).
    pub user_id: String,
    /// The resource it is for (`aud`).
    pub resource_id: String,
    /// The zone.
    pub zone_id: String,
    /// The grant.
    pub grant_id: String,
    /// `iat`.
    pub issued_at: Timestamp,
    /// `exp`.
    pub expires_at: Timestamp,
}

/// Introspection of a token under its grant at `now`. A refresh token is judged
/// with its client too (`None`: the client is gone), since withdrawing the refresh
/// grant stops the refresh tokens issued before.
pub fn introspect(
    token: &Token,
    grant: &Grant,
    client: Option<&Client>,
    now: Timestamp,
) -> Introspection {
    if !is_active(token, grant, client, now) {
        return Introspection::Inactive;
    }
    Introspection::Active(answer(token.clone(), grant.clone()))
}

/// [`introspect`] for records the caller owns and no longer needs: the same
/// decision, with the answer's fields moved out of them instead of copied.
pub fn introspect_owned(
    token: Token,
    grant: Grant,
    client: Option<&Client>,
    now: Timestamp,
) -> Introspection {
    if !is_active(&token, &grant, client, now) {
        return Introspection::Inactive;
    }
    Introspection::Active(answer(token, grant))
}

/// What introspection says of an active token, moved out of its records.
fn answer(token: Token, grant: Grant) -> ActiveToken {
    ActiveToken {
        kind: token.kind,
        scopes: token.scopes,
        client_id: token.client_id,
        user_id: token.user_id,
        resource_id: grant.resource_id,
        zone_id: grant.zone_id,
        grant_id: grant.id,
        issued_at: token.issued_at,
        expires_at: token.expires_at,
    }
}

/// Whether a token is good now: live itself, under a grant active now, and, for a
/// refresh token, issued before its client stopped refresh tokens.
fn is_active(token: &Token, grant: &Grant, client: Option<&Client>, now: Timestamp) -> bool {
    token.is_live(now)
        && grant.status_at(now) == GrantStatus::Active
        && (token.kind != TokenKind::Refresh
            || client.is_some_and(|c| !c.stopped_refresh_token(token.issued_at)))
}
