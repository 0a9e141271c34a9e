//! The node's configuration: one typed struct, built from defaults, then a TOML file,
//! then `GOPROXY_HA_*` environment variables, then command-line flags, and validated
//! as a whole so every mistake is reported at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use goproxy_http::listener::ListenerConfig;
use goproxy_http::FrontendConfig;
use goproxy_routing::{EnvSpec, RouteSpec};
use goproxy_vcs::{CredentialSpec, VcsConfig};
use serde::{Deserialize, Serialize};

mod routes;
mod vip;
pub use vip::VipConfig;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Raft timing, tuned for a LAN and fast failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// Leader heartbeat period.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomized election timeout.
    #[serde(with = "humantime_serde")]
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout (also the leader lease).
    #[serde(with = "humantime_serde")]
    pub election_timeout_max: Duration,
    /// Log entries since the last snapshot that trigger a new snapshot.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept behind a snapshot for slow followers.
    pub max_in_snapshot_log_to_keep: u64,
    /// Bytes per `InstallSnapshot` chunk a leader sends (and the largest a follower takes):
    /// the same on every member, 64 KiB to 16 MiB.
    pub snapshot_chunk_bytes: u64,
}

/// Bounds of `raft.snapshot_chunk_bytes`.
const SNAPSHOT_CHUNK_BYTES: std::ops::RangeInclusive<u64> = (64 << 10)..=(16 << 20);

impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            snapshot_logs_since_last: 5000,
            max_in_snapshot_log_to_keep: 1000,
            snapshot_chunk_bytes: goproxy_consensus::node::DEFAULT_SNAPSHOT_CHUNK_BYTES,
        }
    }
}

/// One member of a statically configured cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Raft node id.
    pub id: u64,
    /// `host:port` of its Raft/blob gRPC listener.
    pub raft: String,
    /// `host:port` of its GOPROXY front end.
    pub http: String,
}

/// The node-to-node mutual TLS files (`goproxy-ha certs init | issue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The cluster CA certificate(s), PEM. Several may be listed (a CA rotation).
    pub ca_file: PathBuf,
    /// This node's certificate, PEM, naming `urn:goproxy-ha:node:<node_id>`.
    pub cert_file: PathBuf,
    /// Its private key, PEM (mode 0600).
    pub key_file: PathBuf,
}

/// Cluster membership. No peers: a one-member group of this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Address clients and peers use for this node's front end (defaults to `listen`).
    pub http_advertise: Option<String>,
    /// Every member, this node included. The member with the lowest id initialises the
    /// group on first start; the others wait to be contacted.
    pub peers: Vec<PeerConfig>,
    /// Mutual TLS on the node-to-node listener: required for a cluster. Without it a single
    /// node opens no node-to-node listener at all.
    pub tls: Option<TlsFiles>,
    /// Serve and dial the node-to-node port without TLS: anyone who reaches it can act as any
    /// member (append to the log, push blobs, change membership). Only for benchmarks and
    /// isolated labs.
    pub insecure_plaintext: bool,
}

/// Semi-synchronous blob replication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    /// Followers that must hold a new blob (fsynced) before a fill is acknowledged.
    pub sync_replicas: usize,
    /// How long to wait for them before degrading to asynchronous replication.
    #[serde(with = "humantime_serde")]
    pub sync_timeout: Duration,
    /// Most blobs that may be acknowledged while short of replicas; beyond it new fills
    /// are refused until replicas catch up.
    pub max_unreplicated_count: usize,
    /// Most bytes that may be acknowledged while short of replicas.
    pub max_unreplicated_bytes: u64,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            sync_replicas: 1,
            sync_timeout: Duration::from_secs(2),
            max_unreplicated_count: 1000,
            max_unreplicated_bytes: 1 << 30,
        }
    }
}

/// The default log filter: every `goproxy_*` target at info, everything else at warn.
pub const DEFAULT_LOG_FILTER: &str = "warn,goproxy=info";

