//! The checksum-database checker over this cluster: files it verified are kept as index
//! entries with blobs (like artifacts), and fetched from each database's URL.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt};
use goproxy_checksum::{FetchError, Files};
use goproxy_protocol::index::{ArtifactKey, MAX_SUMDB_FILE_SIZE};

use crate::fill::Filler;
use crate::index::CacheIndex;
use crate::routed::Source;
use crate::upstream::UpstreamError;

/// The checker of this front end.
pub type Checker = goproxy_checksum::Checker<ClusterFiles>;

/// Artifacts proved against a database (by database and artifact: the sha256 of the bytes
/// proved), so a cache hit through a verifying route is checked once per process.
pub type VerifiedMemo = moka::sync::Cache<(Arc<str>, ArtifactKey), String>;

/// How many proved artifacts are remembered.
pub const VERIFIED_MEMO_CAPACITY: u64 = 200_000;

/// What a fill verifies against: a database of `checker`.
#[derive(Clone)]
pub struct Verify {
    /// The checker.
    pub checker: Arc<Checker>,
    /// The database's name.
    pub database: Arc<str>,
    /// Serve and keep a fill (marked unverified) when the database is unreachable.
    pub accept_unreachable: bool,
    /// Where proved artifacts are remembered.
    pub memo: VerifiedMemo,
}

/// Database files in the replicated cache (read locally, kept by the leader).
pub struct ClusterFiles {
    pub(crate) index: Arc<dyn CacheIndex>,
    pub(crate) store: goproxy_store::BlobStore,
    pub(crate) filler: Filler,
    /// One client per database, by name.
    pub(crate) databases: HashMap<String, Source>,
}

impl ClusterFiles {
    async fn read(&self, key: &ArtifactKey) -> Result<Option<Vec<u8>>, String> {
        let Some(entry) = self.index.lookup(key).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        if let Some(bytes) = self
            .store
            .read_small(&entry.blob)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(Some(bytes));
        }
        // Committed, but this node lost (or has not yet got) the blob: a peer has it.
        self.filler
            .repair_from_peers(&entry)
            .await
            .map_err(|e| e.to_string())?;
        self.store
            .read_small(&entry.blob)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{key} is committed but its bytes are on no reachable node"))
            .map(Some)
    }
}

impl Files for ClusterFiles {
    fn cached(&self, key: &ArtifactKey) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        let key = key.clone();
        async move { self.read(&key).await }.boxed()
    }

    fn keep(&self, key: ArtifactKey, bytes: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        async move {
            let entry = self
                .filler
                .keep(key.clone(), &bytes)
                .await
                .map_err(|e| e.to_string())?;
            if entry.blob.size == bytes.len() as u64
                && entry.blob.sha256 == goproxy_store::digest::of_bytes(&bytes)
            {
                return Ok(bytes);
            }
            // Other bytes were kept first: those are the cluster's.
            self.read(&key)
                .await?
                .ok_or_else(|| format!("{key} vanished after it was kept"))
        }
        .boxed()
    }

    fn versions(&self, module: &str) -> BoxFuture<'_, Result<Vec<String>, String>> {
        let versions = self
            .index
            .cached_versions(module)
            .map(|found| found.into_iter().map(|v| v.version).collect())
            .map_err(|e| e.to_string());
        async move { versions }.boxed()
    }

    fn last_version(&self, module: &str) -> BoxFuture<'_, Result<Option<String>, String>> {
        let last = self.index.last_version(module).map_err(|e| e.to_string());
        async move { last }.boxed()
    }

    fn fetch(&self, name: &str, path: &str) -> BoxFuture<'_, Result<Vec<u8>, FetchError>> {
        let source = self.databases.get(name).cloned();
        let path = path.to_string();
        let name = name.to_string();
        async move {
            let source = source
                .ok_or_else(|| FetchError::Unavailable(format!("no URL for database {name}")))?;
            let body = match source.upstream.get(&path).await {
                Ok(body) => body.bytes(MAX_SUMDB_FILE_SIZE).await,
                Err(e) => Err(e),
            };
            match body {
                Ok(bytes) => Ok(bytes.to_vec()),
                Err(UpstreamError::NotFound { message }) => Err(FetchError::NotFound(message)),
                Err(e) => Err(FetchError::Unavailable(e.to_string())),
            }
        }
        .boxed()
    }
}
