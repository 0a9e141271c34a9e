//! Cluster figures: fill latency of a three-node semi-synchronous cluster against a
//! single node, and cache-hit throughput of each cluster node against a single node; each
//! with node-to-node mutual TLS (as deployed) and with `insecure_plaintext`, so the cost of
//! mTLS is a same-run ratio.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::procs::{free_port, ProxyNode};
use crate::wrk::run_wrk;

/// How the node-to-node port is secured in one cluster run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeTransport {
    /// Mutual TLS with certificates from `goproxy-ha certs`.
    Mtls,
    /// `cluster.insecure_plaintext = true`.
    Plaintext,
}

impl NodeTransport {
    fn label(self) -> &'static str {
        match self {
            NodeTransport::Mtls => "mTLS",
            NodeTransport::Plaintext => "plaintext",
        }
    }
}

/// Creates a CA and node certificates 1..=3 under `dir` with the release binary.
fn make_certs(dir: &Path) -> anyhow::Result<()> {
    let binary = std::env::current_exe()?.with_file_name("goproxy-ha");
    let mut runs: Vec<Vec<String>> = vec![vec!["init".into()]];
    for id in 1..=3 {
        runs.push(vec!["issue".into(), "--node".into(), id.to_string()]);
    }
    for args in runs {
        let output = std::process::Command::new(&binary)
            .arg("certs")
            .args(&args)
            .arg("--dir")
            .arg(dir)
            .output()?;
        if !output.status.success() {
            bail!(
                "goproxy-ha certs {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    Ok(())
}

/// Starts three nodes forming one cluster (sync_replicas = 1) over `upstream`.
pub fn start_cluster(
    work: &Path,
    upstream: &str,
    transport: NodeTransport,
) -> anyhow::Result<Vec<ProxyNode>> {
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect::<Result<_, _>>()?;
    let mut peers = String::new();
    for id in 1..=3usize {
        peers.push_str(&format!(
            "[[cluster.peers]]\nid = {id}\nhttp = \"127.0.0.1:{}\"\nraft = \"127.0.0.1:{}\"\n",
            ports[2 * id - 2],
            ports[2 * id - 1]
        ));
    }
    let tls = work.join("tls");
    if transport == NodeTransport::Mtls {
        make_certs(&tls)?;
    }
    let mut nodes = Vec::new();
    for id in 1..=3usize {
        let config = work.join(format!("cluster-n{id}.toml"));
        let security = match transport {
            NodeTransport::Mtls => format!(
                "[cluster.tls]\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
                tls.join("ca.pem"),
                tls.join(format!("node-{id}.pem")),
                tls.join(format!("node-{id}.key"))
            ),
            NodeTransport::Plaintext => "[cluster]\ninsecure_plaintext = true\n".into(),
        };
        let text = format!(
            "node_id = {id}\nlisten = \"127.0.0.1:{}\"\nraft_listen = \"127.0.0.1:{}\"\n[proxy]\nupstream = \"{upstream}\"\nverify_fills = false\n[replication]\nsync_replicas = 1\n{security}{peers}",
            ports[2 * id - 2],
            ports[2 * id - 1]
        );
        std::fs::write(&config, text)?;
        let args = [
            "--config".to_string(),
            config.to_string_lossy().into_owned(),
        ];
        nodes.push(ProxyNode::spawn(
            &work.join(format!("cluster-n{id}")),
            &args,
        )?);
    }
    for node in &nodes {
        node.wait_ready()?;
    }
    Ok(nodes)
}

/// Median of a set of durations.
pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Every `.zip` of the corpus, as request paths.
pub(crate) fn corpus_zips(corpus: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![corpus.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "zip") {
                out.push(path.strip_prefix(corpus)?.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Fills every corpus zip (each a miss: .mod then .zip fill) through `node`; median latency.
pub(crate) fn fill_all(node: &ProxyNode, zips: &[String]) -> anyhow::Result<Duration> {
    let mut samples = Vec::new();
    for zip in zips {
        samples.push(node.get(zip).with_context(|| format!("filling {zip}"))?);
    }
    Ok(median(samples))
}

/// Fresh clusters per transport and round: fill latencies vary from run to run more than
/// mTLS costs, so the comparison takes the median of several interleaved rounds.
const ROUNDS: usize = 3;

/// Runs the cluster comparisons and prints them: a single node, then three-node clusters
/// with mutual TLS and with plaintext, interleaved over [`ROUNDS`] rounds, each filling every
/// corpus zip from an empty cache; hit throughput per node in the first round.
pub fn run(corpus: &Path, work: &Path, upstream: &str, duration: Duration) -> anyhow::Result<()> {
    let zips = corpus_zips(corpus)?;
    let single = ProxyNode::start(&work.join("single"), upstream)?;
    single.wait_ready()?;
    let single_fill = fill_all(&single, &zips)?;
    let path = "example.com/hello/@v/v1.1.0.info";
    single.warm(path)?;
    let base = run_wrk(&format!("{}/{path}", single.url), 64, duration)?;
    drop(single);
    println!(
        "\nfill latency, {} zips each a miss (median): single node {:.2}ms",
        zips.len(),
        single_fill.as_secs_f64() * 1e3
    );
    println!(
        "cache-hit .info at 64 connections: single node {:.0} rps",
        base.requests_per_sec
    );
    let transports = [NodeTransport::Mtls, NodeTransport::Plaintext];
    let mut fills: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut hits = [0.0f64; 2];
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always meets a colder machine.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for t in order {
            let transport = transports[t];
            let dir = work.join(format!("cluster-{}-{round}", transport.label()));
            std::fs::create_dir_all(&dir)?;
            let cluster = start_cluster(&dir, upstream, transport)?;
            fills[t].push(fill_all(&cluster[0], &zips)?);
            if round > 0 {
                continue;
            }
            let mut total = 0.0;
            for (i, node) in cluster.iter().enumerate() {
                node.warm(path)?;
                let r = run_wrk(&format!("{}/{path}", node.url), 64, duration)?;
                total += r.requests_per_sec;
                println!(
                    "  {} cluster node {}: {:.0} rps ({:.2}x single), p99 {:.2}ms",
                    transport.label(),
                    i + 1,
                    r.requests_per_sec,
                    r.requests_per_sec / base.requests_per_sec.max(f64::MIN_POSITIVE),
                    r.p99.as_secs_f64() * 1e3
                );
            }
            hits[t] = total / cluster.len() as f64;
        }
    }
    let fill = |t: usize| median(fills[t].clone()).as_secs_f64();
    for (t, transport) in transports.iter().enumerate() {
        let rounds: Vec<String> = fills[t]
            .iter()
            .map(|d| format!("{:.2}", d.as_secs_f64() * 1e3))
            .collect();
        println!(
            "3-node semi-sync, node-to-node {}: fill {:.2}ms ({:.2}x single; rounds {} ms)",
            transport.label(),
            fill(t) * 1e3,
            fill(t) / single_fill.as_secs_f64().max(f64::MIN_POSITIVE),
            rounds.join(" / ")
        );
    }
    println!(
        "mTLS vs plaintext between nodes: fills {:.2}x (goal <= 1.05x), hits {:.2}x",
        fill(0) / fill(1).max(f64::MIN_POSITIVE),
        hits[0] / hits[1].max(f64::MIN_POSITIVE),
    );
    Ok(())
}
