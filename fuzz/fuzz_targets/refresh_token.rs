//! A refresh token's text, altered: its reference is parsed without panicking and
//! round-trips, and no altered text is ever redeemed. Only the text that was issued
//! rotates; any other is unknown, expired, or (a lower generation with the grant's
//! family intact, which only a holder of the family secret can make) reuse.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use tenure::{
    AuthorizeRequest, ClientRegistration, Engine, Error, ManualClock, RefreshRequest, Secret,
    SecretBytes,
};
use tenure_memory::MemoryStorage;

fuzz_target!(|data: &[u8]| {
    // Any text at all: parsing never panics, and what parses re-encodes to itself.
    let text = String::from_utf8_lossy(data).into_owned();
    if let Some(reference) = Secret::from_presented(text.clone()).refresh_reference() {
        let body = text.strip_prefix("tnr_rt_").unwrap_or_default();
        let bytes = URL_SAFE_NO_PAD.decode(body).unwrap_or_default();
        let mut bits = [0u8; 32];
        bits.copy_from_slice(&bytes[bytes.len() - 32..]);
        let again = Secret::refresh_token(&reference, &SecretBytes::from_bytes(bits))
            .expect("a parsed reference re-encodes");
        assert_eq!(again.refresh_reference(), Some(reference));
    }

    // A real token with the input XORed into its body.
    let clock = Arc::new(ManualClock::new(
        chrono::DateTime::from_timestamp(1_893_456_000, 0).expect("a valid time"),
    ));
    let engine = Engine::builder(Arc::new(MemoryStorage::new())).clock(clock).build();
    common::runtime().block_on(async {
        engine
            .register_client(common::ZONE, ClientRegistration::new("c").id("c").scopes(["read"]))
            .await
            .expect("register");
        let issued = engine
            .authorize(common::ZONE, AuthorizeRequest::new("c", "alice", "r", ["read"]))
            .await
            .expect("authorize");
        let token = issued.refresh_token.expect("an offline client");
        let body = token.expose().strip_prefix("tnr_rt_").expect("a refresh token");
        let mut bytes = URL_SAFE_NO_PAD.decode(body).expect("base64url");
        for (b, d) in bytes.iter_mut().zip(data) {
            *b ^= d;
        }
        let altered = format!("tnr_rt_{}", URL_SAFE_NO_PAD.encode(&bytes));
        let answer = engine
            .refresh(common::ZONE, RefreshRequest::new("c", &Secret::from_presented(altered.clone())))
            .await;
        match answer {
            Ok(_) => assert_eq!(altered, token.expose(), "an altered refresh token was redeemed"),
            Err(Error::InvalidGrant { .. } | Error::RefreshTokenReused { .. }) => {}
            Err(e) => panic!("unexpected answer {e:?}"),
        }
    });
});
