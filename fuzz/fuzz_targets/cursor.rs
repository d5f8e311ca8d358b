//! Arbitrary bytes as a cursor: a typed error, or a page of the caller's own zone
//! that honours the filter. Never a panic, never another zone's data.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tenure::{Engine, Error, ListGrants, SortOrder};

fuzz_target!(|data: &[u8]| {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(common::seeded_engine);
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let cursor = String::from_utf8_lossy(rest).into_owned();
    let mut request = ListGrants {
        user_id: (selector & 1 == 1).then(|| "alice".to_owned()),
        order: if selector & 2 == 2 { SortOrder::Ascending } else { SortOrder::Descending },
        limit: Some(usize::from(selector % 5) + 1),
        ..ListGrants::default()
    };
    if selector & 8 == 8 {
        request.before = Some(cursor);
    } else {
        request.after = Some(cursor);
    }
    match common::runtime().block_on(engine.list_grants(common::ZONE, &request)) {
        Ok(page) => {
            for g in &page.items {
                assert_eq!(g.zone_id, common::ZONE, "another zone's grant through a cursor");
                if let Some(user) = &request.user_id {
                    assert_eq!(&g.user_id, user, "a cursor escaped its filter");
                }
            }
        }
        Err(Error::InvalidCursor { .. } | Error::InvalidInput { .. }) => {}
        Err(e) => panic!("unexpected error for a cursor: {e:?}"),
    }
});
