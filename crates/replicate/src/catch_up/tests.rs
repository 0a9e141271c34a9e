//! The catch-up's passes against a fake cluster (a blob feed in memory) and a fake peer (bytes
//! in memory, written into a real temporary store when fetched). Tokio's clock is paused: it
//! moves only when a test advances it, or when every task waits on a timer (a stalled fetch).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goproxy_protocol::index::{ArtifactKey, BlobRef};
use goproxy_store::BlobStore;
use tokio::time::{advance, Instant};

use super::{backoff, batches, CatchUp, Missing, Overflow, RETRY_FIRST, RETRY_MAX};
use crate::cluster::ClusterView;

/// A blob feed as the state machine keeps it: records numbered as blobs become kept, removed
/// when released, renumbered from 1 under a new generation when rebuilt.
#[derive(Default)]
struct Feed {
    generation: u64,
    last: u64,
    records: BTreeMap<u64, BlobRef>,
    /// The `after` of every read, in order.
    reads: Vec<Option<u64>>,
}

#[derive(Default)]
struct FakeCluster(Mutex<Feed>);

impl FakeCluster {
    fn keep(&self, blob: &BlobRef) {
        let mut feed = self.0.lock().unwrap();
        feed.last += 1;
        let seq = feed.last;
        feed.records.insert(seq, blob.clone());
    }

    fn release(&self, blob: &BlobRef) {
        self.0.lock().unwrap().records.retain(|_, b| b != blob);
    }

    fn rebuild(&self) {
        let mut feed = self.0.lock().unwrap();
        let blobs: Vec<BlobRef> = std::mem::take(&mut feed.records).into_values().collect();
        feed.records = (1..).zip(blobs).collect();
        feed.last = feed.records.len() as u64;
        feed.generation += 1;
    }

    /// The reads since the last call.
    fn reads(&self) -> Vec<Option<u64>> {
        std::mem::take(&mut self.0.lock().unwrap().reads)
    }
}

impl ClusterView for FakeCluster {
    fn peers(&self) -> Vec<(u64, String)> {
        Vec::new()
    }

    fn leader(&self) -> Option<u64> {
        None
    }

    fn committed(&self, _: &ArtifactKey) -> Result<Option<BlobRef>, String> {
        Ok(None)
    }

    fn blob_feed_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, BlobRef)>, String> {
        let mut feed = self.0.lock().unwrap();
        feed.reads.push(after);
        let first = after.map_or(0, |a| a + 1);
        Ok(feed
            .records
            .range(first..)
            .take(limit)
            .map(|(seq, blob)| (*seq, blob.clone()))
            .collect())
    }

    fn blob_feed_generation(&self) -> Result<u64, String> {
        Ok(self.0.lock().unwrap().generation)
    }

    fn is_blob_kept(&self, sha256: &str) -> Result<bool, String> {
        let feed = self.0.lock().unwrap();
        Ok(feed.records.values().any(|b| b.sha256 == sha256))
    }

    fn applied_index(&self) -> Option<u64> {
        None
    }
}

/// The peers' blobs, and the fetches asked of them.
#[derive(Default)]
struct Peer {
    bytes: Mutex<HashMap<String, Vec<u8>>>,
    /// Blobs whose fetch never ends (a peer that accepted it and stalls its stream).
    stalls: Mutex<HashSet<String>>,
    asked: Mutex<Vec<String>>,
    /// The size of each batch asked for.
    batches: Mutex<Vec<usize>>,
}

impl Peer {
    fn holds(&self, blob: &BlobRef, bytes: &[u8]) {
        let mut held = self.bytes.lock().unwrap();
        held.insert(blob.sha256.clone(), bytes.to_vec());
    }

