//! The runner: drives a [`Walker`] over a [`Fetch`] implementation with bounded
//! concurrency, reports [`Progress`] after every completion, stops promptly on cancel.
//!
//! Fetches run as futures polled by this one task (no spawning), so cancelling, or dropping
//! the future of [`run`], drops every fetch in flight: a [`Fetch`] implementation must be
//! cancel-safe (the node's fill path finishes or abandons a fill on its own).

use async_trait::async_trait;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::spec::Artifact;
use crate::walk::{Item, WalkError, Walker, Work};

/// Failures kept in [`Progress::failures`] (the most recent ones): enough to diagnose, while
/// a job against a dead upstream stays small in the status it is stored in.
pub const MAX_FAILURES_KEPT: usize = 100;

/// Highest concurrency [`run`] uses, whatever is asked: more would only queue in the
/// proxy's own fill path and at the upstream.
pub const MAX_CONCURRENCY: usize = 256;

/// How the runner gets one artifact into the proxy: the node implements it over its fill
/// path (cache hit, else upstream fetch and replication).
#[async_trait]
pub trait Fetch: Send + Sync {
    /// Makes sure the proxy holds `artifact` of `module@version`. `Err` carries a message
    /// for the operator; the item counts as failed.
    async fn fetch(
        &self,
        module: &str,
        version: &str,
        artifact: Artifact,
    ) -> Result<Fetched, String>;
}

/// What one successful fetch yields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Size of the artifact.
    pub bytes: u64,
    /// The `.mod`'s text: the walk reads requirements from it. `None` for other artifacts.
    pub body: Option<Vec<u8>>,
    /// True if this fetch filled the cache; false if it was already cached.
    pub filled: bool,
}

/// Where a job stands, reported after every completion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Items done, including those done by an earlier run of the job.
    pub done: usize,
    /// Items known to be needed; grows while the graph is discovered.
    pub total: usize,
    /// Items that failed.
    pub failed: usize,
    /// Bytes fetched by this run.
    pub bytes: u64,
    /// Items this run filled into the cache (the rest were already cached).
    pub filled: usize,
    /// The most recent failures, at most [`MAX_FAILURES_KEPT`].
    pub failures: Vec<Failure>,
    /// The item whose completion this report is about, if it is news: the node persists
    /// successful ones to resume from. `None` for the first and final reports and for a
    /// successful re-read of a `.mod` done by an earlier run.
    pub last: Option<Finished>,
}

/// One failed item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The item.
    pub item: Item,
    /// Why.
    pub reason: String,
}

/// One item that just finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// The item.
    pub item: Item,
    /// True if it is done, false if it failed.
    pub ok: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every item was tried (some may have failed: see [`Progress::failed`]).
    Finished,
    /// The cancel token fired; fetches in flight were dropped.
    Cancelled,
    /// The graph reached more module versions than the walker's limit.
    TooManyTargets {
        /// The limit.
        max: usize,
    },
}

/// The result of [`run`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// How it ended.
    pub outcome: Outcome,
    /// The final counts.
    pub progress: Progress,
}

/// Runs a job to its end: at most `concurrency` fetches at once (clamped to
/// 1..=[`MAX_CONCURRENCY`]), `on_progress` after the start and after each completion.
pub async fn run<F: Fetch + ?Sized>(
    mut walker: Walker,
    fetcher: &F,
    concurrency: usize,
    cancel: &CancellationToken,
    mut on_progress: impl FnMut(&Progress),
) -> Summary {
    let limit = concurrency.clamp(1, MAX_CONCURRENCY);
    let mut progress = Progress::default();
    progress.sync(&walker);
    on_progress(&progress);
    let mut in_flight = FuturesUnordered::new();
    let outcome = loop {
        if cancel.is_cancelled() {
            break Outcome::Cancelled;
        }
        if let Some(WalkError::TooManyTargets { max }) = walker.halted() {
            break Outcome::TooManyTargets { max: *max };
        }
        while in_flight.len() < limit {
            let Some(work) = walker.next_work() else {
                break;
            };
            in_flight.push(fetch_one(fetcher, work));
        }
        if in_flight.is_empty() {
            // Nothing running and nothing to start: every item was tried. (The select below
            // would wait on the cancel token forever: it is never a disabled branch.)
            break Outcome::Finished;
        }
        let (work, result) = tokio::select! {
            biased;
            () = cancel.cancelled() => break Outcome::Cancelled,
            Some(finished) = in_flight.next() => finished,
        };
        progress.record(&mut walker, work, result);
        on_progress(&progress);
    };
    drop(in_flight);
    progress.last = None;
    progress.sync(&walker);
    Summary { outcome, progress }
}

async fn fetch_one<F: Fetch + ?Sized>(fetcher: &F, work: Work) -> (Work, Result<Fetched, String>) {
    let target = &work.item.target;
    let result = fetcher
        .fetch(&target.module, &target.version, work.item.artifact)
        .await;
    (work, result)
}

impl Progress {
    fn sync(&mut self, walker: &Walker) {
        self.done = walker.done();
        self.total = walker.total_known();
        self.failed = walker.failed_count();
    }

    /// Hands one result to the walker and updates the counts.
    fn record(&mut self, walker: &mut Walker, work: Work, result: Result<Fetched, String>) {
        let item = work.item;
        let failure = match result {
            Ok(fetched) => {
                if !work.already_done {
                    self.bytes += fetched.bytes;
                    self.filled += usize::from(fetched.filled);
                }
                match walker.complete(&item, fetched.body.as_deref()) {
                    Ok(()) | Err(WalkError::TooManyTargets { .. }) => None,
                    Err(e) => Some(e.to_string()),
                }
            }
            Err(reason) => Some(match walker.failed(&item) {
                Ok(()) => reason,
                Err(e) => format!("{reason} ({e})"),
            }),
        };
        let news = failure.is_some() || !work.already_done;
        self.last = news.then(|| Finished {
            item: item.clone(),
            ok: failure.is_none(),
        });
        if let Some(reason) = failure {
            tracing::debug!(%item, %reason, "warm: fetch failed");
            if self.failures.len() == MAX_FAILURES_KEPT {
                self.failures.remove(0);
            }
            self.failures.push(Failure { item, reason });
        }
        self.sync(walker);
    }
}
