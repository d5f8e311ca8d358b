//! The conformance suite and reference model that every tenure storage backend runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod concurrency;
pub mod conformance;
pub mod model;
