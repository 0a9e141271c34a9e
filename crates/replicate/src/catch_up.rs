//! Anti-entropy for blobs: every blob the committed index keeps ends up on this node's disk,
//! not only the ones it was pushed while it was up.
//!
//! A fill is acknowledged once `sync_replicas` peers hold the blob; a member that was down,
//! partitioned, or wiped and joined again misses the pushes of that time. Without this task it
//! would fetch such a blob only when a client asked it for one, and the copies the cluster
//! really has would be fewer than the members.
//!
//! The task follows the state machine's blob feed (every kept blob, in the order it became
//! kept) with a cursor it keeps in memory. Whenever the applied index moves (and while
//! anything is left to retry), a pass first retries the blobs earlier passes could not get,
//! then reads the feed after the cursor a page at a time, checks which of those blobs are
//! absent or truncated here, fetches them from peers (sha256-verified) a few at a time, and
//! moves the cursor past the page. A pass costs what became kept since the last one, not the
//! size of the index. The cursor starts at the beginning of the feed, so the first pass after
//! the process starts checks every kept blob once (a page at a time: the list is never held
//! whole); so does the first pass after the feed was rebuilt (a snapshot installed, a
//! recount), which changes the feed's generation.
//!
//! Blobs no peer gave go into a retry set of at most [`MAX_RETRY`]; one that is no longer kept
//! (purged, evicted) leaves it. When the set is full the cursor stops before the first blob
//! that did not fit, so nothing is skipped: it is read again once the set has room.
//!
//! The size of the retry set is exported as the committed blobs this node misses
//! (`/cluster/status` `missing_blobs`, `goproxy_missing_blobs`): kept blobs it does not hold
//! as of the last pass. Blobs past the cursor that no pass examined yet (during the first pass
//! after a start or a rebuild, or while the retry set is full) are not counted.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use goproxy_protocol::index::BlobRef;
use goproxy_store::BlobStore;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use crate::cluster::ClusterView;
use crate::replication::Replication;

/// Shortest pause between two passes.
const PASS_INTERVAL: Duration = Duration::from_secs(1);
/// When checking (reading the feed and the retry set, and looking at the disk) took `d`, the
/// next pass waits at least `PASS_COST_FACTOR × d`, so that checking never takes more than
/// about a tenth of a core, even in the first pass that checks every kept blob. (Fetching is
/// not counted.)
const PASS_COST_FACTOR: u32 = 10;
/// Blobs fetched at once.
const FETCH_CONCURRENCY: usize = 4;
/// Feed records read at once.
const FEED_PAGE: usize = 1000;
/// Most blobs kept for a retry.
pub const MAX_RETRY: usize = 10_000;

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

    fn set(&self, n: usize) {
        self.count.store(n as u64, Ordering::Relaxed);
        self.gauge.set(i64::try_from(n).unwrap_or(i64::MAX));
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
        let mut catch_up = CatchUp::new(cluster.clone(), store, missing);
        let fetch = |blob: BlobRef| {
            let replication = replication.clone();
            async move { matches!(replication.fetch(&blob).await, Ok(true)) }
        };
        let mut passed_at = None;
        let mut pause = PASS_INTERVAL;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            let applied = cluster.applied_index();
            if applied == passed_at && catch_up.retry.is_empty() {
                continue;
            }
            match catch_up.pass(&fetch).await {
                Ok(checking) => {
                    passed_at = applied;
                    pause = PASS_INTERVAL.max(checking * PASS_COST_FACTOR);
                }
                Err(e) => tracing::warn!("blob catch-up pass failed: {e}"),
            }
        }
    })
}

/// What a pass looked for.
#[derive(Default)]
struct Tally {
    /// Time spent reading the feed and the retry set and looking at the disk.
    checking: Duration,
    /// Blobs absent here.
    wanted: usize,
    /// Of those, the ones fetched.
    fetched: usize,
}

/// The catch-up's position in the blob feed and the blobs it could not get.
struct CatchUp {
    cluster: Arc<dyn ClusterView>,
    store: BlobStore,
    missing: Missing,
    /// The feed generation `cursor` belongs to (`None`: no pass yet).
    generation: Option<u64>,
    /// The last feed record examined (`None`: none).
    cursor: Option<u64>,
    /// Kept blobs absent here that no peer gave yet, by sha256.
    retry: BTreeMap<String, BlobRef>,
    /// Feed records read at once ([`FEED_PAGE`]).
    page: usize,
    /// Most blobs in `retry` ([`MAX_RETRY`]).
    max_retry: usize,
}

impl CatchUp {
    fn new(cluster: Arc<dyn ClusterView>, store: BlobStore, missing: Missing) -> Self {
        Self {
            cluster,
            store,
            missing,
            generation: None,
            cursor: None,
            retry: BTreeMap::new(),
            page: FEED_PAGE,
            max_retry: MAX_RETRY,
        }
    }

