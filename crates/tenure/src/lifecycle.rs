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
    Actor, Client, Grant, GrantFacts, GrantStatus, GrantType, RefreshChain, Token, TokenKind,
    Transition, TransitionReason,
};
use crate::secret::{Digest, RefreshReference, Secret, SecretBytes, SecretKind};
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
    /// The plaintext of the access token issued, shown once.
    pub access_token: Option<Secret>,
    /// The plaintext of the refresh token issued, shown once.
    pub refresh_token: Option<Secret>,
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

/// Fresh values the engine drew for a rule that issues tokens. The rule mints the
/// tokens from them, since a refresh token's text carries facts the rule decides
/// (its generation and expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fresh {
    /// The id for a new grant.
    pub grant_id: String,
    /// The random body of the new access token.
    pub access: SecretBytes,
    /// The random part of the new refresh token, used if one is issued.
    pub refresh: SecretBytes,
    /// A family secret for a grant that has none yet (see [`RefreshChain`]).
    pub family: SecretBytes,
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

/// Refuses a client that is disabled or not allowed `grant_type`.
pub(crate) fn check_client_may(client: &Client, grant_type: GrantType) -> Result<()> {
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

/// Refuses `asked` if any of it is outside `allowed`, naming those scopes.
pub(crate) fn refuse_outside(asked: &[String], allowed: &[String]) -> Result<()> {
    let refused: Vec<String> = asked
        .iter()
        .filter(|s| !allowed.contains(s))
        .cloned()
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidScope { scopes: refused })
    }
}

/// The scopes of a new grant: at least one, and all within `allowed`.
pub(crate) fn check_grant_scopes(asked: &[String], allowed: &[String]) -> Result<()> {
    if asked.is_empty() {
        return Err(Error::invalid_input(
            "scopes",
            "at least one scope is needed",
        ));
    }
    refuse_outside(asked, allowed)
}

fn token(
    grant: &Grant,
    kind: TokenKind,
    digest: Digest,
    scopes: Vec<String>,
    expires_at: Timestamp,
    now: Timestamp,
) -> Token {
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
        generation: grant.refresh.generation,
        revoked_at: None,
    }
}

/// A token's expiry: its lifetime from now, never later than its grant's.
fn expiry(grant: &Grant, ttl_seconds: u32, now: Timestamp) -> Timestamp {
    (now + Duration::seconds(i64::from(ttl_seconds))).min(grant.expires_at)
}

/// What issuing tokens under a grant produced.
struct Minted {
    tokens: Vec<Token>,
    access: Secret,
    refresh: Option<Secret>,
}

/// Issues an access token, and a refresh token when the client issues them, under
/// `grant`, whose refresh chain moves to its next generation: from now on a refresh
/// token of an earlier generation is spent. `family` is the grant's family secret as
/// a presented refresh token carried it; without one that matches (a new grant, or
/// one from before refresh tokens carried it) the grant starts a fresh family.
fn mint(
    grant: &mut Grant,
    client: &Client,
    scopes: Vec<String>,
    family: Option<&SecretBytes>,
    fresh: &Fresh,
    now: Timestamp,
) -> Result<Minted> {
    let issues_refresh = client.issues_refresh_tokens();
    grant.refresh.generation = grant.refresh.generation.saturating_add(1);
    grant.refresh.current = None;
    let access = Secret::from_bits(SecretKind::AccessToken, &fresh.access);
    let mut tokens = vec![token(
        grant,
        TokenKind::Access,
        access.digest(),
        scopes.clone(),
        expiry(grant, client.access_token_ttl_seconds, now),
        now,
    )];
    let mut refresh = None;
    if issues_refresh {
        let family = match family {
            Some(f) if grant.refresh.family.is_some_and(|d| f.matches(&d)) => f,
            _ => {
                grant.refresh.family = Some(fresh.family.digest());
                &fresh.family
            }
        };
        let expires_at = expiry(grant, client.refresh_token_ttl_seconds, now);
        let reference = RefreshReference {
            grant_id: grant.id.clone(),
            generation: grant.refresh.generation,
            expires_at,
            family: family.clone(),
        };
        let secret = Secret::refresh_token(&reference, &fresh.refresh)
            .ok_or_else(|| Error::invalid_input("grant_id", "too long to carry in a token"))?;
        grant.refresh.current = Some(secret.digest());
        tokens.push(token(
            grant,
            TokenKind::Refresh,
            secret.digest(),
            scopes,
            expires_at,
            now,
        ));
        refresh = Some(secret);
    }
    grant.refresh_token_set = issues_refresh;
    Ok(Minted {
        tokens,
        access,
        refresh,
    })
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
    let (mut grant, mut changes) = create_grant(client, allowed, request, &fresh.grant_id, now)?;
    let scopes = grant.scopes.clone();
    let minted = mint(&mut grant, client, scopes, None, fresh, now)?;
    changes.issued_tokens = minted.tokens;
    changes.access_token = Some(minted.access);
    changes.refresh_token = minted.refresh;
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
    check_grant_scopes(&request.scopes, allowed)?;
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
        refresh: RefreshChain::default(),
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

/// The provider of a client's standing client-credentials grant: the grant a
/// client holds for itself on one resource (its user is the client).
pub const STANDING_PROVIDER: &str = "client_credentials";

/// Whether `grant` is a client's own client-credentials grant: its tokens stand
/// for the client, never for a user, though its `user_id` is the client's id.
pub fn is_standing(grant: &Grant) -> bool {
    grant.provider_id == STANDING_PROVIDER
}

/// How long a standing client-credentials grant lives; the next request after it
/// expires starts a new one.
pub const STANDING_GRANT_LIFETIME: Duration = Duration::days(30);

/// A client-credentials request (RFC 6749 §4.4), as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRequest {
    /// The zone.
    pub zone_id: String,
    /// The resource the token is for (RFC 8707 `resource`).
    pub resource_id: String,
    /// Checked scopes, or `None` for everything the client may be given.
    pub scopes: Option<Vec<String>>,
}

