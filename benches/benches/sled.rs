//! Criterion benchmarks of the sled backend against its raw baseline.
//!
//! ```text
//! cargo bench -p tenure-benches --bench sled
//! ```
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main};
use tenure_benches::{Sizes, criterion_cases, sled};

fn benches(c: &mut criterion::Criterion) {
    criterion_cases(c, sled::cases(&Sizes::full()));
}

criterion_group!(sled_backend, benches);
criterion_main!(sled_backend);
