//! Every benchmark pair runs, on small fixtures, and both of its sides do what they
//! claim (each side asserts its own outcome: an active token, a rotation, a
//! revocation, a full page, a sweep of exactly k). Times are not looked at. The
//! after-rotation byte measurements run on a few grants and rounds too.

use std::time::Duration;

use tenure_benches::durable::{self, Durable};
use tenure_benches::peers::{self, Op};
use tenure_benches::{Case, Sizes, memory, postgres, redb, rss, sled};

fn small() -> Sizes {
    Sizes {
        page_zones: vec![200],
        sweeps: vec![(10, 30)],
        revoke_tokens: vec![1, 10],
        refresh_history: vec![20],
    }
}

fn run(cases: Vec<Case>) {
    assert!(!cases.is_empty());
    for name in [
        "/refresh",
        "/refresh/history=20",
        "/revoke/k=10",
        "/sweep/k=10,n=30",
    ] {
        assert!(
            cases.iter().any(|c| c.name.ends_with(name)),
            "no case {name}"
        );
    }
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
fn redb_pairs_run() {
    run(redb::cases(&small()));
}

/// sled and redb side by side: writers authorize, and a store's life (create,
/// revoke, expire and sweep, delete, create again) runs to its end on each.
#[test]
fn durable_measurements_run() {
    for kind in Durable::ALL {
        for writers in [1, 4] {
            let rate = durable::group_commit(kind, writers, Duration::from_millis(200));
            assert!(
                rate > 0.0,
                "{kind:?} with {writers} writers authorized nothing"
            );
        }
        let life = durable::lifecycle(kind, 64);
        for figure in [life.created, life.swept, life.deleted, life.refilled] {
            assert!(figure.is_finite() && figure > 0.0, "{kind:?}: {life:?}");
        }
    }
}

/// tenure, oxide-auth and the floor each introspect, authorize and refresh (each
/// side asserts an active token or a rotated refresh token), and more than once
/// round the grants, so refresh presents rotated tokens.
#[test]
fn peers_run() {
    for op in Op::ALL {
        let (tenure, peer, floor) = peers::measure(op, 50, 3, Duration::from_millis(1));
        for figure in [tenure, peer, floor] {
            assert!(figure.is_finite() && figure > 0.0, "{op:?}: {figure}");
        }
    }
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

/// The after-rotation measurements rotate and prune (each asserts that two tokens
/// per grant are left) and measure something.
#[test]
fn rotated_bytes_measure() {
    let (fresh, rotated) = rss::rotated_bytes_per_grant(50, 5);
    assert!(fresh.is_finite() && rotated.is_finite());
    let disk = rss::rotated_disk_bytes_per_grant(20, 5);
    assert!(disk.fresh.is_finite() && disk.rotated > 0.0);
    // The records a grant keeps do not grow with its rotations (its refresh
    // chain's digests and times aside).
    assert!(disk.live_fresh > 0.0);
    assert!(disk.live_rotated < disk.live_fresh + 100.0);
}
