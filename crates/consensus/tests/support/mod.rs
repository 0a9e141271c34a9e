//! Shared helpers for the consensus integration tests: entries, configs, in-process members
//! served over real tonic on loopback (port 0).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use goproxy_consensus::{Consensus, ConsensusConfig, PeerNode};
use goproxy_pki::{Authority, Identity};
use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef, IndexEntry};
use goproxy_rpc::{Channels, Transport};
use tokio::net::TcpListener;

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The test cluster's CA (one per test binary).
pub fn ca() -> &'static Authority {
    static CA: OnceLock<Authority> = OnceLock::new();
    CA.get_or_init(|| Authority::generate("consensus tests", YEAR).unwrap())
}

/// The mutual-TLS transport of `identity`, with a certificate from `authority`.
pub fn transport_of(authority: &Authority, identity: Identity) -> Transport {
    let issued = authority.issue(&identity, YEAR).unwrap();
    Transport::from_pem(
        authority.cert_pem().as_bytes().to_vec(),
        issued.cert_pem.into_bytes(),
        issued.key_pem.into_bytes(),
    )
    .unwrap()
}

/// Node `id`'s transport in the test cluster.
pub fn node_transport(id: u64) -> Transport {
    transport_of(ca(), Identity::Node(id))
}

/// Opens member `id` (not serving) over its TLS transport.
pub async fn open(
    dir: &std::path::Path,
    cfg: ConsensusConfig,
) -> Result<Consensus, goproxy_consensus::ConsensusError> {
    let channels = Channels::new(node_transport(cfg.node_id));
    Consensus::open(dir, cfg, channels).await
}

pub const SETTLE: Duration = Duration::from_secs(10);
/// Failover bound: the leader lease (election max, 300 ms) plus a stagger of up to 50 ms, or a
/// randomized election timeout more after a split vote; the bound leaves room for a loaded
/// CI machine.
pub const FAILOVER_BOUND: Duration = Duration::from_secs(5);

pub fn entry(module: &str, version: &str, sha_byte: char) -> IndexEntry {
    IndexEntry {
        key: ArtifactKey {
            module: module.into(),
            version: version.into(),
            kind: ArtifactKind::Zip,
        },
        blob: BlobRef {
            sha256: sha_byte.to_string().repeat(64),
            size: 10,
        },
        h1: Some("h1:x".into()),
        version_time: None,
        filled_at_ms: 0,
    }
}

pub fn config(node_id: u64, raft_addr: String) -> ConsensusConfig {
    ConsensusConfig {
        node_id,
        http_addr: format!("http-of-{raft_addr}"),
        raft_addr,
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        snapshot_logs_since_last: 20,
        max_in_snapshot_log_to_keep: 0,
        // Small chunks: the catch-up snapshot of the tests spans many InstallSnapshot calls.
        snapshot_chunk_bytes: 2048,
    }
}

pub async fn until<F: Fn() -> bool>(what: &str, check: F) {
    goproxy_testkit::poll::until(what, SETTLE, check).await
}

pub struct Member {
    pub consensus: Consensus,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

pub async fn start_member(id: u64, listener: TcpListener, dir: tempfile::TempDir) -> Member {
    let addr = listener.local_addr().unwrap().to_string();
    let consensus = open(dir.path(), config(id, addr)).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let routes = consensus.grpc_routes();
    let mut builder = consensus.channels().transport().server().unwrap();
    let server = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = builder
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
    });
    Member {
        consensus,
        stop: Some(stop),
        server,
        _dir: dir,
    }
}

impl Member {
    /// The member's data directory.
    #[allow(dead_code)]
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        self.consensus.shutdown().await.unwrap();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.server.await;
        self._dir
    }
}

pub fn leader_of(members: &BTreeMap<u64, Member>) -> Option<u64> {
    members
        .iter()
        .find(|(_, m)| m.consensus.is_leader())
        .map(|(id, _)| *id)
}

/// Three members on loopback, initialised by member 1, with a leader elected and known to every
/// member (a follower learns of the leader only from its first heartbeat, after the election).
pub async fn three_members() -> (BTreeMap<u64, Member>, BTreeMap<u64, String>) {
    let mut listeners = BTreeMap::new();
    for id in 1..=3u64 {
        listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: BTreeMap<u64, String> = listeners
        .iter()
        .map(|(id, l)| (*id, l.local_addr().unwrap().to_string()))
        .collect();
    let mut members = BTreeMap::new();
    for (id, listener) in listeners {
        members.insert(
            id,
            start_member(id, listener, tempfile::tempdir().unwrap()).await,
        );
    }
    let peers = addrs
        .iter()
        .map(|(id, raft)| {
            (
                *id,
                PeerNode {
                    raft_addr: raft.clone(),
                    http_addr: format!("http-of-{raft}"),
                },
            )
        })
        .collect();
    members[&1].consensus.initialize(peers).await.unwrap();
    until("a leader every member knows", || {
        let leader = leader_of(&members);
        leader.is_some()
            && members
                .values()
                .all(|m| m.consensus.leader().map(|(id, _)| id) == leader)
    })
    .await;
    (members, addrs)
}
