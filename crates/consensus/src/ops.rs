//! Operating the cache through the log: prefetch (warm) jobs, purges, block rules, pins and
//! evictions. These are plain records; the state machine keeps them under reserved keys
//! beside the index, so they are in every node's applied state and in every snapshot.
//!
//! - A warm job is submitted as an admin action (in the trail), run by the leader, and its
//!   progress committed as [`WarmProgress`] checkpoints: the items done are kept per job, so a
//!   new leader resumes without counting them again.
//! - A purge removes a version's entries (a tombstone: the next request fills again) and a
//!   [`Reclaim`] record tells every node which blobs to drop.
//! - A block rule answers 403 with its reason on every node once committed.
//! - An eviction marks a version's zip as not kept on disk (its entry stays: a refill must
//!   match the recorded sha256); a restore marks it kept again.

use serde::{Deserialize, Serialize};

use crate::types::NodeId;

/// Most failures a job keeps (the newest).
pub const MAX_JOB_FAILURES: usize = 50;
/// Most reclaim records kept (older ones are dropped; a node that missed them keeps some
/// orphaned bytes until its next full sweep).
pub const MAX_RECLAIMS: u64 = 1024;

/// What kind of input a warm job has (its text arrives in [`SourcePart`]s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A go.mod: its requirement graph.
    GoMod,
    /// A go.sum: exactly the artifacts it lists.
    GoSum,
    /// One `MODULE@VERSION` per line.
    List,
}

/// A submitted job. Its input travels in [`SourcePart`] entries of at most
/// [`SOURCE_PART_BYTES`] each, so no log entry is larger than the log's bound however large
/// the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmSpec {
    /// Its id (unique; chosen by the node that accepted it).
    pub id: String,
    /// What its input is.
    pub kind: SourceKind,
    /// How many parts the input has.
    pub parts: u32,
    /// Fetch only the named versions, not their requirement graphs.
    pub no_deps: bool,
    /// Pin what it fetched: eviction never drops it.
    pub pin: bool,
    /// A short description for status and the dashboard.
    pub description: String,
}

/// One part of a job's input, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePart {
    /// The job.
    pub id: String,
    /// Which part (from 0).
    pub part: u32,
    /// Its text.
    pub text: String,
}

/// Largest part of a job's input.
pub const SOURCE_PART_BYTES: usize = 4096;
/// Most parts (a job's input is at most 256 KiB).
pub const MAX_SOURCE_PARTS: u32 = 64;
/// Most jobs not yet finished at once, in all.
pub const MAX_OPEN_JOBS: usize = 32;
/// Most jobs not yet finished at once per submitter.
pub const MAX_OPEN_JOBS_PER_SUBMITTER: usize = 4;
/// Finished jobs kept (with their inputs and items); older ones are forgotten when a job is
/// submitted.
pub const MAX_FINISHED_JOBS: usize = 64;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Its input is still arriving.
    Receiving,
    /// Waiting for the leader.
    Queued,
    /// Being fetched.
    Running,
    /// Finished (some items may have failed).
    Done,
    /// Could not run (its input no longer parses, the graph is too large).
    Failed,
    /// Stopped by an operator.
    Cancelled,
}

impl JobState {
    /// Whether the job will change no more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Receiving => "receiving",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// A job as every node's applied state holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmJob {
    /// The submission.
    pub spec: WarmSpec,
    /// Who submitted it.
    pub submitted_by: String,
    /// When (ms since the epoch).
    pub submitted_at_ms: u64,
    /// Where it is.
    pub state: JobState,
    /// Parts of its input committed so far.
    pub parts_received: u32,
    /// Items fetched (each counted once, across leaders).
    pub done: u64,
    /// Items known so far (grows while the graph is discovered).
    pub total: u64,
    /// Items that failed.
    pub failed: u64,
    /// Bytes of the items done.
    pub bytes: u64,
    /// Items that had to be fetched upstream (the rest were cached already).
    pub filled: u64,
    /// The leader running it (the last one that reported).
    pub runner: Option<NodeId>,
    /// How many leaders have run it (more than one: it was resumed after a failover).
    pub runs: u32,
    /// Last progress (ms since the epoch).
    pub updated_at_ms: u64,
    /// The newest failures, `item: reason`.
    pub failures: Vec<String>,
    /// Why it failed as a whole.
    pub error: Option<String>,
}

/// A checkpoint of a running job, committed by the leader running it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmProgress {
    /// The job.
    pub id: String,
    /// The leader running it.
    pub runner: NodeId,
    /// When.
    pub at_ms: u64,
    /// This run started with this checkpoint (counts `runs`).
    pub started: bool,
    /// Items done since the last checkpoint, each with its bytes and whether it was filled.
    pub done: Vec<DoneItem>,
    /// Items failed since the last checkpoint, `item: reason`.
    pub failed: Vec<String>,
    /// Items known now.
    pub total: u64,
    /// Versions to pin (for a pinning job), `module@version`.
    pub pins: Vec<(String, String)>,
    /// The job ended so.
    pub finished: Option<JobState>,
    /// Why it failed as a whole.
    pub error: Option<String>,
}

/// One fetched item of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneItem {
    /// The runner's name for it (unique in the job).
    pub item: String,
    /// Its bytes.
    pub bytes: u64,
    /// Whether it was fetched upstream.
    pub filled: bool,
}

/// A block rule in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// `MODULE` or `MODULE@RANGE` (canonical form).
    pub rule: String,
    /// Shown to clients.
    pub reason: String,
    /// Who added it.
    pub by: String,
    /// When.
    pub at_ms: u64,
}

/// A module version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VersionRef {
    /// Module path.
    pub module: String,
    /// Canonical version.
    pub version: String,
}

impl std::fmt::Display for VersionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.module, self.version)
    }
}

/// Versions whose zips leave every node's disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evictions {
    /// When the leader decided.
    pub at_ms: u64,
    /// The versions.
    pub versions: Vec<VersionRef>,
}

/// Blobs every node may drop, after a purge or an eviction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reclaim {
    /// The log index that caused it.
    pub index: u64,
    /// Versions purged (their entries are gone: front-end memory caches forget them).
    pub purged: Vec<VersionRef>,
    /// The sha256 of each blob no longer kept (a node drops it unless a kept entry still
    /// references the same bytes).
    pub blobs: Vec<String>,
}