/// Everything `goproxy-ha serve` needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This node's Raft id (unique in the cluster, > 0).
    pub node_id: u64,
    /// Address of the GOPROXY HTTP front end.
    pub listen: SocketAddr,
    /// Address of the node-to-node gRPC (Raft) listener.
    pub raft_listen: SocketAddr,
    /// Address peers use to reach `raft_listen` (defaults to it).
    pub raft_advertise: Option<String>,
    /// Directory holding the index (sled) and the blobs; nothing is written outside it.
    pub data_dir: PathBuf,
    /// Log line format.
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax (`info`, `goproxy_http=debug,info`); by default
    /// goproxy-ha's own events at info and its dependencies' (openraft's vote and
    /// replication chatter, hyper, sled) at warn. `RUST_LOG` overrides it.
    pub log_level: String,
    /// How long in-flight requests may finish after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Limits of the client listener: header and idle timeouts, connection cap.
    pub http: ListenerConfig,
    /// Front-end and upstream settings.
    pub proxy: FrontendConfig,
    /// Consensus timing.
    pub raft: RaftConfig,
    /// Cluster membership.
    pub cluster: ClusterConfig,
    /// Blob replication.
    pub replication: ReplicationConfig,
    /// The virtual IP held by the leader.
    pub vip: VipConfig,
    /// Route rules of the default environment, in order (`[[route]]`).
    #[serde(rename = "route", skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteSpec>,
    /// Named environments served under `/env/NAME/` (`[env.NAME]`).
    #[serde(rename = "env", skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, EnvSpec>,
    /// How `direct` routes fetch from version control.
    pub vcs: VcsConfig,
    /// Named credential sets for `direct` routes (`[credentials.NAME]`); secrets only in
    /// files or environment variables.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub credentials: BTreeMap<String, CredentialSpec>,
    /// Client access control (`[auth]`); tokens themselves are replicated state
    /// (`goproxy-ha token create`).
    pub auth: AuthConfig,
    /// Client rate limits (`[limits]`; re-read from the configuration file on SIGHUP).
    pub limits: goproxy_access::limits::LimitsConfig,
    /// The per-request audit trail (`[audit]`).
    pub audit: goproxy_audit::AuditConfig,
    /// The disk bound and eviction (`[cache]`).
    pub cache: CacheConfig,
    /// Prefetch jobs (`[warm]`).
    pub warm: WarmConfig,
}

/// `[cache]`: how much blob data the cluster keeps. Without a bound nothing is evicted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Keep the blobs of the cache under this many bytes (zips of the least recently used,
    /// unpinned versions are evicted; their index entries stay).
    pub max_bytes: Option<u64>,
    /// Evict the zips of versions nobody requested for this long.
    #[serde(with = "humantime_serde")]
    pub evict_unused_after: Option<Duration>,
    /// How often the leader checks the bound (and every node exchanges access times).
    #[serde(with = "humantime_serde")]
    pub evict_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_bytes: None,
            evict_unused_after: None,
            evict_interval: Duration::from_secs(30),
        }
    }
}

/// `[warm]`: how the leader runs prefetch jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarmConfig {
    /// Artifacts fetched at once by a job.
    pub concurrency: usize,
}

impl Default for WarmConfig {
    fn default() -> Self {
        Self { concurrency: 8 }
    }
}

/// `[auth]`: what clients without a token may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `allow` (everything: a trusted network), `public-only` (paths no route marks
    /// private) or `deny` (nothing: every client needs a token).
    pub anonymous: goproxy_access::Anonymous,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_id: 1,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            raft_listen: SocketAddr::from(([127, 0, 0, 1], 7080)),
            raft_advertise: None,
            data_dir: PathBuf::from("data"),
            log_format: LogFormat::Text,
            log_level: DEFAULT_LOG_FILTER.into(),
            shutdown_grace: Duration::from_secs(10),
            http: ListenerConfig::default(),
            proxy: FrontendConfig::default(),
            raft: RaftConfig::default(),
            cluster: ClusterConfig::default(),
            replication: ReplicationConfig::default(),
            vip: VipConfig::default(),
            routes: Vec::new(),
            environments: BTreeMap::new(),
            vcs: VcsConfig::default(),
            credentials: BTreeMap::new(),
            auth: AuthConfig::default(),
            limits: Default::default(),
            audit: Default::default(),
            cache: CacheConfig::default(),
            warm: WarmConfig::default(),
        }
    }
}

