//! Example data: a healthy three-node cluster led by node 2, for tests and docs.

use crate::data::{
    Block, Cache, Cluster, Counters, Dashboard, Job, Member, RecentEvent, TopModule,
};

/// `generated_at_ms` of the sample: 2026-01-01T00:00:00Z. Fixed, so the sample is the same on
/// every run; the page shows times relative to it.
pub const SAMPLE_TIME_MS: u64 = 1_767_225_600_000;

const GIB: u64 = 1 << 30;
const MINUTE_MS: u64 = 60_000;
/// Average bytes fetched per module version by the sample's prefetch jobs.
const VERSION_BYTES: u64 = 5_000_000;

/// A healthy three-node cluster as node 2 (the leader, holding the VIP) reports it: node 3
/// lags a little and its disk is 88 % full, a prefetch job runs, one is queued, two block
/// rules are in force. Example data for tests (the node's, the dashboard's) and docs.
pub fn sample() -> Dashboard {
    Dashboard {
        node_id: 2,
        generated_at_ms: SAMPLE_TIME_MS,
        cluster: Cluster {
            leader: Some(2),
            term: 7,
            vip_holder: Some(2),
            replication_mode: "sync".into(),
            backlog_blobs: 0,
            backlog_bytes: 0,
            missing_blobs: 0,
        },
        members: vec![
            member(1, "follower", 48_213, 0, 41 * GIB, 180 * GIB),
            member(2, "leader", 48_213, 0, 41 * GIB + GIB / 3, 176 * GIB),
            member(3, "follower", 48_190, 23, 40 * GIB, 30 * GIB),
        ],
        cache: Cache {
            entries: 18_432,
            bytes: 41 * GIB + GIB / 3,
            max_bytes: Some(50 * GIB),
            evicted_versions: 1_204,
            pinned_versions: 312,
        },
        counters: Counters {
            requests: 1_843_221,
            hits: 1_702_118,
            fills: 48_210,
            refusals: 1_932,
            served_bytes: 2_310 * GIB,
        },
        top_modules: [
            ("golang.org/x/net", "v0.33.0", 12_842),
            ("google.golang.org/grpc", "v1.70.0", 9_411),
            ("github.com/stretchr/testify", "v1.10.0", 8_930),
            ("golang.org/x/sys", "v0.29.0", 8_002),
            ("github.com/prometheus/client_golang", "v1.20.5", 5_117),
            ("go.uber.org/zap", "v1.27.0", 4_090),
            ("k8s.io/client-go", "v0.32.1", 3_822),
            ("github.com/spf13/cobra", "v1.8.1", 3_104),
        ]
        .into_iter()
        .map(|(module, version, downloads)| TopModule {
            module: module.into(),
            version: version.into(),
            downloads,
        })
        .collect(),
        recent: [
            (
                "23:59:58",
                2,
                "fill",
                200,
                "/github.com/google/uuid/@v/v1.6.0.zip",
                Some("ci-runner"),
            ),
            (
                "23:59:51",
                2,
                "blocked",
                410,
                "/github.com/evil/typosquat/@v/v0.0.1.zip",
                Some("ci-runner"),
            ),
            (
                "23:59:40",
                1,
                "denied",
                403,
                "/corp.example.com/secret/@v/list",
                None,
            ),
            (
                "23:59:12",
                2,
                "fill",
                200,
                "/golang.org/x/text/@v/v0.21.0.mod",
                Some("alice"),
            ),
            (
                "23:58:30",
                3,
                "forwarded",
                200,
                "/golang.org/x/tools/@v/v0.29.0.info",
                Some("ci-runner"),
            ),
            (
                "23:57:02",
                2,
                "refused",
                404,
                "/github.com/nope/missing/@v/v9.9.9.info",
                Some("bob"),
            ),
            (
                "23:55:47",
                2,
                "error",
                502,
                "/gopkg.in/yaml.v3/@v/v3.0.1.zip",
                Some("ci-runner"),
            ),
        ]
        .into_iter()
        .map(|(hms, node, outcome, status, path, token)| RecentEvent {
            time: format!("2025-12-31T{hms}Z"),
            node,
            outcome: outcome.into(),
            status,
            path: path.into(),
            token: token.map(Into::into),
            client: Some(format!("10.1.4.{}", 10 + node)),
        })
        .collect(),
        jobs: [
            (
                "job-0142",
                "running",
                412,
                1_000,
                3,
                Some(2),
                4,
                "alice",
                "k8s.io/kubernetes v1.32 closure",
            ),
            (
                "job-0141",
                "queued",
                0,
                250,
                0,
                None,
                2,
                "alice",
                "github.com/hashicorp/* latest",
            ),
            (
                "job-0140",
                "done",
                180,
                180,
                0,
                None,
                95,
                "release-bot",
                "golang.org/x/... all tags",
            ),
            (
                "job-0139",
                "failed",
                37,
                40,
                3,
                None,
                240,
                "release-bot",
                "go.opentelemetry.io/otel v1.34",
            ),
        ]
        .into_iter()
        .map(
            |(id, state, done, total, failed, runner, minutes_ago, by, description)| Job {
                id: id.into(),
                state: state.into(),
                submitted_by: by.into(),
                submitted_at_ms: SAMPLE_TIME_MS - minutes_ago * MINUTE_MS,
                done,
                total,
                failed,
                bytes: done * VERSION_BYTES,
                runner,
                pinned: state != "failed",
                description: description.into(),
            },
        )
        .collect(),
        blocks: vec![
            Block {
                rule: "github.com/evil/typosquat@*".into(),
                reason: "typosquat of github.com/spf13/cobra".into(),
                by: "alice".into(),
                at_ms: SAMPLE_TIME_MS - 3 * 24 * 60 * MINUTE_MS,
            },
            Block {
                rule: "golang.org/x/crypto@<v0.31.0".into(),
                reason: "CVE-2024-45337".into(),
                by: "security-bot".into(),
                at_ms: SAMPLE_TIME_MS - 26 * 60 * MINUTE_MS,
            },
        ],
    }
}

/// A reachable member of the sample cluster at 10.0.0.`id`.
fn member(id: u64, role: &str, applied: u64, lag: u64, cache: u64, free: u64) -> Member {
    Member {
        id,
        http_addr: format!("10.0.0.{id}:8080"),
        raft_addr: format!("10.0.0.{id}:7080"),
        role: role.into(),
        reachable: true,
        last_applied: Some(applied),
        lag_entries: Some(lag),
        vip_held: Some(role == "leader"),
        cache_bytes: Some(cache),
        disk_free_bytes: Some(free),
        disk_total_bytes: Some(250 * GIB),
        error: None,
    }
}
