//! Three goproxy-ha processes on loopback form one cluster: fills through a follower,
//! the same bytes from every node, kill -9 of the leader, a new leader, every
//! acknowledged artifact still served by the survivors, and the killed node catching up.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use goproxy_status::{ReplicationMode, Role};
use reqwest::StatusCode;
use support::cluster::{
    admin_env, agreed_leader, free_ports, start, status, three_nodes, three_nodes_with,
    write_config, SEMI_SYNC, SETTLE,
};
use support::{cache_only, client, corpus_dir, sha256_hex, HttpServer, Node};

/// Artifacts filled during the test (a mix of kinds and sizes).
const ARTIFACTS: &[&str] = &[
    "example.com/hello/@v/v1.0.0.info",
    "example.com/hello/@v/v1.0.0.mod",
    "example.com/hello/@v/v1.0.0.zip",
    "github.com/!burnt!sushi/toml/@v/v1.2.0.zip",
    "github.com/gin-gonic/gin/@v/v1.8.1.mod",
    "github.com/gin-gonic/gin/@v/v1.8.1.zip",
    "golang.org/x/text/@v/v0.7.0.zip",
    "gopkg.in/yaml.v3/@v/v3.0.1.mod",
];

/// GET with `Disable-Module-Fetch`, retried until `expected` bytes come back (bounded).
async fn assert_served(node: &Node, path: &str, expected: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let response = cache_only(&client(), &node.url(path)).send().await;
        if let Ok(response) = response {
            if response.status() == StatusCode::OK {
                let body = response.bytes().await.unwrap();
                assert_eq!(
                    sha256_hex(&body),
                    expected,
                    "{path} differs on {}",
                    node.http
                );
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{path} never served by {}; log:\n{}",
            node.http,
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_fill_through_followers_survive_leader_kill_and_catch_up() {
    let mut upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(dir.path(), &upstream.url);
    let leader = agreed_leader(&nodes).await;

    // Fill every artifact through a follower (forwarded to the leader).
    let follower = *nodes.keys().find(|id| **id != leader).unwrap();
    let mut acked = BTreeMap::new();
    for path in ARTIFACTS {
        let response = client()
            .get(nodes[&follower].url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{path} via follower {follower}"
        );
        let body = response.bytes().await.unwrap();
        let expected = std::fs::read(corpus_dir().join(path)).unwrap();
        assert!(body == expected, "{path} bytes differ from upstream");
        acked.insert(*path, sha256_hex(&body));
    }
    for node in nodes.values() {
        for (path, sha) in &acked {
            assert_served(node, path, sha).await;
        }
    }

    // The upstream goes away and the leader is killed: survivors serve everything.
    upstream.stop();
    let started = Instant::now();
    nodes.get_mut(&leader).unwrap().kill9();
    let mut killed = nodes.remove(&leader).unwrap();
    let new_leader = agreed_leader(&nodes).await;
    println!(
        "leader {leader} killed; {new_leader} leads after {:?}",
        started.elapsed()
    );
    assert_ne!(new_leader, leader);
    for node in nodes.values() {
        for (path, sha) in &acked {
            assert_served(node, path, sha).await;
        }
    }

    // The killed node restarts and catches up.
    drop(killed.log_text());
    killed = start(dir.path(), leader);
    killed.wait_ready();
    for (path, sha) in &acked {
        assert_served(&killed, path, sha).await;
    }
}

/// Whether node `id`'s blob store (under the cluster directory `dir`) holds `sha`.
fn on_disk(dir: &std::path::Path, id: u64, sha: &str) -> bool {
    dir.join(format!("n{id}/blobs/sha256/{}/{sha}", &sha[..2]))
        .is_file()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_down_during_fills_gets_every_blob_without_being_asked() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(dir.path(), &upstream.url);
    let leader = agreed_leader(&nodes).await;
    let down = *nodes.keys().find(|id| **id != leader).unwrap();
    nodes.get_mut(&down).unwrap().kill9();

    let mut shas = Vec::new();
    for path in ARTIFACTS {
        let response = client().get(nodes[&leader].url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        shas.push(sha256_hex(&response.bytes().await.unwrap()));
    }
    assert!(shas.iter().all(|sha| !on_disk(dir.path(), down, sha)));

    // Back up, and never asked for anything: its catch-up fetches every committed blob.
    let back = start(dir.path(), down);
    back.wait_ready();
    let deadline = Instant::now() + SETTLE;
    loop {
        let missing: Vec<&String> = shas
            .iter()
            .filter(|sha| !on_disk(dir.path(), down, sha))
            .collect();
        let reported = status(&back).await.map(|s| s.missing_blobs);
        if missing.is_empty() && reported == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {down} still lacks {missing:?} (reports {reported:?}); log:\n{}",
            back.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_replication_is_bounded_and_repairs_when_the_replica_returns() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    // Two peers must hold every blob: with one follower down, fills degrade.
    let replication = "sync_replicas = 2\nsync_timeout = \"300ms\"\nmax_unreplicated_count = 3\n";
    let mut nodes = three_nodes_with(dir.path(), &upstream.url, replication);
    let leader = agreed_leader(&nodes).await;
    let down = *nodes.keys().find(|id| **id != leader).unwrap();
    nodes.get_mut(&down).unwrap().kill9();
    nodes.remove(&down);

    let mut acked = BTreeMap::new();
    for path in &ARTIFACTS[..3] {
        let response = client().get(nodes[&leader].url(path)).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{path} should be served degraded"
        );
        acked.insert(*path, sha256_hex(&response.bytes().await.unwrap()));
    }
    let status_now = status(&nodes[&leader]).await.unwrap();
    assert_eq!(status_now.replication_mode, ReplicationMode::Degraded);
    assert_eq!(status_now.backlog_blobs, 3);
    let refused = client()
        .get(nodes[&leader].url(ARTIFACTS[3]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::NOT_FOUND,
        "the bound stops new fills"
    );
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("replication backlog full"));

    // The replica returns: the backlog drains to zero and it holds every blob.
    let back = start(dir.path(), down);
    back.wait_ready();
    let deadline = Instant::now() + SETTLE;
    loop {
        let s = status(&nodes[&leader]).await.unwrap();
        if s.backlog_blobs == 0 {
            assert_eq!(s.replication_mode, ReplicationMode::Sync);
            break;
        }
        assert!(Instant::now() < deadline, "backlog never drained: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (path, sha) in &acked {
        assert_served(&back, path, sha).await;
    }
    let admitted = client()
        .get(nodes[&leader].url(ARTIFACTS[3]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        admitted.status(),
        StatusCode::OK,
        "fills resume once replicas caught up"
    );
}

fn cli(dir: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_goproxy-ha"))
        .args(args)
        .envs(admin_env(dir))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "goproxy-ha {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_as_learner_catches_up_takes_over_and_leaves() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(8);
    for id in 1..=3 {
        write_config(
            &dir.path().join(format!("n{id}.toml")),
            id,
            &ports[..6],
            &upstream.url,
            SEMI_SYNC,
        );
    }
    // Node 4 lists all four members; not being the lowest id, it waits to be added.
    write_config(
        &dir.path().join("n4.toml"),
        4,
        &ports,
        &upstream.url,
        SEMI_SYNC,
    );
    let text = std::fs::read_to_string(dir.path().join("n4.toml")).unwrap();
    let extra = format!(
        "[[cluster.peers]]\nid = 4\nhttp = \"127.0.0.1:{}\"\nraft = \"127.0.0.1:{}\"\n",
        ports[6], ports[7]
    );
    std::fs::write(dir.path().join("n4.toml"), text + &extra).unwrap();

    let mut nodes: BTreeMap<u64, Node> = (1..=3).map(|id| (id, start(dir.path(), id))).collect();
    for node in nodes.values() {
        node.wait_ready();
    }
    let path = "github.com/gin-gonic/gin/@v/v1.8.1.zip";
    let response = client().get(nodes[&1].url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let sha = sha256_hex(&response.bytes().await.unwrap());

    let fourth = start(dir.path(), 4);
    let via = format!("127.0.0.1:{}", ports[1]);
    let (raft4, http4) = (
        format!("127.0.0.1:{}", ports[7]),
        format!("127.0.0.1:{}", ports[6]),
    );
    cli(
        dir.path(),
        &[
            "cluster", "join", "--via", &via, "--id", "4", "--raft", &raft4, "--http", &http4,
        ],
    );
    fourth.wait_ready();
    assert_served(&fourth, path, &sha).await;
    nodes.insert(4, fourth);

    // `join` returns once the leader committed the new membership; node 4 turns from Learner
    // into Follower when that entry reaches it, which may be a heartbeat later.
    let deadline = Instant::now() + SETTLE;
    loop {
        let table = cli(
            dir.path(),
            &[
                "cluster",
                "status",
                "--node",
                &format!("127.0.0.1:{}", ports[0]),
            ],
        );
        let shown = table.lines().count() == 5
            && table.matches("Leader").count() == 1
            && table.matches("Follower").count() == 3;
        if shown {
            println!("{table}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected header + four members, one Leader and three Followers:\n{table}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Planned handovers: to the newcomer, then to node 1 (asked through a follower, redirected).
    for to in ["4", "1"] {
        let out = cli(
            dir.path(),
            &["cluster", "transfer-leader", "--via", &via, "--to", to],
        );
        assert!(out.contains(&format!("node {to} leads")), "{out}");
        let id: u64 = to.parse().unwrap();
        let s = status(&nodes[&id]).await.unwrap();
        assert_eq!(s.state, Role::Leader, "node {to} after transfer: {s:?}");
        // Every member follows it before the next request through node 1: a follower learns of
        // a new leader only from its first heartbeat, and one that does not know it yet cannot
        // redirect the CLI.
        assert_eq!(
            agreed_leader(&nodes).await,
            id,
            "after the transfer to {to}"
        );
    }

    cli(
        dir.path(),
        &["cluster", "leave", "--via", &via, "--id", "4"],
    );
    let deadline = Instant::now() + SETTLE;
    loop {
        let s = status(&nodes[&1]).await.unwrap();
        if s.members.len() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "node 4 never left: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_leader_hands_leadership_over_before_exiting() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(dir.path(), &upstream.url);
    let leader = agreed_leader(&nodes).await;
    let mut old = nodes.remove(&leader).unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let status = old.terminate();
        (status, old.log_text())
    });
    let (status, log) = status.await.unwrap();
    assert!(status.success(), "SIGTERM exit: {status}\n{log}");
    assert!(
        log.contains("leadership handed over for shutdown"),
        "the leader exited without a handover:\n{log}"
    );
    // The survivors already agree on the leader it named; no election timeout was needed.
    let next = agreed_leader(&nodes).await;
    assert_ne!(next, leader);
}
