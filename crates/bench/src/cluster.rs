//! Cluster figures: fill latency of a three-node semi-synchronous cluster against a
//! single node, and cache-hit throughput of each cluster node against a single node.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::procs::{free_port, ProxyNode};
use crate::wrk::run_wrk;

/// Starts three nodes forming one cluster (sync_replicas = 1) over `upstream`.
pub fn start_cluster(work: &Path, upstream: &str) -> anyhow::Result<Vec<ProxyNode>> {
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect::<Result<_, _>>()?;
    let mut peers = String::new();
    for id in 1..=3usize {
        peers.push_str(&format!(
            "[[cluster.peers]]\nid = {id}\nhttp = \"127.0.0.1:{}\"\nraft = \"127.0.0.1:{}\"\n",
            ports[2 * id - 2],
            ports[2 * id - 1]
        ));
    }
    let mut nodes = Vec::new();
    for id in 1..=3usize {
        let config = work.join(format!("cluster-n{id}.toml"));
        let text = format!(
            "node_id = {id}\nlisten = \"127.0.0.1:{}\"\nraft_listen = \"127.0.0.1:{}\"\n[proxy]\nupstream = \"{upstream}\"\n[replication]\nsync_replicas = 1\n{peers}",
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
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Every `.zip` of the corpus, as request paths.
fn corpus_zips(corpus: &Path) -> anyhow::Result<Vec<String>> {
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
fn fill_all(node: &ProxyNode, zips: &[String]) -> anyhow::Result<Duration> {
    let mut samples = Vec::new();
    for zip in zips {
        samples.push(node.get(zip).with_context(|| format!("filling {zip}"))?);
    }
    Ok(median(samples))
}

/// Runs the cluster comparisons and prints them.
pub fn run(corpus: &Path, work: &Path, upstream: &str, duration: Duration) -> anyhow::Result<()> {
    let zips = corpus_zips(corpus)?;
    let single = ProxyNode::start(&work.join("single"), upstream)?;
    single.wait_ready()?;
    let cluster = start_cluster(work, upstream)?;
    let leader = &cluster[0];
    let single_fill = fill_all(&single, &zips)?;
    let cluster_fill = fill_all(leader, &zips)?;
    println!("\nfill latency, {} zips each a miss (median): single node {:.2}ms, 3-node semi-sync {:.2}ms, ratio {:.2}x",
        zips.len(),
        single_fill.as_secs_f64() * 1e3,
        cluster_fill.as_secs_f64() * 1e3,
        cluster_fill.as_secs_f64() / single_fill.as_secs_f64().max(f64::MIN_POSITIVE),
    );
    let path = "example.com/hello/@v/v1.1.0.info";
    single.warm(path)?;
    let base = run_wrk(&format!("{}/{path}", single.url), 64, duration)?;
    println!(
        "cache-hit .info at 64 connections: single node {:.0} rps",
        base.requests_per_sec
    );
    for (i, node) in cluster.iter().enumerate() {
        node.warm(path)?;
        let r = run_wrk(&format!("{}/{path}", node.url), 64, duration)?;
        println!(
            "  cluster node {}: {:.0} rps ({:.2}x single), p99 {:.2}ms",
            i + 1,
            r.requests_per_sec,
            r.requests_per_sec / base.requests_per_sec.max(f64::MIN_POSITIVE),
            r.p99.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