/// Client credentials (RFC 6749 §4.4): an access token for a confidential client
/// itself, and no refresh token (§4.4.3). Tokens live under the client's standing
/// grant for the resource: `standing` when it is active, so that repeated requests
/// add only tokens (each written once and pruned by the sweep at its expiry), or a
/// new grant of [`STANDING_PROVIDER`] whose user is the client, with its history
/// entry and event. A standing grant's scopes widen to cover what is asked.
pub fn client_credentials(
    client: &Client,
    allowed: &[String],
    request: MachineRequest,
    standing: Option<&Grant>,
    fresh: &Fresh,
    now: Timestamp,
) -> Result<(Grant, Changes)> {
    check_client_may(client, GrantType::ClientCredentials)?;
    if client.client_type != crate::model::ClientType::Confidential {
        // RFC 6749 §4.4: only confidential clients.
        return Err(Error::GrantTypeNotAllowed {
            client_id: client.id.clone(),
            grant_type: GrantType::ClientCredentials,
        });
    }
    let scopes = match request.scopes {
        Some(asked) => {
            refuse_outside(&asked, allowed)?;
            asked
        }
        None => allowed.to_vec(),
    };
    if scopes.is_empty() {
        // Nothing asked, and nothing the client may be given.
        return Err(Error::InvalidScope { scopes });
    }
    let mut changes = Changes::default();
    let grant = match standing.filter(|g| g.status_at(now) == GrantStatus::Active) {
        Some(grant) => {
            let mut next = grant.clone();
            let wider: Vec<String> = scopes
                .iter()
                .filter(|s| !next.scopes.contains(s))
                .cloned()
                .collect();
            if !wider.is_empty() {
                next.scopes.extend(wider);
                touch(&mut next, now);
                changes.grant = Some(next.clone());
            }
            next
        }
        None => {
            let grant = Grant {
                id: fresh.grant_id.clone(),
                zone_id: request.zone_id,
                organization_id: client.organization_id.clone(),
                user_id: client.id.clone(),
                resource_id: request.resource_id,
                provider_id: STANDING_PROVIDER.to_owned(),
                client_id: client.id.clone(),
                scopes: scopes.clone(),
                status: GrantStatus::Active,
                created_at: now,
                updated_at: now,
                expires_at: now + STANDING_GRANT_LIFETIME,
                refreshed_at: None,
                refresh_token_set: false,
                refresh: RefreshChain::default(),
            };
            changes.transitions.push(Transition {
                zone_id: grant.zone_id.clone(),
                grant_id: grant.id.clone(),
                from: None,
                to: GrantStatus::Active,
                reason: TransitionReason::Created,
                actor: Actor::Client {
                    id: client.id.clone(),
                },
                at: now,
            });
            changes.events.push(Event::GrantCreated {
                zone_id: grant.zone_id.clone(),
                grant_id: grant.id.clone(),
                client_id: grant.client_id.clone(),
                user_id: grant.user_id.clone(),
                at: now,
            });
            changes.grant = Some(grant.clone());
            grant
        }
    };
    let access = Secret::from_bits(SecretKind::AccessToken, &fresh.access);
    changes.issued_tokens.push(token(
        &grant,
        TokenKind::Access,
        access.digest(),
        scopes,
        expiry(&grant, client.access_token_ttl_seconds, now),
        now,
    ));
    changes.access_token = Some(access);
    changes.events.push(Event::ClientTokenIssued {
        zone_id: grant.zone_id.clone(),
        grant_id: grant.id.clone(),
        client_id: client.id.clone(),
        at: now,
    });
    Ok((grant, changes))
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
    let mut next = grant.clone();
    let scopes = next.scopes.clone();
    let minted = mint(&mut next, client, scopes, None, fresh, now)?;
    touch(&mut next, now);
    Ok((
        next.clone(),
        Changes {
            grant: Some(next),
            issued_tokens: minted.tokens,
            access_token: Some(minted.access),
            refresh_token: minted.refresh,
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

/// Revokes an active grant, and with it every token under it: a token is live only
/// while its grant is active, so no token is rewritten and the cost is the same for
/// a grant that issued one token or ten thousand.
///
/// Revoking a revoked grant changes nothing (`Ok(None)`); revoking an expired grant
/// is refused with [`Error::InvalidTransition`] naming both states.
pub fn revoke(
    grant: &Grant,
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
                grant: Some(next),
                ..Changes::default()
            }))
        }
    }
}

