//! `GET /cluster/status`: this node's view of the Raft group, as JSON.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

use goproxy_consensus::Consensus;

use goproxy_http::Frontend;
use goproxy_replicate::Replication;
use goproxy_status::{MemberStatus, NodeStatus, ReplicationMode};

use crate::vip::HoldingWatch;

/// The status route, to merge into the front end's router.
pub fn router(
    consensus: Consensus,
    replication: Arc<Replication>,
    vip: Option<HoldingWatch>,
    frontend: Arc<Frontend>,
) -> Router {
    Router::new()
        .route("/cluster/status", get(status))
        .with_state(StatusState {
            consensus,
            replication,
            vip,
            frontend,
        })
}

/// What the status is computed from.
#[derive(Clone)]
struct StatusState {
    consensus: Consensus,
    replication: Arc<Replication>,
    vip: Option<HoldingWatch>,
    frontend: Arc<Frontend>,
}

async fn status(State(state): State<StatusState>) -> impl IntoResponse {
    let StatusState {
        consensus,
        replication,
        vip,
        frontend,
    } = state;
    let (backlog_blobs, backlog_bytes) = replication.backlog();
    let view = consensus.view();
    let members = view
        .members
        .into_iter()
        .map(|(id, node)| MemberStatus {
            id,
            raft_addr: node.raft_addr,
            http_addr: node.http_addr,
        })
        .collect();
    Json(NodeStatus {
        node_id: view.node_id,
        state: view.role,
        current_leader: view.current_leader,
        current_term: view.current_term,
        last_log_index: view.last_log_index,
        last_applied: view.last_applied,
        snapshot: view.snapshot,
        millis_since_quorum_ack: view.quorum_ack_age.map(|age| age.as_millis() as u64),
        index_entries: consensus.reader().entry_count(),
        members,
        replication_mode: if backlog_blobs == 0 {
            ReplicationMode::Sync
        } else {
            ReplicationMode::Degraded
        },
        backlog_blobs,
        backlog_bytes,
        missing_blobs: replication.missing(),
        vip_held: vip.map(|held| *held.borrow()),
        retired: consensus.retired(),
        checksum_databases: frontend.checksum_status(),
    })
}
