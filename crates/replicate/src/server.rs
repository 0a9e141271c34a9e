//! Serving blobs to peers: accept pushes into the local store, stream committed blobs.

use std::sync::Arc;

use futures::StreamExt;
use goproxy_protocol::index::BlobRef;
use goproxy_rpc::Caller;
use goproxy_store::BlobStore;
use tokio::io::AsyncReadExt;
use tonic::{Request, Response, Status, Streaming};

use crate::gate::{from_wire, PushGate};
use crate::wire::{self, blob_service_server::BlobService};
use crate::{CHUNK, CHUNK_IDLE_TIMEOUT, MAX_FETCH_MANY};

/// The gRPC service over this node's blob store.
#[derive(Clone)]
pub struct BlobGrpc {
    store: BlobStore,
    gate: Arc<dyn PushGate>,
}

impl BlobGrpc {
    /// Serves `store`, accepting pushes that `gate` admits.
    pub fn new(store: BlobStore, gate: Arc<dyn PushGate>) -> Self {
        Self { store, gate }
    }

    /// The tonic service, with message limits sized for chunks.
    pub fn into_service(self) -> wire::blob_service_server::BlobServiceServer<Self> {
        wire::blob_service_server::BlobServiceServer::new(self)
            .max_decoding_message_size(crate::MAX_MESSAGE)
            .max_encoding_message_size(crate::MAX_MESSAGE)
    }
}

fn store_status(e: goproxy_store::StoreError) -> Status {
    match e {
        goproxy_store::StoreError::InvalidDigest(_) => Status::invalid_argument(e.to_string()),
        goproxy_store::StoreError::TooLarge { .. } => Status::invalid_argument(e.to_string()),
        other if other.is_disk_full() => Status::resource_exhausted(other.to_string()),
        other => Status::internal(other.to_string()),
    }
}

/// The next chunk of a push, bounded in time: a sender that stalls releases the staging file.
async fn next_chunk(
    chunks: &mut Streaming<wire::BlobChunk>,
) -> Result<Option<wire::BlobChunk>, Status> {
    match tokio::time::timeout(CHUNK_IDLE_TIMEOUT, chunks.next()).await {
        Ok(Some(chunk)) => chunk.map(Some),
        Ok(None) => Ok(None),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no chunk for {CHUNK_IDLE_TIMEOUT:?}"
        ))),
    }
}

type ChunkStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<wire::BlobChunk, Status>> + Send>>;

#[tonic::async_trait]
impl BlobService for BlobGrpc {
    async fn push(
        &self,
        request: Request<Streaming<wire::BlobChunk>>,
    ) -> Result<Response<wire::PushReply>, Status> {
        let sender = Caller::of(&request)?.require_any_node("push blobs")?;
        let mut chunks = request.into_inner();
        let first = next_chunk(&mut chunks)
            .await?
            .ok_or_else(|| Status::invalid_argument("empty push"))?;
        let key = from_wire(first.artifact).map_err(Status::invalid_argument)?;
        let expected = BlobRef {
            sha256: first.sha256,
            size: first.size,
        };
        goproxy_store::digest::parse(&expected.sha256).map_err(store_status)?;
        let limit = key.kind.max_size();
        if expected.size > limit {
            return Err(Status::invalid_argument(format!(
                "{key}: a {}-byte blob exceeds the {limit}-byte limit for .{}",
                expected.size,
                key.kind.extension()
            )));
        }
        self.gate
            .admit(sender, &key, &expected)
            .map_err(|why| Status::permission_denied(format!("push of {key} refused: {why}")))?;
        if self.store.contains(&expected).await.map_err(store_status)? {
            return Ok(Response::new(wire::PushReply { stored: true }));
        }
        // The declared size bounds the stream: a byte more fails the write.
        let mut writer = self
            .store
            .writer(expected.size)
            .await
            .map_err(store_status)?;
        writer.write(&first.data).await.map_err(store_status)?;
        while let Some(chunk) = next_chunk(&mut chunks).await? {
            writer.write(&chunk.data).await.map_err(store_status)?;
        }
        let staged = writer.finish().await.map_err(store_status)?;
        if staged.blob() != &expected {
            return Err(Status::data_loss(format!(
                "pushed bytes hash to {} ({} bytes), expected {} ({} bytes)",
                staged.blob().sha256,
                staged.blob().size,
                expected.sha256,
                expected.size
            )));
        }
        staged.commit().await.map_err(store_status)?;
        Ok(Response::new(wire::PushReply { stored: true }))
    }

