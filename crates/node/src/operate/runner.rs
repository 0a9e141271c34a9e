//! The leader runs prefetch jobs ([`goproxy_warm`]) one at a time, oldest first, through
//! the proxy's own fill path; what it has done is committed as checkpoints
//! ([`WarmProgress`]) every [`CHECKPOINT`], so a new leader resumes a job where the old one
//! was: items already done are not fetched (or counted) again, and the `.mod` files the walk
//! needs are read from the cache.
//!
//! A job stops when an operator cancels it (the next checkpoint is refused) or when this
//! node stops leading (the next leader takes it over).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use goproxy_consensus::ops::{DoneItem, JobState, WarmJob, WarmProgress, WarmSource};
use goproxy_consensus::{ApplyResponse, Consensus, IndexCommand};
use goproxy_http::Frontend;
use goproxy_protocol::index::ArtifactKind;
use goproxy_warm::{Artifact, Fetch, Fetched, Item, Mode, Outcome, Walker};
use tokio_util::sync::CancellationToken;

/// How often a running job's progress is committed.
pub const CHECKPOINT: Duration = Duration::from_millis(500);
/// How often a leader looks for jobs to run (and a runner for a lost leadership).
const POLL: Duration = Duration::from_millis(250);
/// A checkpoint's items stop here (a log entry stays under its size bound).
const CHECKPOINT_BYTES: usize = 3 * 1024;
/// What one done item adds to a checkpoint besides its key (JSON quoting, counts).
const ITEM_OVERHEAD: usize = 64;
/// Failures per checkpoint (each reason at most [`MAX_REASON`] characters).
const FAILURES_PER_CHECKPOINT: usize = 4;
/// Pins per checkpoint.
const PINS_PER_CHECKPOINT: usize = 16;
/// Longest failure reason kept.
const MAX_REASON: usize = 300;

/// The proxy's fill path as the walk's fetcher.
struct Fill(Arc<Frontend>);

#[async_trait]
impl Fetch for Fill {
    async fn fetch(
        &self,
        module: &str,
        version: &str,
        artifact: Artifact,
    ) -> Result<Fetched, String> {
        let kind = match artifact {
            Artifact::Info => ArtifactKind::Info,
            Artifact::Mod => ArtifactKind::Mod,
            Artifact::Zip => ArtifactKind::Zip,
        };
        let warmed = self.0.warm(module, version, kind).await?;
        Ok(Fetched {
            bytes: warmed.bytes,
            body: warmed.body,
            filled: warmed.filled,
        })
    }
}

/// Runs jobs while this node leads, until `drain`.
pub async fn run(
    consensus: Consensus,
    frontend: Arc<Frontend>,
    concurrency: usize,
    drain: CancellationToken,
) {
    loop {
        tokio::select! {
            () = drain.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
        if !consensus.is_leader() {
            continue;
        }
        let job = match next_job(&consensus) {
            Ok(Some(job)) => job,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("reading warm jobs: {e}");
                continue;
            }
        };
        let stop = drain.child_token();
        let watching = tokio::spawn(stop_when_not_leading(consensus.clone(), stop.clone()));
        run_job(&consensus, &frontend, concurrency, job, &stop).await;
        watching.abort();
    }
}

fn next_job(consensus: &Consensus) -> Result<Option<WarmJob>, String> {
    let jobs = consensus.reader().warm_jobs().map_err(|e| e.to_string())?;
    Ok(jobs
        .into_iter()
        .filter(|job| !job.state.is_final())
        .min_by_key(|job| (job.submitted_at_ms, job.spec.id.clone())))
}

