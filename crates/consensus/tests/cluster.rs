//! Raft behaviour through the public facade: deterministic first-wins apply, restart
//! durability, and a three-node group over real tonic on loopback (port 0).

use std::collections::BTreeMap;
use std::time::Duration;

use goproxy_consensus::{ApplyResponse, Consensus, ConsensusConfig, ConsensusError, PeerNode};
use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef, IndexEntry};
use tokio::net::TcpListener;

/// Upper bound for elections and replication in these tests (LAN timings, noisy machine).
const SETTLE: Duration = Duration::from_secs(10);
/// Failover bound: leader lease (election max, 300 ms) plus one randomized election
/// timeout is ~0.45–0.6 s; the bound leaves room for a loaded CI machine.
const FAILOVER_BOUND: Duration = Duration::from_secs(5);

fn entry(module: &str, version: &str, sha_byte: char) -> IndexEntry {
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

fn config(node_id: u64, raft_addr: String) -> ConsensusConfig {
    ConsensusConfig {
        node_id,
        http_addr: format!("http-of-{raft_addr}"),
        raft_addr,
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        snapshot_logs_since_last: 20,
        max_in_snapshot_log_to_keep: 0,
    }
}

async fn until<F: Fn() -> bool>(what: &str, check: F) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn first_committed_content_wins_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let a = entry("example.com/x", "v1.0.0", 'a');
    let b = entry("example.com/x", "v1.0.0", 'b');
    {
        let node = Consensus::open(dir.path(), config(1, "127.0.0.1:1".into()))
            .await
            .unwrap();
        node.initialize_single().await.unwrap();
        until("leadership", || node.is_leader()).await;
        assert_eq!(node.put(a.clone()).await.unwrap(), ApplyResponse::Inserted);
        assert_eq!(
            node.put(a.clone()).await.unwrap(),
            ApplyResponse::AlreadyPresent
        );
        assert_eq!(
            node.put(b.clone()).await.unwrap(),
            ApplyResponse::Conflict {
                existing: a.clone()
            }
        );
        assert_eq!(node.reader().get(&a.key).unwrap(), Some(a.clone()));
        node.shutdown().await.unwrap();
    }
    let node = Consensus::open(dir.path(), config(1, "127.0.0.1:1".into()))
        .await
        .unwrap();
    node.initialize_single().await.unwrap();
    until("leadership after restart", || node.is_leader()).await;
    assert_eq!(node.reader().get(&a.key).unwrap(), Some(a.clone()));
    assert_eq!(
        node.put(b).await.unwrap(),
        ApplyResponse::Conflict { existing: a }
    );
    let c = entry("example.com/x", "v1.1.0", 'c');
    assert_eq!(node.put(c).await.unwrap(), ApplyResponse::Inserted);
    let versions: Vec<String> = node
        .reader()
        .versions("example.com/x")
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, ["v1.0.0", "v1.1.0"]);
    assert!(
        node.reader().versions("example.com").unwrap().is_empty(),
        "prefix must not match a parent path"
    );
}

