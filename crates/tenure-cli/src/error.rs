//! What can go wrong on the command line, each said in one line.

use std::path::PathBuf;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The engine or the store refused or failed.
    #[error("{0}")]
    Engine(#[from] tenure::Error),
    /// The sled store could not be opened.
    #[error("{0}")]
    Open(#[from] tenure_sled::OpenError),
    /// The redb store could not be opened: held by another process, written in a
    /// format this build does not read, not a tenure store, or unreadable.
    #[error("{0}")]
    OpenRedb(#[from] tenure_redb::OpenError),
    /// The PostgreSQL store could not be opened.
    #[error("postgres: {0}")]
    Postgres(Box<dyn std::error::Error + Send + Sync>),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of an import file is bad; nothing of it was applied.
    #[error("line {line}: {reason}")]
    Line {
        /// Its number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An argument is bad.
    #[error("{0}")]
    Usage(String),
    /// The server failed.
    #[error("server: {0}")]
    Serve(std::io::Error),
}

impl CliError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CliError::Io {
            path: path.into(),
            source,
        }
    }
}
