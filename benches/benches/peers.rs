//! Criterion benchmarks of tenure on memory against oxide-auth's `TokenMap` and
//! the floor (see `tenure_benches::peers`).
//!
//! ```text
//! cargo bench -p tenure-benches --bench peers
//! ```
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main};
use tenure_benches::peers::{Floor, GRANTS, Op, Peer, Tenure};

fn benches(c: &mut criterion::Criterion) {
    let (mut tenure, mut peer, mut floor) = (
        Tenure::open(GRANTS),
        Peer::open(GRANTS),
        Floor::open(GRANTS),
    );
    for op in Op::ALL {
        let mut group = c.benchmark_group(format!("peers/{}", op.name()));
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        group.bench_function("tenure", |b| b.iter_custom(|iters| tenure.run(op, iters)));
        group.bench_function("oxide-auth", |b| b.iter_custom(|iters| peer.run(op, iters)));
        group.bench_function("floor", |b| b.iter_custom(|iters| floor.run(op, iters)));
        group.finish();
    }
}

criterion_group!(peers, benches);
criterion_main!(peers);
