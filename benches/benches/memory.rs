//! Criterion benchmarks of the memory backend against its raw baseline.
//!
//! ```text
//! cargo bench -p tenure-benches --bench memory
//! ```
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main};
use tenure_benches::{Sizes, criterion_cases, memory};

fn benches(c: &mut criterion::Criterion) {
    criterion_cases(c, memory::cases(&Sizes::full()));
}

criterion_group!(memory_backend, benches);
criterion_main!(memory_backend);
