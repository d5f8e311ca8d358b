//! Authorization codes (RFC 6749 §4.1) with PKCE (RFC 7636), as RFC 9700 §2.1.1
//! asks of them: single-use, bound to their client and redirect URI, short-lived,
//! and with `S256` as the only challenge method.
//!
//! The host signs the user in and asks for consent itself, then calls
//! [`Engine::issue_code`](crate::Engine::issue_code) with what was approved. The code
//! is a 256-bit secret kept only as its digest. The client redeems it at the token
//! endpoint ([`Engine::redeem_code`](crate::Engine::redeem_code)); the grant and its
//! tokens are created then, under the client's policy at that moment. A redeemed
//! code is kept until its expiry, so that presenting it again can be refused and
//! the grant it created revoked (RFC 6749 §4.1.2).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::error::{Error, InvalidGrantReason, Result};
use crate::lifecycle;
use crate::model::{Client, ClientType, GrantType};
use crate::secret::Digest;
use crate::time::{Timestamp, rfc3339};

/// How long a code lives when the engine is not told otherwise (RFC 9700 §2.1.1
/// asks for a short life; a minute covers a redirect and a token request).
pub const DEFAULT_CODE_LIFETIME: Duration = Duration::seconds(60);

/// The longest life a code may be given (RFC 6749 §4.1.2: "a maximum authorization
/// code lifetime of 10 minutes is RECOMMENDED").
pub const MAX_CODE_LIFETIME: Duration = Duration::minutes(10);

/// The one code challenge method tenure accepts (RFC 7636 §4.2; RFC 9700 §2.1.1
/// rules out `plain`).
pub const S256: &str = "S256";

/// Which clients must send a PKCE challenge with their authorization request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PkceRequirement {
    /// Public clients only (RFC 9700 §2.1.1: MUST for public clients). Confidential
    /// clients may still send one, and a code issued with one must be redeemed with
    /// its verifier.
    #[default]
    PublicClients,
    /// Every client.
    AllClients,
    /// Every client in these zones; public clients only elsewhere.
    AllClientsIn(Vec<String>),
}

impl PkceRequirement {
    /// Whether `client` of `zone_id` must send a challenge.
    pub fn requires(&self, zone_id: &str, client: &Client) -> bool {
        client.client_type == ClientType::Public
            || match self {
                PkceRequirement::PublicClients => false,
                PkceRequirement::AllClients => true,
                PkceRequirement::AllClientsIn(zones) => zones.iter().any(|z| z == zone_id),
            }
    }
}

/// An authorization code: what a user approved, waiting for its client to redeem it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    /// The digest of the code; the record's key.
    pub code: Digest,
    /// The zone.
    pub zone_id: String,
    /// The client the code was issued to; only it may redeem it.
    pub client_id: String,
    /// The user who approved.
    pub user_id: String,
    /// The resource the grant will be for.
    pub resource_id: String,
    /// The provider.
    pub provider_id: String,
    /// The organization; the client's when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// The scopes approved.
    pub scopes: Vec<String>,
    /// The redirect URI of the authorization request; redemption must name it
    /// exactly.
    pub redirect_uri: String,
    /// The `S256` code challenge, as the 32 bytes it encodes: the SHA-256 of the
    /// verifier, which is exactly a [`Digest`] of the verifier's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<Digest>,
    /// Issue time.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// When the code stops being redeemable; the sweep removes it after.
    #[serde(with = "rfc3339")]
    pub expires_at: Timestamp,
    /// The grant its redemption created; `None` until redeemed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

impl AuthorizationCode {
    /// Whether the code was redeemed.
    pub fn is_redeemed(&self) -> bool {
        self.grant_id.is_some()
    }
}

/// Parses a code challenge and its method (RFC 7636 §4.2, §4.3): the method must be
/// `S256` (absent means `plain`, which is refused), and the challenge the base64url
/// encoding, without padding, of 32 bytes.
pub fn parse_challenge(challenge: &str, method: Option<&str>) -> Result<Digest> {
    match method {
        Some(S256) => {}
        Some("plain") | None => {
            return Err(Error::invalid_input(
                "code_challenge_method",
                "only S256 is accepted (plain is not)",
            ));
        }
        Some(_) => {
            return Err(Error::invalid_input(
                "code_challenge_method",
                "only S256 is accepted",
            ));
        }
    }
    let bytes: [u8; 32] = URL_SAFE_NO_PAD
        .decode(challenge)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            Error::invalid_input(
                "code_challenge",
                "must be the base64url encoding, without padding, of a SHA-256 digest (43 characters)",
            )
        })?;
    Ok(Digest::from_bytes(bytes))
}

/// Checks a code verifier's form (RFC 7636 §4.1): 43 to 128 characters of
/// `A-Z a-z 0-9 - . _ ~`.
pub fn check_verifier(verifier: &str) -> Result<()> {
    let ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "code_verifier",
            "must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~'",
        ))
    }
}

