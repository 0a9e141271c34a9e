//! The Raft type configuration: what the log carries and what applying it returns.

use std::io::Cursor;

use goproxy_access::Grant;
use goproxy_protocol::index::IndexEntry;
use serde::{Deserialize, Serialize};

/// A cluster member as Raft records it: where peers reach its Raft/blob gRPC listener
/// and where clients (and forwarding followers) reach its GOPROXY front end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    /// `host:port` of the node-to-node gRPC listener.
    pub raft_addr: String,
    /// `host:port` of the HTTP front end.
    pub http_addr: String,
}

impl std::fmt::Display for PeerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "raft={} http={}", self.raft_addr, self.http_addr)
    }
}

/// A command in the replicated log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexCommand {
    /// Record the content of an artifact (first committed content wins forever).
    Put(IndexEntry),
    /// Several [`IndexCommand::Put`]s in one log entry, applied in order and atomically (a
    /// fill with what proved it against the checksum database: one Raft round trip).
    PutAll(Vec<IndexEntry>),
    /// A change to the client tokens (replicated, so in force on every node once committed).
    Token(TokenCommand),
}

/// A change to the client tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenCommand {
    /// Adds a token (its name must be new).
    Create(Grant),
    /// Removes the token of that name.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// The result of applying one log entry to the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ApplyResponse {
    /// A blank or membership entry: nothing for clients.
    #[default]
    Empty,
    /// The entry was new and is now committed.
    Inserted,
    /// The same content was already committed.
    AlreadyPresent,
    /// A different content was committed first; it stays.
    Conflict {
        /// The entry that is, and stays, committed.
        existing: IndexEntry,
    },
    /// The result of each put of an [`IndexCommand::PutAll`], in order.
    All(Vec<ApplyResponse>),
    /// A token command that could not apply (a name taken, an unknown name).
    Refused {
        /// Why.
        reason: String,
    },
}

openraft::declare_raft_types!(
    /// openraft type configuration of the cache index.
    pub TypeConfig:
        D = IndexCommand,
        R = ApplyResponse,
        NodeId = u64,
        Node = PeerNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Node id type.
pub type NodeId = u64;
/// openraft's storage error for this configuration.
pub type StorageError = openraft::StorageError<NodeId>;
/// The Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// Log ids.
pub type LogId = openraft::LogId<NodeId>;
/// Metrics snapshot.
pub type RaftMetrics = openraft::RaftMetrics<NodeId, PeerNode>;
