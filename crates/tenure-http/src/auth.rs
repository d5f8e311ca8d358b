//! Who may call: administrators of a zone (pluggable), and users holding an access
//! token tenure issued in that zone.

use std::fmt;

use async_trait::async_trait;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// Decides whether a bearer token belongs to an administrator of a zone.
#[async_trait]
pub trait Authenticator: fmt::Debug + Send + Sync + 'static {
    /// Whether `token` may administer `zone_id`.
    async fn is_admin(&self, zone_id: &str, token: &str) -> bool;
}

/// One static administrator token for every zone, compared in constant time.
///
/// Only its SHA-256 digest is kept; `Debug` shows nothing of it.
pub struct StaticAdminToken {
    digest: [u8; 32],
}

impl StaticAdminToken {
    /// Accepts exactly `token`.
    pub fn new(token: &str) -> Self {
        StaticAdminToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }
}

impl fmt::Debug for StaticAdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticAdminToken([redacted])")
    }
}

#[async_trait]
impl Authenticator for StaticAdminToken {
    async fn is_admin(&self, _zone_id: &str, token: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.digest.ct_eq(&presented).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_token_is_redacted() {
        let auth = StaticAdminToken::new("s3cret-admin");
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