async fn stop_when_not_leading(consensus: Consensus, stop: CancellationToken) {
    loop {
        if !consensus.is_leader() {
            stop.cancel();
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The walker for a job's input, resumed from what earlier runs did.
fn walker(consensus: &Consensus, job: &WarmJob) -> Result<Walker, String> {
    let mode = if job.spec.no_deps {
        Mode::NoDeps
    } else {
        Mode::Deps
    };
    let walker = match &job.spec.source {
        WarmSource::GoMod(text) => Walker::from_go_mod(
            &goproxy_warm::spec::parse_go_mod(text).map_err(|e| e.to_string())?,
            mode,
        ),
        WarmSource::GoSum(text) => {
            Walker::from_go_sum(&goproxy_warm::spec::parse_go_sum(text).map_err(|e| e.to_string())?)
        }
        WarmSource::List(text) => Walker::new(
            goproxy_warm::spec::parse_list(text).map_err(|e| e.to_string())?,
            mode,
        ),
        WarmSource::Targets(targets) => Walker::new(
            targets
                .iter()
                .map(|t| goproxy_warm::Target::parse(t))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?,
            mode,
        ),
    };
    let done = consensus
        .reader()
        .warm_done(&job.spec.id)
        .map_err(|e| e.to_string())?;
    let done: Vec<Item> = done
        .iter()
        .filter_map(|key| serde_json::from_str(key).ok())
        .collect();
    Ok(walker.with_done(done))
}

/// What the runner has done since the last checkpoint.
#[derive(Default)]
struct Pending {
    done: Vec<DoneItem>,
    failed: Vec<String>,
    pins: Vec<(String, String)>,
    total: u64,
    bytes_seen: u64,
    filled_seen: usize,
    size: usize,
}

async fn run_job(
    consensus: &Consensus,
    frontend: &Arc<Frontend>,
    concurrency: usize,
    job: WarmJob,
    stop: &CancellationToken,
) {
    let id = job.spec.id.clone();
    let me = consensus.node_id();
    let walker = match walker(consensus, &job) {
        Ok(walker) => walker,
        Err(error) => {
            let finished = progress(&id, me, true, Vec::new(), Vec::new(), 0, Vec::new());
            let finished = WarmProgress {
                finished: Some(JobState::Failed),
                error: Some(error),
                ..finished
            };
            let _ = consensus
                .operate(IndexCommand::WarmProgress(finished))
                .await;
            return;
        }
    };
    tracing::info!(job = %id, runs = job.runs + 1, "running warm job");
    let pending = Arc::new(Mutex::new(Pending::default()));
    let pin = job.spec.pin;
    let fetcher = Fill(frontend.clone());
    let cancel = stop.child_token();
    let checkpoints = tokio::spawn(checkpoint_loop(
        consensus.clone(),
        id.clone(),
        pending.clone(),
        cancel.clone(),
    ));
    let recorder = pending.clone();
    let summary = goproxy_warm::run(walker, &fetcher, concurrency, &cancel, move |p| {
        let mut pending = recorder.lock().unwrap_or_else(|e| e.into_inner());
        pending.total = p.total as u64;
        let bytes = p.bytes.saturating_sub(pending.bytes_seen);
        let filled = p.filled > pending.filled_seen;
        pending.bytes_seen = p.bytes;
        pending.filled_seen = p.filled;
        let Some(last) = &p.last else { return };
        let key = serde_json::to_string(&last.item).unwrap_or_default();
        pending.size += key.len() + ITEM_OVERHEAD;
        if last.ok {
            if pin && last.item.artifact == Artifact::Zip {
                let target = &last.item.target;
                pending
                    .pins
                    .push((target.module.clone(), target.version.clone()));
            }
            pending.done.push(DoneItem {
                item: key,
                bytes,
                filled,
            });
        } else {
            let reason = p
                .failures
                .last()
                .map_or_else(String::new, |f| f.reason.chars().take(MAX_REASON).collect());
            pending.failed.push(format!("{}: {reason}", last.item));
        }
    })
    .await;
    // Stop the checkpoint loop, then write what is left, with the end state.
    checkpoints.abort();
    let _ = checkpoints.await;
    let finished = match summary.outcome {
        Outcome::Finished => Some((JobState::Done, None)),
        Outcome::TooManyTargets { max } => Some((
            JobState::Failed,
            Some(format!(
                "the requirement graph has more than {max} module versions"
            )),
        )),
        // Cancelled by an operator (already final in the log) or by losing leadership
        // (the next leader resumes it): nothing to record but the progress.
        Outcome::Cancelled => None,
    };
    if let Err(e) = flush(consensus, &id, &pending, finished).await {
        tracing::warn!(job = %id, "final checkpoint: {e}");
    }
    tracing::info!(
        job = %id,
        done = summary.progress.done,
        failed = summary.progress.failed,
        total = summary.progress.total,
        outcome = ?summary.outcome,
        "warm job run ended"
    );
}

fn progress(
    id: &str,
    runner: u64,
    started: bool,
    done: Vec<DoneItem>,
    failed: Vec<String>,
    total: u64,
    pins: Vec<(String, String)>,
) -> WarmProgress {
    WarmProgress {
        id: id.to_string(),
        runner,
        at_ms: super::now_ms(),
        started,
        done,
        failed,
        total,
        pins,
        finished: None,
        error: None,
    }
}

async fn checkpoint_loop(
    consensus: Consensus,
    id: String,
    pending: Arc<Mutex<Pending>>,
    cancel: CancellationToken,
) {
    let mut started = true;
    loop {
        match commit_some(&consensus, &id, &pending, started, None).await {
            Ok(true) => started = false,
            Ok(false) => {
                // The job was cancelled (or is gone): stop fetching.
                cancel.cancel();
                return;
            }
            Err(e) => tracing::warn!(job = %id, "checkpoint: {e}"),
        }
        tokio::time::sleep(CHECKPOINT).await;
    }
}

/// Commits everything pending (in as many entries as the size bound needs), the last one
/// with `finished`.
async fn flush(
    consensus: &Consensus,
    id: &str,
    pending: &Arc<Mutex<Pending>>,
    finished: Option<(JobState, Option<String>)>,
) -> Result<(), String> {
    loop {
        let empty = {
            let p = pending.lock().unwrap_or_else(|e| e.into_inner());
            p.done.is_empty() && p.failed.is_empty() && p.pins.is_empty()
        };
        if empty {
            if finished.is_some() {
                commit_some(consensus, id, pending, false, finished).await?;
            }
            return Ok(());
        }
        if !commit_some(consensus, id, pending, false, None).await? {
            return Ok(());
        }
    }
}

/// Commits up to [`CHECKPOINT_BYTES`] of pending items; `Ok(false)` when the job no longer
/// takes progress (cancelled).
async fn commit_some(
    consensus: &Consensus,
    id: &str,
    pending: &Arc<Mutex<Pending>>,
    started: bool,
    finished: Option<(JobState, Option<String>)>,
) -> Result<bool, String> {
    let mut checkpoint = {
        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut size = 0;
        let mut take = 0;
        for item in &p.done {
            size += item.item.len() + ITEM_OVERHEAD;
            if size > CHECKPOINT_BYTES && take > 0 {
                break;
            }
            take += 1;
        }
        let done: Vec<DoneItem> = p.done.drain(..take).collect();
        let failed: Vec<String> = {
            let n = p.failed.len().min(FAILURES_PER_CHECKPOINT);
            p.failed.drain(..n).collect()
        };
        let pins: Vec<(String, String)> = {
            let n = p.pins.len().min(PINS_PER_CHECKPOINT);
            p.pins.drain(..n).collect()
        };
        p.size = p.size.saturating_sub(size);
        progress(
            id,
            consensus.node_id(),
            started,
            done,
            failed,
            p.total,
            pins,
        )
    };
    if let Some((state, error)) = finished {
        checkpoint.finished = Some(state);
        checkpoint.error = error;
    }
    match consensus
        .operate(IndexCommand::WarmProgress(checkpoint))
        .await
    {
        Ok(ApplyResponse::Refused { .. }) => Ok(false),
        Ok(_) => Ok(true),
        Err(e) => Err(e.to_string()),
    }
}