/// Values that override the file: from the environment or flags, still unparsed so
/// that every bad value can be reported together.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--node-id` / `GOPROXY_HA_NODE_ID`.
    pub node_id: Option<String>,
    /// `--listen` / `GOPROXY_HA_LISTEN`.
    pub listen: Option<String>,
    /// `--raft-listen` / `GOPROXY_HA_RAFT_LISTEN`.
    pub raft_listen: Option<String>,
    /// `--raft-advertise` / `GOPROXY_HA_RAFT_ADVERTISE`.
    pub raft_advertise: Option<String>,
    /// `--data-dir` / `GOPROXY_HA_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--upstream` / `GOPROXY_HA_UPSTREAM`.
    pub upstream: Option<String>,
    /// `--verify-fills` / `GOPROXY_HA_VERIFY_FILLS`.
    pub verify_fills: Option<bool>,
    /// `--log-format` / `GOPROXY_HA_LOG_FORMAT`.
    pub log_format: Option<LogFormat>,
    /// `--log-level` / `GOPROXY_HA_LOG_LEVEL`.
    pub log_level: Option<String>,
    /// `--tls-ca` / `GOPROXY_HA_TLS_CA`.
    pub tls_ca: Option<PathBuf>,
    /// `--tls-cert` / `GOPROXY_HA_TLS_CERT`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key` / `GOPROXY_HA_TLS_KEY`.
    pub tls_key: Option<PathBuf>,
}

/// Most artifacts a prefetch job fetches at once.
const MAX_WARM_CONCURRENCY: usize = 64;

/// Every problem found while loading the configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Loads `file` (if any), applies overrides, validates; reports all problems at once.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigErrors> {
        let mut problems = Vec::new();
        let mut config = match file {
            None => Config::default(),
            Some(path) => match std::fs::read_to_string(path) {
                Err(e) => return Err(ConfigErrors(vec![format!("{}: {e}", path.display())])),
                Ok(text) => match toml::from_str(&text) {
                    Ok(config) => config,
                    Err(e) => return Err(ConfigErrors(vec![format!("{}: {e}", path.display())])),
                },
            },
        };
        config.apply(overrides, &mut problems);
        problems.extend(config.problems());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(problems))
        }
    }

    fn apply(&mut self, o: Overrides, problems: &mut Vec<String>) {
        parse_into(&mut self.node_id, o.node_id, "node id", problems);
        parse_into(&mut self.listen, o.listen, "listen", problems);
        parse_into(
            &mut self.raft_listen,
            o.raft_listen,
            "raft listen",
            problems,
        );
        if let Some(v) = o.raft_advertise {
            self.raft_advertise = Some(v);
        }
        if let Some(v) = o.data_dir {
            self.data_dir = v;
        }
        if let Some(v) = o.upstream {
            self.proxy.upstream = v;
        }
        if let Some(v) = o.verify_fills {
            self.proxy.verify_fills = v;
        }
        if let Some(v) = o.log_format {
            self.log_format = v;
        }
        if let Some(v) = o.log_level {
            self.log_level = v;
        }
        match (o.tls_ca, o.tls_cert, o.tls_key, &mut self.cluster.tls) {
            (None, None, None, _) => {}
            (Some(ca_file), Some(cert_file), Some(key_file), tls) => {
                *tls = Some(TlsFiles {
                    ca_file,
                    cert_file,
                    key_file,
                });
            }
            (ca, cert, key, Some(tls)) => {
                tls.ca_file = ca.unwrap_or(tls.ca_file.clone());
                tls.cert_file = cert.unwrap_or(tls.cert_file.clone());
                tls.key_file = key.unwrap_or(tls.key_file.clone());
            }
            (_, _, _, None) => problems.push(
                "--tls-ca, --tls-cert and --tls-key: give all three (or a [cluster.tls] section)"
                    .into(),
            ),
        }
    }

    /// This configuration with secrets (upstream credentials) shown as `***`: what
    /// `goproxy-ha config` prints.
    pub fn redacted(&self) -> Self {
        Self {
            proxy: self.proxy.redacted(),
            routes: self.routes.iter().map(RouteSpec::redacted).collect(),
            environments: self
                .environments
                .iter()
                .map(|(name, env)| (name.clone(), env.redacted()))
                .collect(),
            ..self.clone()
        }
    }

    /// Semantic checks of a complete configuration.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .proxy
            .problems()
            .into_iter()
            .map(|p| format!("proxy.{p}"))
            .collect();
        if let Err(more) = self.route_table() {
            problems.extend(more);
        }
        problems.extend(
            self.http
                .problems()
                .into_iter()
                .map(|p| format!("http.{p}")),
        );
        problems.extend(
            self.limits
                .problems()
                .into_iter()
                .map(|p| format!("limits.{p}")),
        );
        problems.extend(
            self.audit
                .problems()
                .into_iter()
                .map(|p| format!("audit.{p}")),
        );
        if let Some(path) = &self.audit.path {
            match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                Some(dir) if !dir.is_dir() => problems.push(format!(
                    "audit.path: the directory {} does not exist",
                    dir.display()
                )),
                _ => {}
            }
        }
        if self.cache.max_bytes == Some(0) {
            problems
                .push("cache.max_bytes: must be greater than zero (omit it for no bound)".into());
        }
        if self.cache.evict_unused_after == Some(Duration::ZERO) {
            problems.push("cache.evict_unused_after: must be greater than zero".into());
        }
        if self.cache.evict_interval.is_zero() {
            problems.push("cache.evict_interval: must be greater than zero".into());
        }
        if !(1..=MAX_WARM_CONCURRENCY).contains(&self.warm.concurrency) {
            problems.push(format!(
                "warm.concurrency: between 1 and {MAX_WARM_CONCURRENCY}"
            ));
        }
        if self.node_id == 0 {
            problems.push("node_id: must be greater than 0".into());
        }
        if self.listen == self.raft_listen && self.listen.port() != 0 {
            problems.push(format!(
                "listen and raft_listen must differ (both {})",
                self.listen
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push("data_dir: must not be empty".into());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            problems.push(format!("log_level {:?}: {e}", self.log_level));
        }
        problems.extend(self.cluster_problems());
        problems.extend(self.vip.problems(self.raft.election_timeout_max));
        let raft = &self.raft;
        if raft.heartbeat_interval.is_zero() {
            problems.push("raft.heartbeat_interval: must be greater than zero".into());
        }
        if raft.election_timeout_min <= raft.heartbeat_interval {
            problems.push(
                "raft.election_timeout_min: must be greater than raft.heartbeat_interval".into(),
            );
        }
        if raft.election_timeout_max <= raft.election_timeout_min {
            problems.push(
                "raft.election_timeout_max: must be greater than raft.election_timeout_min".into(),
            );
        }
        if !SNAPSHOT_CHUNK_BYTES.contains(&raft.snapshot_chunk_bytes) {
            problems.push(format!(
                "raft.snapshot_chunk_bytes: {} is outside {}..={}",
                raft.snapshot_chunk_bytes,
                SNAPSHOT_CHUNK_BYTES.start(),
                SNAPSHOT_CHUNK_BYTES.end()
            ));
        }
        problems
    }
}

