//! Serving blobs to peers: accept pushes into the local store, stream committed blobs.

use futures::StreamExt;
use goproxy_protocol::index::BlobRef;
use goproxy_store::BlobStore;
use tokio::io::AsyncReadExt;
use tonic::{Request, Response, Status, Streaming};

use crate::wire::{self, blob_service_server::BlobService};
use crate::CHUNK;

/// The gRPC service over this node's blob store.
#[derive(Debug, Clone)]
pub struct BlobGrpc {
    store: BlobStore,
}

impl BlobGrpc {
    /// Serves `store`.
    pub fn new(store: BlobStore) -> Self {
        Self { store }
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
        other => Status::internal(other.to_string()),
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
        let mut chunks = request.into_inner();
        let first = chunks
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("empty push"))??;
        let expected = BlobRef {
            sha256: first.sha256,
            size: first.size,
        };
        goproxy_store::digest::parse(&expected.sha256).map_err(store_status)?;
        if self.store.contains(&expected).await.map_err(store_status)? {
            return Ok(Response::new(wire::PushReply { stored: true }));
        }
        let mut writer = self
            .store
            .writer(expected.size)
            .await
            .map_err(store_status)?;
        writer.write(&first.data).await.map_err(store_status)?;
        while let Some(chunk) = chunks.next().await {
            writer.write(&chunk?.data).await.map_err(store_status)?;
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
        let request = request.into_inner();
        let blob = BlobRef {
            sha256: request.sha256,
            size: request.size,
        };
        let file = self.store.open_blob(&blob).await.map_err(store_status)?;
        let mut file = file.ok_or_else(|| {
            Status::not_found(format!("blob {} is not on this node", blob.sha256))
        })?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let mut data = vec![0u8; CHUNK];
                let n = match file.read(&mut data).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                        return;
                    }
                };
                if n == 0 && !first {
                    return;
                }
                data.truncate(n);
                let chunk = wire::BlobChunk {
                    sha256: if first {
                        blob.sha256.clone()
                    } else {
                        String::new()
                    },
                    size: blob.size,
                    data,
                };
                first = false;
                if tx.send(Ok(chunk)).await.is_err() || n == 0 {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
