//! Arbitrary bytes as a Grant: whatever parses re-serializes and re-parses to the
//! same value, and serializes the same way twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenure::Grant;

fuzz_target!(|data: &[u8]| {
    if let Ok(grant) = serde_json::from_slice::<Grant>(data) {
        let text = serde_json::to_string(&grant).expect("a grant serializes");
        let back: Grant = serde_json::from_str(&text).expect("its own JSON parses");
        assert_eq!(back, grant);
        assert_eq!(serde_json::to_string(&back).expect("serializes"), text);
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(value["active"], serde_json::json!(grant.status == tenure::GrantStatus::Active));
    }
});
