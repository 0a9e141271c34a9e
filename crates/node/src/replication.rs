//! The node's side of replication: the replicate crate's [`ClusterView`] over the Raft member,
//! and the front end's [`BlobPeers`] over the replicate crate's [`Replication`].

use std::sync::Arc;

use async_trait::async_trait;
use goproxy_consensus::Consensus;
use goproxy_http::BlobPeers;
use goproxy_protocol::index::{ArtifactKey, BlobRef, IndexEntry};
use goproxy_replicate::{ClusterView, Replication};

/// The cluster as replication sees it, read from this node's Raft member.
pub struct RaftCluster(pub Consensus);

impl ClusterView for RaftCluster {
    fn peers(&self) -> Vec<(u64, String)> {
        self.0
            .peers()
            .into_iter()
            .map(|(id, node)| (id, node.raft_addr))
            .collect()
    }

    fn leader(&self) -> Option<u64> {
        self.0.leader().map(|(id, _)| id)
    }

    fn committed(&self, key: &ArtifactKey) -> Result<Option<BlobRef>, String> {
        self.0
            .reader()
            .get(key)
            .map(|entry| entry.map(|e| e.blob))
            .map_err(|e| e.to_string())
    }

    fn blob_feed_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, BlobRef)>, String> {
        self.0
            .reader()
            .blob_feed_after(after, limit)
            .map_err(|e| e.to_string())
    }

    fn blob_feed_generation(&self) -> Result<u64, String> {
        self.0
            .reader()
            .blob_feed_generation()
            .map_err(|e| e.to_string())
    }

    fn is_blob_kept(&self, sha256: &str) -> Result<bool, String> {
        self.0
            .reader()
            .is_blob_kept(sha256)
            .map_err(|e| e.to_string())
    }

    fn applied_index(&self) -> Option<u64> {
        self.0.view().last_applied
    }
}

/// Blob copies on the other members, as the front end uses them.
pub struct Peers(pub Arc<Replication>);

#[async_trait]
impl BlobPeers for Peers {
    async fn replicate(&self, entry: &IndexEntry) -> Result<(), String> {
        self.0.replicate(entry).await
    }

    fn abandon(&self, entry: &IndexEntry) {
        self.0.abandon(entry);
    }

    async fn fetch(&self, blob: &BlobRef) -> Result<bool, String> {
        self.0.fetch(blob).await
    }

    fn admit(&self) -> Result<(), String> {
        self.0.admit()
    }
}