/// Persists an expiry: for a grant stored active whose expiry has passed, the
/// expired record and its history entry. `None` for any other grant. Its tokens,
/// which expired no later than it, are pruned by the sweep through their own
/// expiry index.
pub fn expire(grant: &Grant, now: Timestamp) -> Option<Changes> {
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
    /// How long after a rotation the refresh token it spent may still be redeemed
    /// once more (for a client that lost the response); zero by default.
    pub reuse_grace: Duration,
}

/// A presented refresh token as the engine found it: its record if one is stored
/// (the grant's current token, an access token, or a token from before tokens
/// carried a reference), and the reference its text carries, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    /// The digest of the presented text.
    pub digest: Digest,
    /// The stored record with that digest.
    pub record: Option<&'a Token>,
    /// What the text says of itself.
    pub reference: Option<&'a RefreshReference>,
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

/// The facts of a presented refresh token that the rules judge.
struct Judged<'a> {
    kind: TokenKind,
    client_id: &'a str,
    expires_at: Timestamp,
    generation: u64,
    issued_at: Option<Timestamp>,
    revoked: bool,
}

/// Refresh with rotation (RFC 6749 §6, RFC 9700 §4.14.2).
///
/// The presented token is known by its record, or, once its record is gone (a
/// spent refresh token's is deleted by the rotation that spends it), by the
/// reference its text carries, which must name this grant and carry the grant's
/// family secret. Checks, in order:
///
/// 1. a token neither stored nor carrying this grant's reference is unknown;
/// 2. it must be a refresh token ([`InvalidGrantReason::NotARefreshToken`]),
/// 3. of the presenting client ([`InvalidGrantReason::ClientMismatch`]),
/// 4. and not expired ([`InvalidGrantReason::TokenExpired`]);
/// 5. a token of a generation the grant has not reached, or of the current one
///    with no record, was never issued: unknown;
/// 6. a token of an older generation is spent: reuse, which revokes the grant,
///    unless it is the token the last rotation spent, presented again within the
///    grace window after that rotation while the grant is active;
/// 7. a token revoked alone, or under a revoked grant, is refused
///    ([`InvalidGrantReason::TokenRevoked`]), as is one under an expired grant
///    ([`InvalidGrantReason::GrantInactive`]);
/// 8. the client must be enabled and allow `refresh_token`, and must not have
///    stopped refresh tokens since this one was issued
///    ([`InvalidGrantReason::RefreshStopped`]);
/// 9. the scopes asked for (default: the grant's) must lie within the grant's, and
///    are intersected with what the client is allowed now.
///
/// A rotation moves the grant to its next generation, deletes the record of its
/// current refresh token, and issues an access token and, if the client still
/// issues them, a refresh token. It reads and writes the same records on a grant's
/// thousandth rotation as on its first. The refresh is recorded on the grant
/// (`refreshed_at`) and as an event; the history keeps the latest one (see
/// [`refresh_transition`]).
pub fn refresh(
    grant: &Grant,
    presented: Presented<'_>,
    client: &Client,
    request: &Refresh<'_>,
    fresh: &Fresh,
    now: Timestamp,
) -> Result<RefreshOutcome> {
    let invalid = |reason| Err(Error::InvalidGrant { reason });
    let family = presented.reference.filter(|r| {
        r.grant_id == grant.id && grant.refresh.family.is_some_and(|d| r.family.matches(&d))
    });
    let judged = match (presented.record, family) {
        (Some(t), _) => Judged {
            kind: t.kind,
            client_id: &t.client_id,
            expires_at: t.expires_at,
            generation: t.generation,
            issued_at: Some(t.issued_at),
            revoked: t.revoked_at.is_some(),
        },
        (None, Some(r)) => Judged {
            kind: TokenKind::Refresh,
            client_id: &grant.client_id,
            expires_at: r.expires_at,
            generation: r.generation,
            issued_at: None,
            revoked: false,
        },
        (None, None) => return invalid(InvalidGrantReason::UnknownToken),
    };
    if judged.kind != TokenKind::Refresh {
        return invalid(InvalidGrantReason::NotARefreshToken);
    }
    if judged.client_id != request.client_id {
        return invalid(InvalidGrantReason::ClientMismatch);
    }
    if now >= judged.expires_at {
        return invalid(InvalidGrantReason::TokenExpired);
    }
    let current = grant.refresh.generation;
    if judged.generation > current || (judged.generation == current && presented.record.is_none()) {
        return invalid(InvalidGrantReason::UnknownToken);
    }
    let status = grant.status_at(now);
    let in_grace = judged.generation < current
        && request.reuse_grace > Duration::zero()
        && status == GrantStatus::Active
        && !judged.revoked
        && judged.generation + 1 == current
        && grant.refresh.previous == Some(presented.digest)
        && grant
            .refreshed_at
            .is_some_and(|at| now < at + request.reuse_grace);
    if judged.generation < current && !in_grace {
        return Ok(RefreshOutcome::Reused(reused(
            grant,
            request.client_id,
            now,
        )));
    }
    if judged.revoked || status == GrantStatus::Revoked {
        return invalid(InvalidGrantReason::TokenRevoked);
    }
    if status != GrantStatus::Active {
        return invalid(InvalidGrantReason::GrantInactive);
    }
    check_client_may(client, GrantType::RefreshToken)?;
    // A token spent by the last rotation was issued before it, and any stop that
    // came before that rotation would have refused it.
    let issued_at = judged
        .issued_at
        .or(grant.refreshed_at)
        .unwrap_or(grant.created_at);
    if client.stopped_refresh_token(issued_at) {
        return invalid(InvalidGrantReason::RefreshStopped);
    }
    let scopes = refreshed_scopes(grant, request)?;

    let mut next = grant.clone();
    next.refreshed_at = Some(now);
    touch(&mut next, now);
    // The current token is spent now: its record goes. Records of tokens from before
    // tokens carried a reference are the exception; they stay, reading as spent, to
    // their own expiry, so that their reuse is still caught.
    let removed_tokens: Vec<Digest> = grant.refresh.current.into_iter().collect();
    let minted = mint(
        &mut next,
        client,
        scopes,
        presented.reference.map(|r| &r.family),
        fresh,
        now,
    )?;
    next.refresh.previous = Some(presented.digest);
    Ok(RefreshOutcome::Rotated(
        Box::new(next.clone()),
        Changes {
            events: vec![Event::GrantRefreshed {
                zone_id: grant.zone_id.clone(),
                grant_id: grant.id.clone(),
                at: now,
            }],
            grant: Some(next),
            issued_tokens: minted.tokens,
            removed_tokens,
            access_token: Some(minted.access),
            refresh_token: minted.refresh,
            ..Changes::default()
        },
    ))
}

