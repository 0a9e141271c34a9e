//! `GET /cluster/status`: this node's view of the Raft group, as JSON.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

use goproxy_consensus::Consensus;

use crate::backlog::Backlog;
use crate::catch_up::Missing;
use crate::vip::HoldingWatch;
use serde::Serialize;

/// One member as listed in the status.
#[derive(Debug, Serialize)]
pub struct MemberStatus {
    /// Raft node id.
    pub id: u64,
    /// Node-to-node gRPC address.
    pub raft_addr: String,
    /// GOPROXY front-end address.
    pub http_addr: String,
}

/// This node's view of the cluster.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// This node's id.
    pub node_id: u64,
    /// `Leader`, `Follower`, `Candidate` or `Learner`.
    pub state: String,
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
    pub replication_mode: &'static str,
    /// Blobs short of replicas (the repair backlog).
    pub backlog_blobs: usize,
    /// Bytes short of replicas.
    pub backlog_bytes: u64,
    /// Committed blobs this node does not hold yet (its background catch-up fetches them).
    pub missing_blobs: u64,
    /// Whether this node holds the VIP (`None`: no VIP configured).
    pub vip_held: Option<bool>,
}

/// The status route, to merge into the front end's router.
pub fn router(
    consensus: Consensus,
    backlog: Arc<Backlog>,
    missing: Missing,
    vip: Option<HoldingWatch>,
) -> Router {
    Router::new()
        .route("/cluster/status", get(status))
        .with_state(StatusState {
            consensus,
            backlog,
            missing,
            vip,
        })
}

/// What the status is computed from.
#[derive(Clone)]
struct StatusState {
    consensus: Consensus,
    backlog: Arc<Backlog>,
    missing: Missing,
    vip: Option<HoldingWatch>,
}

async fn status(State(state): State<StatusState>) -> impl IntoResponse {
    let StatusState {
        consensus,
        backlog,
        missing,
        vip,
    } = state;
    let (backlog_blobs, backlog_bytes) = backlog.size();
    let metrics = consensus.metrics().borrow().clone();
    let members = metrics
        .membership_config
        .membership()
        .nodes()
        .map(|(id, node)| MemberStatus {
            id: *id,
            raft_addr: node.raft_addr.clone(),
            http_addr: node.http_addr.clone(),
        })
        .collect();
    Json(NodeStatus {
        node_id: consensus.node_id(),
        state: format!("{:?}", metrics.state),
        current_leader: metrics.current_leader,
        current_term: metrics.current_term,
        last_log_index: metrics.last_log_index,
        last_applied: metrics.last_applied.map(|id| id.index),
        snapshot: metrics.snapshot.map(|id| id.index),
        millis_since_quorum_ack: metrics.millis_since_quorum_ack,
        index_entries: consensus.reader().entry_count(),
        members,
        replication_mode: if backlog_blobs == 0 {
            "sync"
        } else {
            "degraded"
        },
        backlog_blobs,
        backlog_bytes,
        missing_blobs: missing.get(),
        vip_held: vip.map(|held| *held.borrow()),
    })
}
