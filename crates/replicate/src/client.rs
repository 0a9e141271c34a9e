//! Pushing new blobs to peers (semi-synchronously) and fetching missing ones from them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use goproxy_protocol::index::{ArtifactKey, BlobRef};
use goproxy_rpc::{Channels, PeerName};
use goproxy_store::{BlobStore, BlobWriter, StagedBlob, StoreError};
use tokio::io::AsyncReadExt;
use tonic::transport::Channel;

use crate::wire::{self, blob_service_client::BlobServiceClient};
use crate::{CHUNK, MAX_FETCH_MANY, MAX_MESSAGE};

/// Semi-synchronous replication settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicatorConfig {
    /// Peers that must hold a new blob (fsynced) before the fill is acknowledged.
    pub sync_replicas: usize,
    /// How long to wait for them before degrading to asynchronous replication.
    pub sync_timeout: Duration,
}

/// What a push achieved by the time the caller may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// `acked` peers (at least the required number) hold the blob.
    Synced {
        /// Peers that confirmed.
        acked: usize,
    },
    /// Fewer than required confirmed in time; pushes continue in the background.
    Degraded {
        /// Peers that confirmed in time.
        acked: usize,
        /// Peers that were required.
        wanted: usize,
    },
}

/// Which peers exist right now: their node id and gRPC `host:port`.
pub type PeerList = Arc<dyn Fn() -> Vec<(u64, String)> + Send + Sync>;

/// How long one peer may take to deliver a blob before a fetch gives up on it and asks the
/// next: `base` plus the blob's size at `bytes_per_sec`. A peer that accepted the request but
/// stalls (or trickles) its stream would otherwise hold the fetch for as long as the
/// connection lives, since HTTP/2 keepalive only notices a dead connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchDeadline {
    /// Allowed whatever the size (connecting, the peer opening the blob).
    pub base: Duration,
    /// The slowest transfer rate accepted.
    pub bytes_per_sec: u64,
}

impl Default for FetchDeadline {
    /// 30 s plus 1 s per MiB: 530 s for the largest (500 MiB) zip.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            bytes_per_sec: 1 << 20,
        }
    }
}

impl FetchDeadline {
    /// The deadline for one peer's delivery of a `size`-byte blob.
    pub fn for_size(&self, size: u64) -> Duration {
        let rate = u128::from(self.bytes_per_sec.max(1));
        let nanos = u128::from(size) * 1_000_000_000 / rate;
        self.base.saturating_add(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }
}

/// How long a peer whose fetch timed out is not asked to fetch: one that stalls every stream
/// would otherwise cost the deadline on every fetch of a blob the other peers lack.
const STALLED_PEER_PAUSE: Duration = Duration::from_secs(300);

/// Replicates blobs of the local store to and from peers. Cheap to clone.
#[derive(Clone)]
pub struct Replicator {
    store: BlobStore,
    config: ReplicatorConfig,
    peers: PeerList,
    channels: Channels,
    fetch_deadline: FetchDeadline,
    /// Peers whose fetch timed out, and when: not asked for [`STALLED_PEER_PAUSE`].
    stalled: Arc<Mutex<HashMap<u64, Instant>>>,
}

impl Replicator {
    /// A replicator for `store`; `peers` is asked for the current peers on every call, which
    /// are dialed through `channels` (each verified as the node id listed).
    pub fn new(
        store: BlobStore,
        config: ReplicatorConfig,
        peers: PeerList,
        channels: Channels,
    ) -> Self {
        Self {
            store,
            config,
            peers,
            channels,
            fetch_deadline: FetchDeadline::default(),
            stalled: Arc::default(),
        }
    }

    /// The same replicator with another per-peer fetch deadline.
    pub fn with_fetch_deadline(mut self, deadline: FetchDeadline) -> Self {
        self.fetch_deadline = deadline;
        self
    }

    fn client(&self, id: u64, addr: &str) -> Result<BlobServiceClient<Channel>, String> {
        let channel = self
            .channels
            .get(addr, PeerName::Node(id))
            .map_err(|e| e.to_string())?;
        Ok(BlobServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE))
    }

