//! The generator: a node's data directory holding a synthetic index of `N` committed
//! entries and their blobs, made the way a single node makes it.
//!
//! It opens the directory exactly as `goproxy-ha serve` would for the same node (the same
//! sub-directories, node id and advertised addresses, a one-member group initialised as
//! at a single node's first start) and commits the entries through Raft in `PutAll` batches
//! as large as a log entry may be, many in flight, so openraft's apply path, counters and
//! log are the real ones. Blobs are written straight to their content address (no fsync per
//! file; one `syncfs` at the end): a file cut short by a crash has the wrong size, which
//! the node treats as missing and a re-run rewrites.
//!
//! Running it again on the same directory extends the index: versions already committed
//! are skipped (the last in-flight window is proposed again, which applying ignores).
//! At the end it builds a snapshot, so the log is purged as on a node that has run a while.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{StreamExt, TryStreamExt};
use goproxy_consensus::node::MAX_ENTRY_BYTES;
use goproxy_consensus::{ApplyResponse, Consensus, ConsensusConfig};
use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef, IndexEntry};
use goproxy_rpc::{Channels, Transport};
use goproxy_store::BlobStore;
use sha2::{Digest, Sha256};
use tokio_stream::wrappers::ReceiverStream;

use crate::naming::{self, KINDS};

/// Sub-directory of a node's data directory holding its index (`INDEX_DIR` in
/// `crates/node/src/server.rs`).
pub const INDEX_DIR: &str = "index";
/// Sub-directory of a node's data directory holding its blobs (`BLOBS_DIR` there).
pub const BLOBS_DIR: &str = "blobs";
/// Batches proposed at once (openraft appends what is queued together).
const IN_FLIGHT: usize = 64;
/// Versions a re-run proposes again below the first missing one: at most the versions of
/// [`IN_FLIGHT`] batches (an entry's JSON is well over 200 bytes).
const REPROPOSED: u64 = (IN_FLIGHT * MAX_ENTRY_BYTES / 200) as u64;
/// Room left in a batch for the command's own JSON around the entries.
const BATCH_OVERHEAD: usize = 64;
/// Longest wait for this member to lead its one-member group.
const LEADERSHIP_BOUND: Duration = Duration::from_secs(30);
/// Longest wait for the stopped member to let go of its databases.
const RELEASE_BOUND: Duration = Duration::from_secs(60);
/// Longest wait for the final snapshot.
const SNAPSHOT_BOUND: Duration = Duration::from_secs(1800);

/// The node whose data directory is generated: what it will be served as.
#[derive(Debug, Clone)]
pub struct Target {
    /// The node's data directory.
    pub data_dir: PathBuf,
    /// Its Raft id.
    pub node_id: u64,
    /// The node-to-node address it will advertise (recorded in the membership).
    pub raft_addr: String,
    /// The HTTP address it will advertise.
    pub http_addr: String,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// Synthetic versions in the index now.
    pub versions: u64,
    /// Index entries now (every kind, as the state machine counts them).
    pub entries: u64,
    /// Versions proposed by this run.
    pub proposed: u64,
    /// Blob files written by this run.
    pub blobs_written: u64,
    /// The log index of the final snapshot.
    pub snapshot_index: Option<u64>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Makes (or extends) `target`'s data directory until its index holds at least `entries`
/// synthetic entries.
pub async fn generate(target: &Target, entries: u64) -> anyhow::Result<Generated> {
    let started = Instant::now();
    let versions = naming::versions_for(entries);
    let (store, _) = BlobStore::open(target.data_dir.join(BLOBS_DIR)).context("blob store")?;
    let consensus = open(target).await?;
    let result = fill(&consensus, &store, &target.data_dir, versions).await;
    let stopped = consensus.shutdown().await;
    drop(consensus);
    let mut generated = result?;
    stopped.context("stopping the raft member")?;
    released(&target.data_dir.join(INDEX_DIR), RELEASE_BOUND).await?;
    generated.elapsed = started.elapsed();
    Ok(generated)
}

/// Waits until nothing holds the member's sled databases in `index_dir` open. Tasks of the
/// stopped member may hold them a moment longer (on a loaded machine, long enough for the
/// node started next to fail with "could not acquire lock"). sled holds an exclusive
/// `flock` on each database's `db` file while it is open.
async fn released(index_dir: &Path, bound: Duration) -> anyhow::Result<()> {
    use nix::fcntl::{Flock, FlockArg};
    let deadline = Instant::now() + bound;
    for db in ["log", "state"] {
        let path = index_dir.join(db).join("db");
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(_unlocked_on_drop) => break,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err((_, e)) => bail!(
                    "{} is still held open {bound:?} after the generator stopped: {e}",
                    path.display()
                ),
            }
        }
    }
    Ok(())
}

