//! Push and fetch between real stores over gRPC with mutual TLS on loopback (port 0), the
//! pushes a receiver must refuse: from outside the cluster, for no fill it can tie them to, or
//! larger than the artifact may be, and fetches from a peer that stalls.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use goproxy_pki::{Authority, Identity};
use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef};
use goproxy_replicate::wire::{self, blob_service_client::BlobServiceClient};
use goproxy_replicate::{
    BlobGrpc, FetchDeadline, PushGate, PushOutcome, Replicator, ReplicatorConfig,
};
use goproxy_rpc::{Channels, PeerName, Transport};
use goproxy_store::BlobStore;

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fn ca() -> &'static Authority {
    static CA: OnceLock<Authority> = OnceLock::new();
    CA.get_or_init(|| Authority::generate("replicate tests", YEAR).unwrap())
}

fn transport(authority: &Authority, identity: Identity) -> Transport {
    let issued = authority.issue(&identity, YEAR).unwrap();
    Transport::from_pem(
        ca().cert_pem().as_bytes().to_vec(),
        issued.cert_pem.into_bytes(),
        issued.key_pem.into_bytes(),
    )
    .unwrap()
}

/// Admits pushes from node `leader` only (a fill in progress there), whatever the key.
struct LeaderOnly(u64);

impl PushGate for LeaderOnly {
    fn admit(&self, sender: Option<u64>, _: &ArtifactKey, _: &BlobRef) -> Result<(), String> {
        match sender {
            Some(id) if id == self.0 => Ok(()),
            other => Err(format!("{other:?} is not the leader")),
        }
    }
}

