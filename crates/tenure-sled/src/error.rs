//! The errors of opening a store and of using one.

use std::io;
use std::path::PathBuf;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process (or another handle in this one) has the store open. sled keeps
    /// one writer per store; close the other one first.
    #[error("the store at {} is open in another process", path.display())]
    Locked {
        /// The store's directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// The store was written by a version of tenure-sled whose format this one
    /// cannot read (a newer one, or one older than any it upgrades). Nothing was
    /// read or changed.
    #[error(
        "the store at {} has format version {found}; this tenure-sled reads version {supported}",
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

    /// The store is of an older format, which opening upgrades in place, and the
    /// upgrade failed. The store still says its old format: whatever the upgrade
    /// had rewritten is kept, and opening it again resumes the upgrade.
    #[error(
        "could not upgrade the store at {} from format version {from} to {to}",
        path.display()
    )]
    Upgrade {
        /// The store's directory.
        path: PathBuf,
        /// The format version the store had.
        from: u32,
        /// The format version it was being upgraded to.
        to: u32,
        /// What failed.
        #[source]
        source: StoreError,
    },

    /// The directory holds a sled database that tenure-sled did not create.
    #[error("the store at {} holds data but no tenure-sled format marker", path.display())]
    NotATenureStore {
        /// The store's directory.
        path: PathBuf,
    },

    /// The store could not be opened or created.
    #[error("could not open the store at {}", path.display())]
    Io {
        /// The store's directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },

    /// sled failed while opening the store.
    #[error("sled could not open the store at {}", path.display())]
    Sled {
        /// The store's directory.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
}

/// A failure of an open store, kept as the source of [`tenure::Error::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed.
    #[error("sled failed")]
    Sled(#[from] sled::Error),

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

    /// A blocking task running a sled call panicked or was cancelled.
    #[error("a blocking storage task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl From<StoreError> for tenure::Error {
    fn from(e: StoreError) -> Self {
        tenure::storage::backend_error("sled", e)
    }
}
