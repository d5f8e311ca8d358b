//! What running a read on tokio's blocking pool costs, against running it on the
//! caller's thread: the figures behind which reads `RedbStorage` runs where (see the
//! crate docs, "Concurrency").
//!
//! ```text
//! cargo bench -p tenure-redb --bench blocking
//! ```
//!
//! A store of 10,000 grants, each with an access and a refresh token, authorized
//! through the engine. Each read is timed twice: `inline`, polled on the bench
//! thread outside any runtime (which is where the store runs it when it runs it on
//! the caller's thread; outside a runtime it runs every read there), and
//! `spawn_blocking`, awaited from a task of a two-worker tokio runtime with the same
//! work handed to the blocking pool, as the store does for reads it sends there.
//! `hop` is the floor: handing an empty closure to the blocking pool.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tenure::{
    AuthorizeRequest, ClientRegistration, Digest, Engine, GrantFilter, GrantQuery, Position,
    SortOrder, Storage,
};
use tenure_redb::{Durability, RedbConfig, RedbStorage};

const ZONE: &str = "bench-zone";
const GRANTS: usize = 10_000;

/// Polls a future that completes without waiting, as the store's reads do when they
/// run on the caller's thread.
fn now<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn query(limit: usize) -> GrantQuery {
    GrantQuery {
        zone_id: ZONE.to_owned(),
        filter: GrantFilter {
            user_id: Some("user-7".to_owned()),
            ..GrantFilter::default()
        },
        order: SortOrder::Descending,
        position: Position::First,
        limit,
        now: chrono::Utc::now(),
    }
}

fn blocking(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStorage::open_with(
        dir.path().join("store"),
        RedbConfig::new().durability(Durability::Periodic),
    )
    .unwrap();
    let digests: Vec<Digest> = runtime.block_on(async {
        let engine = Engine::builder(Arc::new(store.clone())).build();
        engine
            .register_client(
                ZONE,
                ClientRegistration::new("Bench")
                    .id("bench")
                    .scopes(["read"]),
            )
            .await
            .unwrap();
        let mut digests = Vec::with_capacity(GRANTS);
        for n in 0..GRANTS {
            let request =
                AuthorizeRequest::new("bench", format!("user-{}", n % 100), "files", ["read"]);
            let issued = engine.authorize(ZONE, request).await.unwrap();
            digests.push(issued.access_token.digest());
        }
        digests
    });
    let mut group = c.benchmark_group("blocking");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let mut i = 0usize;
    group.bench_function("point_read/inline", |b| {
        b.iter(|| {
            i = (i + 7919) % GRANTS;
            now(store.get_token_and_grant(ZONE, &digests[i]))
                .unwrap()
                .unwrap()
        });
    });
    group.bench_function("point_read/spawn_blocking", |b| {
        b.to_async(&runtime).iter(|| {
            i = (i + 7919) % GRANTS;
            let (store, digest) = (store.clone(), digests[i]);
            async move {
                tokio::task::spawn_blocking(move || {
                    now(store.get_token_and_grant(ZONE, &digest))
                        .unwrap()
                        .unwrap()
                })
                .await
                .unwrap()
            }
        });
    });
    group.bench_function("hop/spawn_blocking", |b| {
        b.to_async(&runtime)
            .iter(|| async { tokio::task::spawn_blocking(|| ()).await.unwrap() });
    });
    for limit in [20, 100] {
        // Outside a runtime the store runs every read on the caller's thread.
        group.bench_function(format!("page_of_{limit}/inline"), |b| {
            b.iter(|| now(store.list_grants(&query(limit))).unwrap());
        });
        group.bench_function(format!("page_of_{limit}/spawn_blocking"), |b| {
            b.to_async(&runtime)
                .iter(|| async { store.list_grants(&query(limit)).await.unwrap() });
        });
    }
    group.finish();
}

criterion_group!(benches, blocking);
criterion_main!(benches);