/// Serves `store` as node `id` whose leader is node 1.
async fn serve(id: u64, store: BlobStore) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut server = transport(ca(), Identity::Node(id)).server().unwrap();
    tokio::spawn(async move {
        let _ = server
            .add_service(BlobGrpc::new(store, Arc::new(LeaderOnly(1))).into_service())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    addr
}

fn config(sync_replicas: usize) -> ReplicatorConfig {
    ReplicatorConfig {
        sync_replicas,
        sync_timeout: Duration::from_secs(5),
    }
}

fn key(kind: ArtifactKind) -> ArtifactKey {
    ArtifactKey {
        module: "example.com/x".into(),
        version: "v1.0.0".into(),
        kind,
    }
}

fn stores(n: usize) -> (Vec<tempfile::TempDir>, Vec<BlobStore>) {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let stores = dirs
        .iter()
        .map(|d| BlobStore::open(d.path()).unwrap().0)
        .collect();
    (dirs, stores)
}

fn replicator(id: u64, store: BlobStore, peers: Vec<(u64, String)>) -> Replicator {
    Replicator::new(
        store,
        config(1),
        Arc::new(move || peers.clone()),
        Channels::new(transport(ca(), Identity::Node(id))),
    )
}

#[tokio::test]
async fn pushed_blobs_arrive_intact_and_missing_ones_are_fetched() {
    let (_dirs, stores) = stores(3);
    let addr_b = serve(2, stores[1].clone()).await;

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

    let a = replicator(1, stores[0].clone(), vec![(2, addr_b.clone())]);
    assert_eq!(
        a.push(&key(ArtifactKind::Zip), &blob).await,
        PushOutcome::Synced { acked: 1 }
    );
    assert!(stores[1].contains(&blob).await.unwrap());
    stores[1].verify(&blob).await.unwrap();

    let c = replicator(3, stores[2].clone(), vec![(2, addr_b)]);
    assert!(c.fetch(&blob).await.unwrap());
    stores[2].verify(&blob).await.unwrap();
}

#[tokio::test]
async fn unreachable_peers_degrade_after_the_timeout() {
    let (_dirs, stores) = stores(1);
    let blob = stores[0]
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
    let peers = vec![(2, dead)];
    let replicator = Replicator::new(
        stores[0].clone(),
        ReplicatorConfig {
            sync_replicas: 1,
            sync_timeout: Duration::from_millis(300),
        },
        Arc::new(move || peers.clone()),
        Channels::new(transport(ca(), Identity::Node(1))),
    );
    assert_eq!(
        replicator.push(&key(ArtifactKind::Mod), &blob).await,
        PushOutcome::Degraded {
            acked: 0,
            wanted: 1
        }
    );
    assert!(!replicator.fetch(&blob).await.unwrap(), "nobody has it");
}

/// A raw push of `data` declared as `size` bytes of `kind`, sent with `channel`.
async fn raw_push(
    channel: tonic::transport::Channel,
    kind: ArtifactKind,
    sha256: &str,
    size: u64,
    data: Vec<u8>,
) -> Result<bool, tonic::Status> {
    let chunk = wire::BlobChunk {
        sha256: sha256.to_string(),
        size,
        data,
        artifact: Some(goproxy_replicate::gate::to_wire(&key(kind))),
        absent: false,
    };
    let mut client = BlobServiceClient::new(channel);
    client
        .push(tokio_stream::iter(vec![chunk]))
        .await
        .map(|r| r.into_inner().stored)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn pushes_outside_a_fill_or_over_the_limit_are_refused_and_nothing_stays() {
    let (dirs, stores) = stores(1);
    let addr = serve(2, stores[0].clone()).await;
    let bytes = vec![7u8; 300 * 1024];
    let sha = sha256_hex(&bytes);
    let channel = |authority: &Authority, identity: Identity| {
        transport(authority, identity)
            .endpoint(&addr, &PeerName::Node(2))
            .unwrap()
            .connect_lazy()
    };

    // Another CA, no certificate, plaintext: the handshake fails.
    let other_ca = Authority::generate("attacker", YEAR).unwrap();
    let foreign = other_ca.issue(&Identity::Node(1), YEAR).unwrap();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca().cert_pem()))
        .domain_name(goproxy_pki::identity::node_server_name(2));
    let endpoint = || tonic::transport::Endpoint::from_shared(format!("https://{addr}")).unwrap();
    let refused_at_handshake = [
        endpoint()
            .tls_config(tls.clone().identity(tonic::transport::Identity::from_pem(
                foreign.cert_pem,
                foreign.key_pem,
            )))
            .unwrap()
            .connect_lazy(),
        endpoint().tls_config(tls).unwrap().connect_lazy(),
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy(),
    ];
    for channel in refused_at_handshake {
        let result = raw_push(
            channel,
            ArtifactKind::Zip,
            &sha,
            bytes.len() as u64,
            bytes.clone(),
        )
        .await;
        assert!(result.is_err(), "{result:?}");
    }
    // A member that is not the leader, and an operator, may not push.
    for identity in [Identity::Node(3), Identity::Admin("ops".into())] {
        let status = raw_push(
            channel(ca(), identity),
            ArtifactKind::Zip,
            &sha,
            bytes.len() as u64,
            bytes.clone(),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    }
    // The leader may not declare more than the kind's limit (1 TiB zip, 1 MiB .info) ...
    for (kind, size) in [
        (ArtifactKind::Zip, 1u64 << 40),
        (ArtifactKind::Info, 1 << 20),
    ] {
        let status = raw_push(
            channel(ca(), Identity::Node(1)),
            kind,
            &sha,
            size,
            bytes.clone(),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    }
    // ... nor send more than it declared.
    let status = raw_push(
        channel(ca(), Identity::Node(1)),
        ArtifactKind::Zip,
        &sha,
        1000,
        bytes.clone(),
    )
    .await
    .unwrap_err();
    assert_ne!(status.code(), tonic::Code::Ok);
    let blob = BlobRef {
        sha256: sha.clone(),
        size: bytes.len() as u64,
    };
    assert!(!stores[0].contains(&blob).await.unwrap());
    // Nothing was left behind in the store's directory: no blob, no staging file.
    let files = walk(dirs[0].path());
    assert!(files.is_empty(), "left behind: {files:?}");
    // The real leader pushing a real fill is stored.
    assert!(raw_push(
        channel(ca(), Identity::Node(1)),
        ArtifactKind::Zip,
        &sha,
        bytes.len() as u64,
        bytes.clone()
    )
    .await
    .unwrap());
    assert!(stores[0].contains(&blob).await.unwrap());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A peer that answers every fetch with one chunk, then sends nothing more (its connection
/// stays alive).
struct Stalls;

type ChunkStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<wire::BlobChunk, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl wire::blob_service_server::BlobService for Stalls {
    async fn push(
        &self,
        _: tonic::Request<tonic::Streaming<wire::BlobChunk>>,
    ) -> Result<tonic::Response<wire::PushReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("stalls"))
    }

    type FetchStream = ChunkStream;

    async fn fetch(
        &self,
        request: tonic::Request<wire::FetchRequest>,
    ) -> Result<tonic::Response<ChunkStream>, tonic::Status> {
        let request = request.into_inner();
        let first = wire::BlobChunk {
            sha256: request.sha256,
            size: request.size,
            data: vec![0; 10],
            artifact: None,
            absent: false,
        };
        let stream =
            futures::stream::once(async move { Ok(first) }).chain(futures::stream::pending());
        Ok(tonic::Response::new(Box::pin(stream)))
    }

    type FetchManyStream = ChunkStream;

    async fn fetch_many(
        &self,
        request: tonic::Request<wire::FetchManyRequest>,
    ) -> Result<tonic::Response<ChunkStream>, tonic::Status> {
        let Some(asked) = request.into_inner().blobs.into_iter().next() else {
            return Err(tonic::Status::invalid_argument("nothing asked"));
        };
        let first = wire::BlobChunk {
            sha256: asked.sha256,
            size: asked.size,
            data: vec![0; 10],
            artifact: None,
            absent: false,
        };
        let stream =
            futures::stream::once(async move { Ok(first) }).chain(futures::stream::pending());
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}

/// Serves [`Stalls`] as node `id`.
async fn serve_stalls(id: u64) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut server = transport(ca(), Identity::Node(id)).server().unwrap();
    tokio::spawn(async move {
        let _ = server
            .add_service(wire::blob_service_server::BlobServiceServer::new(Stalls))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    addr
}

#[tokio::test]
async fn a_peer_that_stalls_a_fetch_is_given_up_on_and_left_alone_for_a_while() {
    let (_dirs, stores) = stores(2);
    let stalls = serve_stalls(2).await;
    let good = serve(3, stores[1].clone()).await;
    let blob = stores[1]
        .stage_bytes(b"module example.com/x\n", 1024)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    let deadline = FetchDeadline {
        base: Duration::from_secs(2),
        bytes_per_sec: 1 << 20,
    };
    assert_eq!(
        FetchDeadline::default().for_size(500 << 20),
        Duration::from_secs(530)
    );

    // Alone, the stalling peer costs the deadline, then the fetch reports no peer has it.
    let only_stalls =
        replicator(1, stores[0].clone(), vec![(2, stalls.clone())]).with_fetch_deadline(deadline);
    let started = std::time::Instant::now();
    assert!(!only_stalls.fetch(&blob).await.unwrap());
    let took = started.elapsed();
    assert!(
        took >= deadline.base && took < deadline.base * 5,
        "{took:?}"
    );
    assert!(!stores[0].contains(&blob).await.unwrap());

    // Listed first, it delays the fetch by the deadline once; the next peer delivers.
    let a = replicator(1, stores[0].clone(), vec![(2, stalls), (3, good)])
        .with_fetch_deadline(deadline);
    let started = std::time::Instant::now();
    assert!(a.fetch(&blob).await.unwrap());
    assert!(started.elapsed() >= deadline.base);
    stores[0].verify(&blob).await.unwrap();

    // Then it is left alone: the next fetch does not wait for it.
    stores[0].remove(&blob.sha256).await.unwrap();
    let started = std::time::Instant::now();
    assert!(a.fetch(&blob).await.unwrap());
    let took = started.elapsed();
    assert!(took < deadline.base, "{took:?}");
    stores[0].verify(&blob).await.unwrap();
}

/// Commits `bytes` into `store`.
async fn put(store: &BlobStore, bytes: &[u8]) -> BlobRef {
    let staged = store.stage_bytes(bytes, 4 << 20).await.unwrap();
    staged.commit().await.unwrap()
}

#[tokio::test]
async fn fetch_many_brings_what_each_peer_holds_in_few_requests_and_reports_the_rest() {
    let (_dirs, stores) = stores(3);
    let (b, c) = (
        serve(2, stores[1].clone()).await,
        serve(3, stores[2].clone()).await,
    );
    // More than one request's worth on B, of assorted sizes: empty, small, several chunks.
    let mut on_b = vec![put(&stores[1], b"").await];
    for i in 0..300u32 {
        on_b.push(put(&stores[1], format!("module example.com/m{i}\n").as_bytes()).await);
    }
    let large: Vec<u8> = (0..600 * 1024u32).map(|i| (i % 253) as u8).collect();
    on_b.push(put(&stores[1], &large).await);
    // Two only C holds, and one no peer holds.
    let on_c = [
        put(&stores[2], b"only on c 1").await,
        put(&stores[2], b"only on c 2").await,
    ];
    let scratch = tempfile::tempdir().unwrap();
    let nowhere = put(&BlobStore::open(scratch.path()).unwrap().0, b"nowhere").await;

    let mut wanted: Vec<BlobRef> = on_b.clone();
    wanted.insert(150, on_c[0].clone());
    wanted.push(on_c[1].clone());
    wanted.push(nowhere.clone());
    let a = replicator(1, stores[0].clone(), vec![(2, b), (3, c)]);
    let fetched = a.fetch_many(&wanted).await.unwrap();

    assert_eq!(fetched.len(), wanted.len() - 1);
    assert!(!fetched.contains(&nowhere.sha256));
    for blob in on_b.iter().chain(&on_c) {
        assert!(fetched.contains(&blob.sha256));
        stores[0].verify(blob).await.unwrap();
    }
    assert!(!stores[0].contains(&nowhere).await.unwrap());
    assert!(a.fetch_many(&[]).await.unwrap().is_empty());
}

/// A peer of an older version: serves Push and Fetch, and does not know FetchMany.
struct Older(BlobGrpc);

#[tonic::async_trait]
impl wire::blob_service_server::BlobService for Older {
    async fn push(
        &self,
        request: tonic::Request<tonic::Streaming<wire::BlobChunk>>,
    ) -> Result<tonic::Response<wire::PushReply>, tonic::Status> {
        self.0.push(request).await
    }

    type FetchStream = ChunkStream;

    async fn fetch(
        &self,
        request: tonic::Request<wire::FetchRequest>,
    ) -> Result<tonic::Response<ChunkStream>, tonic::Status> {
        self.0.fetch(request).await
    }

    type FetchManyStream = ChunkStream;

    async fn fetch_many(
        &self,
        _: tonic::Request<wire::FetchManyRequest>,
    ) -> Result<tonic::Response<ChunkStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this version"))
    }
}

/// Sends the blobs asked for, each passed through `tamper` with its position (in reverse
/// order when `reverse`): a peer whose disk (or code) corrupts what it sends.
struct Corrupts {
    store: BlobStore,
    tamper: fn(usize, &mut Vec<u8>),
    reverse: bool,
}

#[tonic::async_trait]
impl wire::blob_service_server::BlobService for Corrupts {
    async fn push(
        &self,
        _: tonic::Request<tonic::Streaming<wire::BlobChunk>>,
    ) -> Result<tonic::Response<wire::PushReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("corrupts"))
    }

    type FetchStream = ChunkStream;

    async fn fetch(
        &self,
        _: tonic::Request<wire::FetchRequest>,
    ) -> Result<tonic::Response<ChunkStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("corrupts"))
    }

    type FetchManyStream = ChunkStream;

    async fn fetch_many(
        &self,
        request: tonic::Request<wire::FetchManyRequest>,
    ) -> Result<tonic::Response<ChunkStream>, tonic::Status> {
        let mut chunks = Vec::new();
        for (i, asked) in request.into_inner().blobs.into_iter().enumerate() {
            let blob = BlobRef {
                sha256: asked.sha256,
                size: asked.size,
            };
            let mut data = self.store.read_small(&blob).await.unwrap().unwrap();
            (self.tamper)(i, &mut data);
            chunks.push(Ok(wire::BlobChunk {
                sha256: blob.sha256,
                size: blob.size,
                data,
                artifact: None,
                absent: false,
            }));
        }
        if self.reverse {
            chunks.reverse();
        }
        Ok(tonic::Response::new(Box::pin(futures::stream::iter(
            chunks,
        ))))
    }
}

