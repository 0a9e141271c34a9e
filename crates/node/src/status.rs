//! `GET /cluster/status`: this node's view of the Raft group, as JSON; `GET /stats`: the
//! cluster's download counts (this node's, and every other member's asked over the client
//! port as a member); `POST /admin/snapshot`: build this node's index snapshot now (the
//! scale test measures its size and build time). All are for operators: open on a trusted
//! network (`anonymous = "allow"`), an admin token otherwise.

use axum::extract::{Extension, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
    storage: Arc<crate::operate::StorageGauges>,
) -> Router {
    Router::new()
        .route("/cluster/status", get(status))
        .route("/stats", get(stats))
        .route("/admin/snapshot", post(snapshot))
        .with_state(StatusState {
            consensus,
            replication,
            vip,
            frontend,
            storage,
        })
}

/// What the status is computed from.
#[derive(Clone)]
struct StatusState {
    consensus: Consensus,
    replication: Arc<Replication>,
    vip: Option<HoldingWatch>,
    frontend: Arc<Frontend>,
    storage: Arc<crate::operate::StorageGauges>,
}

/// `/stats` query: `scope=node` (this node's counts only), `module=PREFIX`, `top=N`.
#[derive(Debug, serde::Deserialize)]
struct StatsQuery {
    scope: Option<String>,
    #[serde(default)]
    module: String,
    top: Option<usize>,
}

/// Longest `POST /admin/snapshot` waits for the build (a million entries take seconds).
const SNAPSHOT_BOUND: std::time::Duration = std::time::Duration::from_secs(600);

/// What `POST /admin/snapshot` answers.
#[derive(Debug, serde::Serialize)]
struct SnapshotBuilt {
    /// The log index the snapshot covers (`None`: nothing applied yet).
    index: Option<u64>,
    /// Whether one was built (false: the current snapshot already covered every applied entry).
    built: bool,
    /// How long building it took, as this node measured it.
    build_ms: u64,
}

async fn snapshot(
    State(state): State<StatusState>,
    headers: HeaderMap,
    client: Option<Extension<goproxy_http::listener::ClientAddr>>,
) -> Response {
    if let Err(refused) = state
        .frontend
        .admit_operator(&headers, client.map(|c| c.0 .0))
    {
        return refused.into_response();
    }
    let started = std::time::Instant::now();
    let before = state.consensus.view().snapshot;
    match state.consensus.snapshot_now(SNAPSHOT_BOUND).await {
        Ok(index) => Json(SnapshotBuilt {
            index,
            built: index > before,
            build_ms: started.elapsed().as_millis() as u64,
        })
        .into_response(),
        Err(e) => goproxy_http::error::ApiError::Unavailable(format!("building a snapshot: {e}"))
            .into_response(),
    }
}

/// Modules shown by default, and at most.
const DEFAULT_TOP: usize = 100;
const MAX_TOP: usize = 10_000;

async fn stats(
    State(state): State<StatusState>,
    Query(query): Query<StatsQuery>,
    headers: HeaderMap,
    client: Option<Extension<goproxy_http::listener::ClientAddr>>,
) -> Response {
    let frontend = &state.frontend;
    if let Err(refused) = frontend.admit_operator(&headers, client.map(|c| c.0 .0)) {
        return refused.into_response();
    }
    let own = frontend.downloads().snapshot();
    if query.scope.as_deref() == Some("node") {
        return Json(own).into_response();
    }
    let me = state.consensus.node_id();
    let mut parts = vec![own];
    let mut missing = std::collections::BTreeMap::new();
    for (id, peer) in state.consensus.peers() {
        if id == me {
            continue;
        }
        let asked = frontend
            .member_get(&peer.http_addr, "/stats?scope=node")
            .await;
        match asked.and_then(|body| serde_json::from_slice(&body).map_err(|e| e.to_string())) {
            Ok(part) => parts.push(part),
            Err(why) => {
                missing.insert(id, why);
            }
        }
    }
    let top = query.top.unwrap_or(DEFAULT_TOP).min(MAX_TOP);
    let mut summed = goproxy_audit::downloads::sum(&parts, &query.module, top);
    summed.missing = missing;
    Json(summed).into_response()
}

async fn status(
    State(state): State<StatusState>,
    headers: HeaderMap,
    client: Option<Extension<goproxy_http::listener::ClientAddr>>,
) -> Response {
    if let Err(refused) = state
        .frontend
        .admit_operator(&headers, client.map(|c| c.0 .0))
    {
        return refused.into_response();
    }
    Json(node_status(
        &state.consensus,
        &state.replication,
        state.vip.as_ref(),
        &state.frontend,
        &state.storage,
    ))
    .into_response()
}

/// This node's view of the cluster, as `/cluster/status` answers it.
pub fn node_status(
    consensus: &Consensus,
    replication: &Replication,
    vip: Option<&HoldingWatch>,
    frontend: &Frontend,
    storage: &crate::operate::StorageGauges,
) -> NodeStatus {
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
    NodeStatus {
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
        storage: Some(storage.status()),
        snapshots: Some(consensus.snapshot_report()),
    }
}
