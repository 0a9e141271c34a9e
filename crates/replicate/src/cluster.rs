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

    /// Every distinct committed blob (a scan of the applied index).
    fn committed_blobs(&self) -> Result<Vec<BlobRef>, String>;

    /// Index of the last log entry applied here.
    fn applied_index(&self) -> Option<u64>;
}
