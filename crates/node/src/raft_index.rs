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

/// The replicated index as the front end sees it.
pub struct RaftIndex {
    consensus: Consensus,
    /// Latched once this node has a leader and has applied its own log: readiness then
    /// does not flicker while writes stream in.
    caught_up: AtomicBool,
}

impl RaftIndex {
    /// Wraps a running consensus member.
    pub fn new(consensus: Consensus) -> Self {
        Self {
            consensus,
            caught_up: AtomicBool::new(false),
        }
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
        let applied = put.await.map_err(|_| {
            IndexError::Unavailable(format!(
                "no Raft quorum confirmed the entry within {COMMIT_TIMEOUT:?}"
            ))
        })?;
        match applied.map_err(unavailable)? {
            ApplyResponse::Inserted | ApplyResponse::AlreadyPresent | ApplyResponse::Empty => {
                Ok(entry)
            }
            ApplyResponse::Conflict { existing } => Ok(existing),
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

    fn readiness(&self) -> Result<(), String> {
        let metrics = self.consensus.metrics();
        let m = metrics.borrow();
        let Some(leader) = m.current_leader else {
            return Err("no Raft leader known".into());
        };
        if !self.caught_up.load(Ordering::Relaxed) {
            let applied = m.last_applied.map(|id| id.index);
            if applied < m.last_log_index {
                return Err(format!(
                    "applying the log ({applied:?} of {:?})",
                    m.last_log_index
                ));
            }
            self.caught_up.store(true, Ordering::Relaxed);
        }
        tracing::trace!(leader, "ready");
        Ok(())
    }
}
