//! `/ui` on every node: the page (`goproxy-dashboard`) and the document it renders,
//! `GET /ui/data`, built by the node the browser talks to from its own state and every
//! other member's (asked as a member over the client port, at the same time, each bounded),
//! so the page served by a follower, or by a survivor after the leader died, shows the whole
//! cluster. Like `/cluster/status` it needs an admin token unless anonymous clients may do
//! everything.

use std::collections::HashMap;

use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use goproxy_dashboard as ui;
use goproxy_http::listener::ClientAddr;
use goproxy_http::operate::RecentEvent;
use goproxy_status::{NodeStatus, Role};

use super::OpsState;

/// Where members read each other's recent events.
pub const RECENT_PATH: &str = "/cluster/recent";
/// Modules shown.
const TOP_MODULES: usize = 10;
/// Recent events shown (all nodes together).
const RECENT_SHOWN: usize = 50;
/// How long the page waits for one member's answer.
const MEMBER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The dashboard's routes.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route(ui::DATA_PATH, get(data))
        .route(RECENT_PATH, get(recent))
        .with_state(state)
        .merge(ui::routes())
}

async fn recent(State(state): State<OpsState>, headers: HeaderMap) -> Response {
    if !state.frontend.is_member(&headers) {
        return goproxy_http::error::ApiError::Forbidden("members only".into()).into_response();
    }
    Json(state.frontend.recent()).into_response()
}

/// What one member answered.
struct Asked {
    status: Result<NodeStatus, String>,
    recent: Vec<RecentEvent>,
    downloads: Option<goproxy_audit::downloads::NodeDownloads>,
}

async fn ask(state: &OpsState, addr: &str) -> Asked {
    let frontend = &state.frontend;
    let get = |path: &'static str| async move {
        match tokio::time::timeout(MEMBER_TIMEOUT, frontend.member_get(addr, path)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {MEMBER_TIMEOUT:?}")),
        }
    };
    let (status, recent, downloads) = tokio::join!(
        get("/cluster/status"),
        get(RECENT_PATH),
        get("/stats?scope=node")
    );
    Asked {
        status: status.and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())),
        recent: recent
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default(),
        downloads: downloads.ok().and_then(|b| serde_json::from_slice(&b).ok()),
    }
}

async fn data(
    State(state): State<OpsState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> Response {
    if let Err(refused) = state
        .frontend
        .admit_operator(&headers, client.map(|c| c.0 .0))
    {
        return refused.into_response();
    }
    let own = crate::status::node_status(
        &state.consensus,
        &state.replication,
        state.vip.as_ref(),
        &state.frontend,
        &state.storage,
    );
    let me = own.node_id;
    let others: Vec<_> = own.members.iter().filter(|m| m.id != me).cloned().collect();
    let answers = futures::future::join_all(others.iter().map(|m| ask(&state, &m.http_addr))).await;
    let mut statuses: HashMap<u64, Result<NodeStatus, String>> = HashMap::new();
    let mut recent: Vec<(u64, RecentEvent)> = state
        .frontend
        .recent()
        .into_iter()
        .map(|e| (me, e))
        .collect();
    let mut downloads = vec![state.frontend.downloads().snapshot()];
    for (member, asked) in others.iter().zip(answers) {
        recent.extend(asked.recent.into_iter().map(|e| (member.id, e)));
        downloads.extend(asked.downloads);
        statuses.insert(member.id, asked.status);
    }
    statuses.insert(me, Ok(own.clone()));
    Json(document(&state, &own, &statuses, recent, &downloads)).into_response()
}

fn role(status: &NodeStatus) -> &'static str {
    match status.state {
        Role::Leader => "leader",
        Role::Learner => "learner",
        Role::Candidate => "candidate",
        _ => "follower",
    }
}