    /// One pass with `fetch` (true: the blob is here now); returns how long checking took.
    async fn pass<F, Fut>(&mut self, fetch: &F) -> Result<Duration, String>
    where
        F: Fn(BlobRef) -> Fut,
        Fut: Future<Output = bool>,
    {
        let mut tally = Tally::default();
        let generation = self.read(|c| c.blob_feed_generation()).await?;
        if self.generation != Some(generation) {
            if self.generation.is_some() {
                tracing::info!(
                    generation,
                    "blob feed rebuilt: catch-up reads it from the start"
                );
            }
            self.generation = Some(generation);
            self.cursor = None;
        }
        self.retry_failed(fetch, &mut tally).await?;
        while self.retry.len() < self.max_retry && self.next_page(fetch, &mut tally).await? {}
        if tally.wanted > 0 {
            tracing::info!(
                fetched = tally.fetched,
                still_missing = self.retry.len(),
                "blob catch-up: fetched committed blobs this node lacked"
            );
        }
        Ok(tally.checking)
    }

    /// Tries the retry set again; drops from it what is no longer kept, or here now.
    async fn retry_failed<F, Fut>(&mut self, fetch: &F, tally: &mut Tally) -> Result<(), String>
    where
        F: Fn(BlobRef) -> Fut,
        Fut: Future<Output = bool>,
    {
        let started = Instant::now();
        let retry: Vec<BlobRef> = self.retry.values().cloned().collect();
        let kept = self
            .read(move |c| {
                let mut kept = Vec::new();
                for blob in retry {
                    if c.is_blob_kept(&blob.sha256)? {
                        kept.push(blob);
                    }
                }
                Ok(kept)
            })
            .await?;
        tally.checking += started.elapsed();
        let failed = self.fetch_absent(&kept, fetch, tally).await?;
        self.retry = kept
            .into_iter()
            .filter(|blob| failed.contains(&blob.sha256))
            .map(|blob| (blob.sha256.clone(), blob))
            .collect();
        self.missing.set(self.retry.len());
        Ok(())
    }

    /// Examines the page of the feed after the cursor and moves the cursor past what it
    /// has: up to the first blob not fetched that the full retry set cannot take. Returns
    /// whether more may follow (the page was full).
    async fn next_page<F, Fut>(&mut self, fetch: &F, tally: &mut Tally) -> Result<bool, String>
    where
        F: Fn(BlobRef) -> Fut,
        Fut: Future<Output = bool>,
    {
        let started = Instant::now();
        let (after, limit) = (self.cursor, self.page);
        let page = self.read(move |c| c.blob_feed_after(after, limit)).await?;
        tally.checking += started.elapsed();
        let full = page.len() == self.page;
        let blobs: Vec<BlobRef> = page.iter().map(|(_, blob)| blob.clone()).collect();
        let failed = self.fetch_absent(&blobs, fetch, tally).await?;
        for (seq, blob) in page {
            if failed.contains(&blob.sha256) && !self.retry.contains_key(&blob.sha256) {
                if self.retry.len() >= self.max_retry {
                    self.missing.set(self.retry.len());
                    return Ok(false);
                }
                self.retry.insert(blob.sha256.clone(), blob);
            }
            self.cursor = Some(seq);
        }
        self.missing.set(self.retry.len());
        Ok(full)
    }

    /// Fetches those of `blobs` absent or truncated here; returns the sha256 of those
    /// still not here.
    async fn fetch_absent<F, Fut>(
        &self,
        blobs: &[BlobRef],
        fetch: &F,
        tally: &mut Tally,
    ) -> Result<HashSet<String>, String>
    where
        F: Fn(BlobRef) -> Fut,
        Fut: Future<Output = bool>,
    {
        let started = Instant::now();
        let mut absent = Vec::new();
        for blob in blobs {
            if !self.store.contains(blob).await.map_err(|e| e.to_string())? {
                absent.push(blob.clone());
            }
        }
        tally.checking += started.elapsed();
        let failed: HashSet<String> = stream::iter(absent.iter().cloned())
            .map(|blob| async move {
                let sha256 = blob.sha256.clone();
                (!fetch(blob).await).then_some(sha256)
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .filter_map(std::future::ready)
            .collect()
            .await;
        tally.wanted += absent.len();
        tally.fetched += absent.len() - failed.len();
        Ok(failed)
    }

    /// Runs a read of the cluster's applied state off the async workers.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn ClusterView) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let cluster = self.cluster.clone();
        tokio::task::spawn_blocking(move || read(cluster.as_ref()))
            .await
            .map_err(|e| e.to_string())?
    }
}

#[cfg(test)]
mod tests;
