//! Replication as the rest of the node uses it: semi-synchronous pushes with the bounded
//! under-replication backlog and its background repair, fetches of missing blobs, and the
//! catch-up that brings every committed blob to this node.

use std::sync::Arc;
use std::time::Duration;

use goproxy_protocol::index::{BlobRef, IndexEntry};
use goproxy_rpc::Channels;
use goproxy_store::BlobStore;
use tokio_util::sync::CancellationToken;

use crate::backlog::Backlog;
use crate::catch_up::{self, Missing};
use crate::client::{PushOutcome, Replicator, ReplicatorConfig};
use crate::cluster::ClusterView;
use crate::metrics::ReplicationMetrics;

/// Pause between two repair passes over the backlog.
const REPAIR_INTERVAL: Duration = Duration::from_millis(500);

/// Semi-synchronous replication settings and the bound on what degraded mode acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// How pushes are acknowledged.
    pub push: ReplicatorConfig,
    /// Most blobs acknowledged while short of replicas.
    pub max_unreplicated_count: usize,
    /// Most bytes acknowledged while short of replicas.
    pub max_unreplicated_bytes: u64,
}

/// Blob replication of one node. Shared as `Arc`.
pub struct Replication {
    replicator: Replicator,
    backlog: Backlog,
    missing: Missing,
    cluster: Arc<dyn ClusterView>,
    store: BlobStore,
    metrics: ReplicationMetrics,
}

impl Replication {
    /// Replication of `store` to the peers `cluster` lists, dialled through `channels`.
    pub fn new(
        store: BlobStore,
        config: ReplicationConfig,
        cluster: Arc<dyn ClusterView>,
        channels: Channels,
        metrics: ReplicationMetrics,
    ) -> Arc<Self> {
        let members = cluster.clone();
        let peers = Arc::new(move || members.peers());
        Arc::new(Self {
            replicator: Replicator::new(store.clone(), config.push, peers, channels),
            backlog: Backlog::new(
                config.max_unreplicated_count,
                config.max_unreplicated_bytes,
                metrics.backlog_blobs.clone(),
                metrics.backlog_bytes.clone(),
            ),
            missing: Missing::new(metrics.missing_blobs.clone()),
            cluster,
            store,
            metrics,
        })
    }

    /// Starts the backlog repair and the blob catch-up; both stop on `shutdown`.
    pub fn spawn(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            self.spawn_repair(shutdown.clone()),
            catch_up::spawn(
                self.cluster.clone(),
                self.store.clone(),
                self.clone(),
                self.missing.clone(),
                shutdown,
            ),
        ]
    }

    /// Copies the blob of a new entry to peers before its fill is acknowledged. `Err`: fewer
    /// peers than required confirmed in time; the blob joins the backlog (degraded).
    pub async fn replicate(&self, entry: &IndexEntry) -> Result<(), String> {
        let outcome = self.replicator.push(&entry.key, &entry.blob).await;
        self.metrics
            .push(matches!(outcome, PushOutcome::Synced { .. }));
        match outcome {
            PushOutcome::Synced { .. } => Ok(()),
            PushOutcome::Degraded { acked, wanted } => {
                self.backlog.add(entry);
                Err(format!(
                    "{acked} of {wanted} required replicas confirmed in time"
                ))
            }
        }
    }

    /// The fill of `entry` did not commit it: stop repairing its blob.
    pub fn abandon(&self, entry: &IndexEntry) {
        self.backlog.remove(&entry.blob.sha256);
    }

    /// Fetches a committed blob missing here from a peer; `Ok(false)` when none has it.
    pub async fn fetch(&self, blob: &BlobRef) -> Result<bool, String> {
        let fetched = self.replicator.fetch(blob).await;
        self.metrics.fetch(match &fetched {
            Ok(true) => "fetched",
            Ok(false) => "absent",
            Err(_) => "error",
        });
        fetched.map_err(|e| e.to_string())
    }

    /// Fetches the committed `blobs` this node misses from peers, many per request (the
    /// catch-up); returns the sha256 of those now here.
    pub async fn fetch_many(
        &self,
        blobs: &[BlobRef],
    ) -> Result<std::collections::HashSet<String>, String> {
        match self.replicator.fetch_many(blobs).await {
            Ok(fetched) => {
                for blob in blobs {
                    self.metrics.fetch(if fetched.contains(&blob.sha256) {
                        "fetched"
                    } else {
                        "absent"
                    });
                }
                Ok(fetched)
            }
            Err(e) => {
                for _ in blobs {
                    self.metrics.fetch("error");
                }
                Err(e.to_string())
            }
        }
    }

    /// `Err(reason)` while the backlog is at its bound: no new fill may start.
    pub fn admit(&self) -> Result<(), String> {
        self.backlog.admit()
    }

    /// `(blobs, bytes)` acknowledged but short of replicas.
    pub fn backlog(&self) -> (usize, u64) {
        self.backlog.size()
    }

    /// Committed blobs this node does not hold yet (as of the last catch-up pass).
    pub fn missing(&self) -> u64 {
        self.missing.get()
    }

    /// Re-pushes backlog blobs until enough peers hold them, until shutdown.
    fn spawn_repair(self: &Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(REPAIR_INTERVAL) => {}
                }
                this.repair_pass().await;
            }
        })
    }

    async fn repair_pass(&self) {
        for entry in self.backlog.pending() {
            // Peers accept only committed content (or the leader's fill in progress): an
            // entry whose fill is still committing waits for the next pass, one that lost to
            // other content is dropped.
            match self.cluster.committed(&entry.key) {
                Ok(Some(committed)) if committed == entry.blob => {}
                Ok(Some(_)) => {
                    self.backlog.remove(&entry.blob.sha256);
                    continue;
                }
                Ok(None) | Err(_) => continue,
            }
            let pushed = self.replicator.push(&entry.key, &entry.blob).await;
            if let PushOutcome::Synced { acked } = pushed {
                tracing::info!(artifact = %entry.key, acked, "under-replicated blob repaired");
                self.backlog.remove(&entry.blob.sha256);
            }
        }
    }
}
