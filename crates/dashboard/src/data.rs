//! The JSON document behind `GET /ui/data`: one node's view of the cluster, its cache, its
//! traffic and the operator's work in flight.
//!
//! The node crate fills a [`Dashboard`] and returns it (it implements `IntoResponse`); the page
//! (`assets/app.js`) renders it. Roles, modes, outcomes and states are plain strings so that a
//! value added on the node side shows up (in grey) without a dashboard release. Every field has
//! a serde default, so an older node that omits a newer field still renders.

use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// Everything the page shows, as answered by one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dashboard {
    /// The node that answered: counters and `cache` are its own, and the page restarts its
    /// rate history when a different node answers (the VIP moved).
    pub node_id: u64,
    /// When the node built this document (Unix ms); relative times on the page ("5 min ago")
    /// are computed against it, so a browser with a skewed clock still reads them right.
    pub generated_at_ms: u64,
    /// Consensus and replication health.
    pub cluster: Cluster,
    /// Every member, as probed by the answering node.
    pub members: Vec<Member>,
    /// The answering node's blob cache.
    pub cache: Cache,
    /// The answering node's cumulative request counters.
    pub counters: Counters,
    /// Most downloaded module versions, most first.
    pub top_modules: Vec<TopModule>,
    /// Recent fills and refusals, newest first.
    pub recent: Vec<RecentEvent>,
    /// Prefetch (warm-up) jobs, newest first.
    pub jobs: Vec<Job>,
    /// Operator block rules in force.
    pub blocks: Vec<Block>,
}

/// Consensus and replication health as the answering node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cluster {
    /// The Raft leader, if one is known.
    pub leader: Option<u64>,
    /// Current Raft term; a term that keeps climbing means elections keep failing.
    pub term: u64,
    /// The node holding the virtual IP, if any; it should be the leader.
    pub vip_holder: Option<u64>,
    /// How acknowledged blobs are replicated: `sync`/`synchronous` (green), `degraded`
    /// (amber), `single`, or any other word (grey).
    pub replication_mode: String,
    /// Blobs short of replicas (the repair backlog).
    pub backlog_blobs: u64,
    /// Bytes short of replicas.
    pub backlog_bytes: u64,
    /// Committed blobs the answering node does not hold yet.
    pub missing_blobs: u64,
}

/// One member of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    /// Raft node id.
    pub id: u64,
    /// GOPROXY front-end address.
    pub http_addr: String,
    /// Node-to-node (Raft, replication) address.
    pub raft_addr: String,
    /// `leader`, `follower`, `learner`, or another Raft state (shown as is).
    pub role: String,
    /// Whether the answering node could reach it; the fields below are `None` when not.
    pub reachable: bool,
    /// Index of the last log entry it applied.
    pub last_applied: Option<u64>,
    /// How many entries it is behind the leader.
    pub lag_entries: Option<u64>,
    /// Whether it holds the VIP (`None`: no VIP configured).
    pub vip_held: Option<bool>,
    /// Bytes in its blob cache.
    pub cache_bytes: Option<u64>,
    /// Free bytes on its cache disk.
    pub disk_free_bytes: Option<u64>,
    /// Size of its cache disk.
    pub disk_total_bytes: Option<u64>,
    /// Why it could not be probed, or what it reported wrong.
    pub error: Option<String>,
}

/// The answering node's blob cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cache {
    /// Module versions indexed.
    pub entries: u64,
    /// Bytes held.
    pub bytes: u64,
    /// The eviction threshold, if one is configured (the page then draws a fill bar).
    pub max_bytes: Option<u64>,
    /// Versions evicted since start.
    pub evicted_versions: u64,
    /// Versions pinned (never evicted).
    pub pinned_versions: u64,
}

/// Cumulative counters on the answering node; the page derives rates from two successive
/// documents (and starts over when they drop, after a restart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Requests answered.
    pub requests: u64,
    /// Served from the cache.
    pub hits: u64,
    /// Fetched upstream and cached.
    pub fills: u64,
    /// Refused (denied, blocked, upstream refusal).
    pub refusals: u64,
    /// Response bytes sent.
    pub served_bytes: u64,
}

/// One of the most downloaded module versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopModule {
    /// Module path.
    pub module: String,
    /// Version.
    pub version: String,
    /// Downloads (`.zip` requests).
    pub downloads: u64,
}

/// A recent fill or refusal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecentEvent {
    /// When (RFC 3339).
    pub time: String,
    /// The node that handled it.
    pub node: u64,
    /// `fill`, `hit`, `forwarded`, `denied`, `refused`, `blocked` or `error`.
    pub outcome: String,
    /// HTTP status answered.
    pub status: u16,
    /// Request path, as the client sent it (attacker-controlled: the page shows it as text).
    pub path: String,
    /// Name of the access token used, if any.
    pub token: Option<String>,
    /// Client address, if known.
    pub client: Option<String>,
}

/// A prefetch job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Who submitted it (token name or operator).
    pub submitted_by: String,
    /// When it was submitted (Unix ms).
    pub submitted_at_ms: u64,
    /// Versions fetched so far.
    pub done: u64,
    /// Versions to fetch.
    pub total: u64,
    /// Versions that failed.
    pub failed: u64,
    /// Bytes fetched.
    pub bytes: u64,
    /// The node running it, if it runs.
    pub runner: Option<u64>,
    /// Whether what it fetches is pinned.
    pub pinned: bool,
    /// What it fetches, in the submitter's words.
    pub description: String,
}

/// An operator block rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Block {
    /// `module@range`.
    pub rule: String,
    /// Why.
    pub reason: String,
    /// Who added it.
    pub by: String,
    /// When (Unix ms).
    pub at_ms: u64,
}

impl IntoResponse for Dashboard {
    /// JSON, never cached: every poll must see the node's current state.
    fn into_response(self) -> Response {
        ([(CACHE_CONTROL, "no-store")], Json(self)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_snake_case_and_round_trips() {
        let sample = crate::sample();
        let json = serde_json::to_value(&sample).unwrap();
        assert_eq!(json["cluster"]["vip_holder"], 2);
        assert_eq!(json["members"][2]["lag_entries"], 23);
        assert_eq!(json["members"][0]["error"], serde_json::Value::Null);
        assert_eq!(json["top_modules"][0]["downloads"], 12_842);
        assert_eq!(json["jobs"][0]["submitted_at_ms"], 1_767_225_360_000_u64);
        assert_eq!(json["recent"][0]["time"], "2025-12-31T23:59:58Z");
        let back: Dashboard = serde_json::from_value(json).unwrap();
        assert_eq!(back, sample);
    }

    #[test]
    fn missing_fields_take_their_defaults() {
        let d: Dashboard =
            serde_json::from_str(r#"{"node_id": 1, "members": [{"id": 3}]}"#).unwrap();
        assert_eq!(d.node_id, 1);
        assert_eq!(d.members[0].id, 3);
        assert!(!d.members[0].reachable);
        assert_eq!(d.cluster.leader, None);
    }
}
