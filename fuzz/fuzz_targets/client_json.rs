//! Arbitrary bytes as a Client: whatever parses re-serializes and re-parses to the
//! same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenure::Client;

fuzz_target!(|data: &[u8]| {
    if let Ok(client) = serde_json::from_slice::<Client>(data) {
        let text = serde_json::to_string(&client).expect("a client serializes");
        let back: Client = serde_json::from_str(&text).expect("its own JSON parses");
        assert_eq!(back, client);
        assert_eq!(serde_json::to_string(&back).expect("serializes"), text);
    }
});
