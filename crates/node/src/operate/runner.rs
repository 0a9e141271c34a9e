//! The leader runs prefetch jobs ([`goproxy_warm`]) one at a time, oldest first, through
//! the proxy's own fill path; what it has done is committed as checkpoints
//! ([`WarmProgress`]) every [`CHECKPOINT`], so a new leader resumes a job where the old one
//! was: items already done are not fetched (or counted) again, and the `.mod` files the walk
//! needs are read from the cache.
//!
//! A job stops when an operator cancels it (the next checkpoint is refused) or when this
//! node stops leading (the next leader takes it over). A job whose input never arrived
//! completely, or that no leader managed to finish in [`MAX_RUNS`] runs, is failed rather than
//! retried forever. Every checkpoint is built by its serialized size, so it always fits a log
//! entry, and what it carries is dropped from memory only once it is committed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use goproxy_consensus::ops::{DoneItem, JobState, SourceKind, WarmJob, WarmProgress};
use goproxy_consensus::{ApplyResponse, Consensus, IndexCommand};
use goproxy_http::Frontend;
use goproxy_protocol::index::ArtifactKind;
use goproxy_warm::{Artifact, Fetch, Fetched, Item, Mode, Outcome, Walker};
use tokio_util::sync::CancellationToken;

/// How often a running job's progress is committed.
pub const CHECKPOINT: Duration = Duration::from_millis(500);
/// How often a leader looks for jobs to run (and a runner for a lost leadership).
const POLL: Duration = Duration::from_millis(250);
/// What a checkpoint's items may add up to, serialized (a log entry stays under its bound).
const CHECKPOINT_BYTES: usize = 4 * 1024;
/// Longest failure reason kept, in bytes.
const MAX_REASON: usize = 300;
/// How long a job may wait for the rest of its input (its submitter's leader stopped).
const RECEIVE_TIMEOUT_MS: u64 = 60_000;
/// Runs after which a job that never finished is failed (each run is a leader taking it up).
pub const MAX_RUNS: u32 = 10;
/// Failed checkpoint commits after which a run gives up (the next leader, or run, goes on).
const MAX_COMMIT_ERRORS: u32 = 20;

