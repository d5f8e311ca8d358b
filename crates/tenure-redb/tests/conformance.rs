//! The storage conformance suite on the redb backend, each test on a fresh store in
//! its own temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tenure_redb::RedbStorage;

tenure_testkit::conformance!(redb, || RedbStorage::temporary().unwrap());
