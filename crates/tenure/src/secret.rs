//! Secrets: generated from the operating system, handed out once, stored as digests.
//!
//! A secret is 256 random bits from the operating system, encoded base64url without
//! padding behind a prefix that names its kind (`tnr_at_` for an access token, and so
//! on), so that secret scanners can recognise a leaked one. tenure keeps only the
//! SHA-256 [`Digest`] of a secret; the plaintext [`Secret`] is returned once, at
//! issuance, and its `Debug` and `Display` print `[redacted]`.
//!
//! # Refresh tokens
//!
//! A refresh token also says which grant it belongs to, and where in the grant's
//! rotation it stands: its body is a [`RefreshReference`] (the grant's id, the
//! token's generation and expiry, and the grant's *family secret*) followed by 256
//! fresh random bits. That is what lets a grant keep a constant footprint however
//! often it rotates: a spent refresh token's record is deleted at once, and when the
//! token is presented again the engine reads the reference, loads the grant, and
//! checks the family secret against the digest the grant keeps. A match proves the
//! token was issued under that grant, so a token of an older generation is reuse,
//! and revokes the grant (RFC 9700 §4.14.2), however long ago it was spent.
//!
//! Why a family secret rather than a server-keyed MAC over the reference: it needs
//! no key to distribute, rotate or lose across processes sharing one database, and
//! it keeps the rule that only digests are stored. Knowing it gives no more than any
//! refresh token of the grant already gives: the power to have the grant revoked by
//! presenting an old token. It never lets anyone use the grant: the current token is
//! still checked by the digest of its whole text, random bits included.

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
    /// An authorization code (RFC 6749 §4.1).
    AuthorizationCode,
}

impl SecretKind {
    /// The prefix every secret of this kind starts with.
    pub const fn prefix(self) -> &'static str {
        match self {
            SecretKind::AccessToken => "tnr_at_",
            SecretKind::RefreshToken => "tnr_rt_",
            SecretKind::ClientSecret => "tnr_cs_",
            SecretKind::DeviceCode => "tnr_dc_",
            SecretKind::AuthorizationCode => "tnr_ac_",
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

/// 256 random bits from the operating system: the random part of a token, or a
/// grant's refresh-token family secret. Never printed; compared in constant time.
#[derive(Clone)]
pub struct SecretBytes([u8; 32]);

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretBytes {}

impl SecretBytes {
    /// Draws fresh bits from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let [a] = SecretBytes::generate_many::<1>()?;
        Ok(a)
    }

    /// Draws `N` values with one call to the operating system.
    pub fn generate_many<const N: usize>() -> Result<[SecretBytes; N]> {
        let mut buf = vec![0u8; 32 * N];
        getrandom::fill(&mut buf).map_err(|e| Error::Backend {
            backend: "os-random",
            source: Box::new(e),
        })?;
        let mut out = [const { SecretBytes([0; 32]) }; N];
        for (value, chunk) in out.iter_mut().zip(buf.chunks_exact(32)) {
            value.0.copy_from_slice(chunk);
        }
        Ok(out)
    }

    /// Wraps bits drawn elsewhere (tests, deterministic fixtures).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretBytes(bytes)
    }

    /// The SHA-256 digest of the bits, the only form in which a family secret is kept.
    pub fn digest(&self) -> Digest {
        Digest(Sha256::digest(self.0).into())
    }

    /// Whether these bits are the ones `digest` was taken of, compared in constant time.
    pub fn matches(&self, digest: &Digest) -> bool {
        self.digest().0.ct_eq(&digest.0).into()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

/// What a refresh token's text says of itself: its grant, its generation, its
/// expiry, and the grant's family secret (see the module documentation).
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshReference {
    /// The grant the token was issued under.
    pub grant_id: String,
    /// The grant's refresh generation the token was issued at.
    pub generation: u64,
    /// The token's own expiry, to the millisecond.
    pub expires_at: crate::time::Timestamp,
    /// The family secret every refresh token of the grant carries.
    pub family: SecretBytes,
}

impl fmt::Debug for RefreshReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshReference")
            .field("grant_id", &self.grant_id)
            .field("generation", &self.generation)
            .field("expires_at", &self.expires_at)
            .field("family", &self.family)
            .finish()
    }
}

/// The format byte that opens a refresh token's body.
const REFERENCE_FORMAT: u8 = 1;
/// Format, id length, generation, expiry, family secret and random bits, with no id.
const REFERENCE_FIXED_LEN: usize = 1 + 1 + 8 + 8 + 32 + 32;

