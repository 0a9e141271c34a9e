//! The front end's `BlobPeers`, implemented with the replicate crate over the current
//! Raft membership, with the under-replication backlog and its background repair.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use goproxy_consensus::Consensus;
use goproxy_http::BlobPeers;
use goproxy_protocol::index::BlobRef;
use goproxy_replicate::{PushOutcome, Replicator, ReplicatorConfig};
use goproxy_store::BlobStore;

use crate::backlog::Backlog;
use crate::shutdown::Shutdown;

/// Pause between two repair passes over the backlog.
const REPAIR_INTERVAL: Duration = Duration::from_millis(500);

/// Blob copies on the other members of the Raft group.
pub struct RaftPeers {
    replicator: Replicator,
    backlog: Arc<Backlog>,
}

impl RaftPeers {
    /// Replicates `store` to whoever the Raft membership lists besides this node.
    pub fn new(
        store: BlobStore,
        consensus: Consensus,
        config: ReplicatorConfig,
        backlog: Arc<Backlog>,
    ) -> Self {
        let peers = Arc::new(move || {
            consensus
                .peers()
                .into_iter()
                .map(|(_, node)| node.raft_addr)
                .collect()
        });
        Self {
            replicator: Replicator::new(store, config, peers),
            backlog,
        }
    }

    /// Re-pushes backlog blobs until enough peers hold them, until shutdown.
    pub fn spawn_repair(self: &Arc<Self>, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(REPAIR_INTERVAL) => {}
                }
                for blob in this.backlog.pending() {
                    if let PushOutcome::Synced { acked } = this.replicator.push(&blob).await {
                        tracing::info!(sha256 = %blob.sha256, acked, "under-replicated blob repaired");
                        this.backlog.remove(&blob.sha256);
                    }
                }
            }
        })
    }
}

#[async_trait]
impl BlobPeers for RaftPeers {
    async fn replicate(&self, blob: &BlobRef) -> Result<(), String> {
        match self.replicator.push(blob).await {
            PushOutcome::Synced { .. } => Ok(()),
            PushOutcome::Degraded { acked, wanted } => {
                self.backlog.add(blob);
                Err(format!(
                    "{acked} of {wanted} required replicas confirmed in time"
                ))
            }
        }
    }

    async fn fetch(&self, blob: &BlobRef) -> Result<bool, String> {
        self.replicator.fetch(blob).await.map_err(|e| e.to_string())
    }

    fn admit(&self) -> Result<(), String> {
        self.backlog.admit()
    }
}