/// The document, from every member's status.
fn document(
    state: &OpsState,
    own: &NodeStatus,
    statuses: &HashMap<u64, Result<NodeStatus, String>>,
    mut recent: Vec<(u64, RecentEvent)>,
    downloads: &[goproxy_audit::downloads::NodeDownloads],
) -> ui::Dashboard {
    let leader_id = own.current_leader;
    let leader = leader_id
        .and_then(|id| statuses.get(&id))
        .and_then(|s| s.as_ref().ok());
    let newest_log = leader.and_then(|s| s.last_log_index);
    let members: Vec<ui::Member> = own
        .members
        .iter()
        .map(|m| {
            let status = statuses.get(&m.id);
            let ok = status.and_then(|s| s.as_ref().ok());
            let storage = ok.and_then(|s| s.storage.clone());
            ui::Member {
                id: m.id,
                http_addr: m.http_addr.clone(),
                raft_addr: m.raft_addr.clone(),
                role: ok.map_or("unknown", role).to_string(),
                reachable: ok.is_some(),
                last_applied: ok.and_then(|s| s.last_applied),
                lag_entries: match (newest_log, ok.and_then(|s| s.last_applied)) {
                    (Some(newest), Some(applied)) => Some(newest.saturating_sub(applied)),
                    _ => None,
                },
                vip_held: ok.and_then(|s| s.vip_held),
                cache_bytes: storage.as_ref().map(|s| s.cache_bytes),
                disk_free_bytes: storage.as_ref().map(|s| s.disk_free_bytes),
                disk_total_bytes: storage.as_ref().map(|s| s.disk_total_bytes),
                error: status.and_then(|s| s.as_ref().err().cloned()),
            }
        })
        .collect();
    let vip_holder = members
        .iter()
        .find(|m| m.vip_held == Some(true))
        .map(|m| m.id);
    let replication = leader.unwrap_or(own);
    let storage = own.storage.clone().unwrap_or_default();
    let reader = state.consensus.reader();
    let jobs = reader
        .warm_jobs()
        .unwrap_or_default()
        .into_iter()
        .rev()
        .map(|job| ui::Job {
            id: job.spec.id.clone(),
            state: job.state.as_str().to_string(),
            submitted_by: job.submitted_by,
            submitted_at_ms: job.submitted_at_ms,
            done: job.done,
            total: job.total,
            failed: job.failed,
            bytes: job.bytes,
            runner: job.runner,
            pinned: job.spec.pin,
            description: job.spec.description,
        })
        .collect::<Vec<_>>();
    let mut jobs = jobs;
    jobs.sort_by_key(|job| std::cmp::Reverse(job.submitted_at_ms));
    let blocks = reader
        .blocks()
        .unwrap_or_default()
        .into_iter()
        .map(|b| ui::Block {
            rule: b.rule,
            reason: b.reason,
            by: b.by,
            at_ms: b.at_ms,
        })
        .collect();
    recent.sort_by(|a, b| b.1.time.cmp(&a.1.time));
    recent.truncate(RECENT_SHOWN);
    let top = goproxy_audit::downloads::sum(downloads, "", TOP_MODULES);
    let top_modules = top
        .modules
        .iter()
        .map(|m| ui::TopModule {
            module: m.module.clone(),
            version: m
                .versions
                .first()
                .map(|v| v.version.clone())
                .unwrap_or_default(),
            downloads: m.downloads,
        })
        .collect();
    let counters = state.frontend.counters();
    ui::Dashboard {
        node_id: own.node_id,
        generated_at_ms: super::now_ms(),
        cluster: ui::Cluster {
            leader: leader_id,
            term: own.current_term,
            vip_holder,
            replication_mode: replication.replication_mode.to_string(),
            backlog_blobs: replication.backlog_blobs as u64,
            backlog_bytes: replication.backlog_bytes,
            missing_blobs: members
                .iter()
                .filter_map(|m| statuses.get(&m.id).and_then(|s| s.as_ref().ok()))
                .map(|s| s.missing_blobs)
                .sum(),
        },
        members,
        cache: ui::Cache {
            entries: own.index_entries as u64,
            bytes: storage.cache_bytes,
            max_bytes: storage.max_bytes,
            evicted_versions: storage.evicted_versions,
            pinned_versions: storage.pinned_versions,
        },
        counters: ui::Counters {
            requests: counters.requests,
            hits: counters.hits,
            fills: counters.fills,
            refusals: counters.refusals,
            served_bytes: counters.served_bytes,
        },
        top_modules,
        recent: recent
            .into_iter()
            .map(|(node, e)| ui::RecentEvent {
                time: e.time,
                node,
                outcome: serde_json::to_value(e.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                status: e.status,
                path: e.path,
                token: e.token,
                client: e.client,
            })
            .collect(),
        jobs,
        blocks,
    }
}
