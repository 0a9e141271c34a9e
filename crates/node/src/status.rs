//! `GET /cluster/status`: this node's view of the Raft group, as JSON.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

use goproxy_consensus::Consensus;

use goproxy_status::{MemberStatus, NodeStatus, ReplicationMode};

use crate::backlog::Backlog;
use crate::catch_up::Missing;
use crate::vip::HoldingWatch;

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
        state: consensus.role(),
        current_leader: metrics.current_leader,
        current_term: metrics.current_term,
        last_log_index: metrics.last_log_index,
        last_applied: metrics.last_applied.map(|id| id.index),
        snapshot: metrics.snapshot.map(|id| id.index),
        millis_since_quorum_ack: metrics.millis_since_quorum_ack,
        index_entries: consensus.reader().entry_count(),
        members,
        replication_mode: if backlog_blobs == 0 {
            ReplicationMode::Sync
        } else {
            ReplicationMode::Degraded
        },
        backlog_blobs,
        backlog_bytes,
        missing_blobs: missing.get(),
        vip_held: vip.map(|held| *held.borrow()),
        retired: consensus.retired(),
    })
}