async fn open(target: &Target) -> anyhow::Result<Consensus> {
    let config = ConsensusConfig {
        node_id: target.node_id,
        raft_addr: target.raft_addr.clone(),
        http_addr: target.http_addr.clone(),
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        // No snapshot while generating (each would serialise the whole index); one at the end.
        snapshot_logs_since_last: u64::MAX / 2,
        max_in_snapshot_log_to_keep: 0,
        snapshot_chunk_bytes: goproxy_consensus::node::DEFAULT_SNAPSHOT_CHUNK_BYTES,
    };
    let channels = Channels::new(Transport::Plaintext);
    let consensus = Consensus::open(target.data_dir.join(INDEX_DIR), config, channels)
        .await
        .context("opening the index")?;
    consensus.initialize_single().await?;
    let others: Vec<u64> = consensus.peers().into_iter().map(|(id, _)| id).collect();
    if !others.is_empty() {
        bail!(
            "{}: its group has other members {others:?}; only a single node's index can be extended",
            target.data_dir.display()
        );
    }
    let mut watch = consensus.watch();
    tokio::time::timeout(LEADERSHIP_BOUND, async {
        while !watch.view().is_leader {
            if !watch.changed().await {
                return;
            }
        }
    })
    .await
    .context("the one-member group elected no leader")?;
    if !consensus.is_leader() {
        bail!("the raft member stopped before leading");
    }
    Ok(consensus)
}

async fn fill(
    consensus: &Consensus,
    store: &BlobStore,
    data_dir: &Path,
    versions: u64,
) -> anyhow::Result<Generated> {
    let from = first_missing(consensus, versions)?.saturating_sub(REPROPOSED);
    let (batches, rx) = tokio::sync::mpsc::channel::<Vec<IndexEntry>>(2 * IN_FLIGHT);
    let writer_store = store.clone();
    let producer =
        tokio::task::spawn_blocking(move || produce(&writer_store, from, versions, batches));
    ReceiverStream::new(rx)
        .map(|batch| async move { check(consensus.put_all(batch).await?) })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    let blobs_written = producer.await.context("the blob writer panicked")??;
    let blobs = std::fs::File::open(data_dir.join(BLOBS_DIR))?;
    nix::unistd::syncfs(&blobs).context("syncing the blobs")?;
    let snapshot_index = consensus.snapshot_now(SNAPSHOT_BOUND).await?;
    // One log entry past the snapshot, as on a node that has run a while: a restarted single
    // node appends none (it leads again at once), and a snapshot asked of it then has
    // something to cover. Its puts are already applied, so the index does not change.
    if versions > 0 {
        let last = versions - 1;
        let (zip, h1) = naming::zip(last);
        check(
            consensus
                .put_all(vec![entry(last, ArtifactKind::Zip, &zip, &h1)])
                .await?,
        )?;
    }
    Ok(Generated {
        versions,
        entries: consensus.reader().entry_count() as u64,
        proposed: versions.saturating_sub(from),
        blobs_written,
        snapshot_index,
        elapsed: Duration::ZERO,
    })
}

