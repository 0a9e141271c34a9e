//! Errors of the consensus layer, with "not leader" as its own typed variant so the
//! caller maps it once (forward or redirect) at its boundary.

use crate::types::NodeId;

/// What can go wrong using the replicated index.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsensusError {
    /// This node is not the leader; writes must go to `leader_id`.
    #[error("not the leader (leader: {leader_id:?} {leader:?})")]
    NotLeader {
        /// The current leader, when known.
        leader_id: Option<NodeId>,
        /// Its addresses, when known.
        leader: Option<crate::types::PeerNode>,
    },
    /// The local store failed.
    #[error("index storage: {0}")]
    Storage(String),
    /// The configuration is invalid.
    #[error("raft configuration: {0}")]
    Config(String),
    /// The entry is larger than a log entry may be.
    #[error("index entry of {size} bytes exceeds the {limit}-byte limit")]
    EntryTooLarge {
        /// Its serialized size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Raft could not make progress (no quorum, shutting down, fatal error).
    #[error("raft: {0}")]
    Raft(String),
}

impl From<sled::Error> for ConsensusError {
    fn from(e: sled::Error) -> Self {
        ConsensusError::Storage(e.to_string())
    }
}

/// openraft storage error for a sled failure while reading or writing `subject`.
pub(crate) fn storage_err(
    verb: openraft::ErrorVerb,
    subject: openraft::ErrorSubject<NodeId>,
    e: impl std::fmt::Display,
) -> openraft::StorageError<NodeId> {
    let io = std::io::Error::other(e.to_string());
    openraft::StorageError::from_io_error(subject, verb, io)
}
