//! Arbitrary patch documents against a client: either the patch applies and the
//! result is a valid client whose fixed fields did not move, or the stored client
//! is byte-for-byte unchanged.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tenure::client::validate_client;
use tenure::{Engine, Error};

fuzz_target!(|data: &[u8]| {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(common::seeded_engine);
    let Ok(patch) = serde_json::from_slice::<json_patch::Patch>(data) else {
        return;
    };
    let rt = common::runtime();
    let before = rt.block_on(engine.get_client(common::ZONE, "c")).expect("the client");
    let before_bytes = serde_json::to_vec(&before).expect("serializes");
    match rt.block_on(engine.patch_client(common::ZONE, "c", &patch)) {
        Ok(after) => {
            assert_eq!(validate_client(after.clone()).expect("a patched client is valid"), after);
            assert_eq!(
                (&after.id, &after.zone_id, &after.organization_id, &after.owner_account_id, after.client_type, after.created_at, &after.secret_digest),
                (&before.id, &before.zone_id, &before.organization_id, &before.owner_account_id, before.client_type, before.created_at, &before.secret_digest),
                "a patch moved a field that is not patchable"
            );
            assert_eq!(rt.block_on(engine.get_client(common::ZONE, "c")).expect("stored"), after);
            // Put the client back for the next input.
            let merge = tenure::client::client_view(&before);
            let mut fields = serde_json::Map::new();
            for key in tenure::client::PATCHABLE_FIELDS {
                fields.insert(key.to_owned(), merge.get(key).cloned().unwrap_or(serde_json::Value::Null));
            }
            rt.block_on(engine.merge_client(common::ZONE, "c", &serde_json::Value::Object(fields)))
                .expect("restoring the client");
        }
        Err(Error::PatchTestFailed { .. } | Error::InvalidPatch { .. } | Error::InvalidScope { .. } | Error::InvalidInput { .. }) => {
            let now = rt.block_on(engine.get_client(common::ZONE, "c")).expect("the client");
            assert_eq!(serde_json::to_vec(&now).expect("serializes"), before_bytes, "a failed patch changed the client");
        }
        Err(e) => panic!("unexpected error for a patch: {e:?}"),
    }
});
