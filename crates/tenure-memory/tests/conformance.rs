//! The storage conformance suite on the in-memory backend: bare, behind `Arc` and
//! `Box`, and type-erased as `Arc<dyn Storage>` and `Box<dyn Storage>`, so that each
//! rule shows up as its own test once per wrapper (`bare::zones_are_walls`, ...).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tenure::Storage;
use tenure_memory::MemoryStorage;

tenure_testkit::conformance!(bare, MemoryStorage::new);
tenure_testkit::conformance!(arc, || Arc::new(MemoryStorage::new()));
tenure_testkit::conformance!(boxed, || Box::new(MemoryStorage::new()));
tenure_testkit::conformance!(arc_dyn, || -> Arc<dyn Storage> {
    Arc::new(MemoryStorage::new())
});
tenure_testkit::conformance!(box_dyn, || -> Box<dyn Storage> {
    Box::new(MemoryStorage::new())
});