impl Secret {
    /// A token of `kind` whose body is `bits`, as [`Secret::generate`] makes one.
    pub fn from_bits(kind: SecretKind, bits: &SecretBytes) -> Self {
        let mut text = String::with_capacity(kind.prefix().len() + 43);
        text.push_str(kind.prefix());
        URL_SAFE_NO_PAD.encode_string(bits.0, &mut text);
        Secret(text)
    }

    /// A refresh token carrying `reference`, made unguessable by `bits`. `None` if
    /// the grant id is longer than 255 bytes (ids are at most 128).
    pub fn refresh_token(reference: &RefreshReference, bits: &SecretBytes) -> Option<Self> {
        let id = reference.grant_id.as_bytes();
        let id_len = u8::try_from(id.len()).ok()?;
        let mut body = Vec::with_capacity(REFERENCE_FIXED_LEN + id.len());
        body.push(REFERENCE_FORMAT);
        body.push(id_len);
        body.extend_from_slice(id);
        body.extend_from_slice(&reference.generation.to_be_bytes());
        body.extend_from_slice(&reference.expires_at.timestamp_millis().to_be_bytes());
        body.extend_from_slice(&reference.family.0);
        body.extend_from_slice(&bits.0);
        let prefix = SecretKind::RefreshToken.prefix();
        let mut text = String::with_capacity(prefix.len() + body.len().div_ceil(3) * 4);
        text.push_str(prefix);
        URL_SAFE_NO_PAD.encode_string(&body, &mut text);
        Some(Secret(text))
    }

    /// The reference a refresh token carries; `None` for any other text, including
    /// refresh tokens issued before tokens carried one.
    pub fn refresh_reference(&self) -> Option<RefreshReference> {
        let body = self.0.strip_prefix(SecretKind::RefreshToken.prefix())?;
        if body.len() > 512 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        let (&format, rest) = bytes.split_first()?;
        let (&id_len, rest) = rest.split_first()?;
        if format != REFERENCE_FORMAT || rest.len() != REFERENCE_FIXED_LEN - 2 + usize::from(id_len)
        {
            return None;
        }
        let (id, rest) = rest.split_at(usize::from(id_len));
        let grant_id = std::str::from_utf8(id).ok()?;
        crate::validate::record_id("grant_id", grant_id).ok()?;
        let (generation, rest) = rest.split_first_chunk::<8>()?;
        let (expires_at, rest) = rest.split_first_chunk::<8>()?;
        let (family, _bits) = rest.split_first_chunk::<32>()?;
        Some(RefreshReference {
            grant_id: grant_id.to_owned(),
            generation: u64::from_be_bytes(*generation),
            expires_at: chrono::DateTime::from_timestamp_millis(i64::from_be_bytes(*expires_at))?,
            family: SecretBytes(*family),
        })
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
    fn refresh_tokens_carry_their_reference_and_256_fresh_bits() -> Result<()> {
        let reference = RefreshReference {
            grant_id: "0190a5c8-1d2e-7000-8000-000000000001".into(),
            generation: 1_000,
            expires_at: "2031-02-03T04:05:06.789Z"
                .parse()
                .map_err(|_| Error::Conflict)?,
            family: SecretBytes::generate()?,
        };
        let [a, b] = SecretBytes::generate_many::<2>()?;
        let first = Secret::refresh_token(&reference, &a).ok_or(Error::Conflict)?;
        let second = Secret::refresh_token(&reference, &b).ok_or(Error::Conflict)?;
        assert!(first.expose().starts_with("tnr_rt_"));
        assert_ne!(first.digest(), second.digest(), "the random bits differ");
        assert_eq!(first.refresh_reference(), Some(reference.clone()));
        assert!(!format!("{reference:?}").contains(&URL_SAFE_NO_PAD.encode(reference.family.0)));
        // Older refresh tokens, other kinds, and damaged texts carry none.
        let plain = Secret::generate(SecretKind::RefreshToken)?;
        assert_eq!(plain.refresh_reference(), None);
        let mut cut = first.expose().to_owned();
        cut.pop();
        assert_eq!(Secret::from_presented(cut).refresh_reference(), None);
        let access = first.expose().replacen("tnr_rt_", "tnr_at_", 1);
        assert_eq!(Secret::from_presented(access).refresh_reference(), None);
        Ok(())
    }

    #[test]
    fn family_secrets_match_only_their_digest() -> Result<()> {
        let [a, b] = SecretBytes::generate_many::<2>()?;
        assert!(a.matches(&a.digest()));
        assert!(!b.matches(&a.digest()));
        assert_eq!(format!("{a:?}"), "SecretBytes([redacted])");
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