impl Config {
    /// Whether this node opens a node-to-node listener: with `[cluster.tls]`, or plaintext when
    /// explicitly insecure (a single node without either needs none).
    pub fn serves_node_to_node(&self) -> bool {
        self.cluster.tls.is_some() || self.cluster.insecure_plaintext
    }

    /// The node-to-node transport this configuration asks for: mutual TLS with this node's
    /// certificate, explicit plaintext, or `None` for a single node without TLS (which opens
    /// no node-to-node listener).
    pub fn transport(&self) -> Result<Option<goproxy_rpc::Transport>, String> {
        let Some(tls) = &self.cluster.tls else {
            return Ok(self
                .cluster
                .insecure_plaintext
                .then_some(goproxy_rpc::Transport::Plaintext));
        };
        let transport =
            goproxy_rpc::Transport::from_files(&tls.ca_file, &tls.cert_file, &tls.key_file)
                .map_err(|e| format!("cluster.tls: {e}"))?;
        let expected = goproxy_pki::Identity::Node(self.node_id);
        match transport.identity() {
            Some(identity) if *identity == expected => Ok(Some(transport)),
            other => Err(format!(
                "cluster.tls.cert_file: the certificate names {}, but this is node {} (issue one with: goproxy-ha certs issue --node {})",
                other.map_or("nothing".to_string(), |i| i.to_string()),
                self.node_id,
                self.node_id
            )),
        }
    }

