//! Building clusters of goproxy-ha processes on loopback.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{client, Node};

/// Upper bound for elections and catch-up on a noisy machine.
pub const SETTLE: Duration = Duration::from_secs(20);

/// Replication settings of the main scenario.
pub const SEMI_SYNC: &str = "sync_replicas = 1\nsync_timeout = \"5s\"\n";

/// Ports that were free a moment ago (peers must know each other's addresses up front),
/// below the ephemeral range so no outgoing connection takes one meanwhile.
pub fn free_ports(n: usize) -> Vec<u16> {
    goproxy_testkit::ports::unused(n)
}

/// The cluster's certificate directory under `dir`: a CA, node certificates for `ids`, and
/// the operator certificate `admin-ops`, made with `goproxy-ha certs` as an operator would.
pub fn certs(dir: &Path, ids: impl IntoIterator<Item = u64>) -> std::path::PathBuf {
    let tls = dir.join("tls");
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_goproxy-ha"))
            .arg("certs")
            .args(args)
            .arg("--dir")
            .arg(&tls)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "goproxy-ha certs {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    if !tls.join("ca.pem").exists() {
        run(&["init"]);
        run(&["issue", "--admin", "ops"]);
    }
    for id in ids {
        if !tls.join(format!("node-{id}.pem")).exists() {
            run(&["issue", "--node", &id.to_string()]);
        }
    }
    tls
}

/// The environment that gives `goproxy-ha cluster …` and `drill` the operator certificate.
pub fn admin_env(dir: &Path) -> Vec<(String, String)> {
    let tls = dir.join("tls");
    [
        ("GOPROXY_HA_ADMIN_CA", "ca.pem"),
        ("GOPROXY_HA_ADMIN_CERT", "admin-ops.pem"),
        ("GOPROXY_HA_ADMIN_KEY", "admin-ops.key"),
    ]
    .into_iter()
    .map(|(var, file)| (var.to_string(), tls.join(file).display().to_string()))
    .collect()
}

/// Runs the `goproxy-ha` CLI with `env` (and no operator certificate inherited).
pub fn goproxy_ha(env: &[(String, String)], args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_goproxy-ha"))
        .args(args)
        .env_remove("GOPROXY_HA_ADMIN_CA")
        .env_remove("GOPROXY_HA_ADMIN_CERT")
        .env_remove("GOPROXY_HA_ADMIN_KEY")
        .envs(env.iter().cloned())
        .output()
        .unwrap()
}

/// Writes node `id`'s config: ports `[http1, raft1, http2, raft2, …]`, all of them peers,
/// with node-to-node mutual TLS from [`certs`] (under the config's directory).
pub fn write_config(path: &Path, id: u64, ports: &[u16], upstream: &str, replication: &str) {
    write_config_with(path, id, ports, upstream, replication, "");
}

/// [`write_config`] followed by `extra` (route rules, credentials, …).
pub fn write_config_with(
    path: &Path,
    id: u64,
    ports: &[u16],
    upstream: &str,
    replication: &str,
    extra: &str,
) {
    let tls = certs(path.parent().unwrap(), [id]);
    let mut text = format!(
        "node_id = {id}\nlisten = \"127.0.0.1:{}\"\nraft_listen = \"127.0.0.1:{}\"\n[proxy]\nupstream = \"{upstream}\"\nupstream_attempts = 1\n[replication]\n{replication}",
        ports[2 * (id as usize - 1)],
        ports[2 * (id as usize - 1) + 1],
    );
    for peer in 1..=3usize {
        text.push_str(&format!(
            "[[cluster.peers]]\nid = {peer}\nhttp = \"127.0.0.1:{}\"\nraft = \"127.0.0.1:{}\"\n",
            ports[2 * (peer - 1)],
            ports[2 * (peer - 1) + 1]
        ));
    }
    text.push_str(&format!(
        "[cluster.tls]\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
        tls.join("ca.pem"),
        tls.join(format!("node-{id}.pem")),
        tls.join(format!("node-{id}.key")),
    ));
    text.push_str(extra);
    std::fs::write(path, text).unwrap();
}

/// The node-to-node address of node `id`, from its configuration under `dir`.
pub fn raft_of(dir: &Path, id: u64) -> String {
    let text = std::fs::read_to_string(dir.join(format!("n{id}.toml"))).unwrap();
    let line = text.lines().find(|l| l.starts_with("raft_listen")).unwrap();
    line.split('"').nth(1).unwrap().to_string()
}

/// Spawns node `id` of the cluster under `dir` (does not wait for readiness).
pub fn start(dir: &Path, id: u64) -> Node {
    let config = dir.join(format!("n{id}.toml"));
    Node::spawn(
        &dir.join(format!("n{id}")),
        &["--config".into(), config.to_string_lossy().into_owned()],
    )
}

/// Starts a three-node cluster under `dir` with `replication` settings and waits until
/// every node is ready. Nodes are keyed by id.
pub fn three_nodes_with(dir: &Path, upstream: &str, replication: &str) -> BTreeMap<u64, Node> {
    let ports = free_ports(6);
    for id in 1..=3 {
        write_config(
            &dir.join(format!("n{id}.toml")),
            id,
            &ports,
            upstream,
            replication,
        );
    }
    let nodes: BTreeMap<u64, Node> = (1..=3).map(|id| (id, start(dir, id))).collect();
    for node in nodes.values() {
        node.wait_ready();
    }
    nodes
}

/// A three-node cluster whose configuration ends with `extra` (TOML), each node started
/// with `args` besides its configuration; waits until every node is ready.
pub fn three_nodes_configured(
    dir: &Path,
    upstream: &str,
    extra: &str,
    args: &[&str],
) -> BTreeMap<u64, Node> {
    let ports = free_ports(6);
    for id in 1..=3 {
        write_config_with(
            &dir.join(format!("n{id}.toml")),
            id,
            &ports,
            upstream,
            SEMI_SYNC,
            extra,
        );
    }
    let nodes: BTreeMap<u64, Node> = (1..=3)
        .map(|id| {
            let config = dir.join(format!("n{id}.toml"));
            let mut all = vec![
                "--config".to_string(),
                config.to_string_lossy().into_owned(),
            ];
            all.extend(args.iter().map(|a| a.to_string()));
            (id, Node::spawn(&dir.join(format!("n{id}")), &all))
        })
        .collect();
    for node in nodes.values() {
        node.wait_ready();
    }
    nodes
}

/// [`three_nodes_with`] the default semi-synchronous settings.
pub fn three_nodes(dir: &Path, upstream: &str) -> BTreeMap<u64, Node> {
    three_nodes_with(dir, upstream, SEMI_SYNC)
}

/// A member's `/cluster/status`, if it answers.
pub async fn status(node: &Node) -> Option<goproxy_status::NodeStatus> {
    let response = client().get(node.url("cluster/status")).send().await.ok()?;
    serde_json::from_slice(&response.bytes().await.ok()?).ok()
}

/// The id every given node agrees leads, once they agree.
pub async fn agreed_leader(nodes: &BTreeMap<u64, Node>) -> u64 {
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut leaders = Vec::new();
        for node in nodes.values() {
            leaders.push(status(node).await.and_then(|s| s.current_leader));
        }
        if let Some(Some(first)) = leaders.first() {
            if nodes.contains_key(first) && leaders.iter().all(|l| l == &Some(*first)) {
                return *first;
            }
        }
        assert!(Instant::now() < deadline, "no agreed leader: {leaders:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