struct Member {
    consensus: Consensus,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start_member(id: u64, listener: TcpListener, dir: tempfile::TempDir) -> Member {
    let addr = listener.local_addr().unwrap().to_string();
    let consensus = Consensus::open(dir.path(), config(id, addr)).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let routes = consensus.grpc_routes();
    let server = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
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
    async fn stop(mut self) -> tempfile::TempDir {
        self.consensus.shutdown().await.unwrap();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.server.await;
        self._dir
    }
}

fn leader_of(members: &BTreeMap<u64, Member>) -> Option<u64> {
    members
        .iter()
        .find(|(_, m)| m.consensus.is_leader())
        .map(|(id, _)| *id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_replicate_fail_over_and_catch_up_by_snapshot() {
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
    until("a leader", || leader_of(&members).is_some()).await;
    let leader = leader_of(&members).unwrap();

    let first = entry("example.com/a", "v1.0.0", 'a');
    assert_eq!(
        members[&leader].consensus.put(first.clone()).await.unwrap(),
        ApplyResponse::Inserted
    );
    until("replication to all", || {
        members
            .values()
            .all(|m| m.consensus.reader().get(&first.key).unwrap().is_some())
    })
    .await;

    let follower = *members.keys().find(|id| **id != leader).unwrap();
    let leader_before = leader;
    match members[&follower]
        .consensus
        .put(entry("example.com/b", "v1.0.0", 'b'))
        .await
    {
        Err(ConsensusError::NotLeader { leader_id, leader }) => {
            assert_eq!(leader_id, Some(leader_before));
            let leader = leader.expect("leader addresses");
            assert_eq!(leader.raft_addr, addrs[&leader_before]);
            assert_eq!(
                leader.http_addr,
                format!("http-of-{}", addrs[&leader_before])
            );
        }
        other => panic!("expected NotLeader, got {other:?}"),
    }

    // The leader dies: the two survivors elect a new one that accepts writes.
    let started = std::time::Instant::now();
    members.remove(&leader).unwrap().stop().await;
    until("a new leader", || leader_of(&members).is_some()).await;
    let failover = started.elapsed();
    println!("new leader elected {failover:?} after the old one stopped");
    assert!(failover < FAILOVER_BOUND, "failover took {failover:?}");
    let new_leader = leader_of(&members).unwrap();
    assert_ne!(new_leader, leader);
    let after = entry("example.com/after-failover", "v1.0.0", 'd');
    let put = tokio::time::timeout(SETTLE, members[&new_leader].consensus.put(after.clone()));
    assert_eq!(put.await.unwrap().unwrap(), ApplyResponse::Inserted);
    until("replication to the surviving follower", || {
        members
            .values()
            .all(|m| m.consensus.reader().get(&after.key).unwrap().is_some())
    })
    .await;

    // A survivor goes down; many writes with snapshot+purge; it returns and catches up.
    let lagging = *members.keys().find(|id| **id != new_leader).unwrap();
    let lagging_dir = members.remove(&lagging).unwrap().stop().await;
    // Two of three are down now: restart the old leader so writes have a majority.
    let old = TcpListener::bind(&addrs[&leader]).await.unwrap();
    members.insert(
        leader,
        start_member(leader, old, tempfile::tempdir().unwrap()).await,
    );
    let mut written = Vec::new();
    for i in 0..60 {
        let e = entry("example.com/bulk", &format!("v1.0.{i}"), 'c');
        let target = loop {
            if let Some(id) = leader_of(&members) {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        match members[&target].consensus.put(e.clone()).await {
            Ok(_) => written.push(e),
            Err(err) => panic!("write {i} failed: {err}"),
        }
    }
    let relisten = TcpListener::bind(&addrs[&lagging]).await.unwrap();
    members.insert(lagging, start_member(lagging, relisten, lagging_dir).await);
    until("the returning node to catch up", || {
        written.iter().all(|e| {
            members[&lagging]
                .consensus
                .reader()
                .get(&e.key)
                .unwrap()
                .is_some()
        })
    })
    .await;
    let snapshot = members[&lagging].consensus.metrics().borrow().snapshot;
    assert!(
        snapshot.is_some(),
        "catch-up after purge should have installed a snapshot"
    );
    for (_, member) in members {
        member.stop().await;
    }
}

#[tokio::test]
async fn invalid_timings_are_rejected_by_openraft_validation() {
    let dir = tempfile::tempdir().unwrap();
    let mut slow_heartbeat = config(1, "127.0.0.1:1".into());
    slow_heartbeat.heartbeat_interval_ms = 200;
    let mut empty_range = config(1, "127.0.0.1:1".into());
    empty_range.election_timeout_max_ms = empty_range.election_timeout_min_ms;
    for cfg in [slow_heartbeat, empty_range] {
        match Consensus::open(dir.path(), cfg.clone()).await {
            Err(ConsensusError::Config(_)) => {}
            Err(other) => panic!("{cfg:?}: expected a config error, got {other}"),
            Ok(_) => panic!("{cfg:?}: accepted"),
        }
    }
}