    fn cluster_problems(&self) -> Vec<String> {
        let peers = &self.cluster.peers;
        let mut problems = Vec::new();
        match (&self.cluster.tls, self.cluster.insecure_plaintext) {
            (Some(_), true) => problems.push(
                "cluster.insecure_plaintext: cannot be set together with cluster.tls".into(),
            ),
            (None, false) if !peers.is_empty() => problems.push(
                "cluster.tls: required for a cluster, so that no one else can speak Raft, push blobs or change membership (create certificates with `goproxy-ha certs init` and `goproxy-ha certs issue --node N`; see cluster/RUNBOOK.md). On an isolated lab network only, cluster.insecure_plaintext = true runs without it".into(),
            ),
            _ => {}
        }
        if self.cluster.tls.is_some() {
            if let Err(problem) = self.transport() {
                problems.push(problem);
            }
        }
        if peers.is_empty() {
            return problems;
        }
        let mut ids: Vec<u64> = peers.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != peers.len() {
            problems.push("cluster.peers: ids must be unique".into());
        }
        if !peers.iter().any(|p| p.id == self.node_id) {
            problems.push(format!(
                "cluster.peers: must include this node (node_id {})",
                self.node_id
            ));
        }
        if ids.contains(&0) {
            problems.push("cluster.peers: ids must be greater than 0".into());
        }
        for peer in peers {
            for (what, addr) in [("raft", &peer.raft), ("http", &peer.http)] {
                if addr
                    .rsplit_once(':')
                    .and_then(|(_, port)| port.parse::<u16>().ok())
                    .is_none()
                {
                    problems.push(format!(
                        "cluster.peers[id={}].{what}: {addr:?} is not host:port",
                        peer.id
                    ));
                }
            }
        }
        if self.replication.sync_replicas >= peers.len() {
            problems.push(format!(
                "replication.sync_replicas: {} needs at least {} members",
                self.replication.sync_replicas,
                self.replication.sync_replicas + 1
            ));
        }
        if self.replication.max_unreplicated_count == 0
            || self.replication.max_unreplicated_bytes == 0
        {
            problems
                .push("replication.max_unreplicated_count/bytes: must be greater than zero".into());
        }
        if self.replication.sync_timeout.is_zero() {
            problems.push("replication.sync_timeout: must be greater than zero".into());
        }
        problems
    }
}

