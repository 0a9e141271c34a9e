//! Verifying module versions against Go checksum databases, once for the whole cluster.
//!
//! A [`Checker`] answers "what does database NAME say `module@version` hashes to", proved:
//! the lookup's tree head is signed by the configured key, the record is in that tree
//! (a tlog proof from tiles), the record is about that version, and the tree is consistent
//! with the newest tree head the cluster verified before (else: a fork, refused loudly).
//!
//! Lookups, tiles and tree heads that verified are kept through [`Files::keep`] (the node
//! keeps them in the replicated cache index, so every node can serve them and verify again
//! without the database); everything is read through [`Files::cached`] first. Tiles are kept
//! only once they are proved part of a signed tree, so a bad tile can never be cached for good.
//!
//! The I/O (the cluster cache, the database's HTTP server) is behind [`Files`]; the proofs are
//! `goproxy-sumdb`'s pure functions.
#![forbid(unsafe_code)]

mod checker;
mod tiles;

pub use checker::{Checker, DatabaseStatus, Outcome, Recheck, Settle};

use futures::future::BoxFuture;
use goproxy_protocol::index::ArtifactKey;

/// Tile height of every checksum database the go command talks to.
pub const TILE_HEIGHT: u32 = 8;

/// Why a database's server did not give a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The database answered that it has no such file (404/410).
    #[error("not found: {0}")]
    NotFound(String),
    /// The database could not be asked or failed.
    #[error("{0}")]
    Unavailable(String),
}

/// Where a [`Checker`] reads and keeps database files.
pub trait Files: Send + Sync + 'static {
    /// The bytes the cluster keeps under `key`, if any.
    fn cached(&self, key: &ArtifactKey) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>>;

    /// Keeps verified `bytes` under `key` for the whole cluster and returns the bytes the
    /// cluster settled on (the first kept under that key wins).
    fn keep(&self, key: ArtifactKey, bytes: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>>;

    /// The versions (for database files: paths) the cluster keeps under `module`.
    fn versions(&self, module: &str) -> BoxFuture<'_, Result<Vec<String>, String>>;

    /// The greatest of [`Files::versions`] in byte order (cheap: the newest tree head).
    fn last_version(&self, module: &str) -> BoxFuture<'_, Result<Option<String>, String>>;

    /// Fetches `path` (`lookup/…`, `tile/…`) from database `name`'s server.
    fn fetch(&self, name: &str, path: &str) -> BoxFuture<'_, Result<Vec<u8>, FetchError>>;
}

/// Why a version could not be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// No database of that name is configured.
    #[error("checksum database {0} is not configured")]
    Unknown(String),
    /// The database could not be asked, and the cluster does not hold the answer.
    #[error("checksum database {db} is unreachable: {reason}")]
    Unreachable {
        /// Database name.
        db: String,
        /// What failed.
        reason: String,
    },
    /// The database has no record of the version.
    #[error("{module}@{version} is not in checksum database {db}: {reason}")]
    NotFound {
        /// Database name.
        db: String,
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// The database's answer.
        reason: String,
    },
    /// The database's answer does not verify: a bad signature (another key), a record not
    /// in the signed tree, a bad tile, lines about another version.
    #[error("checksum database {db} gave an answer that does not verify: {reason}")]
    Invalid {
        /// Database name.
        db: String,
        /// What does not verify.
        reason: String,
    },
    /// The database presented a tree that is not an extension of (or prefix of) the newest
    /// tree the cluster verified: two histories exist, at least one of them forged.
    #[error("checksum database {db} presented a forked tree: {presented} is inconsistent with the verified {known}")]
    Fork {
        /// Database name.
        db: String,
        /// The tree the cluster verified before (`N records, hash H`).
        known: String,
        /// The tree that does not match it.
        presented: String,
    },
    /// The cluster cache failed.
    #[error("cluster cache: {0}")]
    Cache(String),
}

impl CheckError {
    /// Whether the database (or the way to it) was unreachable, rather than the answer bad.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, CheckError::Unreachable { .. })
    }
}
