//! Device authorization (RFC 8628): records, user codes, and poll answers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::secret::Digest;
use crate::time::{Timestamp, rfc3339};

/// The alphabet of user codes: consonants only, no vowels (no words) and nothing
/// that looks like a digit (RFC 8628 §6.1).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Characters in a user code.
pub const USER_CODE_LEN: usize = 8;

/// The polling interval when none is configured: 5 seconds (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL_SECONDS: u32 = 5;

/// How much `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP_SECONDS: u32 = 5;

/// Where a device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Waiting for a user to enter the code.
    Pending,
    /// A signed-in user entered the code and has not decided yet.
    Claimed,
    /// The user approved; the grant exists, the tokens await the next poll.
    Approved,
    /// The user denied.
    Denied,
    /// The tokens were handed out; the device code is spent.
    Redeemed,
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceState::Pending => "pending",
            DeviceState::Claimed => "claimed",
            DeviceState::Approved => "approved",
            DeviceState::Denied => "denied",
            DeviceState::Redeemed => "redeemed",
        })
    }
}

/// A short-lived pending device authorization, unowned until a user claims it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorization {
    /// The digest of the device code (a 256-bit secret); the record's key.
    pub device_code: Digest,
    /// The zone.
    pub zone_id: String,
    /// The user code in canonical form: eight letters of [`USER_CODE_ALPHABET`].
    /// Unique among a zone's stored device authorizations.
    pub user_code: String,
    /// The client that asked.
    pub client_id: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The resource the grant will be for.
    pub resource_id: String,
    /// Where it stands.
    pub state: DeviceState,
    /// The user who claimed it, once claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The grant approval created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// Creation time.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// When the device code and user code expire.
    #[serde(with = "rfc3339")]
    pub expires_at: Timestamp,
    /// The polling interval in seconds; grows with every `slow_down`.
    pub interval_seconds: u32,
    /// The last poll.
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_polled_at: Option<Timestamp>,
}

/// Canonical form of a user code as typed: letters upper-cased, everything that is
/// not a letter or digit dropped (`bcdf-ghjk` and `BCDF GHJK` both give
/// `BCDFGHJK`). `None` if what remains is not a well-formed user code.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| c.is_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let well_formed =
        code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    well_formed.then_some(code)
}

/// A user code as shown to people: `XXXX-XXXX`.
pub fn display_user_code(code: &str) -> String {
    match (code.get(..4), code.get(4..)) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => code.to_owned(),
    }
}

/// A fresh user code from the operating system's random source, without modulo
/// bias.
pub fn generate_user_code() -> crate::Result<String> {
    let mut out = String::with_capacity(USER_CODE_LEN);
    let mut buf = [0u8; 32];
    while out.len() < USER_CODE_LEN {
        getrandom::fill(&mut buf).map_err(|e| crate::Error::Backend {
            backend: "os-random",
            source: Box::new(e),
        })?;
        // 240 is the largest multiple of 20 below 256: reject the rest.
        for b in buf.iter().copied().filter(|b| *b < 240) {
            if out.len() == USER_CODE_LEN {
                break;
            }
            out.push(char::from(USER_CODE_ALPHABET[usize::from(b % 20)]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_match_case_insensitively_ignoring_punctuation() {
        assert_eq!(
            normalize_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code(" BCDF ghjk ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code("B.C.D.F.G.H.J.K").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code("BCDF-GHJA"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(normalize_user_code("BCDF-GHJKL"), None);
        assert_eq!(normalize_user_code("BCDF-GHJ1"), None);
        assert_eq!(normalize_user_code(""), None);
        assert_eq!(normalize_user_code("ß"), None);
    }

    #[test]
    fn generated_user_codes_are_well_formed() -> crate::Result<()> {
        for _ in 0..100 {
            let code = generate_user_code()?;
            assert_eq!(normalize_user_code(&code), Some(code.clone()));
            assert_eq!(display_user_code(&code).len(), 9);
        }
        Ok(())
    }
}

/// What a poll decided, before the engine acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollDecision {
    /// Not decided yet (`authorization_pending`).
    Pending,
    /// Polled before the interval passed (`slow_down`); the interval grew.
    SlowDown,
    /// The user denied (`access_denied`).
    Denied,
    /// The device code expired (`expired_token`).
    Expired,
    /// Approved: issue the tokens now and spend the device code.
    Redeem,
}

/// A poll by `client_id` at `now` (RFC 8628 §3.4, §3.5): the decision and the record
/// to write, if it changes.
pub fn poll(
    device: &DeviceAuthorization,
    client_id: &str,
    now: Timestamp,
) -> crate::Result<(PollDecision, Option<DeviceAuthorization>)> {
    use crate::error::{Error, InvalidGrantReason};
    if device.client_id != client_id {
        return Err(Error::InvalidGrant {
            reason: InvalidGrantReason::ClientMismatch,
        });
    }
    if device.state == DeviceState::Redeemed {
        return Err(Error::InvalidGrant {
            reason: InvalidGrantReason::DeviceCodeRedeemed,
        });
    }
    if now >= device.expires_at {
        return Ok((PollDecision::Expired, None));
    }
    match device.state {
        DeviceState::Denied => Ok((PollDecision::Denied, None)),
        DeviceState::Approved => Ok((
            PollDecision::Redeem,
            Some(DeviceAuthorization {
                state: DeviceState::Redeemed,
                last_polled_at: Some(now),
                ..device.clone()
            }),
        )),
        DeviceState::Pending | DeviceState::Claimed | DeviceState::Redeemed => {
            let too_soon = device.last_polled_at.is_some_and(|last| {
                now < last + chrono::Duration::seconds(i64::from(device.interval_seconds))
            });
            let mut next = device.clone();
            next.last_polled_at = Some(now);
            if too_soon {
                next.interval_seconds =
                    next.interval_seconds.saturating_add(SLOW_DOWN_STEP_SECONDS);
                Ok((PollDecision::SlowDown, Some(next)))
            } else {
                Ok((PollDecision::Pending, Some(next)))
            }
        }
    }
}

/// A signed-in user claims a pending device authorization by its user code. A
/// claim by the user who holds it changes nothing; anyone else's, or one after the
/// expiry, is [`Error::InvalidUserCode`](crate::Error::InvalidUserCode).
pub fn claim(
    device: &DeviceAuthorization,
    user_id: &str,
    now: Timestamp,
) -> crate::Result<DeviceAuthorization> {
    if now >= device.expires_at {
        return Err(crate::Error::InvalidUserCode);
    }
    match (device.state, device.user_id.as_deref()) {
        (DeviceState::Pending, _) => Ok(DeviceAuthorization {
            state: DeviceState::Claimed,
            user_id: Some(user_id.to_owned()),
            ..device.clone()
        }),
        (DeviceState::Claimed, Some(holder)) if holder == user_id => Ok(device.clone()),
        _ => Err(crate::Error::InvalidUserCode),
    }
}

/// The user who claimed it (or claims it now) approves or denies. Approval names
/// the grant it created.
pub fn decide(
    device: &DeviceAuthorization,
    user_id: &str,
    approval: Option<&str>,
    now: Timestamp,
) -> crate::Result<DeviceAuthorization> {
    let claimed = claim(device, user_id, now)?;
    Ok(match approval {
        Some(grant_id) => DeviceAuthorization {
            state: DeviceState::Approved,
            grant_id: Some(grant_id.to_owned()),
            ..claimed
        },
        None => DeviceAuthorization {
            state: DeviceState::Denied,
            ..claimed
        },
    })
}