/// What the host approved, for [`Engine::issue_code`](crate::Engine::issue_code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRequest {
    /// The client the code is for.
    pub client_id: String,
    /// The user who approved.
    pub user_id: String,
    /// The resource.
    pub resource_id: String,
    /// The provider.
    pub provider_id: String,
    /// The organization; the client's when `None`.
    pub organization_id: Option<String>,
    /// The scopes approved.
    pub scopes: Vec<String>,
    /// The redirect URI of the authorization request: one of the client's.
    pub redirect_uri: String,
    /// The code challenge, if the client sent one.
    pub code_challenge: Option<String>,
    /// Its method; only `S256` is accepted.
    pub code_challenge_method: Option<String>,
}

impl CodeRequest {
    /// A request for `client_id`, approved by `user_id` for `resource_id` with
    /// `scopes`, to be redirected to `redirect_uri`; provider `default`, no
    /// challenge.
    pub fn new<S: Into<String>>(
        client_id: impl Into<String>,
        user_id: impl Into<String>,
        resource_id: impl Into<String>,
        scopes: impl IntoIterator<Item = S>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        CodeRequest {
            client_id: client_id.into(),
            user_id: user_id.into(),
            resource_id: resource_id.into(),
            provider_id: "default".into(),
            organization_id: None,
            scopes: scopes.into_iter().map(Into::into).collect(),
            redirect_uri: redirect_uri.into(),
            code_challenge: None,
            code_challenge_method: None,
        }
    }

    /// Adds an `S256` challenge.
    pub fn challenge(mut self, code_challenge: impl Into<String>) -> Self {
        self.code_challenge = Some(code_challenge.into());
        self.code_challenge_method = Some(S256.into());
        self
    }
}

/// The checks of issuing a code, against the client as it is now: it is enabled
/// and allowed `authorization_code`, the redirect URI is exactly one of its
/// registered URIs, a challenge is `S256` and present when `pkce` requires one, and
/// the scopes are within `allowed` (the client's scope policy applied). Returns the
/// parsed challenge.
pub fn check_issue(
    client: &Client,
    request: &CodeRequest,
    allowed: &[String],
    pkce: &PkceRequirement,
) -> Result<Option<Digest>> {
    lifecycle::check_client_may(client, GrantType::AuthorizationCode)?;
    if !client.redirect_uris.contains(&request.redirect_uri) {
        return Err(Error::invalid_input(
            "redirect_uri",
            "is not one of the client's registered redirect URIs",
        ));
    }
    let challenge = match (&request.code_challenge, &request.code_challenge_method) {
        (Some(c), method) => Some(parse_challenge(c, method.as_deref())?),
        (None, Some(_)) => {
            return Err(Error::invalid_input(
                "code_challenge",
                "is required when code_challenge_method is given",
            ));
        }
        (None, None) => None,
    };
    if challenge.is_none() && pkce.requires(&client.zone_id, client) {
        return Err(Error::invalid_input(
            "code_challenge",
            "is required for this client (PKCE with S256)",
        ));
    }
    lifecycle::check_grant_scopes(&request.scopes, allowed)?;
    Ok(challenge)
}

