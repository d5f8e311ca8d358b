//! Throughput of 1, 4 and 16 concurrent writers, each authorizing grants through
//! the engine, in `Immediate` and `Periodic` durability.
//!
//! ```text
//! cargo bench -p tenure-redb --bench durability
//! ```
//!
//! One iteration is one round: every writer authorizes one grant at the same time,
//! so a round of N writers is N write sets; criterion reports write sets per second.
//! In `Immediate` mode the writers of a round share commits (group commit), which is
//! what lets throughput grow with the number of writers. The commits per write set
//! are printed after each run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tenure::{AuthorizeRequest, ClientRegistration, Engine};
use tenure_redb::{Durability, RedbConfig, RedbStorage};

const ZONE: &str = "bench-zone";

fn durability(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("durability");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (mode, name) in [
        (Durability::Immediate, "immediate"),
        (Durability::Periodic, "periodic"),
    ] {
        for writers in [1usize, 4, 16] {
            let dir = tempfile::tempdir().unwrap();
            let store = RedbStorage::open_with(
                dir.path().join("store"),
                RedbConfig::new().durability(mode),
            )
            .unwrap();
            let engine = Engine::builder(Arc::new(store.clone())).build();
            runtime.block_on(async {
                engine
                    .register_client(
                        ZONE,
                        ClientRegistration::new("Bench")
                            .id("bench")
                            .scopes(["read"]),
                    )
                    .await
                    .unwrap();
            });
            let commits_before = store.commit_count();
            let mut rounds = 0u64;
            group.throughput(Throughput::Elements(writers as u64));
            group.bench_with_input(BenchmarkId::new(name, writers), &writers, |b, &writers| {
                b.to_async(&runtime).iter(|| {
                    rounds += 1;
                    let engine = engine.clone();
                    async move {
                        let tasks: Vec<_> = (0..writers)
                            .map(|w| {
                                let engine = engine.clone();
                                tokio::spawn(async move {
                                    let request = AuthorizeRequest::new(
                                        "bench",
                                        format!("user-{w}"),
                                        "files",
                                        ["read"],
                                    );
                                    engine.authorize(ZONE, request).await.unwrap();
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await.unwrap();
                        }
                    }
                });
            });
            let writes = rounds * writers as u64;
            let commits = store.commit_count() - commits_before;
            println!(
                "durability/{name}/{writers}: {commits} commits for {writes} write sets ({:.3} per set)",
                commits as f64 / writes.max(1) as f64
            );
            drop(engine);
            drop(store);
        }
    }
    group.finish();
}

criterion_group!(benches, durability);
criterion_main!(benches);