/// Fails on anything but "inserted" or "already there".
fn check(responses: Vec<ApplyResponse>) -> anyhow::Result<()> {
    for response in responses {
        match response {
            ApplyResponse::Inserted | ApplyResponse::AlreadyPresent => {}
            other => bail!("a synthetic entry was applied as {other:?}"),
        }
    }
    Ok(())
}

/// The first version whose zip (committed last of its three) is not in the index, assuming
/// earlier runs committed a prefix (up to the window a re-run proposes again).
fn first_missing(consensus: &Consensus, versions: u64) -> anyhow::Result<u64> {
    let reader = consensus.reader();
    let present =
        |i: u64| -> anyhow::Result<bool> { Ok(reader.get(&key(i, ArtifactKind::Zip))?.is_some()) };
    let (mut low, mut high) = (0, versions);
    while low < high {
        let mid = low + (high - low) / 2;
        if present(mid)? {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    Ok(low)
}

fn key(i: u64, kind: ArtifactKind) -> ArtifactKey {
    ArtifactKey {
        module: naming::module(i),
        version: naming::version(i),
        kind,
    }
}

/// The index entry of version `i`'s artifact `kind` whose bytes are `body` (`h1`: the zip's).
fn entry(i: u64, kind: ArtifactKind, body: &[u8], h1: &str) -> IndexEntry {
    IndexEntry {
        key: key(i, kind),
        blob: BlobRef {
            sha256: hex::encode(Sha256::digest(body)),
            size: body.len() as u64,
        },
        h1: (kind == ArtifactKind::Zip).then(|| h1.to_string()),
        version_time: (kind == ArtifactKind::Info).then(|| naming::version_time(i)),
        // Fixed, so a version's entries are the same whenever they are generated.
        filled_at_ms: naming::published_secs(i) * 1000,
    }
}

/// Writes the blobs of versions `from..to` and sends their entries in batches that fit one
/// log entry; returns how many blob files it wrote.
fn produce(
    store: &BlobStore,
    from: u64,
    to: u64,
    batches: tokio::sync::mpsc::Sender<Vec<IndexEntry>>,
) -> anyhow::Result<u64> {
    let limit = MAX_ENTRY_BYTES - BATCH_OVERHEAD;
    let (mut batch, mut bytes, mut written) = (Vec::new(), 0, 0);
    for i in from..to {
        let (zip, h1) = naming::zip(i);
        for kind in KINDS {
            let body = match kind {
                ArtifactKind::Zip => zip.clone(),
                other => naming::artifact(i, other),
            };
            let entry = entry(i, kind, &body, &h1);
            written += u64::from(put_blob(store, &entry.blob, &body)?);
            let size = serde_json::to_vec(&entry)?.len() + 1;
            if bytes + size > limit && !batch.is_empty() {
                send(&batches, std::mem::take(&mut batch))?;
                bytes = 0;
            }
            batch.push(entry);
            bytes += size;
        }
    }
    if !batch.is_empty() {
        send(&batches, batch)?;
    }
    Ok(written)
}

fn send(
    batches: &tokio::sync::mpsc::Sender<Vec<IndexEntry>>,
    batch: Vec<IndexEntry>,
) -> anyhow::Result<()> {
    // Closed only when committing failed; that error is the one reported.
    batches
        .blocking_send(batch)
        .map_err(|_| anyhow::anyhow!("committing stopped"))
}

/// Writes `body` at its content address unless a file of the right size is there; true when
/// it wrote one.
fn put_blob(store: &BlobStore, blob: &BlobRef, body: &[u8]) -> anyhow::Result<bool> {
    let path = store.path_of(&blob.sha256)?;
    match std::fs::metadata(&path) {
        Ok(meta) if meta.len() == blob.size => return Ok(false),
        _ => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}
