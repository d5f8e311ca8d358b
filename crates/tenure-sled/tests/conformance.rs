//! The storage conformance suite on the sled backend, each test on a fresh store in
//! its own temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tenure_sled::SledStorage;

tenure_testkit::conformance!(sled, || SledStorage::temporary().unwrap());
