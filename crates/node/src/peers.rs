//! The front end's `BlobPeers`, implemented with the replicate crate over the current
//! Raft membership, with the under-replication backlog and its background repair; and the
//! replicate crate's `PushGate` over the index and leadership.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use goproxy_consensus::Consensus;
use goproxy_http::BlobPeers;
use goproxy_protocol::index::{ArtifactKey, BlobRef, IndexEntry};
use goproxy_replicate::{PushGate, PushOutcome, Replicator, ReplicatorConfig};
use goproxy_store::BlobStore;

use crate::backlog::Backlog;
use crate::shutdown::Shutdown;

/// Pause between two repair passes over the backlog.
const REPAIR_INTERVAL: Duration = Duration::from_millis(500);

/// Blob copies on the other members of the Raft group.
pub struct RaftPeers {
    replicator: Replicator,
    backlog: Arc<Backlog>,
    consensus: Consensus,
}

impl RaftPeers {
    /// Replicates `store` to whoever the Raft membership lists besides this node.
    pub fn new(
        store: BlobStore,
        consensus: Consensus,
        config: ReplicatorConfig,
        backlog: Arc<Backlog>,
    ) -> Self {
        let channels = consensus.channels().clone();
        let members = consensus.clone();
        let peers = Arc::new(move || {
            members
                .peers()
                .into_iter()
                .map(|(id, node)| (id, node.raft_addr))
                .collect()
        });
        Self {
            replicator: Replicator::new(store, config, peers, channels),
            backlog,
            consensus,
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
                for entry in this.backlog.pending() {
                    // Peers accept only committed content (or the leader's fill in progress):
                    // an entry whose fill is still committing waits for the next pass, one
                    // that lost to other content is dropped.
                    match this.consensus.reader().get(&entry.key) {
                        Ok(Some(committed)) if committed.blob == entry.blob => {}
                        Ok(Some(_)) => {
                            this.backlog.remove(&entry.blob.sha256);
                            continue;
                        }
                        Ok(None) | Err(_) => continue,
                    }
                    let pushed = this.replicator.push(&entry.key, &entry.blob).await;
                    if let PushOutcome::Synced { acked } = pushed {
                        tracing::info!(artifact = %entry.key, acked, "under-replicated blob repaired");
                        this.backlog.remove(&entry.blob.sha256);
                    }
                }
            }
        })
    }
}

#[async_trait]
impl BlobPeers for RaftPeers {
    async fn replicate(&self, entry: &IndexEntry) -> Result<(), String> {
        match self.replicator.push(&entry.key, &entry.blob).await {
            PushOutcome::Synced { .. } => Ok(()),
            PushOutcome::Degraded { acked, wanted } => {
                self.backlog.add(entry);
                Err(format!(
                    "{acked} of {wanted} required replicas confirmed in time"
                ))
            }
        }
    }

    fn abandon(&self, entry: &IndexEntry) {
        self.backlog.remove(&entry.blob.sha256);
    }

    async fn fetch(&self, blob: &BlobRef) -> Result<bool, String> {
        self.replicator.fetch(blob).await.map_err(|e| e.to_string())
    }

    fn admit(&self) -> Result<(), String> {
        self.backlog.admit()
    }
}

/// Pushes this node accepts: the content of a committed entry, or of a fill in progress on
/// the leader it follows.
pub struct IndexGate {
    consensus: Consensus,
}

impl IndexGate {
    /// A gate over `consensus`'s applied index and leadership.
    pub fn new(consensus: Consensus) -> Self {
        Self { consensus }
    }
}

impl PushGate for IndexGate {
    fn admit(&self, sender: Option<u64>, key: &ArtifactKey, blob: &BlobRef) -> Result<(), String> {
        match self.consensus.reader().get(key) {
            Ok(Some(entry)) if &entry.blob == blob => return Ok(()),
            Ok(Some(entry)) => {
                return Err(format!(
                    "{key} is committed with blob {} ({} bytes)",
                    entry.blob.sha256, entry.blob.size
                ))
            }
            Ok(None) => {}
            Err(e) => return Err(format!("reading the index: {e}")),
        }
        let leader = self.consensus.leader().map(|(id, _)| id);
        match (sender, leader) {
            // An insecure cluster cannot tell who pushes.
            (None, _) => Ok(()),
            (Some(sender), Some(leader)) if sender == leader => Ok(()),
            (Some(sender), leader) => Err(format!(
                "{key} is not committed, and only the leader (node {}) pushes fills in progress, not node {sender}",
                leader.map_or("unknown".to_string(), |l| l.to_string())
            )),
        }
    }
}