    type FetchStream = ChunkStream;

    async fn fetch(
        &self,
        request: Request<wire::FetchRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        Caller::of(&request)?.require_any_node("fetch blobs")?;
        let request = request.into_inner();
        let blob = BlobRef {
            sha256: request.sha256,
            size: request.size,
        };
        let file = self.store.open_blob(&blob).await.map_err(store_status)?;
        let file = file.ok_or_else(|| {
            Status::not_found(format!("blob {} is not on this node", blob.sha256))
        })?;
        Ok(chunk_response(|tx| async move {
            if let Err(e) = send_blob(&tx, &blob, file).await {
                let _ = tx.send(Err(e)).await;
            }
        }))
    }

    type FetchManyStream = ChunkStream;

    async fn fetch_many(
        &self,
        request: Request<wire::FetchManyRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        Caller::of(&request)?.require_any_node("fetch blobs")?;
        let asked = request.into_inner().blobs;
        if asked.len() > MAX_FETCH_MANY {
            return Err(Status::invalid_argument(format!(
                "{} blobs asked at once; at most {MAX_FETCH_MANY}",
                asked.len()
            )));
        }
        let blobs: Vec<BlobRef> = asked
            .into_iter()
            .map(|b| BlobRef {
                sha256: b.sha256,
                size: b.size,
            })
            .collect();
        for blob in &blobs {
            goproxy_store::digest::parse(&blob.sha256).map_err(store_status)?;
        }
        let store = self.store.clone();
        Ok(chunk_response(|tx| async move {
            for blob in blobs {
                let sent = match store.open_blob(&blob).await {
                    Ok(Some(file)) => send_blob(&tx, &blob, file).await,
                    Ok(None) => {
                        let absent = wire::BlobChunk {
                            sha256: blob.sha256.clone(),
                            size: blob.size,
                            absent: true,
                            ..Default::default()
                        };
                        tx.send(Ok(absent)).await.map_err(|_| Status::cancelled(""))
                    }
                    Err(e) => Err(store_status(e)),
                };
                if let Err(e) = sent {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }))
    }
}

type ChunkSender = tokio::sync::mpsc::Sender<Result<wire::BlobChunk, Status>>;

/// An answer streaming the chunks `produce` sends (run as its own task, a few chunks ahead
/// of the network: the channel holds four).
fn chunk_response<F, Fut>(produce: F) -> Response<ChunkStream>
where
    F: FnOnce(ChunkSender) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(produce(tx));
    Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

/// Streams the committed `blob` from `file` into `tx`: a first chunk naming it, then its
/// bytes in chunks of at most [`CHUNK`]. `Err` when reading fails or the receiver is gone.
async fn send_blob(
    tx: &ChunkSender,
    blob: &BlobRef,
    mut file: tokio::fs::File,
) -> Result<(), Status> {
    let gone = || Status::cancelled("the fetching peer went away");
    let mut left = blob.size;
    let mut first = true;
    loop {
        // A buffer no larger than what is left (plus one byte, to see the end) and a chunk.
        let want = usize::try_from(left.saturating_add(1))
            .unwrap_or(CHUNK)
            .min(CHUNK);
        let mut data = vec![0u8; want];
        let n = file
            .read(&mut data)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        if n == 0 && !first {
            return Ok(());
        }
        data.truncate(n);
        left = left.saturating_sub(n as u64);
        let chunk = wire::BlobChunk {
            sha256: if first {
                blob.sha256.clone()
            } else {
                String::new()
            },
            size: blob.size,
            data,
            ..Default::default()
        };
        first = false;
        tx.send(Ok(chunk)).await.map_err(|_| gone())?;
        if n == 0 {
            return Ok(());
        }
    }
}
