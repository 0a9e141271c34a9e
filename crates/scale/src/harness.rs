//! The measuring run: for each level, extend node 1's data directory to that many entries,
//! serve it, measure it (start-up, memory, status and hit latency, a snapshot build), then
//! time two wiped nodes joining it.
//!
//! Everything runs on 127.0.0.1 in one temporary directory, removed at the end as are the
//! processes (also on an error or a panic); every wait has a deadline that grows with the
//! level.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cluster::Cluster;
use crate::generate::generate;
use crate::probe::{self, field};
use crate::process::NodeProcess;
use crate::rejoin::{rejoin, STOP_GRACE};
use crate::report::{Level, Snapshot};

/// Every phase's deadline: this much…
const BOUND_BASE: Duration = Duration::from_secs(180);
/// …plus this much per index entry (a million entries: about 35 minutes).
const BOUND_PER_ENTRY: Duration = Duration::from_micros(2_000);
/// Bound on one HTTP request (a snapshot build of a large index included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(900);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `goproxy-ha` binary under test.
    pub binary: PathBuf,
    /// Index sizes, ascending (each run extends the previous one's index).
    pub levels: Vec<u64>,
    /// `/cluster/status` requests timed per level.
    pub status_requests: usize,
    /// Cache hits timed per level.
    pub hit_requests: usize,
    /// `[raft] snapshot_chunk_bytes` for the nodes, when the binary knows the setting.
    pub snapshot_chunk_bytes: Option<u64>,
    /// Where the run's temporary directory is made (default: the system's).
    pub work_dir: Option<PathBuf>,
    /// Seed of the hits' artifact choice.
    pub seed: u64,
    /// Keep the run's directory (data, configurations, node logs) instead of removing it.
    pub keep: bool,
}

impl Options {
    /// The curve (10k, 100k, 1M) against `binary`.
    pub fn new(binary: PathBuf) -> Self {
        Self {
            binary,
            levels: vec![10_000, 100_000, 1_000_000],
            status_requests: 200,
            hit_requests: 2_000,
            snapshot_chunk_bytes: None,
            work_dir: None,
            seed: 1,
            keep: false,
        }
    }
}

/// The deadline of a phase of level `level` starting now.
fn deadline(level: u64) -> Instant {
    Instant::now() + BOUND_BASE + BOUND_PER_ENTRY * u32::try_from(level).unwrap_or(u32::MAX)
}

/// Runs every level; `each` sees each level's figures as soon as they are measured.
pub async fn run(options: &Options, mut each: impl FnMut(&Level)) -> anyhow::Result<Vec<Level>> {
    if options.levels.is_empty() || options.levels.windows(2).any(|w| w[0] > w[1]) {
        bail!(
            "levels must be given, in ascending order: {:?}",
            options.levels
        );
    }
    let parent = options.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent)?;
    let work = tempfile::Builder::new()
        .prefix("goproxy-scale-")
        .tempdir_in(&parent)?;
    let (binary, dir, chunk) = (
        options.binary.clone(),
        work.path().to_path_buf(),
        options.snapshot_chunk_bytes,
    );
    let cluster =
        tokio::task::spawn_blocking(move || Cluster::create(&binary, &dir, chunk)).await??;
    if chunk.is_some() && !cluster.chunk_bytes_applied {
        eprintln!(
            "goproxy-scale: this goproxy-ha has no [raft] snapshot_chunk_bytes; default chunks"
        );
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let mut levels = Vec::new();
    let mut result = Ok(());
    for &level in &options.levels {
        match measure(&cluster, &http, options, level).await {
            Ok(measured) => {
                each(&measured);
                levels.push(measured);
            }
            Err(e) => {
                result = Err(e.context(format!("level {level}")));
                break;
            }
        }
    }
    if options.keep {
        eprintln!(
            "goproxy-scale: the run's directory is kept: {}",
            work.keep().display()
        );
    }
    result.map(|()| levels)
}

async fn measure(
    cluster: &Cluster,
    http: &reqwest::Client,
    options: &Options,
    level: u64,
) -> anyhow::Result<Level> {
    let generated = generate(&cluster.target(1), level)
        .await
        .context("generating")?;
    eprintln!(
        "goproxy-scale: level {level}: {} entries ({} versions proposed, {} blob files written) in {:.1}s",
        generated.entries,
        generated.proposed,
        generated.blobs_written,
        generated.elapsed.as_secs_f64()
    );
    let data_dir = cluster.data_dir(1);
    let blobs = tokio::task::spawn_blocking(move || crate::count_blobs(&data_dir)).await??;

    let (binary, config, log) = (cluster.binary.clone(), cluster.config(1), cluster.log(1));
    let bound = deadline(level).saturating_duration_since(Instant::now());
    let spawned = Instant::now();
    let node =
        tokio::task::spawn_blocking(move || NodeProcess::spawn(&binary, &config, &log, bound))
            .await??;
    probe::wait_ready(http, &node.url, deadline(level))
        .await
        .with_context(|| node.log_tail())?;
    let startup = spawned.elapsed();
    let started = node.memory()?;

    let (status, last) = probe::status_latency(http, &node.url, options.status_requests).await?;
    let hits = probe::hits(
        http,
        &node.url,
        generated.versions,
        options.hit_requests,
        options.seed,
    )
    .await?;
    let after_hits = node.memory()?;

    let (index, build) = probe::build_snapshot(http, &node.url).await?;
    let reported = probe::status(http, &node.url).await?;
    let snapshots = reported.get("snapshots").filter(|s| !s.is_null()).cloned();
    let snapshot = Snapshot {
        index,
        bytes: snapshots
            .as_ref()
            .and_then(|s| s.get("bytes")?.as_u64())
            .or_else(|| node.logged_snapshot_bytes()),
        build: snapshots
            .as_ref()
            .and_then(|s| s.get("last_build_ms")?.as_u64())
            .map_or(build, Duration::from_millis),
        status: snapshots,
    };
    let after_snapshot = node.memory()?;
    eprintln!(
        "goproxy-scale: level {level}: served (start-up {:.1}s), snapshot built; joining two empty nodes",
        startup.as_secs_f64()
    );

    let joiners = rejoin(cluster, http, &node, blobs, deadline(level)).await?;
    tokio::task::spawn_blocking(move || node.stop(STOP_GRACE)).await??;
    Ok(Level {
        level,
        index_entries: field(&last, "index_entries").unwrap_or(0),
        blobs,
        generate: generated.elapsed,
        startup,
        started,
        after_hits,
        after_snapshot,
        status,
        hits,
        snapshot,
        joiners,
        chunk_bytes: options
            .snapshot_chunk_bytes
            .filter(|_| cluster.chunk_bytes_applied),
    })
}
