//! Errors of opening and writing the audit log.

use std::path::PathBuf;

use thiserror::Error;

/// Why the audit log could not be opened or written.
#[derive(Debug, Error)]
pub enum AuditError {
    /// The configuration has no `path`: there is no per-request audit to open.
    #[error("audit: no path configured")]
    Disabled,
    /// The configuration is invalid (every problem, separated by `; `).
    #[error("audit: invalid configuration: {0}")]
    Invalid(String),
    /// The directory of the audit file does not exist (it is not created).
    #[error("audit: directory {dir} does not exist")]
    MissingDirectory {
        /// The missing directory.
        dir: PathBuf,
    },
    /// The audit file could not be opened or created.
    #[error("audit: cannot open {path}: {source}")]
    Open {
        /// The audit file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Writing or syncing the audit file failed (the lines stay in memory and are retried).
    #[error("audit: cannot write {path}: {source}")]
    Write {
        /// The audit file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Rotating the audit file failed (the lines stay in memory and rotation is retried).
    #[error("audit: cannot rotate {path}: {source}")]
    Rotate {
        /// The file that could not be renamed or created.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

impl AuditError {
    /// The kind of failure, for reporting each kind once: the variant and the I/O error kind.
    pub(crate) fn kind(&self) -> (u8, Option<std::io::ErrorKind>) {
        match self {
            Self::Disabled => (0, None),
            Self::Invalid(_) => (1, None),
            Self::MissingDirectory { .. } => (2, None),
            Self::Open { source, .. } => (3, Some(source.kind())),
            Self::Write { source, .. } => (4, Some(source.kind())),
            Self::Rotate { source, .. } => (5, Some(source.kind())),
        }
    }
}
