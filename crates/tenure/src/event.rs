//! Events: what changed, delivered to subscribers after the change is committed.

use std::fmt;

use crate::model::{Actor, TokenKind, TransitionReason};
use crate::time::Timestamp;

/// Something that changed. Delivered only after its change committed, never for one
/// that did not.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A client was registered.
    ClientRegistered {
        /// The zone.
        zone_id: String,
        /// The client.
        client_id: String,
        /// When.
        at: Timestamp,
    },
    /// A client's policy or details changed.
    ClientUpdated {
        /// The zone.
        zone_id: String,
        /// The client.
        client_id: String,
        /// When.
        at: Timestamp,
    },
    /// A client was deleted, after its grants were revoked.
    ClientDeleted {
        /// The zone.
        zone_id: String,
        /// The client.
        client_id: String,
        /// When.
        at: Timestamp,
    },
    /// A grant was created and its first tokens issued.
    GrantCreated {
        /// The zone.
        zone_id: String,
        /// The grant.
        grant_id: String,
        /// The client it was made to.
        client_id: String,
        /// The user who made it.
        user_id: String,
        /// When.
        at: Timestamp,
    },
    /// A grant's refresh token was rotated.
    GrantRefreshed {
        /// The zone.
        zone_id: String,
        /// The grant.
        grant_id: String,
        /// When.
        at: Timestamp,
    },
    /// A grant was revoked, with every token under it.
    GrantRevoked {
        /// The zone.
        zone_id: String,
        /// The grant.
        grant_id: String,
        /// Why.
        reason: TransitionReason,
        /// Who.
        actor: Actor,
        /// When.
        at: Timestamp,
    },
    /// A spent refresh token was presented again; a [`Event::GrantRevoked`] follows
    /// when the grant was still active.
    RefreshTokenReused {
        /// The zone.
        zone_id: String,
        /// The grant.
        grant_id: String,
        /// The client that presented it.
        client_id: String,
        /// When.
        at: Timestamp,
    },
    /// A sweep persisted a grant's expiry.
    GrantExpired {
        /// The zone.
        zone_id: String,
        /// The grant.
        grant_id: String,
        /// The grant's expiry.
        at: Timestamp,
    },
    /// A grant and every trace of it were deleted.
    GrantDeleted {
        /// The zone.
        zone_id: String,
        /// The grant.
        grant_id: String,
        /// When.
        at: Timestamp,
    },
    /// A client got an access token for itself (RFC 6749 §4.4) under its standing
    /// client-credentials grant.
    ClientTokenIssued {
        /// The zone.
        zone_id: String,
        /// The client's standing grant.
        grant_id: String,
        /// The client.
        client_id: String,
        /// When.
        at: Timestamp,
    },
    /// One access token was revoked (RFC 7009).
    TokenRevoked {
        /// The zone.
        zone_id: String,
        /// The grant it belonged to.
        grant_id: String,
        /// Its kind.
        kind: TokenKind,
        /// When.
        at: Timestamp,
    },
}

/// Receives events after they commit. Called on the task that made the change, so
/// keep it quick: forward to a channel for anything slow.
pub trait EventSubscriber: fmt::Debug + Send + Sync + 'static {
    /// Called once per committed event, in commit order for one engine.
    fn notify(&self, event: &Event);
}
