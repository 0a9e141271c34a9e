//! `GET /cluster/status`: one node's view of the cluster, as one typed contract.
//!
//! Nodes write [`NodeStatus`]; everything that reads it (the `cluster status` command, the
//! failover drill, the namespace lab, the chaos suite, the tests) deserializes the same type,
//! so a field cannot be renamed on one side only, and roles and replication modes are enums,
//! not strings compared by hand.
//!
//! # Layout
//! - this file: [`NodeStatus`], [`MemberStatus`], [`Role`], [`ReplicationMode`], and
//!   [`MemberView`] (a listed member with the status it reported, or why it did not).
//! - [`assess`]: is the cluster healthy enough for a planned failover, and to whom (pure).
#![forbid(unsafe_code)]

pub mod assess;

use serde::{Deserialize, Serialize};

pub use assess::{assess, Plan};

/// A member's Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Leads the group: fills, and holds the VIP while its quorum lease is fresh.
    Leader,
    /// Follows a leader.
    Follower,
    /// Campaigning.
    Candidate,
    /// Receives the log but does not vote (a joining node, or one not yet initialised).
    Learner,
    /// Stopping.
    Shutdown,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Whether every acknowledged blob is on enough replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplicationMode {
    /// Every acknowledged blob is on `sync_replicas` peers.
    Sync,
    /// Some acknowledged blobs are short of replicas (the backlog).
    Degraded,
}

impl std::fmt::Display for ReplicationMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReplicationMode::Sync => "sync",
            ReplicationMode::Degraded => "degraded",
        })
    }
}

/// One member as a node lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Raft node id.
    pub id: u64,
    /// Node-to-node gRPC address.
    pub raft_addr: String,
    /// GOPROXY front-end address.
    pub http_addr: String,
}

/// One node's view of the cluster (`GET /cluster/status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// This node's id.
    pub node_id: u64,
    /// Its Raft role.
    pub state: Role,
    /// The leader this node follows, if known.
    pub current_leader: Option<u64>,
    /// Current Raft term.
    pub current_term: u64,
    /// Index of the last log entry.
    pub last_log_index: Option<u64>,
    /// Index of the last applied entry.
    pub last_applied: Option<u64>,
    /// Log index covered by the current snapshot.
    pub snapshot: Option<u64>,
    /// Leader only: milliseconds since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// Committed index entries held locally.
    pub index_entries: usize,
    /// Every member.
    pub members: Vec<MemberStatus>,
    /// `sync`, or `degraded` while some acknowledged blobs are short of replicas.
    pub replication_mode: ReplicationMode,
    /// Blobs short of replicas (the repair backlog).
    pub backlog_blobs: usize,
    /// Bytes short of replicas.
    pub backlog_bytes: u64,
    /// Committed blobs this node does not hold yet (its background catch-up fetches them).
    pub missing_blobs: u64,
    /// Whether this node holds the VIP (`None`: no VIP configured).
    pub vip_held: Option<bool>,
    /// Why this node stopped campaigning, when it was removed from the voters.
    #[serde(default)]
    pub retired: Option<String>,
    /// The checksum databases this node verifies against (the leader does the verifying).
    #[serde(default)]
    pub checksum_databases: Vec<ChecksumDatabaseStatus>,
    /// The blob store's use and bound (as of the last measurement, every few seconds).
    #[serde(default)]
    pub storage: Option<StorageStatus>,
    /// This node's index snapshots.
    #[serde(default)]
    pub snapshots: Option<SnapshotStatus>,
}

/// A node's index snapshots (files streamed from and into the index).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStatus {
    /// Snapshots this process built.
    pub builds: u64,
    /// How long the last build took.
    pub last_build_ms: Option<u64>,
    /// Size of the current snapshot file.
    pub bytes: u64,
    /// Records (index keys) in it.
    pub records: u64,
    /// Snapshots this process installed from a leader.
    pub installs: u64,
    /// How long the last install took (checking the file and refilling the index).
    pub last_install_ms: Option<u64>,
    /// `InstallSnapshot` chunks the last installed snapshot arrived in.
    pub last_install_chunks: u64,
}

/// A node's blob storage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageStatus {
    /// Bytes of the blobs the cluster keeps (evicted zips not counted).
    pub cache_bytes: u64,
    /// `cache.max_bytes`, if set.
    pub max_bytes: Option<u64>,
    /// Free bytes on the blob store's filesystem.
    pub disk_free_bytes: u64,
    /// Size of that filesystem.
    pub disk_total_bytes: u64,
    /// Versions whose zips are evicted.
    pub evicted_versions: u64,
    /// Versions pinned by prefetch jobs.
    pub pinned_versions: u64,
}

/// One checksum database as this node has verified against it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksumDatabaseStatus {
    /// Database name.
    pub name: String,
    /// Records in the newest signed tree verified (none yet: `null`).
    pub tree_size: Option<u64>,
    /// Lookups proved.
    pub verified: u64,
    /// Answers refused (signature, proof, record lines, not in the database).
    pub refused: u64,
    /// Times the database was unreachable.
    pub unreachable: u64,
    /// Forked trees refused: the database presented a history inconsistent with the one
    /// verified before. Anything above 0 needs an operator.
    pub forks: u64,
    /// The last fork, described.
    pub last_fork: Option<String>,
    /// Fills accepted unverified while the database was unreachable
    /// (`sumdb_unreachable = "accept"`) and not verified yet (leader's count).
    #[serde(default)]
    pub unverified: u64,
    /// Fills accepted unverified that the database contradicted once reachable.
    #[serde(default)]
    pub refused_after_accept: u64,
}

impl NodeStatus {
    /// Whether this node reports itself as the leader.
    pub fn leads(&self) -> bool {
        self.state == Role::Leader
    }
}

/// A member as listed by the cluster, with the status it reported, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// Raft node id.
    pub id: u64,
    /// GOPROXY front-end address.
    pub http_addr: String,
    /// Node-to-node gRPC address.
    pub raft_addr: String,
    /// Its status, or why it could not be read.
    pub status: Result<NodeStatus, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_stable() {
        let status = NodeStatus {
            node_id: 2,
            state: Role::Follower,
            current_leader: Some(1),
            current_term: 7,
            last_log_index: Some(40),
            last_applied: Some(40),
            snapshot: None,
            millis_since_quorum_ack: None,
            index_entries: 12,
            members: vec![MemberStatus {
                id: 1,
                raft_addr: "10.0.0.1:7080".into(),
                http_addr: "10.0.0.1:8080".into(),
            }],
            replication_mode: ReplicationMode::Degraded,
            backlog_blobs: 1,
            backlog_bytes: 10,
            missing_blobs: 0,
            vip_held: Some(false),
            retired: None,
            checksum_databases: Vec::new(),
            storage: None,
            snapshots: None,
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["state"], "Follower");
        assert_eq!(json["replication_mode"], "degraded");
        assert_eq!(json["members"][0]["http_addr"], "10.0.0.1:8080");
        let back: NodeStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, status);
    }
}
