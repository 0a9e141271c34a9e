//! What replication needs to know about the cluster, declared here and implemented by the node
//! over its Raft member (so this crate does not depend on the consensus implementation).

use goproxy_protocol::index::{ArtifactKey, BlobRef};

/// The cluster as replication sees it.
pub trait ClusterView: Send + Sync + 'static {
    /// Every other member: its node id and node-to-node `host:port`.
    fn peers(&self) -> Vec<(u64, String)>;

    /// The leader this node follows (or is), if known.
    fn leader(&self) -> Option<u64>;

    /// The blob committed (and applied here) for `key`, if any.
    fn committed(&self, key: &ArtifactKey) -> Result<Option<BlobRef>, String>;

    /// The blob feed applied here: its records (every kept blob, in the order it became
    /// kept) with a sequence greater than `after` (`None`: from the start), in order, at most
    /// `limit`.
    fn blob_feed_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, BlobRef)>, String>;

    /// The blob feed's generation: it changes when the feed is rebuilt wholesale, which
    /// voids any position read in it before.
    fn blob_feed_generation(&self) -> Result<u64, String>;

    /// Whether a kept entry applied here references the blob `sha256`.
    fn is_blob_kept(&self, sha256: &str) -> Result<bool, String>;

    /// Index of the last log entry applied here.
    fn applied_index(&self) -> Option<u64>;
}
