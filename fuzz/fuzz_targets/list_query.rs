//! Arbitrary query strings through the HTTP listing parser: a 4xx answer, or a query
//! the engine runs to a page or a typed error.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tenure::{Engine, Error};

fuzz_target!(|data: &[u8]| {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(common::seeded_engine);
    let query = String::from_utf8_lossy(data);
    match tenure_http::parse_list_query(&query) {
        Err(e) => assert!(e.status().is_client_error(), "a parse error must be a 4xx, got {}", e.status()),
        Ok(request) => match common::runtime().block_on(engine.list_grants(common::ZONE, &request)) {
            Ok(page) => {
                assert!(page.items.len() <= 100);
                assert!(page.items.iter().all(|g| g.zone_id == common::ZONE));
                if let Some(total) = page.total_count {
                    assert!(total >= page.items.len() as u64);
                }
            }
            Err(Error::InvalidCursor { .. } | Error::InvalidInput { .. }) => {}
            Err(e) => panic!("a parsed query failed untyped: {e:?}"),
        },
    }
});