/// The scopes a refresh gives: those asked for (default: the grant's), which must
/// lie within the grant's, narrowed to what the client is allowed now.
fn refreshed_scopes(grant: &Grant, request: &Refresh<'_>) -> Result<Vec<String>> {
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
    Ok(scopes)
}

/// Reuse of a spent refresh token: the grant's revocation (nothing if it is no
/// longer active) and the event that says why.
fn reused(grant: &Grant, client_id: &str, now: Timestamp) -> Changes {
    let mut changes = revoke(grant, TransitionReason::ReuseDetected, Actor::System, now)
        .ok()
        .flatten()
        .unwrap_or_default();
    changes.events.insert(
        0,
        Event::RefreshTokenReused {
            zone_id: grant.zone_id.clone(),
            grant_id: grant.id.clone(),
            client_id: client_id.to_owned(),
            at: now,
        },
    );
    changes
}

/// The history entry of a grant's latest refresh, which the grant itself records
/// (`refreshed_at`): a grant keeps a constant footprint however often it rotates, so
/// its history holds its changes of state and its latest refresh, while every
/// refresh is also published as an [`Event::GrantRefreshed`]. `None` before the
/// first refresh.
pub fn refresh_transition(grant: &Grant) -> Option<Transition> {
    Some(Transition {
        zone_id: grant.zone_id.clone(),
        grant_id: grant.id.clone(),
        from: Some(GrantStatus::Active),
        to: GrantStatus::Active,
        reason: TransitionReason::Refreshed,
        actor: Actor::Client {
            id: grant.client_id.clone(),
        },
        at: grant.refreshed_at?,
    })
}

