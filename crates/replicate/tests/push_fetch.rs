//! Push and fetch between real stores over gRPC on loopback (port 0).

use std::sync::Arc;
use std::time::Duration;

use goproxy_replicate::{BlobGrpc, PushOutcome, Replicator, ReplicatorConfig};
use goproxy_store::BlobStore;

async fn serve(store: BlobStore) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(BlobGrpc::new(store).into_service())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    (addr, server)
}

fn config(sync_replicas: usize) -> ReplicatorConfig {
    ReplicatorConfig {
        sync_replicas,
        sync_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn pushed_blobs_arrive_intact_and_missing_ones_are_fetched() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let stores: Vec<BlobStore> = dirs
        .iter()
        .map(|d| BlobStore::open(d.path()).unwrap().0)
        .collect();
    let (addr_b, _b) = serve(stores[1].clone()).await;

    // 1 MiB + a bit, so it spans several chunks.
    let bytes: Vec<u8> = (0..(1 << 20) + 12345)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let blob = stores[0]
        .stage_bytes(&bytes, 2 << 20)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();

    let peers = vec![addr_b.clone()];
    let a = Replicator::new(
        stores[0].clone(),
        config(1),
        Arc::new(move || peers.clone()),
    );
    assert_eq!(a.push(&blob).await, PushOutcome::Synced { acked: 1 });
    assert!(stores[1].contains(&blob).await.unwrap());
    stores[1].verify(&blob).await.unwrap();

    let peers = vec![addr_b];
    let c = Replicator::new(
        stores[2].clone(),
        config(1),
        Arc::new(move || peers.clone()),
    );
    assert!(c.fetch(&blob).await.unwrap());
    stores[2].verify(&blob).await.unwrap();
}

#[tokio::test]
async fn unreachable_peers_degrade_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path()).unwrap();
    let blob = store
        .stage_bytes(b"module example.com/x\n", 1024)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    // A port nobody listens on: bind, learn the port, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let peers = vec![dead];
    let replicator = Replicator::new(
        store,
        ReplicatorConfig {
            sync_replicas: 1,
            sync_timeout: Duration::from_millis(300),
        },
        Arc::new(move || peers.clone()),
    );
    assert_eq!(
        replicator.push(&blob).await,
        PushOutcome::Degraded {
            acked: 0,
            wanted: 1
        }
    );
    assert!(!replicator.fetch(&blob).await.unwrap(), "nobody has it");
}
