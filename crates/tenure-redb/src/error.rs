//! The errors of opening a store and of using one.

use std::io;
use std::path::PathBuf;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process (or another handle in this one) has the store open: redb
    /// holds an exclusive lock on its file while a database is open. Close the other
    /// one first.
    #[error("the store at {} is open in another process", path.display())]
    Locked {
        /// The store's directory.
        path: PathBuf,
    },

    /// The store was written by a version of tenure-redb whose format this one
    /// cannot read (a newer one). Nothing was read or changed.
    #[error(
        "the store at {} has format version {found}; this tenure-redb reads version {supported}",
        path.display()
    )]
    UnsupportedFormat {
        /// The store's directory.
        path: PathBuf,
        /// The format version the store says it has.
        found: u32,
        /// The format version this build reads and writes.
        supported: u32,
    },

    /// The directory's database file holds a redb database that tenure-redb did not
    /// create.
    #[error("the store at {} holds data but no tenure-redb format marker", path.display())]
    NotATenureStore {
        /// The store's directory.
        path: PathBuf,
    },

    /// The store's directory or file could not be opened or created.
    #[error("could not open the store at {}", path.display())]
    Io {
        /// The store's directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },

    /// redb failed while opening the store (a file that is not a redb database, one
    /// that needs repair redb could not make, or an I/O failure).
    #[error("redb could not open the store at {}", path.display())]
    Redb {
        /// The store's directory.
        path: PathBuf,
        /// redb's error.
        #[source]
        source: Box<redb::Error>,
    },
}

/// A failure of an open store, kept as the source of [`tenure::Error::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb failed.
    #[error("redb failed")]
    Redb(#[source] Box<redb::Error>),

    /// A stored record could not be decoded.
    #[error("stored {what} could not be decoded")]
    Decode {
        /// The kind of record.
        what: &'static str,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },

    /// A record could not be encoded.
    #[error("a record could not be encoded")]
    Encode(#[source] postcard::Error),

    /// A stored record starts with a format byte this build does not know.
    #[error("stored {what} has record format {found}, which this build cannot read")]
    UnknownRecordFormat {
        /// The kind of record.
        what: &'static str,
        /// The format byte found.
        found: u8,
    },

    /// A stored key or value is malformed.
    #[error("stored {what} is malformed: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },

    /// A record holds a value (a new variant of a non-exhaustive core enum) that
    /// this format has no place for; nothing was written.
    #[error("this store's format cannot represent {0}")]
    Unrepresentable(String),

    /// A write this backend does not know (the core's `Write` is non-exhaustive);
    /// the set was refused and nothing was written.
    #[error("a write set holds a write this backend does not know")]
    UnsupportedWrite,

    /// The group commit that carried this write set stopped before answering (the
    /// thread leading it panicked); whether the set was written is not known.
    #[error("the commit carrying this write set was abandoned")]
    Abandoned,

    /// A blocking task running a redb call panicked or was cancelled.
    #[error("a blocking storage task failed")]
    Task(#[from] tokio::task::JoinError),
}

macro_rules! from_redb {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(e: $ty) -> Self {
                StoreError::Redb(Box::new(e.into()))
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);

impl From<StoreError> for tenure::Error {
    fn from(e: StoreError) -> Self {
        tenure::storage::backend_error("redb", e)
    }
}
