//! Anti-entropy for blobs: every blob the committed index references ends up on this node's
//! disk, not only the ones it was pushed while it was up.
//!
//! A fill is acknowledged once `sync_replicas` peers hold the blob; a member that was down,
//! partitioned, or wiped and joined again misses the pushes of that time. Without this task it
//! would fetch such a blob only when a client asked it for one, and the copies the cluster
//! really has would be fewer than the members. Whenever the applied index moves (and while
//! anything is still missing), the task lists the committed blobs, checks which are absent or
//! truncated here, and fetches them from peers (sha256-verified) a few at a time. The number
//! still missing is exported (`/cluster/status` `missing_blobs`, `goproxy_missing_blobs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use goproxy_protocol::index::BlobRef;
use goproxy_store::BlobStore;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use crate::cluster::ClusterView;
use crate::replication::Replication;

/// Shortest pause between two passes.
const PASS_INTERVAL: Duration = Duration::from_secs(1);
/// A pass lists the whole index and checks each blob on disk (O(entries)); when that took `d`,
/// the next pass waits at least `PASS_COST_FACTOR × d`, so listing never takes more than about
/// a tenth of a core however large the index grows. (Fetching is not counted.)
const PASS_COST_FACTOR: u32 = 10;
/// Blobs fetched at once.
const FETCH_CONCURRENCY: usize = 4;

/// Committed blobs this node does not hold (as of the last pass).
#[derive(Debug, Clone, Default)]
pub struct Missing {
    count: Arc<AtomicU64>,
    gauge: Gauge,
}

impl Missing {
    /// A count published in `gauge`.
    pub fn new(gauge: Gauge) -> Self {
        Self {
            count: Arc::default(),
            gauge,
        }
    }

    /// The count from the last pass.
    pub fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn set(&self, n: u64) {
        self.count.store(n, Ordering::Relaxed);
        self.gauge.set(n as i64);
    }
}

/// Starts the catch-up task; it stops on `shutdown`.
pub fn spawn(
    cluster: Arc<dyn ClusterView>,
    store: BlobStore,
    replication: Arc<Replication>,
    missing: Missing,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut scanned_at = None;
        let mut pause = PASS_INTERVAL;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            let applied = cluster.applied_index();
            if applied == scanned_at && missing.get() == 0 {
                continue;
            }
            match pass(&cluster, &store, &replication, &missing).await {
                Ok(listing) => {
                    scanned_at = applied;
                    pause = PASS_INTERVAL.max(listing * PASS_COST_FACTOR);
                }
                Err(e) => tracing::warn!("blob catch-up pass failed: {e}"),
            }
        }
    })
}

/// One pass; returns how long listing and checking took.
async fn pass(
    cluster: &Arc<dyn ClusterView>,
    store: &BlobStore,
    replication: &Replication,
    missing: &Missing,
) -> Result<Duration, String> {
    let started = std::time::Instant::now();
    let listing = cluster.clone();
    let blobs = tokio::task::spawn_blocking(move || listing.committed_blobs())
        .await
        .map_err(|e| e.to_string())??;
    let mut absent: Vec<BlobRef> = Vec::new();
    for blob in blobs {
        if !store.contains(&blob).await.map_err(|e| e.to_string())? {
            absent.push(blob);
        }
    }
    missing.set(absent.len() as u64);
    let listing = started.elapsed();
    if absent.is_empty() {
        return Ok(listing);
    }
    let wanted = absent.len();
    let fetched = stream::iter(absent)
        .map(|blob| async move { matches!(replication.fetch(&blob).await, Ok(true)) })
        .buffer_unordered(FETCH_CONCURRENCY)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    missing.set((wanted - fetched) as u64);
    tracing::info!(
        fetched,
        still_missing = wanted - fetched,
        "blob catch-up: fetched committed blobs this node lacked"
    );
    Ok(listing)
}