/// The proxy's fill path as the walk's fetcher, on behalf of the job's submitter.
struct Fill {
    frontend: Arc<Frontend>,
    /// The token that submitted the job: its paths bound what the job may fetch.
    on_behalf: Option<String>,
}

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
        let warmed = self
            .frontend
            .warm(module, version, kind, self.on_behalf.as_deref())
            .await?;
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
        let job = match next_job(&consensus).await {
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

/// The oldest job to run; fails jobs that cannot be (input incomplete for too long, too many
/// runs) on the way.
async fn next_job(consensus: &Consensus) -> Result<Option<WarmJob>, String> {
    let mut jobs: Vec<WarmJob> = consensus
        .reader()
        .warm_jobs()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|job| !job.state.is_final())
        .collect();
    jobs.sort_by(|a, b| (a.submitted_at_ms, &a.spec.id).cmp(&(b.submitted_at_ms, &b.spec.id)));
    let now = super::now_ms();
    for job in jobs {
        let error = match job.state {
            JobState::Receiving if now.saturating_sub(job.updated_at_ms) > RECEIVE_TIMEOUT_MS => {
                "its input never arrived completely (the node that accepted it stopped leading); submit it again".to_string()
            }
            JobState::Receiving => continue,
            _ if job.runs >= MAX_RUNS => format!("no leader finished it in {MAX_RUNS} runs"),
            _ => return Ok(Some(job)),
        };
        let mut failed = progress(&job.spec.id, consensus.node_id(), false);
        failed.finished = Some(JobState::Failed);
        failed.error = Some(error);
        if let Err(e) = consensus.operate(IndexCommand::WarmProgress(failed)).await {
            tracing::warn!(job = %job.spec.id, "failing a job: {e}");
        }
    }
    Ok(None)
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
    let text = consensus
        .reader()
        .warm_source(&job.spec.id)
        .map_err(|e| e.to_string())?
        .ok_or("its input is incomplete")?;
    let walker = match job.spec.kind {
        SourceKind::GoMod => Walker::from_go_mod(
            &goproxy_warm::spec::parse_go_mod(&text).map_err(|e| e.to_string())?,
            mode,
        ),
        SourceKind::GoSum => Walker::from_go_sum(
            &goproxy_warm::spec::parse_go_sum(&text).map_err(|e| e.to_string())?,
        ),
        SourceKind::List => Walker::new(
            goproxy_warm::spec::parse_list(&text).map_err(|e| e.to_string())?,
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

/// What the runner has done and not yet committed.
#[derive(Default)]
struct Pending {
    done: Vec<DoneItem>,
    failed: Vec<String>,
    pins: Vec<(String, String)>,
    total: u64,
    bytes_seen: u64,
    filled_seen: usize,
}

/// `text` without control characters (they would reach operators' terminals), cut to at
/// most `max` bytes at a character boundary.
fn sanitize(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > max {
        let mut cut = max;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
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
            let mut failed = progress(&id, me, true);
            failed.finished = Some(JobState::Failed);
            failed.error = Some(sanitize(&error, MAX_REASON));
            let _ = consensus.operate(IndexCommand::WarmProgress(failed)).await;
            return;
        }
    };
    tracing::info!(job = %id, runs = job.runs + 1, "running warm job");
    let pending = Arc::new(Mutex::new(Pending::default()));
    let pin = job.spec.pin;
    let fetcher = Fill {
        frontend: frontend.clone(),
        on_behalf: job.submitted_by.strip_prefix("token:").map(str::to_string),
    };
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
        if last.ok {
            if pin && last.item.artifact == Artifact::Zip {
                let target = &last.item.target;
                pending
                    .pins
                    .push((target.module.clone(), target.version.clone()));
            }
            let key = serde_json::to_string(&last.item).unwrap_or_default();
            pending.done.push(DoneItem {
                item: key,
                bytes,
                filled,
            });
        } else {
            let reason = p.failures.last().map_or("", |f| f.reason.as_str());
            let line = format!("{}: {reason}", last.item);
            pending.failed.push(sanitize(&line, MAX_REASON));
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

fn progress(id: &str, runner: u64, started: bool) -> WarmProgress {
    WarmProgress {
        id: id.to_string(),
        runner,
        at_ms: super::now_ms(),
        started,
        done: Vec::new(),
        failed: Vec::new(),
        total: 0,
        pins: Vec::new(),
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
    let mut errors = 0;
    loop {
        match commit_some(&consensus, &id, &pending, started, None).await {
            Ok(true) => started = false,
            Ok(false) => {
                // The job was cancelled (or is gone): stop fetching.
                cancel.cancel();
                return;
            }
            Err(e) => {
                errors += 1;
                tracing::warn!(job = %id, "checkpoint: {e}");
                if errors >= MAX_COMMIT_ERRORS {
                    // This leader cannot record progress (it is losing its quorum): stop;
                    // the job is resumed by the next run.
                    cancel.cancel();
                    return;
                }
            }
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
    let mut errors = 0;
    loop {
        let empty = {
            let p = pending.lock().unwrap_or_else(|e| e.into_inner());
            p.done.is_empty() && p.failed.is_empty() && p.pins.is_empty()
        };
        let result = if empty {
            match finished.clone() {
                Some(finished) => commit_some(consensus, id, pending, false, Some(finished)).await,
                None => return Ok(()),
            }
        } else {
            commit_some(consensus, id, pending, false, None).await
        };
        match result {
            Ok(true) if empty => return Ok(()),
            Ok(true) => {}
            // Cancelled meanwhile.
            Ok(false) => return Ok(()),
            Err(e) => {
                errors += 1;
                if errors >= MAX_COMMIT_ERRORS {
                    return Err(e);
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// How many of `items` fit in `budget` bytes serialized; what they use.
fn fitting<T: serde::Serialize>(items: &[T], budget: usize) -> (usize, usize) {
    let mut used = 0;
    let mut n = 0;
    for item in items {
        let size = serde_json::to_vec(item).map_or(usize::MAX, |b| b.len() + 1);
        if used + size > budget {
            break;
        }
        used += size;
        n += 1;
    }
    (n, used)
}

/// Commits as many pending items as fit in [`CHECKPOINT_BYTES`]; they leave memory only once
/// committed. `Ok(false)` when the job no longer takes progress (cancelled).
async fn commit_some(
    consensus: &Consensus,
    id: &str,
    pending: &Arc<Mutex<Pending>>,
    started: bool,
    finished: Option<(JobState, Option<String>)>,
) -> Result<bool, String> {
    let (mut checkpoint, counts) = {
        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
        let (done, used) = fitting(&p.done, CHECKPOINT_BYTES);
        if done == 0 && !p.done.is_empty() {
            // Larger than a checkpoint on its own (never for a valid target): not recorded,
            // so a resumed run fetches it again.
            let dropped = p.done.remove(0);
            tracing::warn!(job = %id, item = %dropped.item.chars().take(200).collect::<String>(), "progress item too large to record");
        }
        let (failed, used_failed) = fitting(&p.failed, CHECKPOINT_BYTES.saturating_sub(used));
        let (pins, _) = fitting(&p.pins, CHECKPOINT_BYTES.saturating_sub(used + used_failed));
        let mut checkpoint = progress(id, consensus.node_id(), started);
        checkpoint.done = p.done[..done].to_vec();
        checkpoint.failed = p.failed[..failed].to_vec();
        checkpoint.pins = p.pins[..pins].to_vec();
        checkpoint.total = p.total;
        (checkpoint, (done, failed, pins))
    };
    if let Some((state, error)) = finished {
        checkpoint.finished = Some(state);
        checkpoint.error = error.map(|e| sanitize(&e, MAX_REASON));
    }
    let answer = consensus
        .operate(IndexCommand::WarmProgress(checkpoint))
        .await
        .map_err(|e| e.to_string())?;
    // Committed (or refused as a whole): these items are no longer pending. Only appends
    // happened meanwhile, so they are still the first ones.
    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
    p.done.drain(..counts.0);
    p.failed.drain(..counts.1);
    p.pins.drain(..counts.2);
    Ok(!matches!(answer, ApplyResponse::Refused { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_lose_control_characters_and_are_cut_at_a_character_boundary() {
        assert_eq!(sanitize("a\nb\x1b[31mc", 100), "a b [31mc");
        let long = "é".repeat(400);
        let cut = sanitize(&long, MAX_REASON);
        assert!(cut.len() <= MAX_REASON && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn a_checkpoint_takes_what_fits_its_budget() {
        let items: Vec<String> = (0..100).map(|i| format!("{i:0100}")).collect();
        let (n, used) = fitting(&items, 1000);
        assert!(n > 0 && used <= 1000);
        assert!(serde_json::to_vec(&items[..n]).unwrap().len() <= 1000 + n);
        assert_eq!(fitting(&items, 10), (0, 0));
    }
}
