//! Every benchmark pair runs, on small fixtures, and both of its sides do what they
//! claim (each side asserts its own outcome: an active token, a full page, a sweep
//! of exactly k). Times are not looked at.

use tenure_benches::{Case, Sizes, memory, postgres, sled};

fn small() -> Sizes {
    Sizes {
        page_zones: vec![200],
        sweeps: vec![(10, 30)],
        revoke_tokens: vec![1, 10],
    }
}

fn run(cases: Vec<Case>) {
    assert!(!cases.is_empty());
    for case in cases {
        let mut bench = (case.make)();
        // Twice, so that pools refill and sweeps move on past their first batch.
        for _ in 0..2 {
            bench.engine(3);
            bench.raw(3);
        }
    }
}

#[test]
fn memory_pairs_run() {
    run(memory::cases(&small()));
}

#[test]
fn sled_pairs_run() {
    run(sled::cases(&small()));
}

#[test]
fn postgres_pairs_run() {
    assert!(
        postgres::database_url().is_some(),
        "TENURE_TEST_POSTGRES_URL is not set: run the tests through scripts/test.sh, \
         which starts a throwaway PostgreSQL, or point it at a database"
    );
    run(postgres::cases(&small()));
}
