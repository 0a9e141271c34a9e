//! What the front end needs from the replicated cache index, declared here so this
//! crate does not depend on the consensus implementation (the node crate adapts it).

use async_trait::async_trait;
use goproxy_protocol::index::{ArtifactKey, BlobRef, IndexEntry};

/// Why the index could not answer or accept a write.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IndexError {
    /// This node cannot commit: another node leads the cluster.
    #[error("this node is not the cluster leader (leader: {})", leader.as_deref().unwrap_or("unknown"))]
    NotLeader {
        /// The leader's HTTP address when known.
        leader: Option<String>,
    },
    /// The index is unavailable (storage failure, no quorum, shutting down).
    #[error("cache index unavailable: {0}")]
    Unavailable(String),
}

/// Who may fill (commit) right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// This node leads: it fills.
    Local,
    /// Another node leads; misses are forwarded to its HTTP address.
    Remote(String),
    /// No leader is known (election in progress, no quorum).
    Unknown,
}

/// One version the index holds any artifact for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedVersion {
    /// Canonical version.
    pub version: String,
    /// RFC 3339 time from its `.info`, when cached.
    pub time: Option<String>,
    /// Whether the `.info` artifact itself is cached.
    pub has_info: bool,
}

/// The cache index as the front end uses it.
#[async_trait]
pub trait CacheIndex: Send + Sync + 'static {
    /// Reads the committed entry for an artifact from this node's local copy.
    fn lookup(&self, key: &ArtifactKey) -> Result<Option<IndexEntry>, IndexError>;

    /// Every version of `module` with at least one committed artifact.
    fn cached_versions(&self, module: &str) -> Result<Vec<CachedVersion>, IndexError>;

    /// The greatest version of `module` in byte order (the index keeps checksum-database
    /// tree heads under zero-padded sizes, so this is the newest one).
    fn last_version(&self, module: &str) -> Result<Option<String>, IndexError> {
        Ok(self
            .cached_versions(module)?
            .into_iter()
            .map(|v| v.version)
            .max())
    }

    /// Commits an entry and returns the entry the cluster settled on: `entry` itself, or
    /// the different content that was committed first (first committed wins forever).
    async fn commit(&self, entry: IndexEntry) -> Result<IndexEntry, IndexError>;

    /// Commits several entries together (one Raft round trip where the implementation can)
    /// and returns the entry the cluster settled on for each, in order.
    async fn commit_all(&self, entries: Vec<IndexEntry>) -> Result<Vec<IndexEntry>, IndexError> {
        let mut winners = Vec::with_capacity(entries.len());
        for entry in entries {
            winners.push(self.commit(entry).await?);
        }
        Ok(winners)
    }

    /// `Ok` when this node can serve and fill; otherwise why not (for `/readyz`).
    fn readiness(&self) -> Result<(), String>;

    /// Who fills right now.
    fn leadership(&self) -> Leadership;

    /// A fill on this node failed because its disk is full (`reason`): if it leads, hand the
    /// fills (leadership) to a node that can take them. Called on every such failure; the
    /// implementation decides how often to act.
    async fn disk_full(&self, reason: &str);
}

/// Blob copies on other nodes, as the front end uses them.
#[async_trait]
pub trait BlobPeers: Send + Sync + 'static {
    /// Copies a newly stored local blob, the content of `entry`, to peers before its fill is
    /// acknowledged. `Err` means fewer peers than required confirmed in time (degraded, still
    /// served).
    async fn replicate(&self, entry: &IndexEntry) -> Result<(), String>;

    /// The fill of `entry` did not commit it (no quorum, or other content won): stop trying
    /// to get its blob onto more peers.
    fn abandon(&self, entry: &IndexEntry);

    /// Fetches a committed blob that is missing locally from a peer; `Ok(false)` when
    /// no peer has it.
    async fn fetch(&self, blob: &BlobRef) -> Result<bool, String>;

    /// `Err(reason)` when no new fill may start because too much is already
    /// under-replicated (the bound on what a node loss could lose).
    fn admit(&self) -> Result<(), String>;
}