/// Serves `service` as node `id`.
async fn serve_as<S>(id: u64, service: S) -> String
where
    S: wire::blob_service_server::BlobService,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut server = transport(ca(), Identity::Node(id)).server().unwrap();
    tokio::spawn(async move {
        let _ = server
            .add_service(wire::blob_service_server::BlobServiceServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    addr
}

#[tokio::test]
async fn a_peer_without_fetch_many_is_asked_for_each_blob_alone() {
    let (_dirs, stores) = stores(2);
    let older = serve_as(
        2,
        Older(BlobGrpc::new(stores[1].clone(), Arc::new(LeaderOnly(1)))),
    )
    .await;
    let mut blobs = Vec::new();
    for i in 0..5u32 {
        blobs.push(put(&stores[1], format!("older {i}").as_bytes()).await);
    }
    let a = replicator(1, stores[0].clone(), vec![(2, older)]);
    let fetched = a.fetch_many(&blobs).await.unwrap();
    assert_eq!(fetched.len(), blobs.len());
    for blob in &blobs {
        stores[0].verify(blob).await.unwrap();
    }
}

#[tokio::test]
async fn blobs_a_peer_corrupts_are_never_stored_and_the_next_peer_gives_them() {
    let (_dirs, stores) = stores(2);
    let mut blobs = Vec::new();
    for i in 0..6u32 {
        blobs.push(put(&stores[1], format!("blob {i} of a batch").as_bytes()).await);
    }
    // The first peer corrupts the fourth blob: the three before it are kept, the rest are
    // not taken from it.
    let corrupts = serve_as(
        2,
        Corrupts {
            store: stores[1].clone(),
            tamper: |i, data| {
                if i == 3 {
                    *data.last_mut().unwrap() ^= 1;
                }
            },
            reverse: false,
        },
    )
    .await;
    let only_bad = replicator(1, stores[0].clone(), vec![(2, corrupts.clone())]);
    let fetched = only_bad.fetch_many(&blobs).await.unwrap();
    let expect: std::collections::HashSet<String> =
        blobs[..3].iter().map(|b| b.sha256.clone()).collect();
    assert_eq!(fetched, expect);
    for blob in &blobs[..3] {
        stores[0].verify(blob).await.unwrap();
    }
    for blob in &blobs[3..] {
        assert!(!stores[0].contains(blob).await.unwrap(), "not stored");
    }
    assert_eq!(
        std::fs::read_dir(_dirs[0].path().join("tmp"))
            .unwrap()
            .count(),
        0,
        "no staging file left"
    );

    // With a sound peer listed after it, every blob arrives.
    let good = serve(3, stores[1].clone()).await;
    let a = replicator(1, stores[0].clone(), vec![(2, corrupts), (3, good)]);
    let fetched = a.fetch_many(&blobs[3..]).await.unwrap();
    assert_eq!(fetched.len(), 3);
    for blob in &blobs {
        stores[0].verify(blob).await.unwrap();
    }
}

#[tokio::test]
async fn fetch_many_is_refused_over_its_bound_and_to_non_members() {
    let (_dirs, stores) = stores(1);
    let addr = serve(2, stores[0].clone()).await;
    let blob = put(&stores[0], b"bounded").await;
    let ask = |n: usize| wire::FetchManyRequest {
        blobs: (0..n)
            .map(|_| wire::FetchRequest {
                sha256: blob.sha256.clone(),
                size: blob.size,
            })
            .collect(),
    };
    let client = |identity: Identity| {
        BlobServiceClient::new(
            transport(ca(), identity)
                .endpoint(&addr, &PeerName::Node(2))
                .unwrap()
                .connect_lazy(),
        )
    };
    let over = client(Identity::Node(1))
        .fetch_many(ask(goproxy_replicate::MAX_FETCH_MANY + 1))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(over.code(), tonic::Code::InvalidArgument, "{over:?}");

    let at_bound = client(Identity::Node(1))
        .fetch_many(ask(goproxy_replicate::MAX_FETCH_MANY))
        .await
        .unwrap()
        .into_inner();
    let chunks: Vec<wire::BlobChunk> = at_bound.map(|c| c.unwrap()).collect().await;
    assert_eq!(chunks.len(), goproxy_replicate::MAX_FETCH_MANY);

    let admin = client(Identity::Admin("ops".into()))
        .fetch_many(ask(1))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(admin.code(), tonic::Code::PermissionDenied, "{admin:?}");

    let bad_digest = client(Identity::Node(1))
        .fetch_many(wire::FetchManyRequest {
            blobs: vec![wire::FetchRequest {
                sha256: "../../etc/passwd".into(),
                size: 1,
            }],
        })
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(bad_digest.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn a_peer_sending_more_bytes_than_a_blob_has_or_blobs_out_of_order_stores_nothing_wrong() {
    let (dirs, stores) = stores(2);
    let mut blobs = Vec::new();
    for i in 0..4u32 {
        blobs.push(put(&stores[1], format!("blob {i} sent wrongly").as_bytes()).await);
    }
    // One byte more than the second blob's size: the first is kept, nothing after it.
    let longer = serve_as(
        2,
        Corrupts {
            store: stores[1].clone(),
            tamper: |i, data| {
                if i == 1 {
                    data.push(b'!');
                }
            },
            reverse: false,
        },
    )
    .await;
    let a = replicator(1, stores[0].clone(), vec![(2, longer)]);
    let fetched = a.fetch_many(&blobs).await.unwrap();
    assert_eq!(fetched.len(), 1);
    assert!(fetched.contains(&blobs[0].sha256));
    for blob in &blobs[1..] {
        assert!(!stores[0].contains(blob).await.unwrap());
    }

    // Sound bytes in the wrong order: refused at the first blob out of place.
    let reordered = serve_as(
        3,
        Corrupts {
            store: stores[1].clone(),
            tamper: |_, _| {},
            reverse: true,
        },
    )
    .await;
    let b = replicator(1, stores[0].clone(), vec![(3, reordered)]);
    let fetched = b.fetch_many(&blobs[1..]).await.unwrap();
    assert!(fetched.is_empty(), "{fetched:?}");
    for blob in &blobs[1..] {
        assert!(!stores[0].contains(blob).await.unwrap());
    }
    assert_eq!(
        std::fs::read_dir(dirs[0].path().join("tmp"))
            .unwrap()
            .count(),
        0,
        "no staging file left"
    );
}
