//! Arbitrary sequences of the test kit's ops against the engine on the memory
//! backend and against the test kit's reference model, which must agree. The input
//! seeds the test kit's own op strategy, so the fuzzer explores the same op space as
//! the property test.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tenure::Storage;
use tenure_memory::MemoryStorage;
use tenure_testkit::model::{Volatile, ops_strategy, run_ops};

fuzz_target!(|data: &[u8]| {
    let mut seed = [0u8; 32];
    for (i, b) in data.iter().enumerate() {
        seed[i % 32] ^= b.rotate_left((i / 32) as u32 % 8);
    }
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let Ok(tree) = ops_strategy().new_tree(&mut runner) else {
        return;
    };
    let ops = tree.current();
    let mut backend = Volatile(|| Arc::new(MemoryStorage::new()) as Arc<dyn Storage>);
    if let Err(divergence) = common::runtime().block_on(run_ops(&mut backend, &ops)) {
        panic!("the engine and the reference model disagree: {divergence}\nops: {ops:#?}");
    }
});
