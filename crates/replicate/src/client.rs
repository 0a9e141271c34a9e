//! Pushing new blobs to peers (semi-synchronously) and fetching missing ones from them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use goproxy_protocol::index::{ArtifactKey, BlobRef};
use goproxy_rpc::{Channels, PeerName};
use goproxy_store::BlobStore;
use tokio::io::AsyncReadExt;
use tonic::transport::Channel;

use crate::wire::{self, blob_service_client::BlobServiceClient};
use crate::{CHUNK, MAX_MESSAGE};

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

enum FetchError {
    /// This peer could not provide it; try the next.
    Peer(String),
    /// The local store failed; stop.
    Store(goproxy_store::StoreError),
}
