//! Anti-entropy for blobs: every blob the committed index keeps ends up on this node's disk,
//! not only the ones it was pushed while it was up.
//!
//! A fill is acknowledged once `sync_replicas` peers hold the blob; a member that was down,
//! partitioned, or wiped and joined again misses the pushes of that time. Without this task it
//! would fetch such a blob only when a client asked it for one, and the copies the cluster
//! really has would be fewer than the members.
//!
//! The task follows the state machine's blob feed (every kept blob, in the order it became
//! kept) with a cursor it keeps in memory. Whenever the applied index moves, or a blob is due
//! for a retry, a pass first retries the blobs earlier passes could not get and whose time has
//! come, then re-reads the overflow (below) if the retry set has room, then reads the feed
//! after the cursor a page at a time, checks which of those blobs are absent or truncated
//! here, fetches them from peers (sha256-verified) in batches, a few batches at a time, and
//! moves the cursor past the page. A batch is one request to a peer and two filesystem syncs
//! on this node, so a rejoin of many small blobs is bound by the disk's and the network's
//! throughput, not by a sync per blob. A pass costs what became kept since the last one (plus the retries due), not the
//! size of the index. The cursor starts at the beginning of the feed, so the first pass after
//! the process starts checks every kept blob once (a page at a time: the list is never held
//! whole); so does the first pass after the feed was rebuilt (a snapshot installed, a
//! recount), which changes the feed's generation.
//!
//! Blobs no peer gave go into a retry set of at most [`MAX_RETRY`]; one that is no longer kept
//! (purged, evicted) leaves it. Each is asked for again after a pause that starts at
//! [`RETRY_FIRST`] and doubles with every failure up to [`RETRY_MAX`], so a blob no peer has
//! costs little. The cursor moves on whether or not the set is full, so a newer blob a peer
//! has is always fetched. A blob no peer gave that does not fit is counted in the *overflow*,
//! which remembers only the feed sequence of its first blob and how many there are; once the
//! set has room again, a pass re-reads the feed from that sequence up to the cursor, asking
//! for the absent blobs not in the set until the set is full again (the next absent one then
//! starts the overflow), so every blob is retried eventually, in feed order.
//!
//! Each fetch is bounded: the replicator gives each peer [`FetchDeadline::for_size`] (30 s +
//! 1 s per MiB) and leaves a peer that missed it alone for five minutes, and the catch-up
//! bounds the whole fetch at that times one more than the peers. A peer that stalls its
//! streams thus delays a pass by about one deadline (the fetches under way with it when it
//! stalled), not one per blob.
//!
//! The committed blobs this node misses (`/cluster/status` `missing_blobs`,
//! `goproxy_missing_blobs`) are the retry set plus the overflow: kept blobs it found absent
//! and could not get, as of the last pass. Not counted: blobs past the cursor no pass examined
//! yet (during the first pass after a start or a rebuild), and blobs lost from the disk after
//! a pass examined them. Counted although no longer missing, until a pass looks at them again:
//! a blob of the set restored by other means (a client's request) before it is next due, and
//! a blob of the overflow released or restored by other means, until a re-read gets through
//! the whole overflow.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use goproxy_protocol::index::BlobRef;
use goproxy_store::BlobStore;
use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::FetchDeadline;
use crate::cluster::ClusterView;
use crate::replication::Replication;

