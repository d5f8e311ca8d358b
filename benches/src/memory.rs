//! The memory backend against a hand-written `HashMap`/`BTreeSet` store.

use std::sync::Arc;

use tenure::Storage;
use tenure_memory::MemoryStorage;

use crate::cases::{self, Backend, Keep};
use crate::raw_memory::RawMemory;
use crate::{Case, Sizes};

/// [`MemoryStorage`] and [`RawMemory`].
#[derive(Debug)]
pub struct Memory;

impl Backend for Memory {
    type Raw = RawMemory;

    const WORKING_SET: u64 = 32;
    const POOL: u64 = 64;

    fn storage(_: &tokio::runtime::Runtime) -> (Arc<dyn Storage>, Keep) {
        (Arc::new(MemoryStorage::new()), Box::new(()))
    }

    fn raw(_: &tokio::runtime::Runtime) -> RawMemory {
        RawMemory::new()
    }
}

/// Every memory case, introspection on two threads included.
pub fn cases(sizes: &Sizes) -> Vec<Case> {
    cases::cases::<Memory>("memory", sizes, true)
}
