//! Criterion benchmarks of the redb backend against its raw baseline.
//!
//! ```text
//! cargo bench -p tenure-benches --bench redb
//! ```
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main};
use tenure_benches::{Sizes, criterion_cases, redb};

fn benches(c: &mut criterion::Criterion) {
    criterion_cases(c, redb::cases(&Sizes::full()));
}

criterion_group!(redb_backend, benches);
criterion_main!(redb_backend);
