//! The sled backend against hand-written sled trees.
//!
//! The engine's store is [`SledStorage`] with its default settings
//! ([`Durability::Immediate`](tenure_sled::Durability::Immediate): every write set
//! waits for a flush of sled's log), in a temporary directory of its own. The raw
//! store ([`RawSled`]) flushes after every write operation to match.
//!
//! [`SledStorage::temporary_with`] opens it with the default settings in a
//! directory removed with the store.

use std::sync::Arc;

use tenure::Storage;
use tenure_sled::{SledConfig, SledStorage};

use crate::cases::{self, Backend, Keep};
use crate::raw_sled::RawSled;
use crate::{Case, OrDie, Sizes};

/// [`SledStorage`] (default settings, in a temporary directory) and [`RawSled`].
#[derive(Debug)]
pub struct Sled;

impl Backend for Sled {
    type Raw = RawSled;

    const WORKING_SET: u64 = 16;
    const POOL: u64 = 1024;

    fn storage(_: &tokio::runtime::Runtime) -> (Arc<dyn Storage>, Keep) {
        let store = SledStorage::temporary_with(SledConfig::new()).or_die("opening the sled store");
        (Arc::new(store), Box::new(()))
    }

    fn raw(_: &tokio::runtime::Runtime) -> RawSled {
        RawSled::new()
    }
}

/// Every sled case.
pub fn cases(sizes: &Sizes) -> Vec<Case> {
    cases::cases::<Sled>("sled", sizes, false)
}