/// A grant's history as it reads: the stored entries, its latest refresh in its
/// place (after the entries of the grant's active life, before its end), and an
/// expiry not yet swept at the end.
pub fn history(grant: &Grant, mut stored: Vec<Transition>, now: Timestamp) -> Vec<Transition> {
    if let Some(refreshed) = refresh_transition(grant) {
        let known = stored
            .iter()
            .any(|t| t.reason == TransitionReason::Refreshed && t.at == refreshed.at);
        if !known {
            // After every entry of the grant's active life (a clock stepped back can
            // date the refresh before them), before its end.
            let at = stored
                .iter()
                .position(|t| t.to != GrantStatus::Active)
                .unwrap_or(stored.len());
            stored.insert(at, refreshed);
        }
    }
    if grant.status_at(now) != grant.status {
        stored.push(expiry_transition(grant));
    }
    stored
}

/// Revokes one token (RFC 7009). An access token is revoked alone; the current
/// refresh token takes its grant, and so every token of it, with it. A token that
/// is already unusable changes nothing: expired, revoked, spent, under an inactive
/// grant, or a refresh token its client stopped (`client`: `None` when the client
/// is gone).
pub fn revoke_token(
    presented: &Token,
    grant: &Grant,
    client: Option<&Client>,
    actor: Actor,
    now: Timestamp,
) -> Changes {
    if !presented.is_live(now)
        || !presented.is_current(grant)
        || grant.status_at(now) != GrantStatus::Active
    {
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
        TokenKind::Refresh => revoke(grant, TransitionReason::RefreshTokenRevoked, actor, now)
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
    if !is_active(
        token,
        grant.status_at(now),
        grant.refresh.generation,
        client,
        now,
    ) {
        return Introspection::Inactive;
    }
    Introspection::Active(answer(token.clone(), grant.resource_id.clone()))
}

/// [`introspect`] as the engine runs it on every request: over the token record,
/// which the caller no longer needs, and only the [`GrantFacts`] of its grant, with
/// the answer's fields moved out instead of copied. The same decision.
pub fn introspect_owned(
    token: Token,
    grant: GrantFacts,
    client: Option<&Client>,
    now: Timestamp,
) -> Introspection {
    if !is_active(
        &token,
        grant.status_at(now),
        grant.refresh_generation,
        client,
        now,
    ) {
        return Introspection::Inactive;
    }
    Introspection::Active(answer(token, grant.resource_id))
}

/// What introspection says of an active token, moved out of its record; the
/// token's zone and grant are its grant's.
fn answer(token: Token, resource_id: String) -> ActiveToken {
    ActiveToken {
        kind: token.kind,
        scopes: token.scopes,
        client_id: token.client_id,
        user_id: token.user_id,
        resource_id,
        zone_id: token.zone_id,
        grant_id: token.grant_id,
        issued_at: token.issued_at,
        expires_at: token.expires_at,
    }
}

/// Whether a token is good now: live itself, current (a refresh token of its
/// grant's `generation`), under a grant whose status now is active, and, for a
/// refresh token, issued after its client last stopped refresh tokens.
fn is_active(
    token: &Token,
    grant_status: GrantStatus,
    generation: u64,
    client: Option<&Client>,
    now: Timestamp,
) -> bool {
    token.is_live(now)
        && token.is_of_generation(generation)
        && grant_status == GrantStatus::Active
        && (token.kind != TokenKind::Refresh
            || client.is_some_and(|c| !c.stopped_refresh_token(token.issued_at)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccessType, ClientType, ScopePolicy};

    fn at(ms: i64) -> Timestamp {
        chrono::DateTime::from_timestamp_millis(1_900_000_000_000 + ms).unwrap_or_default()
    }

    fn client() -> Client {
        Client {
            id: "c".into(),
            zone_id: "z".into(),
            organization_id: "o".into(),
            tenant: None,
            name: "C".into(),
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
            access_token_ttl_seconds: 60,
            refresh_token_ttl_seconds: 3600,
            redirect_uris: Vec::new(),
            enabled: true,
            strong_auth_supported: false,
            claims_supported: false,
            secret_digest: None,
            previous_secret: None,
            created_at: at(0),
            updated_at: at(0),
            refresh_stopped_at: None,
            last_used_at: None,
        }
    }

    fn fresh(n: u8) -> Fresh {
        Fresh {
            grant_id: "g".into(),
            access: SecretBytes::from_bytes([n; 32]),
            refresh: SecretBytes::from_bytes([n.wrapping_add(100); 32]),
            family: SecretBytes::from_bytes([n.wrapping_add(200); 32]),
        }
    }

    fn authorized() -> (Grant, Changes) {
        let request = NewGrant {
            zone_id: "z".into(),
            organization_id: "o".into(),
            user_id: "u".into(),
            resource_id: "r".into(),
            provider_id: "p".into(),
            scopes: vec!["read".into()],
            expires_at: None,
            grant_type: GrantType::AuthorizationCode,
            actor: Actor::Admin,
        };
        let allowed = vec!["read".to_owned()];
        authorize(&client(), &allowed, request, &fresh(1), at(0)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn refresh_with(
        grant: &Grant,
        secret: &Secret,
        record: Option<&Token>,
        now: i64,
    ) -> Result<RefreshOutcome> {
        let reference = secret.refresh_reference();
        let allowed = vec!["read".to_owned()];
        refresh(
            grant,
            Presented {
                digest: secret.digest(),
                record,
                reference: reference.as_ref(),
            },
            &client(),
            &Refresh {
                client_id: "c",
                allowed: &allowed,
                scopes: None,
                reuse_grace: Duration::zero(),
            },
            &fresh(2),
            at(now),
        )
    }

    fn rotated(outcome: Result<RefreshOutcome>) -> (Grant, Changes) {
        match outcome {
            Ok(RefreshOutcome::Rotated(grant, changes)) => (*grant, changes),
            other => panic!("expected a rotation, got {other:?}"),
        }
    }

    #[test]
    fn a_rotation_writes_the_same_records_whatever_the_history() {
        let (grant, changes) = authorized();
        let first = changes
            .refresh_token
            .clone()
            .unwrap_or_else(|| panic!("no refresh token"));
        let record = changes.issued_tokens[1].clone();
        assert_eq!(grant.refresh.generation, 1);
        assert_eq!(grant.refresh.current, Some(first.digest()));
        let (next, changes) = rotated(refresh_with(&grant, &first, Some(&record), 10));
        assert_eq!(next.refresh.generation, 2);
        assert_eq!(next.refresh.previous, Some(first.digest()));
        assert_eq!(changes.removed_tokens, vec![first.digest()]);
        assert_eq!(changes.issued_tokens.len(), 2);
        assert!(changes.updated_tokens.is_empty() && changes.transitions.is_empty());
        // The family carries over: the new token names the same grant and family.
        let second = changes
            .refresh_token
            .unwrap_or_else(|| panic!("no refresh token"));
        let (a, b) = (first.refresh_reference(), second.refresh_reference());
        assert_eq!(a.as_ref().map(|r| &r.family), b.as_ref().map(|r| &r.family));
        assert_eq!(b.map(|r| r.generation), Some(2));
    }

    #[test]
    fn a_spent_token_known_only_by_its_reference_is_reuse() {
        let (grant, changes) = authorized();
        let first = changes
            .refresh_token
            .clone()
            .unwrap_or_else(|| panic!("no refresh token"));
        let record = changes.issued_tokens[1].clone();
        let (next, _) = rotated(refresh_with(&grant, &first, Some(&record), 10));
        match refresh_with(&next, &first, None, 20) {
            Ok(RefreshOutcome::Reused(changes)) => {
                let revoked = changes.grant.unwrap_or_else(|| panic!("no revocation"));
                assert_eq!(revoked.status, GrantStatus::Revoked);
                assert_eq!(
                    changes.transitions[0].reason,
                    TransitionReason::ReuseDetected
                );
                assert!(changes.updated_tokens.is_empty(), "no token is rewritten");
            }
            other => panic!("expected reuse, got {other:?}"),
        }
        // After its own expiry it is just expired, and revokes nothing.
        let late = refresh_with(&next, &first, None, 3_600_000);
        assert!(matches!(
            late,
            Err(Error::InvalidGrant {
                reason: InvalidGrantReason::TokenExpired
            })
        ));
    }

    #[test]
    fn a_reference_that_does_not_prove_its_family_is_unknown() {
        let (grant, changes) = authorized();
        let first = changes
            .refresh_token
            .clone()
            .unwrap_or_else(|| panic!("no refresh token"));
        let mut reference = first
            .refresh_reference()
            .unwrap_or_else(|| panic!("no reference"));
        let bits = SecretBytes::from_bytes([9; 32]);
        let unknown = |grant: &Grant, reference: &RefreshReference| {
            let forged =
                Secret::refresh_token(reference, &bits).unwrap_or_else(|| panic!("encode"));
            matches!(
                refresh_with(grant, &forged, None, 10),
                Err(Error::InvalidGrant {
                    reason: InvalidGrantReason::UnknownToken
                })
            )
        };
        // The current generation without its record, a generation not reached yet,
        // a wrong family, another grant's id: never issued.
        assert!(unknown(&grant, &reference));
        reference.generation = 7;
        assert!(unknown(&grant, &reference));
        reference.generation = 0;
        reference.family = SecretBytes::from_bytes([3; 32]);
        assert!(unknown(&grant, &reference));
        let mut other = grant.clone();
        other.id = "other".into();
        let mut reference = first
            .refresh_reference()
            .unwrap_or_else(|| panic!("no reference"));
        reference.generation = 0;
        reference.grant_id = "g".into();
        assert!(unknown(&other, &reference));
    }

    #[test]
    fn revoking_a_grant_writes_the_grant_and_its_history_only() {
        let (grant, _) = authorized();
        let changes = revoke(&grant, TransitionReason::Revoked, Actor::Admin, at(5))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no change"));
        assert!(changes.updated_tokens.is_empty() && changes.removed_tokens.is_empty());
        assert_eq!(changes.transitions.len(), 1);
        assert!(changes.grant.is_some());
    }

    #[test]
    fn the_history_shows_the_latest_refresh_before_the_grants_end() {
        let (mut grant, changes) = authorized();
        let created = changes.transitions.clone();
        grant.refreshed_at = Some(at(50));
        let mut revoked = created.clone();
        revoked.push(Transition {
            to: GrantStatus::Revoked,
            from: Some(GrantStatus::Active),
            reason: TransitionReason::Revoked,
            actor: Actor::Admin,
            at: at(50),
            ..created[0].clone()
        });
        let reasons = |h: Vec<Transition>| h.into_iter().map(|t| t.reason).collect::<Vec<_>>();
        assert_eq!(
            reasons(history(&grant, revoked, at(60))),
            [
                TransitionReason::Created,
                TransitionReason::Refreshed,
                TransitionReason::Revoked
            ]
        );
        // A refresh stored by an older version is not shown twice.
        let mut stored = created.clone();
        stored.extend(refresh_transition(&grant));
        assert_eq!(
            reasons(history(&grant, stored, at(60))),
            [TransitionReason::Created, TransitionReason::Refreshed]
        );
    }
}
