//! The catch-up's passes against a fake cluster (a blob feed in memory) and a fake peer (bytes
//! in memory, written into a real temporary store when fetched).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use goproxy_protocol::index::{ArtifactKey, BlobRef};
use goproxy_store::BlobStore;

use super::{CatchUp, Missing};
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
    asked: Mutex<Vec<String>>,
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
        let fetch = move |blob: BlobRef| {
            let (peer, store) = (peer.clone(), store.clone());
            async move {
                peer.asked.lock().unwrap().push(blob.sha256.clone());
                let bytes = peer.bytes.lock().unwrap().get(&blob.sha256).cloned();
                match bytes {
                    Some(bytes) => stage(&store, &bytes).await == blob,
                    None => false,
                }
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

#[tokio::test]
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

#[tokio::test]
async fn blobs_no_peer_gives_are_retried_until_fetched_or_no_longer_kept() {
    let mut t = Setup::new(10, 100);
    let x = t.blob("x", false, false).await;
    let y = t.blob("y", false, false).await;
    let z = t.blob("z", true, false).await;
    t.pass().await;
    assert_eq!(t.retry(), shas(&[&x, &y]).into_iter().collect());
    assert_eq!((t.catch_up.cursor, t.missing.get()), (Some(3), 2));
    t.peer.asked();

    t.pass().await;
    assert_eq!(t.peer.asked(), shas(&[&x, &y]), "retried");
    assert_eq!(t.missing.get(), 2);

    t.peer.holds(&x, b"x");
    t.cluster.release(&y);
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

#[tokio::test]
async fn a_full_retry_set_holds_the_cursor_before_the_first_blob_it_cannot_take() {
    let mut t = Setup::new(10, 2);
    let mut blobs = Vec::new();
    for tag in ["1", "2", "3", "4", "5"] {
        blobs.push(t.blob(tag, false, false).await);
    }
    t.pass().await;
    assert_eq!(
        t.retry(),
        shas(&[&blobs[0], &blobs[1]]).into_iter().collect()
    );
    assert_eq!(
        (t.catch_up.cursor, t.missing.get()),
        (Some(2), 2),
        "3 did not fit: the cursor stays before it"
    );

    t.cluster.reads();
    t.pass().await;
    assert!(
        t.cluster.reads().is_empty(),
        "the set is still full: the feed waits"
    );

    for (blob, tag) in blobs.iter().zip(["1", "2", "3", "4", "5"]) {
        t.peer.holds(blob, tag.as_bytes());
    }
    t.pass().await;
    for blob in &blobs {
        assert!(t.here(blob).await, "nothing was skipped");
    }
    assert_eq!((t.catch_up.cursor, t.missing.get()), (Some(5), 0));
}

#[tokio::test]
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
