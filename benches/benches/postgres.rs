//! Criterion benchmarks of the PostgreSQL backend against its raw baseline; none
//! without a database.
//!
//! ```text
//! scripts/with-postgres.sh cargo bench -p tenure-benches --bench postgres
//! ```
//!
//! `TENURE_BENCH_POSTGRES_URL` (or `TENURE_TEST_POSTGRES_URL`) names the database;
//! `scripts/with-postgres.sh` starts a throwaway one.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main};
use tenure_benches::{Sizes, criterion_cases, postgres};

fn benches(c: &mut criterion::Criterion) {
    if postgres::database_url().is_none() {
        eprintln!(
            "no PostgreSQL database: set TENURE_BENCH_POSTGRES_URL, or run through \\
             scripts/with-postgres.sh"
        );
    }
    criterion_cases(c, postgres::cases(&Sizes::full()));
}

criterion_group!(postgres_backend, benches);
criterion_main!(postgres_backend);
