//! A wiped node's rejoin: nodes 2 and 3 start with empty data directories and join node 1
//! (`goproxy-ha cluster join`, one after the other, as an operator would), each timed from
//! its join until it has applied the leader's index (the snapshot install) and until every
//! blob is on its disk (the blob catch-up). Afterwards they leave again, so node 1 is a
//! one-member group the generator can extend.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::cluster::Cluster;
use crate::probe::{self, field};
use crate::process::NodeProcess;
use crate::report::Rejoin;

/// How often convergence is polled (a poll may walk a joiner's blob directory).
const CONVERGE_POLL: Duration = Duration::from_millis(250);
/// How long a join may wait for the learner to catch up (the CLI's maximum).
const CATCH_UP_TIMEOUT: &str = "10m";
/// How long a node may take to stop.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// Node 1's status now.
async fn leader_status(http: &reqwest::Client, leader: &NodeProcess) -> anyhow::Result<Value> {
    probe::status(http, &leader.url).await
}

/// Joins the empty nodes to `leader` (node 1, holding `leader_blobs` blob files) and waits,
/// at most until `deadline`, until each has converged; then removes them again.
pub async fn rejoin(
    cluster: &Cluster,
    http: &reqwest::Client,
    leader: &NodeProcess,
    leader_blobs: u64,
    deadline: Instant,
) -> anyhow::Result<Vec<Rejoin>> {
    let joiner_ids: Vec<u64> = crate::cluster::IDS[1..].to_vec();
    let mut nodes = BTreeMap::new();
    for &id in &joiner_ids {
        let dir = cluster.data_dir(id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let (binary, config, log) = (cluster.binary.clone(), cluster.config(id), cluster.log(id));
        let bound = deadline.saturating_duration_since(Instant::now());
        let node =
            tokio::task::spawn_blocking(move || NodeProcess::spawn(&binary, &config, &log, bound))
                .await??;
        nodes.insert(id, node);
    }
    let mut joined = Vec::new();
    for &id in &joiner_ids {
        joined.push(join(cluster, http, leader, &nodes[&id], id, deadline).await?);
    }
    for (rejoin, started) in &mut joined {
        converge(
            http,
            leader,
            &nodes[&rejoin.id],
            cluster,
            rejoin,
            *started,
            leader_blobs,
            deadline,
        )
        .await?;
    }
    for &id in joiner_ids.iter().rev() {
        let via = cluster.raft_addr(1);
        let cli = cluster.clone();
        let args = ["cluster", "leave", "--via", &via, "--id", &id.to_string()].map(String::from);
        tokio::task::spawn_blocking(move || cli.cli_ok(&args.each_ref().map(String::as_str)))
            .await??;
    }
    for (id, node) in nodes {
        tokio::task::spawn_blocking(move || node.stop(STOP_GRACE)).await??;
        discard(&cluster.data_dir(id))?;
    }
    Ok(joined.into_iter().map(|(rejoin, _)| rejoin).collect())
}

/// Moves `dir` aside at once and deletes it in the background: deleting a joiner's blob
/// files one by one can take minutes (on a filesystem mounted with `discard`, each unlink
/// waits for the device), and the next node or level needs only the name free.
fn discard(dir: &std::path::Path) -> anyhow::Result<()> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let aside = dir.with_file_name(format!(".discarded-{name}-{:016x}", rand::random::<u64>()));
    std::fs::rename(dir, &aside).with_context(|| format!("moving {} aside", dir.display()))?;
    std::thread::spawn(move || {
        let _ = std::fs::remove_dir_all(&aside);
    });
    Ok(())
}