    /// Pushes a committed local blob, the content of `key`, to every peer; returns once
    /// `sync_replicas` peers confirmed, or when `sync_timeout` expires (pushes then go on in
    /// the background).
    pub async fn push(&self, key: &ArtifactKey, blob: &BlobRef) -> PushOutcome {
        let peers = (self.peers)();
        let wanted = self.config.sync_replicas.min(peers.len());
        let (tx, mut rx) = tokio::sync::mpsc::channel(peers.len().max(1));
        for (id, peer) in peers {
            let (this, key, blob, tx) = (self.clone(), key.clone(), blob.clone(), tx.clone());
            tokio::spawn(async move {
                let result = this.push_to(id, &peer, &key, &blob).await;
                if let Err(e) = &result {
                    tracing::warn!(%peer, artifact = %key, sha256 = %blob.sha256, "blob push failed: {e}");
                }
                let _ = tx.send(result.is_ok()).await;
            });
        }
        drop(tx);
        let mut acked = 0;
        let deadline = tokio::time::sleep(self.config.sync_timeout);
        tokio::pin!(deadline);
        while acked < wanted {
            tokio::select! {
                result = rx.recv() => match result {
                    Some(true) => acked += 1,
                    Some(false) => {}
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
        if acked >= wanted {
            PushOutcome::Synced { acked }
        } else {
            PushOutcome::Degraded { acked, wanted }
        }
    }

    async fn push_to(
        &self,
        id: u64,
        peer: &str,
        key: &ArtifactKey,
        blob: &BlobRef,
    ) -> Result<(), String> {
        let mut client = self.client(id, peer)?;
        let file = self
            .store
            .open_blob(blob)
            .await
            .map_err(|e| e.to_string())?;
        let mut file =
            file.ok_or_else(|| format!("blob {} is not in the local store", blob.sha256))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let head = blob.clone();
        let artifact = crate::gate::to_wire(key);
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let mut data = vec![0u8; CHUNK];
                let n = match file.read(&mut data).await {
                    Ok(n) => n,
                    Err(_) => return, // the peer sees a short blob and refuses it
                };
                if n == 0 && !first {
                    return;
                }
                data.truncate(n);
                let sha256 = if first {
                    head.sha256.clone()
                } else {
                    String::new()
                };
                let artifact = first.then(|| artifact.clone());
                first = false;
                if tx
                    .send(wire::BlobChunk {
                        sha256,
                        size: head.size,
                        data,
                        artifact,
                        absent: false,
                    })
                    .await
                    .is_err()
                    || n == 0
                {
                    return;
                }
            }
        });
        let reply = client
            .push(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .map_err(|s| format!("{}: {}", s.code(), s.message()))?;
        if reply.into_inner().stored {
            Ok(())
        } else {
            Err("peer did not store the blob".into())
        }
    }

    /// Fetches a committed blob that is missing locally from the first peer that has it,
    /// verifying its sha256 before it becomes visible. `Ok(false)`: no peer has it. Each peer
    /// gets [`FetchDeadline::for_size`] to deliver it; one that misses it is not asked (for any
    /// blob) for the next five minutes, and does not count as having it.
    pub async fn fetch(&self, blob: &BlobRef) -> Result<bool, goproxy_store::StoreError> {
        let deadline = self.fetch_deadline.for_size(blob.size);
        for (id, peer) in self.fetch_peers() {
            let fetched = tokio::time::timeout(deadline, self.fetch_from(id, &peer, blob)).await;
            match fetched {
                Ok(Ok(())) => {
                    tracing::debug!(%peer, sha256 = %blob.sha256, "fetched missing blob from peer");
                    return Ok(true);
                }
                Ok(Err(FetchError::Store(e))) => return Err(e),
                Ok(Err(FetchError::Peer(e))) => {
                    tracing::debug!(%peer, sha256 = %blob.sha256, "peer fetch failed: {e}")
                }
                Ok(Err(FetchError::Unimplemented)) => {}
                Err(_) => {
                    tracing::warn!(
                        %peer,
                        sha256 = %blob.sha256,
                        size = blob.size,
                        "peer fetch timed out after {deadline:?}: not asking it for {STALLED_PEER_PAUSE:?}"
                    );
                    self.stalled_peers().insert(id, Instant::now());
                }
            }
        }
        Ok(false)
    }

    /// Fetches `blobs` (committed blobs this node misses) from peers, up to
    /// [`MAX_FETCH_MANY`] per request, and makes those that arrive whole visible together:
    /// two filesystem syncs per request instead of two fsyncs per blob. Returns the sha256
    /// of those now here. Each peer is asked for what the ones before it did not give, within
    /// [`FetchDeadline::for_size`] of the request's total size; what a peer delivered whole
    /// before it failed or stalled is kept. A peer of an older version, which does not know
    /// `FetchMany`, is asked for each blob alone.
    pub async fn fetch_many(&self, blobs: &[BlobRef]) -> Result<HashSet<String>, StoreError> {
        let mut fetched = HashSet::new();
        let mut remaining = blobs.to_vec();
        for (id, peer) in self.fetch_peers() {
            let mut parts: Vec<Vec<BlobRef>> = remaining
                .chunks(MAX_FETCH_MANY)
                .map(<[_]>::to_vec)
                .collect();
            for part in parts.drain(..) {
                let total = part.iter().map(|b| b.size).fold(0u64, u64::saturating_add);
                let deadline = self.fetch_deadline.for_size(total);
                let mut staged = Vec::new();
                let outcome = tokio::time::timeout(
                    deadline,
                    self.fetch_many_from(id, &peer, &part, &mut staged),
                )
                .await;
                for blob in self.store.commit_all(staged).await? {
                    fetched.insert(blob.sha256);
                }
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(FetchError::Store(e))) => return Err(e),
                    Ok(Err(FetchError::Peer(e))) => {
                        tracing::debug!(%peer, blobs = part.len(), "peer fetch failed: {e}")
                    }
                    Ok(Err(FetchError::Unimplemented)) => {
                        let unfetched: Vec<&BlobRef> = part
                            .iter()
                            .filter(|b| !fetched.contains(&b.sha256))
                            .collect();
                        for blob in unfetched {
                            let deadline = self.fetch_deadline.for_size(blob.size);
                            let one =
                                tokio::time::timeout(deadline, self.fetch_from(id, &peer, blob));
                            match one.await {
                                Ok(Ok(())) => {
                                    fetched.insert(blob.sha256.clone());
                                }
                                Ok(Err(FetchError::Store(e))) => return Err(e),
                                Ok(Err(_)) => {}
                                Err(_) => {
                                    self.stalled_peers().insert(id, Instant::now());
                                    break;
                                }
                            }
                        }
                    }
                    Err(_) => {
                        tracing::warn!(
                            %peer,
                            blobs = part.len(),
                            bytes = total,
                            "peer fetch timed out after {deadline:?}: not asking it for {STALLED_PEER_PAUSE:?}"
                        );
                        self.stalled_peers().insert(id, Instant::now());
                    }
                }
                if self.stalled_peers().contains_key(&id) {
                    break;
                }
            }
            remaining.retain(|b| !fetched.contains(&b.sha256));
            if remaining.is_empty() {
                break;
            }
        }
        Ok(fetched)
    }

    /// Asks peer `id` for `blobs` at once and stages (unsynced) each that arrives whole and
    /// hashes right into `staged`, which keeps them if this is cancelled part-way.
    async fn fetch_many_from(
        &self,
        id: u64,
        peer: &str,
        blobs: &[BlobRef],
        staged: &mut Vec<StagedBlob>,
    ) -> Result<(), FetchError> {
        let peer_err = |e: String| FetchError::Peer(e);
        let mut client = self.client(id, peer).map_err(peer_err)?;
        let request = wire::FetchManyRequest {
            blobs: blobs
                .iter()
                .map(|b| wire::FetchRequest {
                    sha256: b.sha256.clone(),
                    size: b.size,
                })
                .collect(),
        };
        let mut stream = match client.fetch_many(request).await {
            Ok(reply) => reply.into_inner(),
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                return Err(FetchError::Unimplemented)
            }
            Err(s) => return Err(peer_err(s.message().to_string())),
        };
        let mut asked = blobs.iter();
        let mut current: Option<(&BlobRef, BlobWriter)> = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|s| peer_err(s.message().to_string()))?;
            if chunk.sha256.is_empty() {
                let Some((_, writer)) = current.as_mut() else {
                    return Err(peer_err("sent data before naming a blob".into()));
                };
                writer
                    .write(&chunk.data)
                    .await
                    .map_err(|e| peer_err(e.to_string()))?;
                continue;
            }
            // A new blob begins: the one before is complete.
            if let Some((blob, writer)) = current.take() {
                staged.push(finish_fetched(blob, writer).await?);
            }
            let Some(blob) = asked.next() else {
                return Err(peer_err("sent more blobs than were asked for".into()));
            };
            if blob.sha256 != chunk.sha256 {
                return Err(peer_err(format!(
                    "sent blob {} where {} was next",
                    chunk.sha256, blob.sha256
                )));
            }
            if chunk.absent {
                continue;
            }
            let mut writer = self
                .store
                .writer(blob.size)
                .await
                .map_err(FetchError::Store)?;
            writer
                .write(&chunk.data)
                .await
                .map_err(|e| peer_err(e.to_string()))?;
            current = Some((blob, writer));
        }
        if let Some((blob, writer)) = current.take() {
            staged.push(finish_fetched(blob, writer).await?);
        }
        Ok(())
    }

    fn stalled_peers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.stalled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The peers to ask for a blob: all but those whose fetch timed out recently.
    fn fetch_peers(&self) -> Vec<(u64, String)> {
        let mut peers = (self.peers)();
        let mut stalled = self.stalled_peers();
        stalled.retain(|_, at| at.elapsed() < STALLED_PEER_PAUSE);
        peers.retain(|(id, _)| !stalled.contains_key(id));
        peers
    }

    async fn fetch_from(&self, id: u64, peer: &str, blob: &BlobRef) -> Result<(), FetchError> {
        let mut client = self.client(id, peer).map_err(FetchError::Peer)?;
        let request = wire::FetchRequest {
            sha256: blob.sha256.clone(),
            size: blob.size,
        };
        let mut stream = client
            .fetch(request)
            .await
            .map_err(|s| FetchError::Peer(s.message().to_string()))?
            .into_inner();
        let mut writer = self
            .store
            .writer(blob.size)
            .await
            .map_err(FetchError::Store)?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|s| FetchError::Peer(s.message().to_string()))?;
            writer
                .write(&chunk.data)
                .await
                .map_err(|e| FetchError::Peer(e.to_string()))?;
        }
        let staged = writer.finish().await.map_err(FetchError::Store)?;
        if staged.blob() != blob {
            return Err(FetchError::Peer(format!(
                "peer sent bytes hashing to {}",
                staged.blob().sha256
            )));
        }
        staged.commit().await.map_err(FetchError::Store)?;
        Ok(())
    }
}

/// A fetched blob's bytes written: staged unsynced if they are `blob`'s.
async fn finish_fetched(blob: &BlobRef, writer: BlobWriter) -> Result<StagedBlob, FetchError> {
    let staged = writer.finish_unsynced().await.map_err(FetchError::Store)?;
    if staged.blob() != blob {
        return Err(FetchError::Peer(format!(
            "peer sent bytes hashing to {} ({} bytes) for {}",
            staged.blob().sha256,
            staged.blob().size,
            blob.sha256
        )));
    }
    Ok(staged)
}

enum FetchError {
    /// This peer could not provide it; try the next.
    Peer(String),
    /// This peer does not know `FetchMany` (an older version).
    Unimplemented,
    /// The local store failed; stop.
    Store(goproxy_store::StoreError),
}
