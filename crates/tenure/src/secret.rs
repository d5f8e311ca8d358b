//! Secrets: generated from the operating system, handed out once, stored as digests.
//!
//! A secret is 256 random bits from the operating system, encoded base64url without
//! padding behind a prefix that names its kind (`tnr_at_` for an access token, and so
//! on), so that secret scanners can recognise a leaked one. tenure keeps only the
//! SHA-256 [`Digest`] of a secret; the plaintext [`Secret`] is returned once, at
//! issuance, and its `Debug` and `Display` print `[redacted]`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// What a secret is for; decides its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretKind {
    /// An access token.
    AccessToken,
    /// A refresh token.
    RefreshToken,
    /// A confidential client's secret.
    ClientSecret,
    /// A device code (RFC 8628).
    DeviceCode,
}

impl SecretKind {
    /// The prefix every secret of this kind starts with.
    pub const fn prefix(self) -> &'static str {
        match self {
            SecretKind::AccessToken => "tnr_at_",
            SecretKind::RefreshToken => "tnr_rt_",
            SecretKind::ClientSecret => "tnr_cs_",
            SecretKind::DeviceCode => "tnr_dc_",
        }
    }
}

/// A secret in plaintext. Shown once; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Draws a new secret of `kind` from the operating system's random source.
    pub fn generate(kind: SecretKind) -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Backend {
            backend: "os-random",
            source: Box::new(e),
        })?;
        let mut text = String::with_capacity(kind.prefix().len() + 43);
        text.push_str(kind.prefix());
        URL_SAFE_NO_PAD.encode_string(bytes, &mut text);
        Ok(Secret(text))
    }

    /// Wraps a secret that a caller presented.
    pub fn from_presented(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The plaintext; hand it to the party it was issued for, and to no one else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest tenure stores in place of the secret.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The SHA-256 digest of a secret; the only form in which a secret is stored.
///
/// Equality through [`Digest::verify`] runs in constant time. The derived `Eq` and
/// `Ord` serve storage indexes, whose keys are digests of random secrets.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of a secret's text.
    pub fn of(secret: &str) -> Self {
        Digest(Sha256::digest(secret.as_bytes()).into())
    }

    /// Rebuilds a digest from its bytes (as a backend stored them).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The digest's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `presented` is the secret this is the digest of, compared in constant time.
    pub fn verify(&self, presented: &str) -> bool {
        let other = Digest::of(presented);
        self.0.ct_eq(&other.0).into()
    }

    /// The digest as lowercase hex.
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        let mut out = String::with_capacity(64);
        for b in self.0 {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    /// Parses 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Digest(bytes))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::from_hex(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_their_prefix_and_256_bits() -> Result<()> {
        let s = Secret::generate(SecretKind::RefreshToken)?;
        assert!(s.expose().starts_with("tnr_rt_"));
        let body = &s.expose()["tnr_rt_".len()..];
        assert_eq!(URL_SAFE_NO_PAD.decode(body).map(|b| b.len()).ok(), Some(32));
        Ok(())
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_display() -> Result<()> {
        let s = Secret::generate(SecretKind::AccessToken)?;
        assert!(!format!("{s:?}").contains(s.expose()));
        assert!(!format!("{s}").contains(s.expose()));
        assert!(!format!("{s:?}").contains("tnr_"));
        Ok(())
    }

    #[test]
    fn digest_verifies_only_its_own_secret() -> Result<()> {
        let a = Secret::generate(SecretKind::ClientSecret)?;
        let b = Secret::generate(SecretKind::ClientSecret)?;
        assert!(a.digest().verify(a.expose()));
        assert!(!a.digest().verify(b.expose()));
        assert_ne!(a.digest(), b.digest());
        Ok(())
    }

    #[test]
    fn digest_hex_round_trips() -> Result<()> {
        let d = Secret::generate(SecretKind::DeviceCode)?.digest();
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(Digest::from_hex("zz"), None);
        assert_eq!(Digest::from_hex(&"é".repeat(32)), None);
        Ok(())
    }
}
