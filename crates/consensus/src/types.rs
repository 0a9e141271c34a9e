//! The Raft type configuration: what the log carries and what applying it returns.

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
    /// An operator's action: appended to the admin trail every node holds, and applied when
    /// it changes replicated state (client tokens are in force on every node once committed).
    Admin(AdminRecord),
    /// The members' shared secret (hex), set once by the first leader: members prove to each
    /// other on the client port that a request comes from a member (a forwarded miss, a
    /// statistics query). Later proposals are ignored.
    MemberSecret(String),
    /// A part of a submitted prefetch job's input.
    WarmSource(crate::ops::SourcePart),
    /// A checkpoint of a prefetch job, from the leader running it.
    WarmProgress(crate::ops::WarmProgress),
    /// Versions whose zips no node keeps any more (their entries stay).
    Evict(crate::ops::Evictions),
    /// Evicted versions in use again: every node fetches their zips again.
    Restore(Vec<crate::ops::VersionRef>),
}

/// Who did what, when: one entry of the replicated admin trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRecord {
    /// When the node that accepted it proposed it (milliseconds since the Unix epoch).
    pub at_ms: u64,
    /// The operator: the admin certificate's name, or `token:NAME` for an admin token.
    pub actor: String,
    /// The node that accepted the request.
    pub node: NodeId,
    /// What was done.
    pub action: AdminAction,
}

/// An administrative action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminAction {
    /// Adds a client token (its name must be new).
    CreateToken(Grant),
    /// Removes the client token of that name.
    RevokeToken {
        /// The token's name.
        name: String,
    },
    /// Removes a version's entries (a tombstone): every node drops its blobs, and the next
    /// request fills it again.
    Purge(crate::ops::VersionRef),
    /// Blocks a module or versions of it on every node.
    Block {
        /// `MODULE` or `MODULE@RANGE`, canonical.
        rule: String,
        /// Shown to clients.
        reason: String,
    },
    /// Lifts a block rule.
    Unblock {
        /// The rule as it was added.
        rule: String,
    },
    /// Submits a prefetch job.
    WarmSubmit(crate::ops::WarmSpec),
    /// Cancels a prefetch job.
    WarmCancel {
        /// The job.
        id: String,
    },
    /// Removes the pins a prefetch job made.
    WarmUnpin {
        /// The job.
        id: String,
    },
    /// A change the leader made outside the state machine (membership, leadership), recorded
    /// with its outcome once it is known.
    Cluster {
        /// `add-member`, `remove-member`, `transfer-leader`.
        kind: String,
        /// Its arguments, readable (`node 4 raft=… http=…`).
        detail: String,
        /// `ok` or why it failed.
        outcome: String,
    },
}

impl AdminAction {
    /// The trail's name for this action.
    pub fn kind(&self) -> &str {
        match self {
            AdminAction::CreateToken(_) => "token-create",
            AdminAction::RevokeToken { .. } => "token-revoke",
            AdminAction::Purge(_) => "purge",
            AdminAction::Block { .. } => "block",
            AdminAction::Unblock { .. } => "unblock",
            AdminAction::WarmSubmit(_) => "warm-submit",
            AdminAction::WarmCancel { .. } => "warm-cancel",
            AdminAction::WarmUnpin { .. } => "warm-unpin",
            AdminAction::Cluster { kind, .. } => kind,
        }
    }

    /// Its arguments as the trail shows them (never a token's hash).
    pub fn detail(&self) -> String {
        match self {
            AdminAction::CreateToken(grant) => {
                let mut detail = format!("{} role={}", grant.name, grant.role);
                for (label, value) in [("allow", &grant.allow), ("deny", &grant.deny)] {
                    if let Some(value) = value {
                        detail.push_str(&format!(" {label}={value}"));
                    }
                }
                if let Some(at) = grant.expires_at_ms {
                    detail.push_str(&format!(" expires_at_ms={at}"));
                }
                detail
            }
            AdminAction::RevokeToken { name } => name.clone(),
            AdminAction::Purge(version) => version.to_string(),
            AdminAction::Block { rule, reason } => format!("{rule} reason={reason:?}"),
            AdminAction::Unblock { rule } => rule.clone(),
            AdminAction::WarmSubmit(spec) => {
                let mut detail = format!("{} {}", spec.id, spec.description);
                detail.push_str(&format!(" parts={}", spec.parts));
                if spec.pin {
                    detail.push_str(" pin");
                }
                if spec.no_deps {
                    detail.push_str(" no-deps");
                }
                detail
            }
            AdminAction::WarmCancel { id } | AdminAction::WarmUnpin { id } => id.clone(),
            AdminAction::Cluster { detail, .. } => detail.clone(),
        }
    }
}

/// One admin action as every node's trail holds it, in log order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminEvent {
    /// Its Raft log index (the trail's order).
    pub index: u64,
    /// When it was proposed (milliseconds since the Unix epoch).
    pub at_ms: u64,
    /// Who.
    pub actor: String,
    /// The node that accepted it.
    pub node: NodeId,
    /// [`AdminAction::kind`].
    pub kind: String,
    /// [`AdminAction::detail`].
    pub detail: String,
    /// `ok`, or why it was refused or failed.
    pub outcome: String,
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
    /// An admin action that could not apply (a token name taken, an unknown name).
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
        SnapshotData = crate::state_machine::SnapshotFile,
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