/// Shortest pause between two passes.
const PASS_INTERVAL: Duration = Duration::from_secs(1);
/// When checking (reading the feed and the retry set, and looking at the disk) took `d`, the
/// next pass waits at least `PASS_COST_FACTOR × d`, so that checking never takes more than
/// about a tenth of a core, even in the first pass that checks every kept blob. (Fetching is
/// not counted.)
const PASS_COST_FACTOR: u32 = 10;
/// Batches fetched at once.
const FETCH_CONCURRENCY: usize = 4;
/// Most blobs in one batch (one request to a peer, one pair of syncs here). With one blob
/// per request and its own syncs, `make scale` at 100k index entries (70 000 blobs)
/// measured a rejoin at 1.5 ms per blob with 4 requests at once and 1.2 ms with 16.
pub const BATCH_BLOBS: usize = 128;
/// Most bytes in one batch (a larger blob is a batch of its own).
pub const BATCH_BYTES: u64 = 8 << 20;
/// Feed records read at once.
const FEED_PAGE: usize = 1000;
/// Most blobs kept for a retry.
pub const MAX_RETRY: usize = 10_000;
/// Pause before a blob no peer gave is asked for again the first time; it doubles with every
/// failure.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest pause before a blob no peer gave is asked for again.
pub const RETRY_MAX: Duration = Duration::from_secs(300);

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
        let fetch = |blobs: Vec<BlobRef>| {
            let replication = replication.clone();
            async move {
                match replication.fetch_many(&blobs).await {
                    Ok(fetched) => fetched,
                    Err(e) => {
                        tracing::warn!("blob catch-up: storing fetched blobs failed: {e}");
                        HashSet::new()
                    }
                }
            }
        };
        let mut passed_at = None;
        let mut pause = PASS_INTERVAL;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            let applied = cluster.applied_index();
            if applied == passed_at && !catch_up.has_work(Instant::now()) {
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

/// A blob no peer gave yet.
struct Retry {
    blob: BlobRef,
    /// Asks that failed so far.
    failures: u32,
    /// When to ask again.
    due: Instant,
}

/// The pause after `failures` failed asks: [`RETRY_FIRST`] doubled each time, at most
/// [`RETRY_MAX`].
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_MAX)
}

