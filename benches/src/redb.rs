//! The redb backend against hand-written redb tables.
//!
//! The engine's store is [`RedbStorage`] with its default settings
//! ([`Durability::Immediate`](tenure_redb::Durability::Immediate): every write
//! transaction is committed durably), in a temporary directory of its own. The raw
//! store ([`RawRedb`]) commits every write operation durably to match.

use std::sync::Arc;

use tenure::Storage;
use tenure_redb::{RedbConfig, RedbStorage};

use crate::cases::{self, Backend, Keep};
use crate::raw_redb::RawRedb;
use crate::{Case, OrDie, Sizes};

/// [`RedbStorage`] (default settings, in a temporary directory) and [`RawRedb`].
#[derive(Debug)]
pub struct Redb;

impl Backend for Redb {
    type Raw = RawRedb;

    const WORKING_SET: u64 = 16;
    const POOL: u64 = 1024;

    fn storage(_: &tokio::runtime::Runtime) -> (Arc<dyn Storage>, Keep) {
        let store = RedbStorage::temporary_with(RedbConfig::new()).or_die("opening the redb store");
        (Arc::new(store), Box::new(()))
    }

    fn raw(_: &tokio::runtime::Runtime) -> RawRedb {
        RawRedb::new()
    }
}

/// Every redb case.
pub fn cases(sizes: &Sizes) -> Vec<Case> {
    cases::cases::<Redb>("redb", sizes, false)
}
