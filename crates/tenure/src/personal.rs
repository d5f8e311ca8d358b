//! Personal grants (seed 002): grants a user issues for themself, with a name, a
//! description, a scope string, an optional expiry, and a public `challenge`.
//!
//! Revoking one keeps the record (revoked); deleting it removes it. A user can only
//! ever see or change their own: every operation is addressed by the owner, and
//! another user's personal grant is simply not found.

use serde::{Deserialize, Serialize};

use crate::model::GrantStatus;
use crate::time::{Timestamp, rfc3339};

/// The prefix of every challenge.
pub const CHALLENGE_PREFIX: &str = "auth-grant:";

/// A personal grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalGrant {
    /// Unique, time-ordered (UUIDv7).
    pub id: String,
    /// The zone.
    pub zone_id: String,
    /// The user who issued it for themself; the only one who can see or change it.
    pub user_id: String,
    /// Human-readable name.
    pub name: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The scopes, each checked against RFC 6749 §3.3.
    pub scopes: Vec<String>,
    /// A public handle of the form `auth-grant:…`, 10 to 100 characters.
    pub challenge: String,
    /// The stored status; see [`PersonalGrant::status_at`].
    pub status: GrantStatus,
    /// Creation time.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// Last change; never goes backwards.
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
    /// Expiry; `None` never expires.
    #[serde(default, with = "rfc3339::option")]
    pub expires_at: Option<Timestamp>,
}

impl PersonalGrant {
    /// The status at `now`: active with a passed expiry reads expired.
    pub fn status_at(&self, now: Timestamp) -> GrantStatus {
        match (self.status, self.expires_at) {
            (GrantStatus::Active, Some(at)) if at <= now => GrantStatus::Expired,
            (status, _) => status,
        }
    }

    /// The record as it reads at `now`.
    pub fn as_of(&self, now: Timestamp) -> PersonalGrant {
        let mut out = self.clone();
        if let (GrantStatus::Expired, GrantStatus::Active, Some(at)) =
            (self.status_at(now), self.status, self.expires_at)
        {
            out.status = GrantStatus::Expired;
            out.updated_at = out.updated_at.max(at);
        }
        out
    }

    /// The seed's space-separated `scope` string.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
}

/// A personal grant to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewPersonalGrant {
    /// Name; `"Personal grant"` when `None`.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Space-separated scopes (RFC 6749 §3.3); may be empty.
    pub scope: Option<String>,
    /// Expiry; `None` never expires. Must be in the future.
    pub expires_at: Option<Timestamp>,
}

/// A change to a personal grant's name or description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonalGrantUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
}
