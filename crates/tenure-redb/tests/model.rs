//! The engine on a redb store against the reference model of `tenure-testkit`,
//! with the reopen operation closing the store and opening its directory again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;
use tempfile::TempDir;
use tenure::Storage;
use tenure_redb::{Durability, RedbConfig, RedbStorage};
use tenure_testkit::model::{Backend, Op, ops_strategy, run_ops};

/// Cases per run: `PROPTEST_CASES` when set, 64 otherwise.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

/// A redb store in a temporary directory. Reopening checks the store's integrity,
/// closes it and opens the directory again.
struct Redb {
    _dir: TempDir,
    path: PathBuf,
    current: Option<RedbStorage>,
}

impl Redb {
    fn new() -> Redb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        Redb {
            _dir: dir,
            path,
            current: None,
        }
    }

    fn open(&mut self) -> tenure::Result<Arc<dyn Storage>> {
        // The model test checks behaviour, not durability: periodic commits keep it
        // fast, and closing the store makes them durable.
        let config = RedbConfig::new().durability(Durability::Periodic);
        let store = RedbStorage::open_with(&self.path, config)
            .map_err(|e| tenure::storage::backend_error("redb", e))?;
        self.current = Some(store.clone());
        Ok(Arc::new(store))
    }
}

impl Backend for Redb {
    async fn create(&mut self) -> tenure::Result<Arc<dyn Storage>> {
        self.open()
    }

    async fn reopen(&mut self, store: Arc<dyn Storage>) -> tenure::Result<Arc<dyn Storage>> {
        if let Some(current) = self.current.take() {
            let report = current.check_integrity().await?;
            assert!(
                report.is_consistent() && report.orphan_tokens == 0,
                "before reopening: {report:#?}"
            );
        }
        // The last handle goes here, so the directory is free to open again.
        drop(store);
        self.open()
    }
}

fn run(ops: &[Op]) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut backend = Redb::new();
    runtime.block_on(async {
        run_ops(&mut backend, ops)
            .await
            .map_err(|e| e.to_string())?;
        // And once more at the end, so every run checks the indexes at least once.
        run_ops_end(&mut backend).await
    })
}

async fn run_ops_end(backend: &mut Redb) -> Result<(), String> {
    let current = backend.current.take().ok_or("no store was opened")?;
    let report = current.check_integrity().await.map_err(|e| e.to_string())?;
    if report.is_consistent() && report.orphan_tokens == 0 {
        Ok(())
    } else {
        Err(format!("after the run: {report:#?}"))
    }
}

proptest! {
    // Shrunk failures are kept below as named tests, not in a regressions file.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases())
    })]

    #[test]
    fn engine_matches_reference_model(ops in ops_strategy()) {
        if let Err(divergence) = run(&ops) {
            prop_assert!(false, "{divergence}");
        }
    }
}

#[test]
fn reopening_an_empty_store_keeps_it_empty() {
    run(&[Op::Reopen, Op::Reopen]).unwrap();
}