/// Runs `cluster join` for node `id`, noting when it has applied the index the leader had
/// applied when the join started; returns its figures so far and when the join started.
async fn join(
    cluster: &Cluster,
    http: &reqwest::Client,
    leader: &NodeProcess,
    node: &NodeProcess,
    id: u64,
    deadline: Instant,
) -> anyhow::Result<(Rejoin, Instant)> {
    let target = field(&leader_status(http, leader).await?, "last_applied").unwrap_or(0);
    let started = Instant::now();
    let args = [
        "cluster".to_string(),
        "join".into(),
        "--via".into(),
        cluster.raft_addr(1),
        "--id".into(),
        id.to_string(),
        "--raft".into(),
        cluster.raft_addr(id),
        "--http".into(),
        cluster.http_addr(id),
        "--catch-up-timeout".into(),
        CATCH_UP_TIMEOUT.into(),
    ];
    let cli = cluster.clone();
    let mut command =
        tokio::task::spawn_blocking(move || cli.cli_ok(&args.each_ref().map(String::as_str)));
    let mut rejoin = Rejoin {
        id,
        ..Rejoin::default()
    };
    let mut joined = false;
    while !joined || rejoin.installed.is_zero() {
        if Instant::now() >= deadline {
            bail!(
                "node {id} did not join in time; its log:\n{}",
                node.log_tail()
            );
        }
        tokio::select! {
            result = &mut command, if !joined => {
                result?.with_context(|| format!("node {id}'s log:\n{}", node.log_tail()))?;
                rejoin.joined = started.elapsed();
                joined = true;
            }
            () = tokio::time::sleep(probe::POLL) => {}
        }
        if rejoin.installed.is_zero() {
            if let Ok(status) = probe::status(http, &node.url).await {
                if field(&status, "last_applied").is_some_and(|applied| applied >= target) {
                    rejoin.installed = started.elapsed();
                }
            }
        }
    }
    Ok((rejoin, started))
}

/// Waits until `node` has applied what the leader has applied, holds as many entries,
/// misses no blob and has every blob file on disk; fills in the rest of `rejoin`.
#[allow(clippy::too_many_arguments)]
async fn converge(
    http: &reqwest::Client,
    leader: &NodeProcess,
    node: &NodeProcess,
    cluster: &Cluster,
    rejoin: &mut Rejoin,
    started: Instant,
    leader_blobs: u64,
    deadline: Instant,
) -> anyhow::Result<()> {
    let blobs_dir = cluster.data_dir(rejoin.id);
    loop {
        let lead = leader_status(http, leader).await?;
        let status = probe::status(http, &node.url).await?;
        let leader_applied = field(&lead, "last_applied").unwrap_or(0);
        let applied = field(&status, "last_applied").unwrap_or(0);
        let entries = field(&status, "index_entries").unwrap_or(0);
        let missing = field(&status, "missing_blobs").unwrap_or(u64::MAX);
        let caught_up = applied >= leader_applied
            && entries == field(&lead, "index_entries").unwrap_or(0)
            && missing == 0;
        let blobs = if caught_up {
            let dir = blobs_dir.clone();
            tokio::task::spawn_blocking(move || crate::count_blobs(&dir)).await??
        } else {
            0
        };
        if caught_up && blobs >= leader_blobs {
            rejoin.converged = started.elapsed();
            rejoin.applied = applied;
            rejoin.leader_applied = leader_applied;
            rejoin.snapshot_index = field(&status, "snapshot");
            rejoin.index_entries = entries;
            rejoin.missing_blobs = missing;
            rejoin.blobs = blobs;
            rejoin.memory = node.memory()?;
            rejoin.snapshots = status.get("snapshots").filter(|s| !s.is_null()).cloned();
            rejoin.install_chunks = rejoin
                .snapshots
                .as_ref()
                .and_then(|s| s.get("last_install_chunks")?.as_u64());
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "node {} did not converge in time (applied {applied}/{leader_applied}, \
                 entries {entries}, missing_blobs {missing}, blob files {blobs}/{leader_blobs}); its log:\n{}",
                rejoin.id,
                node.log_tail()
            );
        }
        tokio::time::sleep(CONVERGE_POLL).await;
    }
}