/// Blobs no peer gave that did not fit in the full retry set: all in the feed between `from`
/// and the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Overflow {
    /// The feed sequence of the first of them.
    from: u64,
    /// How many, as counted when they were examined.
    count: u64,
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
    retry: BTreeMap<String, Retry>,
    /// Those that did not fit in `retry`.
    overflow: Option<Overflow>,
    /// Feed records read at once ([`FEED_PAGE`]).
    page: usize,
    /// Most blobs fetched in one batch ([`BATCH_BLOBS`]).
    batch: usize,
    /// Most blobs in `retry` ([`MAX_RETRY`]).
    max_retry: usize,
    /// How long each peer may take to deliver a blob.
    deadline: FetchDeadline,
    /// Peers as of the start of the pass.
    peers: usize,
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
            overflow: None,
            page: FEED_PAGE,
            batch: BATCH_BLOBS,
            max_retry: MAX_RETRY,
            deadline: FetchDeadline::default(),
            peers: 0,
        }
    }

    /// Whether a pass has something to do even if the feed did not move: a blob is due for a
    /// retry, or the overflow can be re-read.
    fn has_work(&self, now: Instant) -> bool {
        self.retry.values().any(|r| r.due <= now) || (self.overflow.is_some() && self.has_room())
    }

    fn has_room(&self) -> bool {
        self.retry.len() < self.max_retry
    }

    /// Kept blobs this node found absent and could not get.
    fn missing_count(&self) -> u64 {
        self.retry.len() as u64 + self.overflow.map_or(0, |o| o.count)
    }

    /// Takes `blob`, which no peer gave, into the retry set if it has room; returns whether
    /// it did.
    fn remember(&mut self, blob: BlobRef) -> bool {
        if !self.has_room() {
            return false;
        }
        let retry = Retry {
            failures: 1,
            due: Instant::now() + backoff(1),
            blob,
        };
        self.retry.insert(retry.blob.sha256.clone(), retry);
        true
    }

    /// One pass with `fetch` (a batch of blobs in, the sha256 of those here now out);
    /// returns how long checking took.
    async fn pass<F, Fut>(&mut self, fetch: &F) -> Result<Duration, String>
    where
        F: Fn(Vec<BlobRef>) -> Fut,
        Fut: Future<Output = HashSet<String>>,
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
            // Reading the feed from the start meets every blob of the overflow again.
            self.overflow = None;
        }
        self.peers = self.cluster.peers().len();
        self.retry_due(fetch, &mut tally).await?;
        if self.overflow.is_some() && self.has_room() {
            self.reread_overflow(fetch, &mut tally).await?;
        }
        while self.next_page(fetch, &mut tally).await? {}
        self.missing.set(self.missing_count());
        if tally.wanted > 0 {
            tracing::info!(
                fetched = tally.fetched,
                still_missing = self.missing_count(),
                "blob catch-up: fetched committed blobs this node lacked"
            );
        }
        Ok(tally.checking)
    }

    /// Drops from the retry set what is no longer kept; asks again for the blobs whose time
    /// has come, and drops those here now.
    async fn retry_due<F, Fut>(&mut self, fetch: &F, tally: &mut Tally) -> Result<(), String>
    where
        F: Fn(Vec<BlobRef>) -> Fut,
        Fut: Future<Output = HashSet<String>>,
    {
        if self.retry.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let shas: Vec<String> = self.retry.keys().cloned().collect();
        let kept = self
            .read(move |c| {
                let mut kept = HashSet::new();
                for sha256 in shas {
                    if c.is_blob_kept(&sha256)? {
                        kept.insert(sha256);
                    }
                }
                Ok(kept)
            })
            .await?;
        tally.checking += started.elapsed();
        self.retry.retain(|sha256, _| kept.contains(sha256));
        let now = Instant::now();
        let due: Vec<BlobRef> = self
            .retry
            .values()
            .filter(|r| r.due <= now)
            .map(|r| r.blob.clone())
            .collect();
        let failed = self.fetch_absent(&due, fetch, tally).await?;
        let now = Instant::now();
        for blob in due {
            if failed.contains(&blob.sha256) {
                if let Some(retry) = self.retry.get_mut(&blob.sha256) {
                    retry.failures = retry.failures.saturating_add(1);
                    retry.due = now + backoff(retry.failures);
                }
            } else {
                self.retry.remove(&blob.sha256);
            }
        }
        self.missing.set(self.missing_count());
        Ok(())
    }

    /// Re-reads the feed from the first blob of the overflow up to the cursor, asking for
    /// the absent blobs not in the retry set while it has room. The first that no longer
    /// fits starts the overflow again (not asked this time); reaching the cursor ends it.
    async fn reread_overflow<F, Fut>(&mut self, fetch: &F, tally: &mut Tally) -> Result<(), String>
    where
        F: Fn(Vec<BlobRef>) -> Fut,
        Fut: Future<Output = HashSet<String>>,
    {
        let (Some(overflow), Some(end)) = (self.overflow, self.cursor) else {
            self.overflow = None;
            return Ok(());
        };
        let mut after = overflow.from.checked_sub(1);
        // Absent blobs of the overflow met so far: no longer counted in it.
        let mut met = 0u64;
        loop {
            let started = std::time::Instant::now();
            let limit = self.page;
            let page = self.read(move |c| c.blob_feed_after(after, limit)).await?;
            let mut ended = page.len() < self.page;
            let mut absent = Vec::new();
            for (seq, blob) in page {
                if seq > end {
                    ended = true;
                    break;
                }
                after = Some(seq);
                if !self.retry.contains_key(&blob.sha256) && self.is_absent(&blob).await? {
                    absent.push((seq, blob));
                }
            }
            tally.checking += started.elapsed();
            // Asks for no more at once than the set has room for, so that blobs that will
            // not fit are not asked for in vain.
            let mut absent = absent.into_iter().peekable();
            while let Some(&(seq, _)) = absent.peek() {
                if !self.has_room() {
                    let count = overflow.count.saturating_sub(met).max(1);
                    self.overflow = Some(Overflow { from: seq, count });
                    return Ok(());
                }
                let room = self.max_retry - self.retry.len();
                let blobs: Vec<BlobRef> = absent.by_ref().take(room).map(|(_, b)| b).collect();
                let failed = self.fetch_all(&blobs, fetch, tally).await;
                for blob in blobs {
                    met += 1;
                    if failed.contains(&blob.sha256) {
                        self.remember(blob);
                    }
                }
            }
            if ended {
                self.overflow = None;
                return Ok(());
            }
        }
    }

    /// Examines the page of the feed after the cursor and moves the cursor past it. Blobs
    /// no peer gave join the retry set, or the overflow when the set is full. Returns whether
    /// more may follow (the page was full).
    async fn next_page<F, Fut>(&mut self, fetch: &F, tally: &mut Tally) -> Result<bool, String>
    where
        F: Fn(Vec<BlobRef>) -> Fut,
        Fut: Future<Output = HashSet<String>>,
    {
        let started = std::time::Instant::now();
        let (after, limit) = (self.cursor, self.page);
        let page = self.read(move |c| c.blob_feed_after(after, limit)).await?;
        tally.checking += started.elapsed();
        let full = page.len() == self.page;
        // Those in the retry set wait for their time.
        let blobs: Vec<BlobRef> = page
            .iter()
            .filter(|(_, blob)| !self.retry.contains_key(&blob.sha256))
            .map(|(_, blob)| blob.clone())
            .collect();
        let failed = self.fetch_absent(&blobs, fetch, tally).await?;
        for (seq, blob) in page {
            if failed.contains(&blob.sha256)
                && !self.retry.contains_key(&blob.sha256)
                && !self.remember(blob)
            {
                let overflow = self.overflow.get_or_insert(Overflow {
                    from: seq,
                    count: 0,
                });
                overflow.count += 1;
            }
            self.cursor = Some(seq);
        }
        self.missing.set(self.missing_count());
        Ok(full)
    }

    /// Whether `blob` is absent or truncated here.
    async fn is_absent(&self, blob: &BlobRef) -> Result<bool, String> {
        Ok(!self.store.contains(blob).await.map_err(|e| e.to_string())?)
    }

    /// Fetches those of `blobs` absent or truncated here; returns the sha256 of those still
    /// not here.
    async fn fetch_absent<F, Fut>(
        &self,
        blobs: &[BlobRef],
        fetch: &F,
        tally: &mut Tally,
    ) -> Result<HashSet<String>, String>
    where
        F: Fn(Vec<BlobRef>) -> Fut,
        Fut: Future<Output = HashSet<String>>,
    {
        let started = std::time::Instant::now();
        let mut absent = Vec::new();
        for blob in blobs {
            if self.is_absent(blob).await? {
                absent.push(blob.clone());
            }
        }
        tally.checking += started.elapsed();
        Ok(self.fetch_all(&absent, fetch, tally).await)
    }

    /// Fetches `blobs` in batches of at most `batch` blobs and [`BATCH_BYTES`], a few
    /// batches at a time, each within its deadline; returns the sha256 of those not fetched.
    async fn fetch_all<F, Fut>(
        &self,
        blobs: &[BlobRef],
        fetch: &F,
        tally: &mut Tally,
    ) -> HashSet<String>
    where
        F: Fn(Vec<BlobRef>) -> Fut,
        Fut: Future<Output = HashSet<String>>,
    {
        let failed: HashSet<String> = stream::iter(batches(blobs, self.batch, BATCH_BYTES))
            .map(|batch| async move {
                let bytes = batch.iter().map(|b| b.size).fold(0u64, u64::saturating_add);
                let deadline = self.fetch_deadline(bytes);
                let fetched = match tokio::time::timeout(deadline, fetch(batch.clone())).await {
                    Ok(fetched) => fetched,
                    Err(_) => {
                        tracing::warn!(
                            blobs = batch.len(),
                            bytes,
                            "blob catch-up: fetch timed out after {deadline:?}"
                        );
                        HashSet::new()
                    }
                };
                batch
                    .into_iter()
                    .filter(|b| !fetched.contains(&b.sha256))
                    .map(|b| b.sha256)
                    .collect::<Vec<_>>()
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .flat_map(stream::iter)
            .collect()
            .await;
        tally.wanted += blobs.len();
        tally.fetched += blobs.len() - failed.len();
        failed
    }

    /// The most a fetch of a batch of `bytes` may take: every peer's deadline, and one
    /// more for the local store (each peer's is enforced by the replicator; this bounds a
    /// fetch whatever it does).
    fn fetch_deadline(&self, bytes: u64) -> Duration {
        let per_peer = self.deadline.for_size(bytes);
        per_peer.saturating_mul(
            u32::try_from(self.peers)
                .unwrap_or(u32::MAX)
                .saturating_add(1),
        )
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

/// `blobs` in order, cut into batches of at most `most` blobs and `most_bytes` bytes (a blob
/// larger than that is a batch of its own).
fn batches(blobs: &[BlobRef], most: usize, most_bytes: u64) -> Vec<Vec<BlobRef>> {
    let mut batches: Vec<Vec<BlobRef>> = Vec::new();
    let mut bytes = 0u64;
    for blob in blobs {
        let fits = batches.last().is_some_and(|last| {
            last.len() < most.max(1) && bytes.saturating_add(blob.size) <= most_bytes
        });
        if fits {
            bytes = bytes.saturating_add(blob.size);
            batches.last_mut().expect("a batch").push(blob.clone());
        } else {
            bytes = blob.size;
            batches.push(vec![blob.clone()]);
        }
    }
    batches
}

#[cfg(test)]
mod tests;
