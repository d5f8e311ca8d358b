//! Arbitrary strings through user-code normalization and matching: normal forms are
//! well-formed and stable, and a typed code claims a device exactly when it
//! normalizes to that device's code.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use tenure::device::{USER_CODE_ALPHABET, USER_CODE_LEN, display_user_code, normalize_user_code};
use tenure::{DeviceRequest, Error};

fuzz_target!(|data: &[u8]| {
    let typed = String::from_utf8_lossy(data);
    let normal = normalize_user_code(&typed);
    if let Some(code) = &normal {
        assert_eq!(code.len(), USER_CODE_LEN);
        assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        assert_eq!(normalize_user_code(code).as_ref(), Some(code), "normalization is stable");
        assert_eq!(normalize_user_code(&display_user_code(code)).as_ref(), Some(code));
        assert_eq!(normalize_user_code(&code.to_lowercase()).as_ref(), Some(code));
    }
    // Matching, through the engine: a fresh device each time, claimed with the input.
    let engine = common::seeded_engine();
    let rt = common::runtime();
    let start = rt
        .block_on(engine.start_device_authorization(
            common::ZONE,
            DeviceRequest { client_id: "c".into(), scopes: vec!["read".into()], resource_id: "r".into() },
        ))
        .expect("a device authorization");
    let real = normalize_user_code(&start.user_code).expect("the engine's own code is well-formed");
    match rt.block_on(engine.claim_device(common::ZONE, "fuzzer", &typed)) {
        Ok(device) => assert_eq!(normal.as_ref(), Some(&real), "claimed with a code that is not the device's: {:?}", device.user_code),
        Err(Error::InvalidUserCode | Error::InvalidInput { .. } | Error::TooManyAttempts { .. }) => {
            assert_ne!(normal.as_ref(), Some(&real), "the right code was refused");
        }
        Err(e) => panic!("unexpected error for a user code: {e:?}"),
    }
});
