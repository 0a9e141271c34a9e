//! Tunables of the front end, filled in by the node's validated configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Front-end behaviour: upstream access and cache lifetimes of mutable answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrontendConfig {
    /// Upstream list in GOPROXY syntax (`https://a,https://b|https://c`, `off`).
    pub upstream: String,
    /// Time allowed to establish an upstream connection.
    #[serde(with = "humantime_serde")]
    pub upstream_connect_timeout: Duration,
    /// Time allowed for an upstream answer to start, and between two body chunks.
    #[serde(with = "humantime_serde")]
    pub upstream_timeout: Duration,
    /// Total time one fill (all upstream attempts, validation and commit) may take.
    #[serde(with = "humantime_serde")]
    pub fill_timeout: Duration,
    /// Attempts per upstream for retryable failures (timeouts, 429, 5xx).
    pub upstream_attempts: u32,
    /// How long an upstream `list` or `@latest` answer is served without asking again.
    #[serde(with = "humantime_serde")]
    pub list_ttl: Duration,
    /// How long an expired `list`/`@latest` answer may still be served when the upstream fails.
    #[serde(with = "humantime_serde")]
    pub stale_if_error: Duration,
    /// How long an upstream "not found" is remembered.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// Hosts (`host` or `host:port`) an upstream may redirect to besides itself (a CDN for
    /// zips, say). Redirects anywhere else are refused, never followed and cached.
    pub upstream_redirect_hosts: Vec<String>,
    /// Free space (bytes) the blob filesystem must keep: below it this node refuses fills (a
    /// leader hands them to another voter) and `/readyz` answers 503.
    pub min_free_bytes: u64,
    /// Memory (bytes) for keeping artifacts up to 2 MiB (`.info`, `.mod`, most zips) in RAM,
    /// so cache hits on them skip the disk. 0 disables it.
    pub memory_cache_bytes: u64,
    /// Checksum databases served under `/sumdb/NAME/` (`[[proxy.sumdb]]`; none: clients
    /// ask the databases themselves).
    pub sumdb: Vec<goproxy_sumdb::Database>,
    /// Verify every fill of a public module's `.mod` and `.zip` against a checksum database
    /// (the first of `sumdb`, or a route's `sumdb`) before it is acknowledged; a mismatch is
    /// refused and nothing is cached.
    pub verify_fills: bool,
    /// What a fill does when the checksum database cannot be reached: `refuse` (fail closed,
    /// 404 with the reason, so clients with a fallback go on) or `accept` (serve and cache
    /// it, marked unverified; it is verified as soon as the database answers again).
    pub sumdb_unreachable: Unreachable,
    /// How often the leader verifies fills accepted unverified.
    #[serde(with = "humantime_serde")]
    pub sumdb_recheck_interval: Duration,
    /// Members serve HTTPS (set by the node from `[http.tls]`, not configured here):
    /// forwarded misses go to the leader over HTTPS, verified against these roots.
    #[serde(skip)]
    pub peer_https: Option<PeerHttps>,
}

/// How a member verifies the other members' client listeners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerHttps {
    /// PEM certificates of the CA that signed the members' HTTPS certificates (none: the
    /// public web roots).
    pub ca_pem: Option<Vec<u8>>,
}

/// [`FrontendConfig::sumdb_unreachable`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unreachable {
    /// Fail closed.
    #[default]
    Refuse,
    /// Serve unverified, verify later.
    Accept,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        Self {
            upstream: "https://proxy.golang.org".into(),
            upstream_connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(30),
            fill_timeout: Duration::from_secs(300),
            upstream_attempts: 3,
            list_ttl: Duration::from_secs(300),
            stale_if_error: Duration::from_secs(7 * 24 * 3600),
            negative_ttl: Duration::from_secs(60),
            upstream_redirect_hosts: Vec::new(),
            min_free_bytes: 64 << 20,
            memory_cache_bytes: 16 << 20,
            sumdb: vec![goproxy_sumdb::Database::sum_golang_org()],
            verify_fills: true,
            sumdb_unreachable: Unreachable::Refuse,
            sumdb_recheck_interval: Duration::from_secs(60),
            peer_https: None,
        }
    }
}

impl FrontendConfig {
    /// These settings with credentials in upstream URLs shown as `***` (for dumps and logs).
    pub fn redacted(&self) -> Self {
        Self {
            upstream: crate::upstream::redact_list(&self.upstream),
            ..self.clone()
        }
    }

    /// Every problem with these settings, so all can be reported at once.
    pub fn problems(&self) -> Vec<String> {
        // `upstream` is checked where it is compiled into the route table (it is the
        // default route), with the route rules.
        let mut problems = Vec::new();
        problems.extend(goproxy_sumdb::config::problems("sumdb", &self.sumdb));
        if self.verify_fills && self.sumdb.is_empty() {
            problems.push(
                "verify_fills: fills are verified against a checksum database, and none is configured ([[proxy.sumdb]]); configure one or set verify_fills = false".into(),
            );
        }
        if self.sumdb_recheck_interval < Duration::from_millis(100) {
            problems.push("sumdb_recheck_interval: at least 100ms".into());
        }
        if self.upstream_attempts == 0 {
            problems.push("upstream_attempts: must be at least 1".into());
        }
        for (name, value) in [
            ("upstream_connect_timeout", self.upstream_connect_timeout),
            ("upstream_timeout", self.upstream_timeout),
            ("fill_timeout", self.fill_timeout),
        ] {
            if value.is_zero() {
                problems.push(format!("{name}: must be greater than zero"));
            }
        }
        if self.fill_timeout < self.upstream_timeout {
            problems.push("fill_timeout: must be at least upstream_timeout".into());
        }
        problems
    }
}
