//! The front end's `CacheIndex`, implemented over the consensus crate. "Not leader" is
//! mapped here, once, from the consensus error to the front end's error.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use goproxy_consensus::{ApplyResponse, Consensus, ConsensusError};
use goproxy_http::{CacheIndex, CachedVersion, IndexError, Leadership};
use goproxy_protocol::index::{ArtifactKey, IndexEntry};

/// How long a commit may wait for a quorum before the fill is answered "unavailable"
/// (openraft 0.9 keeps a leader that lost its majority waiting indefinitely).
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often a leader whose disk is full hands leadership over (a cluster whose disks are all
/// full must not pass it around without pause).
const DISK_FULL_HANDOVER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// The replicated index as the front end sees it.
pub struct RaftIndex {
    consensus: Consensus,
    /// Latched once this node has a leader and has applied its own log: readiness then
    /// does not flicker while writes stream in.
    caught_up: AtomicBool,
    /// When this node last handed leadership over because its disk was full.
    last_disk_full_handover: std::sync::Mutex<Option<tokio::time::Instant>>,
}

fn no_quorum() -> IndexError {
    IndexError::Unavailable(format!(
        "no Raft quorum confirmed the entry within {COMMIT_TIMEOUT:?}"
    ))
}

/// The entry the cluster settled on for `entry` after applying it.
fn settled(entry: IndexEntry, applied: ApplyResponse) -> IndexEntry {
    match applied {
        ApplyResponse::Conflict { existing } => existing,
        _ => entry,
    }
}

impl RaftIndex {
    /// Wraps a running consensus member.
    pub fn new(consensus: Consensus) -> Self {
        Self {
            consensus,
            caught_up: AtomicBool::new(false),
            last_disk_full_handover: std::sync::Mutex::new(None),
        }
    }

    /// Whether a disk-full handover may start now (at most one per interval); records it.
    fn handover_due(&self) -> bool {
        let mut last = self
            .last_disk_full_handover
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = tokio::time::Instant::now();
        if last.is_some_and(|at| now < at + DISK_FULL_HANDOVER_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }
}

fn unavailable(e: ConsensusError) -> IndexError {
    match e {
        ConsensusError::NotLeader { leader, .. } => IndexError::NotLeader {
            leader: leader.map(|node| node.http_addr),
        },
        other => IndexError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl CacheIndex for RaftIndex {
    fn lookup(&self, key: &ArtifactKey) -> Result<Option<IndexEntry>, IndexError> {
        self.consensus.reader().get(key).map_err(unavailable)
    }

    fn last_version(&self, module: &str) -> Result<Option<String>, IndexError> {
        self.consensus
            .reader()
            .last_version(module)
            .map_err(unavailable)
    }

    fn cached_versions(&self, module: &str) -> Result<Vec<CachedVersion>, IndexError> {
        let versions = self
            .consensus
            .reader()
            .versions(module)
            .map_err(unavailable)?;
        Ok(versions
            .into_iter()
            .map(|v| CachedVersion {
                version: v.version,
                time: v.time,
                has_info: v.has_info,
            })
            .collect())
    }

    async fn commit(&self, entry: IndexEntry) -> Result<IndexEntry, IndexError> {
        let put = tokio::time::timeout(COMMIT_TIMEOUT, self.consensus.put(entry.clone()));
        let applied = put.await.map_err(|_| no_quorum())?;
        Ok(settled(entry, applied.map_err(unavailable)?))
    }

    async fn commit_all(&self, entries: Vec<IndexEntry>) -> Result<Vec<IndexEntry>, IndexError> {
        let put = tokio::time::timeout(COMMIT_TIMEOUT, self.consensus.put_all(entries.clone()));
        match put.await.map_err(|_| no_quorum())? {
            Ok(applied) => Ok(entries
                .into_iter()
                .zip(applied)
                .map(|(entry, applied)| settled(entry, applied))
                .collect()),
            // Too large for one log entry: one by one.
            Err(ConsensusError::EntryTooLarge { .. }) => {
                let mut winners = Vec::with_capacity(entries.len());
                for entry in entries {
                    winners.push(self.commit(entry).await?);
                }
                Ok(winners)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    fn leadership(&self) -> Leadership {
        if self.consensus.is_leader() {
            return Leadership::Local;
        }
        match self.consensus.leader() {
            Some((id, _)) if id == self.consensus.node_id() => Leadership::Unknown,
            Some((_, node)) => Leadership::Remote(node.http_addr),
            None => Leadership::Unknown,
        }
    }

    async fn disk_full(&self, reason: &str) {
        if !self.consensus.is_leader() || !self.handover_due() {
            return;
        }
        tracing::warn!(
            reason,
            "disk full: handing leadership (and fills) to another voter"
        );
        match self.consensus.step_down().await {
            Ok(Some(new)) => tracing::warn!(new_leader = new, "disk full: leadership handed over"),
            Ok(None) => tracing::warn!("disk full: no other voter to hand leadership to"),
            Err(e) => tracing::warn!(error = %e, "disk full: leadership handover failed"),
        }
    }

    fn readiness(&self) -> Result<(), String> {
        if let Some(reason) = self.consensus.retired() {
            return Err(format!("removed from the cluster: {reason}"));
        }
        let view = self.consensus.view();
        let Some(leader) = view.current_leader else {
            return Err("no Raft leader known".into());
        };
        if leader == view.node_id {
            let lease = self.consensus.leader_lease();
            match view.quorum_ack_age {
                Some(age) if age <= lease => {}
                age => {
                    return Err(format!(
                        "no quorum: this leader's last majority acknowledgement is {} old (lease {lease:?}); fills cannot commit",
                        age.map_or("missing".to_string(), |a| format!("{a:?}"))
                    ))
                }
            }
        }
        if !self.caught_up.load(Ordering::Relaxed) {
            let applied = view.last_applied;
            if applied < view.last_log_index {
                return Err(format!(
                    "applying the log ({applied:?} of {:?})",
                    view.last_log_index
                ));
            }
            self.caught_up.store(true, Ordering::Relaxed);
        }
        tracing::trace!(leader, "ready");
        Ok(())
    }
}