/// A redemption as the token endpoint received it.
#[derive(Debug, Clone, Copy)]
pub struct Redemption<'a> {
    /// The authenticated client.
    pub client_id: &'a str,
    /// `redirect_uri` of the token request.
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier` of the token request.
    pub code_verifier: Option<&'a str>,
}

/// What presenting a stored code means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeemDecision {
    /// Redeem it: create the grant and its tokens.
    Redeem,
    /// It was redeemed before: refuse, and revoke the grant it created.
    Reused {
        /// The grant to revoke.
        grant_id: String,
    },
}

/// The checks of redeeming `code` at `now`, in order: issued to this client (a code
/// of another client reads as unknown, and is not consumed); already redeemed
/// (reuse); expired; the redirect URI exactly the one of the authorization request;
/// the verifier matching the challenge, and no verifier without a challenge (RFC
/// 9700 §2.1.1).
pub fn check_redeem(
    code: &AuthorizationCode,
    redemption: Redemption<'_>,
    now: Timestamp,
) -> Result<RedeemDecision> {
    let invalid = |reason| Err(Error::InvalidGrant { reason });
    if code.client_id != redemption.client_id {
        return invalid(InvalidGrantReason::ClientMismatch);
    }
    if let Some(grant_id) = &code.grant_id {
        return Ok(RedeemDecision::Reused {
            grant_id: grant_id.clone(),
        });
    }
    if now >= code.expires_at {
        return invalid(InvalidGrantReason::CodeExpired);
    }
    if redemption.redirect_uri != Some(code.redirect_uri.as_str()) {
        return invalid(InvalidGrantReason::RedirectUriMismatch);
    }
    match (&code.code_challenge, redemption.code_verifier) {
        (Some(challenge), Some(verifier)) => {
            check_verifier(verifier)?;
            if !challenge.verify(verifier) {
                return invalid(InvalidGrantReason::PkceFailed);
            }
        }
        (Some(_), None) => {
            return Err(Error::invalid_input(
                "code_verifier",
                "is required: the authorization request sent a code challenge",
            ));
        }
        (None, Some(_)) => return invalid(InvalidGrantReason::PkceFailed),
        (None, None) => {}
    }
    Ok(RedeemDecision::Redeem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_900_000_000 + s, 0).unwrap_or_default()
    }

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code() -> AuthorizationCode {
        AuthorizationCode {
            code: Digest::of("c"),
            zone_id: "z".into(),
            client_id: "app".into(),
            user_id: "u".into(),
            resource_id: "r".into(),
            provider_id: "p".into(),
            organization_id: None,
            scopes: vec!["read".into()],
            redirect_uri: "https://app.example/cb".into(),
            code_challenge: Some(parse_challenge(CHALLENGE, Some(S256)).unwrap_or_else(|e| {
                panic!("{e}");
            })),
            created_at: at(0),
            expires_at: at(60),
            grant_id: None,
        }
    }

    fn redemption<'a>(verifier: Option<&'a str>, uri: Option<&'a str>) -> Redemption<'a> {
        Redemption {
            client_id: "app",
            redirect_uri: uri,
            code_verifier: verifier,
        }
    }

    const URI: Option<&str> = Some("https://app.example/cb");

    fn reason(r: Result<RedeemDecision>) -> InvalidGrantReason {
        match r {
            Err(Error::InvalidGrant { reason }) => reason,
            other => panic!("expected invalid_grant, got {other:?}"),
        }
    }

    #[test]
    fn the_rfc_7636_example_verifies() {
        assert_eq!(
            check_redeem(&code(), redemption(Some(VERIFIER), URI), at(1)).ok(),
            Some(RedeemDecision::Redeem)
        );
    }

    #[test]
    fn redeem_checks_in_order() {
        let other_client = Redemption {
            client_id: "other",
            ..redemption(Some(VERIFIER), URI)
        };
        assert_eq!(
            reason(check_redeem(&code(), other_client, at(1))),
            InvalidGrantReason::ClientMismatch
        );
        let mut redeemed = code();
        redeemed.grant_id = Some("g".into());
        // Reuse is decided before expiry, so a late replay still revokes.
        assert_eq!(
            check_redeem(&redeemed, redemption(None, None), at(61)).ok(),
            Some(RedeemDecision::Reused {
                grant_id: "g".into()
            })
        );
        assert_eq!(
            reason(check_redeem(
                &code(),
                redemption(Some(VERIFIER), URI),
                at(60)
            )),
            InvalidGrantReason::CodeExpired
        );
        assert_eq!(
            reason(check_redeem(
                &code(),
                redemption(Some(VERIFIER), None),
                at(1)
            )),
            InvalidGrantReason::RedirectUriMismatch
        );
        let near = Some("https://app.example/cb/");
        assert_eq!(
            reason(check_redeem(
                &code(),
                redemption(Some(VERIFIER), near),
                at(1)
            )),
            InvalidGrantReason::RedirectUriMismatch
        );
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj";
        assert_eq!(
            reason(check_redeem(&code(), redemption(Some(wrong), URI), at(1))),
            InvalidGrantReason::PkceFailed
        );
        assert!(matches!(
            check_redeem(&code(), redemption(None, URI), at(1)),
            Err(Error::InvalidInput {
                field: "code_verifier",
                ..
            })
        ));
        assert!(matches!(
            check_redeem(&code(), redemption(Some("short"), URI), at(1)),
            Err(Error::InvalidInput {
                field: "code_verifier",
                ..
            })
        ));
        let mut plain = code();
        plain.code_challenge = None;
        assert_eq!(
            reason(check_redeem(&plain, redemption(Some(VERIFIER), URI), at(1))),
            InvalidGrantReason::PkceFailed
        );
        assert_eq!(
            check_redeem(&plain, redemption(None, URI), at(1)).ok(),
            Some(RedeemDecision::Redeem)
        );
    }

    #[test]
    fn only_s256_challenges_are_accepted() {
        for method in [None, Some("plain"), Some("s256"), Some("S512")] {
            assert!(matches!(
                parse_challenge(CHALLENGE, method),
                Err(Error::InvalidInput {
                    field: "code_challenge_method",
                    ..
                })
            ));
        }
        for bad in ["", "abc", &CHALLENGE[1..], &format!("{CHALLENGE}=")] {
            assert!(matches!(
                parse_challenge(bad, Some(S256)),
                Err(Error::InvalidInput {
                    field: "code_challenge",
                    ..
                })
            ));
        }
    }
}