fn parse_into<T: std::str::FromStr>(
    slot: &mut T,
    value: Option<String>,
    what: &str,
    problems: &mut Vec<String>,
) where
    T::Err: std::fmt::Display,
{
    if let Some(text) = value {
        match text.parse() {
            Ok(v) => *slot = v,
            Err(e) => problems.push(format!("{what} {text:?}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {

    /// The default filter shows goproxy-ha's own info events and hides its dependencies'
    /// (openraft's vote and replication lines among them), which a newcomer found noisy.
    #[test]
    fn the_default_log_filter_keeps_dependencies_at_warn() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                Config::default().log_level,
            ))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "goproxy_ha::server", "ours at info");
            tracing::info!(target: "goproxy_consensus::node", "a crate of ours at info");
            tracing::info!(target: "openraft::core", "vote response");
            tracing::warn!(target: "openraft::core", "theirs at warn");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("ours at info"), "{text}");
        assert!(text.contains("a crate of ours at info"), "{text}");
        assert!(!text.contains("vote response"), "{text}");
        assert!(text.contains("theirs at warn"), "{text}");
    }
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().problems(), Vec::<String>::new());
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "node_id = 0\n[raft]\nheartbeat_interval = \"200ms\"\n[proxy]\nupstream = \"direct\"\n",
        )
        .unwrap();
        let overrides = Overrides {
            listen: Some("not-an-address".into()),
            log_level: Some("[".into()),
            ..Overrides::default()
        };
        let errors = Config::load(Some(&file), overrides).unwrap_err().0;
        let text = errors.join("\n");
        for expected in [
            "node_id",
            "listen",
            "election_timeout_min",
            "direct",
            "log_level",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/a\"\n",
        )
        .unwrap();
        let overrides = Overrides {
            data_dir: Some("/srv/b".into()),
            ..Overrides::default()
        };
        let config = Config::load(Some(&file), overrides).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("/srv/b"));
    }

    #[test]
    fn the_example_configurations_use_only_real_keys() {
        let cluster = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cluster");
        for file in [
            "single-node.toml",
            "node1.toml",
            "node2.toml",
            "node3.toml",
            "compose/node1.toml",
            "compose/node2.toml",
            "compose/node3.toml",
        ] {
            let text = std::fs::read_to_string(cluster.join(file)).unwrap();
            let config: Config =
                toml::from_str(&text).unwrap_or_else(|e| panic!("cluster/{file}: {e}"));
            if let Err(problems) = config.route_table() {
                panic!("cluster/{file}: routes: {problems:?}");
            }
            let clustered = !config.cluster.peers.is_empty();
            assert_eq!(
                config.cluster.tls.is_some(),
                clustered,
                "cluster/{file}: a cluster example must configure mutual TLS"
            );
        }
    }

    #[test]
    fn a_cluster_without_tls_is_refused_unless_explicitly_insecure() {
        let peers = "[[cluster.peers]]\nid = 1\nraft = \"127.0.0.1:7081\"\nhttp = \"127.0.0.1:8081\"\n\
                     [[cluster.peers]]\nid = 2\nraft = \"127.0.0.1:7082\"\nhttp = \"127.0.0.1:8082\"\n";
        let mut config: Config = toml::from_str(peers).unwrap();
        let text = config.problems().join("\n");
        assert!(text.contains("cluster.tls: required"), "{text}");
        config.cluster.insecure_plaintext = true;
        assert_eq!(config.problems(), Vec::<String>::new());
    }

    #[test]
    fn route_mistakes_are_reported_with_the_rest_and_secrets_stay_hidden() {
        let text = "node_id = 0\n\
                    [[route]]\nmatch = \"corp.example\"\nupstream = \"https://u:s3cret@athens.example|direct\"\ncredentials = \"corp\"\n\
                    [[route]]\nmatch = \"[x\"\ndeny = true\n\
                    [[route]]\nmatch = \"other.example\"\nupstream = \"https://athens.example\"\ncredentials = \"corp\"\n\
                    [[route]]\nmatch = \"third.example\"\nupstream = \"direct\"\ncredentials = \"nobody\"\n\
                    [credentials.corp]\ntokens = [{ host = \"git.corp.example\", token_env = \"CORP_TOKEN\" }]\n\
                    [env.prod]\nmode = \"cache-only\"\n";
        let config: Config = toml::from_str(text).unwrap();
        let problems = config.problems().join("\n");
        assert!(
            problems.contains("node_id: must be greater than 0"),
            "{problems}"
        );
        assert!(
            problems.contains("route[2].credentials: credential sets are used by \"direct\" only"),
            "{problems}"
        );
        assert!(
            problems.contains("route[3].credentials: no credential set named \"nobody\""),
            "{problems}"
        );
        assert!(!problems.contains("route[0]"), "{problems}");
        let open: Config =
            toml::from_str("[proxy]\nupstream = \"https://proxy.golang.org,direct\"\n").unwrap();
        let open_problems = open.problems().join("\n");
        assert!(
            open_problems.contains("proxy.upstream: \"direct\" is allowed only in a [[route]]"),
            "{open_problems}"
        );
        assert!(problems.contains("route[1].match:"), "{problems}");
        assert!(!problems.contains("s3cret"), "{problems}");
        let dump = toml::to_string_pretty(&config.redacted()).unwrap();
        assert!(!dump.contains("s3cret"), "{dump}");
        assert!(dump.contains("https://***@athens.example|direct"), "{dump}");
        assert!(dump.contains("[env.prod]"), "{dump}");
    }

    #[test]
    fn checksum_verification_mistakes_are_reported() {
        let text = "[proxy]\nsumdb = []\nsumdb_unreachable = \"accept\"\n\
                    [[route]]\nmatch = \"a.example\"\nupstream = \"https://athens.example\"\nsumdb = \"sum.other.example\"\n\
                    [[route]]\nmatch = \"b.example\"\nupstream = \"https://athens.example\"\nsumdb = \"off\"\n\
                    [[route]]\nmatch = \"c.example\"\nupstream = \"direct\"\nsumdb = \"off\"\n";
        let config: Config = toml::from_str(text).unwrap();
        let problems = config.problems().join("\n");
        assert!(
            problems.contains("proxy.verify_fills: fills are verified against a checksum database, and none is configured"),
            "{problems}"
        );
        assert!(
            problems.contains(
                "route[0].sumdb: no [[proxy.sumdb]] named \"sum.other.example\" (configured: none)"
            ),
            "{problems}"
        );
        assert!(!problems.contains("route[1]"), "{problems}");
        assert!(
            problems.contains(
                "route[2].sumdb: a private rule (direct or with credentials) is never checked"
            ),
            "{problems}"
        );
        let off: Config = toml::from_str("[proxy]\nsumdb = []\nverify_fills = false\n").unwrap();
        assert_eq!(off.problems(), Vec::<String>::new());
        // The default verifies against sum.golang.org, failing closed.
        let default = Config::default();
        assert!(default.proxy.verify_fills);
        assert_eq!(default.proxy.sumdb[0].name, "sum.golang.org");
        assert_eq!(
            default.proxy.sumdb_unreachable,
            goproxy_http::config::Unreachable::Refuse
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(&file, "listne = \"127.0.0.1:9000\"\n").unwrap();
        assert!(Config::load(Some(&file), Overrides::default()).is_err());
    }
}
