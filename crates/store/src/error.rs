//! Errors of the blob store.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing blobs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A digest string is not 64 lowercase hex characters.
    #[error("invalid sha256 digest {0:?}")]
    InvalidDigest(String),
    /// The bytes written exceed the caller's limit.
    #[error("blob exceeds the size limit of {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// A committed blob's bytes do not match its address (disk corruption or tampering).
    #[error("blob {expected} is corrupt on disk (found sha256 {found})")]
    Corrupt {
        /// The address the file is stored under.
        expected: String,
        /// What its bytes actually hash to.
        found: String,
    },
    /// An I/O error on a path inside the store.
    #[error("blob store I/O on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the filesystem under the store is out of space or quota: nothing new can be
    /// stored here until space is freed.
    pub fn is_disk_full(&self) -> bool {
        use std::io::ErrorKind;
        matches!(self, StoreError::Io { source, .. }
            if matches!(source.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded))
    }
}

/// Attaches a path to an I/O error.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> StoreError {
        StoreError::Io {
            path: PathBuf::from("blobs/tmp"),
            source: std::io::Error::from(kind),
        }
    }

    #[test]
    fn only_out_of_space_and_quota_count_as_a_full_disk() {
        assert!(io(std::io::ErrorKind::StorageFull).is_disk_full());
        assert!(io(std::io::ErrorKind::QuotaExceeded).is_disk_full());
        assert!(StoreError::Io {
            path: PathBuf::from("x"),
            source: std::io::Error::from_raw_os_error(28), // ENOSPC
        }
        .is_disk_full());
        assert!(!io(std::io::ErrorKind::PermissionDenied).is_disk_full());
        assert!(!StoreError::TooLarge { limit: 1 }.is_disk_full());
    }
}
