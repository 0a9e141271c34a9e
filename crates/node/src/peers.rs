//! The front end's `BlobPeers`, implemented with the replicate crate over the current
//! Raft membership.

use std::sync::Arc;

use async_trait::async_trait;
use goproxy_consensus::Consensus;
use goproxy_http::BlobPeers;
use goproxy_protocol::index::BlobRef;
use goproxy_replicate::{PushOutcome, Replicator, ReplicatorConfig};
use goproxy_store::BlobStore;

/// Blob copies on the other members of the Raft group.
pub struct RaftPeers {
    replicator: Replicator,
}

impl RaftPeers {
    /// Replicates `store` to whoever the Raft membership lists besides this node.
    pub fn new(store: BlobStore, consensus: Consensus, config: ReplicatorConfig) -> Self {
        let peers = Arc::new(move || {
            consensus
                .peers()
                .into_iter()
                .map(|(_, node)| node.raft_addr)
                .collect()
        });
        Self {
            replicator: Replicator::new(store, config, peers),
        }
    }
}

#[async_trait]
impl BlobPeers for RaftPeers {
    async fn replicate(&self, blob: &BlobRef) -> Result<(), String> {
        match self.replicator.push(blob).await {
            PushOutcome::Synced { .. } => Ok(()),
            PushOutcome::Degraded { acked, wanted } => Err(format!(
                "{acked} of {wanted} required replicas confirmed in time"
            )),
        }
    }

    async fn fetch(&self, blob: &BlobRef) -> Result<bool, String> {
        self.replicator.fetch(blob).await.map_err(|e| e.to_string())
    }
}