    /// The fetches asked since the last call, sorted.
    fn asked(&self) -> Vec<String> {
        let mut asked = std::mem::take(&mut *self.asked.lock().unwrap());
        asked.sort();
        asked
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    store: BlobStore,
    cluster: Arc<FakeCluster>,
    peer: Arc<Peer>,
    missing: Missing,
    catch_up: CatchUp,
}

impl Setup {
    fn new(page: usize, max_retry: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap().0;
        let cluster = Arc::new(FakeCluster::default());
        let missing = Missing::default();
        let mut catch_up = CatchUp::new(cluster.clone(), store.clone(), missing.clone());
        (catch_up.page, catch_up.max_retry) = (page, max_retry);
        Self {
            _dir: dir,
            store,
            cluster,
            peer: Arc::default(),
            missing,
            catch_up,
        }
    }

    /// A new kept blob, made from `tag`; `here`: already on this node's disk, `on_peer`: a
    /// peer can give it.
    async fn blob(&self, tag: &str, here: bool, on_peer: bool) -> BlobRef {
        let scratch = tempfile::tempdir().unwrap();
        let (scratch_store, _) = BlobStore::open(scratch.path()).unwrap();
        let blob = stage(&scratch_store, tag.as_bytes()).await;
        if here {
            stage(&self.store, tag.as_bytes()).await;
        }
        if on_peer {
            self.peer.holds(&blob, tag.as_bytes());
        }
        self.cluster.keep(&blob);
        blob
    }

    async fn pass(&mut self) {
        let (peer, store) = (self.peer.clone(), self.store.clone());
        let fetch = move |blobs: Vec<BlobRef>| {
            let (peer, store) = (peer.clone(), store.clone());
            async move {
                peer.batches.lock().unwrap().push(blobs.len());
                let mut fetched = HashSet::new();
                for blob in blobs {
                    peer.asked.lock().unwrap().push(blob.sha256.clone());
                    let stalls = peer.stalls.lock().unwrap().contains(&blob.sha256);
                    if stalls {
                        std::future::pending::<()>().await;
                    }
                    let bytes = peer.bytes.lock().unwrap().get(&blob.sha256).cloned();
                    if let Some(bytes) = bytes {
                        if stage(&store, &bytes).await == blob {
                            fetched.insert(blob.sha256);
                        }
                    }
                }
                fetched
            }
        };
        self.catch_up.pass(&fetch).await.unwrap();
    }

    async fn here(&self, blob: &BlobRef) -> bool {
        self.store.contains(blob).await.unwrap()
    }

    fn retry(&self) -> HashSet<String> {
        self.catch_up.retry.keys().cloned().collect()
    }

    /// Makes `blobs` (made from `tags`) available on the peer.
    fn give(&self, blobs: &[&BlobRef], tags: &[&str]) {
        for (blob, tag) in blobs.iter().zip(tags) {
            self.peer.holds(blob, tag.as_bytes());
        }
    }
}

async fn stage(store: &BlobStore, bytes: &[u8]) -> BlobRef {
    let staged = store.stage_bytes(bytes, 1 << 20).await.unwrap();
    staged.commit().await.unwrap()
}

fn shas(blobs: &[&BlobRef]) -> Vec<String> {
    let mut shas: Vec<String> = blobs.iter().map(|b| b.sha256.clone()).collect();
    shas.sort();
    shas
}

#[tokio::test(start_paused = true)]
async fn a_pass_reads_the_feed_page_by_page_fetches_what_is_absent_and_moves_the_cursor() {
    let mut t = Setup::new(2, 100);
    let a = t.blob("a", true, false).await;
    let b = t.blob("b", false, true).await;
    let c = t.blob("c", true, false).await;
    let d = t.blob("d", false, true).await;
    let e = t.blob("e", false, true).await;
    t.pass().await;
    assert_eq!(
        t.cluster.reads(),
        [None, Some(2), Some(4)],
        "pages of 2 until one is not full"
    );
    assert_eq!(t.peer.asked(), shas(&[&b, &d, &e]), "only the absent ones");
    for blob in [&a, &b, &c, &d, &e] {
        assert!(t.here(blob).await);
    }
    assert_eq!((t.catch_up.cursor, t.missing.get()), (Some(5), 0));

    t.pass().await;
    assert_eq!(t.cluster.reads(), [Some(5)], "nothing new: one empty read");
    assert!(t.peer.asked().is_empty());

    let f = t.blob("f", false, true).await;
    t.pass().await;
    assert_eq!(t.cluster.reads(), [Some(5)]);
    assert_eq!(t.peer.asked(), shas(&[&f]), "only what became kept since");
    assert!(t.here(&f).await);
    assert_eq!(t.catch_up.cursor, Some(6));
}

#[tokio::test(start_paused = true)]
async fn blobs_no_peer_gives_are_retried_until_fetched_or_no_longer_kept() {
    let mut t = Setup::new(10, 100);
    let x = t.blob("x", false, false).await;
    let y = t.blob("y", false, false).await;
    let z = t.blob("z", true, false).await;
    t.pass().await;
    assert_eq!(t.retry(), shas(&[&x, &y]).into_iter().collect());
    assert_eq!((t.catch_up.cursor, t.missing.get()), (Some(3), 2));
    t.peer.asked();

    advance(RETRY_FIRST).await;
    t.pass().await;
    assert_eq!(t.peer.asked(), shas(&[&x, &y]), "retried");
    assert_eq!(t.missing.get(), 2);

    t.peer.holds(&x, b"x");
    t.cluster.release(&y);
    advance(backoff(2)).await;
    t.pass().await;
    assert_eq!(
        t.peer.asked(),
        shas(&[&x]),
        "y is no longer kept: dropped, not asked"
    );
    assert!(t.here(&x).await);
    assert!(t.retry().is_empty());
    assert_eq!(t.missing.get(), 0);
    assert!(t.here(&z).await);
}

#[tokio::test(start_paused = true)]
async fn review_a_full_retry_set_starves_every_newer_blob() {
    let mut t = Setup::new(10, 2);
    let lost1 = t.blob("lost-1", false, false).await;
    let lost2 = t.blob("lost-2", false, false).await;
    t.pass().await;
    assert_eq!(t.retry(), shas(&[&lost1, &lost2]).into_iter().collect());
    let fresh = t.blob("fresh", false, true).await; // a peer has it
    for _ in 0..5 {
        t.pass().await;
    }
    assert!(t.here(&fresh).await, "never fetched");
}

#[tokio::test(start_paused = true)]
async fn a_full_retry_set_does_not_stop_the_cursor_and_the_overflow_is_counted() {
    let mut t = Setup::new(2, 2);
    let lost: Vec<BlobRef> = {
        let mut lost = Vec::new();
        for tag in ["1", "2", "3", "4", "5"] {
            lost.push(t.blob(tag, false, false).await);
        }
        lost
    };
    let fresh = t.blob("fresh", false, true).await;
    t.pass().await;
    assert_eq!(t.retry(), shas(&[&lost[0], &lost[1]]).into_iter().collect());
    assert_eq!(
        t.catch_up.overflow,
        Some(Overflow { from: 3, count: 3 }),
        "3 is the first that did not fit; 3, 4 and 5 are counted"
    );
    assert!(t.here(&fresh).await, "fetched although the set is full");
    assert_eq!((t.catch_up.cursor, t.missing.get()), (Some(6), 5));
    assert_eq!(
        t.peer.asked(),
        shas(&[&lost[0], &lost[1], &lost[2], &lost[3], &lost[4], &fresh]),
        "each asked once"
    );

    // The set is full and nothing is due: a pass reads only what is new and asks nothing.
    let newer = t.blob("newer", false, true).await;
    t.cluster.reads();
    t.pass().await;
    assert_eq!(t.cluster.reads(), [Some(6)]);
    assert_eq!(t.peer.asked(), shas(&[&newer]));
    assert!(t.here(&newer).await);
    assert_eq!(t.missing.get(), 5);
}

#[tokio::test(start_paused = true)]
async fn the_overflow_is_picked_up_once_the_set_has_room() {
    let tags = ["1", "2", "3", "4", "5"];
    let mut t = Setup::new(2, 2);
    let mut lost = Vec::new();
    for tag in tags {
        lost.push(t.blob(tag, false, false).await);
    }
    t.pass().await;
    assert_eq!(t.catch_up.overflow, Some(Overflow { from: 3, count: 3 }));
    t.peer.asked();

    // 1 arrives, 2 still not: one place. The re-read from 3 asks for 3 alone (4 and 5 would
    // not fit), which fails: 3 takes the place and the overflow starts at 4.
    t.give(&[&lost[0], &lost[3]], &["1", "4"]);
    advance(RETRY_FIRST).await;
    t.cluster.reads();
    t.pass().await;
    assert_eq!(t.peer.asked(), shas(&[&lost[0], &lost[1], &lost[2]]));
    assert_eq!(
        t.cluster.reads(),
        [Some(2), Some(5)],
        "the re-read from 3, then the cursor"
    );
    assert!(t.here(&lost[0]).await);
    assert!(!t.here(&lost[3]).await, "not asked: it would not have fit");
    assert_eq!(t.retry(), shas(&[&lost[1], &lost[2]]).into_iter().collect());
    assert_eq!(t.catch_up.overflow, Some(Overflow { from: 4, count: 2 }));
    assert_eq!(t.missing.get(), 4, "2 and 3 in the set, 4 and 5 over");

    // Everything arrives: the set drains, the re-read gets through the overflow.
    t.give(&lost.iter().collect::<Vec<_>>(), &tags);
    advance(backoff(2)).await;
    t.pass().await;
    assert_eq!(
        t.peer.asked(),
        shas(&[&lost[1], &lost[2], &lost[3], &lost[4]])
    );
    for blob in &lost {
        assert!(t.here(blob).await, "nothing was skipped");
    }
    assert_eq!(t.catch_up.overflow, None);
    assert_eq!((t.catch_up.cursor, t.missing.get()), (Some(5), 0));
}

#[tokio::test(start_paused = true)]
async fn a_blob_no_peer_gives_is_asked_again_only_when_its_backoff_is_over() {
    assert_eq!(
        [1, 2, 3, 4, 9, 10, 1000].map(backoff),
        [1, 2, 4, 8, 256, 300, 300].map(Duration::from_secs)
    );
    assert_eq!((RETRY_FIRST, RETRY_MAX), (backoff(1), backoff(u32::MAX)));

    let mut t = Setup::new(10, 100);
    let lost = t.blob("lost", false, false).await;
    t.pass().await;
    assert_eq!(t.peer.asked(), shas(&[&lost]));
    let mut asked_at = Vec::new();
    let start = Instant::now();
    // A pass a second, as the task runs them while the set is not empty, for 40 s.
    for _ in 0..40 {
        advance(Duration::from_secs(1)).await;
        assert_eq!(
            t.catch_up.has_work(Instant::now()),
            t.catch_up.retry.values().any(|r| r.due <= Instant::now())
        );
        t.pass().await;
        if !t.peer.asked().is_empty() {
            asked_at.push((Instant::now() - start).as_secs());
        }
    }
    assert_eq!(asked_at, [1, 3, 7, 15, 31], "after 1, 2, 4, 8, 16 s");
    assert_eq!(t.missing.get(), 1, "still counted while it waits");
}

#[tokio::test(start_paused = true)]
async fn a_stalled_fetch_times_out_and_does_not_hold_the_others() {
    let mut t = Setup::new(10, 100);
    t.catch_up.batch = 1;
    let stalled = t.blob("stalled", false, true).await;
    t.peer.stalls.lock().unwrap().insert(stalled.sha256.clone());
    let mut others = Vec::new();
    for tag in ["a", "b", "c", "d", "e", "f"] {
        others.push(t.blob(tag, false, true).await);
    }
    let started = Instant::now();
    t.pass().await;
    let took = Instant::now() - started;
    let deadline = t.catch_up.deadline.for_size(stalled.size); // no peers listed: one deadline
    assert!(took >= deadline && took < deadline * 2, "{took:?}");
    for blob in &others {
        assert!(t.here(blob).await);
    }
    assert!(!t.here(&stalled).await);
    assert_eq!(t.retry(), shas(&[&stalled]).into_iter().collect());
    assert_eq!(t.missing.get(), 1);

    // Retried once its time comes; the peer delivers this time.
    t.peer.stalls.lock().unwrap().clear();
    advance(RETRY_FIRST).await;
    t.pass().await;
    assert!(t.here(&stalled).await);
    assert_eq!(t.missing.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_rebuilt_feed_is_read_again_from_its_start() {
    let mut t = Setup::new(10, 100);
    let a = t.blob("a", true, true).await;
    let b = t.blob("b", true, true).await;
    t.pass().await;
    assert_eq!(t.catch_up.cursor, Some(2));
    t.peer.asked();

    // A blob lost here while the feed does not move is not noticed (the cursor is past it)...
    t.store.remove(&a.sha256).await.unwrap();
    t.cluster.reads();
    t.pass().await;
    assert_eq!(t.cluster.reads(), [Some(2)]);
    assert!(!t.here(&a).await);

    // ...but a rebuilt feed (a snapshot installed) is read whole again.
    t.cluster.rebuild();
    t.pass().await;
    assert_eq!(t.cluster.reads(), [None]);
    assert_eq!(t.peer.asked(), shas(&[&a]));
    assert!(t.here(&a).await && t.here(&b).await);
}

#[tokio::test(start_paused = true)]
async fn a_rebuilt_feed_recounts_the_overflow_from_its_start() {
    let mut t = Setup::new(10, 1);
    let mut lost = Vec::new();
    for tag in ["1", "2", "3"] {
        lost.push(t.blob(tag, false, false).await);
    }
    t.pass().await;
    assert_eq!(t.catch_up.overflow, Some(Overflow { from: 2, count: 2 }));
    t.cluster.release(&lost[2]);
    t.cluster.rebuild();
    t.peer.asked();
    t.pass().await;
    assert_eq!(
        t.peer.asked(),
        shas(&[&lost[1]]),
        "1 is in the set and not due; 3 is gone"
    );
    assert_eq!(t.catch_up.overflow, Some(Overflow { from: 2, count: 1 }));
    assert_eq!(t.missing.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn absent_blobs_are_fetched_in_batches_of_bounded_count() {
    let mut t = Setup::new(10, 100);
    t.catch_up.batch = 4;
    let mut absent = Vec::new();
    for i in 0..10 {
        absent.push(t.blob(&format!("blob {i}"), false, true).await);
    }
    t.pass().await;
    for blob in &absent {
        assert!(t.here(blob).await);
    }
    let mut batches = std::mem::take(&mut *t.peer.batches.lock().unwrap());
    batches.sort_unstable();
    assert_eq!(batches, [2, 4, 4], "10 blobs, at most 4 per batch");
    assert_eq!(t.missing.get(), 0);
}

#[test]
fn batches_are_bounded_in_blobs_and_bytes_and_keep_the_order() {
    let blob = |n: u8, size: u64| BlobRef {
        sha256: format!("{n:064x}"),
        size,
    };
    let blobs = [
        blob(1, 3),
        blob(2, 3),
        blob(3, 3),
        blob(4, 20),
        blob(5, 1),
        blob(6, 1),
    ];
    let sizes = |batches: Vec<Vec<BlobRef>>| -> Vec<Vec<u64>> {
        batches
            .into_iter()
            .map(|b| b.into_iter().map(|b| b.size).collect())
            .collect()
    };
    assert_eq!(
        sizes(batches(&blobs, 2, 100)),
        [vec![3, 3], vec![3, 20], vec![1, 1]]
    );
    assert_eq!(
        sizes(batches(&blobs, 10, 7)),
        [vec![3, 3], vec![3], vec![20], vec![1, 1]],
        "a blob over the byte bound is a batch of its own"
    );
    let flat: Vec<BlobRef> = batches(&blobs, 3, 8).into_iter().flatten().collect();
    assert_eq!(flat, blobs);
    assert!(batches(&[], 3, 8).is_empty());
}
