//! Command-line interface. Every `serve` flag also reads a `GOPROXY_HA_*` variable;
//! precedence is flag > environment > config file > built-in default.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use goproxy_ha::admin::AdminTls;
use goproxy_ha::config::{LogFormat, Overrides};

/// goproxy-ha: a high-availability, clustered Go module proxy (GOPROXY server).
#[derive(Debug, Parser)]
#[command(name = "goproxy-ha", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: the GOPROXY HTTP front end and its Raft member.
    Serve(ConfigArgs),
    /// Validate the configuration and print it as TOML, with every default filled in (and
    /// credentials in upstream URLs shown as ***).
    Config(ConfigArgs),
    /// Inspect or change the cluster.
    Cluster(ClusterArgs),
    /// Debug the route table: which rule and upstream a module path takes.
    #[command(subcommand)]
    Route(RouteCommand),
    /// Create the cluster CA and the node and admin certificates for node-to-node mutual TLS.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Failover drill: hand leadership (and the VIP) to another member under a live probe and
    /// report the outage the probe saw. Refuses to start unless every member is reachable and
    /// caught up, replication is in sync, the VIP is on the leader only, and the probe succeeds.
    Drill(DrillArgs),
    /// Create, list and revoke client tokens (over the admin service, with an admin
    /// certificate; a token is in force on every node once its entry commits).
    Token(TokenArgs),
    /// Read the replicated admin trail: every operator action, in log order, from any node.
    Audit(AuditArgs),
    /// Download counts per module and version, summed across the cluster (GOPROXY_HA_TOKEN:
    /// an admin token when anonymous clients are not let in; GOPROXY_HA_HTTP_CA: the CA of
    /// members serving HTTPS).
    Stats {
        /// A member's client address (`host:port`, or `https://host:port`).
        #[arg(long, default_value = "127.0.0.1:8080")]
        node: String,
        /// Only modules whose path starts with this.
        #[arg(long, default_value = "")]
        module: String,
        /// The most downloaded modules shown.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// The JSON `/stats` answers.
        #[arg(long)]
        json: bool,
    },
    /// Prefetch module versions into the cache (a job the leader runs; a new leader resumes
    /// it), follow it with a progress bar, or see and cancel jobs. Talks to a member's client
    /// port: GOPROXY_HA_TOKEN is a `warm` or `admin` token when anonymous clients are not
    /// let in, GOPROXY_HA_HTTP_CA the CA of members serving HTTPS.
    Warm(WarmArgs),
    /// Remove a cached version on every node (a tombstone through Raft): every node drops its
    /// bytes and the next request fills it again. Without a purge the first committed content
    /// is served forever. (Admin certificate.)
    Purge(PurgeArgs),
    /// Block a module, or a version range of it, on every node: its artifacts answer 403 with
    /// the reason (clients do not fall back to another proxy). `--list` shows the rules.
    /// (Admin certificate.)
    Block(BlockArgs),
    /// Lift a block rule (as `block --list` shows it). (Admin certificate.)
    Unblock(UnblockArgs),
    /// Internal: the VIP guard process `serve` starts when `[vip]` is configured. It owns the
    /// address, reads `hold <deadline>` / `release` on stdin and drops the VIP at the deadline
    /// or when stdin closes.
    #[command(hide = true)]
    VipGuard(goproxy_vip::GuardConfig),
}

/// `goproxy-ha cluster [--ca F --cert F --key F] …`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The admin identity for join, leave and transfer-leader.
    #[command(flatten)]
    pub tls: AdminTls,
    /// What to do.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// `goproxy-ha certs …`.
/// `goproxy-ha token …`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub tls: AdminTls,
    /// A member's node-to-node address (followers redirect changes to the leader).
    #[arg(
        long,
        global = true,
        default_value = "127.0.0.1:7080",
        value_name = "HOST:PORT"
    )]
    pub via: String,
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// Client token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (shown once: only its hash is stored).
    Create {
        /// Unique name (1 to 64 of a-z 0-9 . _ -), e.g. `ci` or `alice-laptop`.
        #[arg(long)]
        name: String,
        /// read (GOPROXY and sumdb endpoints), warm (also prefetch jobs) or admin (also the
        /// cluster, tokens and purges).
        #[arg(long, default_value = "read", value_parser = ["read", "warm", "admin"])]
        role: String,
        /// Paths it may read, `go help private` syntax (default: every path).
        #[arg(long, value_name = "GLOBS")]
        allow: Option<String>,
        /// Paths it may not read even when allowed.
        #[arg(long, value_name = "GLOBS")]
        deny: Option<String>,
        /// Lifetime (`90d`, `12h`; at least 1s); default: never expires.
        #[arg(long, value_parser = parse_lifetime)]
        expires: Option<Duration>,
    },
    /// List the tokens (names, roles, paths, expiry; never secrets).
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token on every node.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// `goproxy-ha warm …`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WarmArgs {
    /// A member's client address (`host:port`, or `https://host:port`).
    #[arg(long, global = true, default_value = "127.0.0.1:8080")]
    pub node: String,
    /// Warm the whole requirement graph of this go.mod.
    #[arg(long, value_name = "FILE", group = "source")]
    pub go_mod: Option<PathBuf>,
    /// Warm exactly what this go.sum lists.
    #[arg(long, value_name = "FILE", group = "source")]
    pub go_sum: Option<PathBuf>,
    /// Warm the `MODULE@VERSION` lines of this file (and their requirement graphs).
    #[arg(long, value_name = "FILE", group = "source")]
    pub list: Option<PathBuf>,
    /// Only the versions named, not their requirements.
    #[arg(long)]
    pub no_deps: bool,
    /// Never evict what this job fetches (`warm unpin ID` lifts it).
    #[arg(long)]
    pub pin: bool,
    /// Shown in `warm status` and on the dashboard.
    #[arg(long)]
    pub description: Option<String>,
    /// Print the job's id and return instead of following it.
    #[arg(long)]
    pub no_wait: bool,
    /// `MODULE@VERSION` to warm (with their requirement graphs).
    #[arg(value_name = "MODULE@VERSION", group = "source")]
    pub targets: Vec<String>,
    #[command(subcommand)]
    pub command: Option<WarmCommand>,
}

/// Prefetch job commands.
#[derive(Debug, Subcommand)]
pub enum WarmCommand {
    /// Every job, or one (with its newest failures).
    Status {
        /// The job's id.
        id: Option<String>,
        /// JSON.
        #[arg(long)]
        json: bool,
    },
    /// Follow a job until it ends.
    Follow {
        /// The job's id.
        id: String,
    },
    /// Stop a job.
    Cancel {
        /// The job's id.
        id: String,
    },
    /// Let eviction drop what a job pinned.
    Unpin {
        /// The job's id.
        id: String,
    },
}

/// `goproxy-ha purge MODULE@VERSION`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub tls: AdminTls,
    /// A member's node-to-node address (followers redirect to the leader).
    #[arg(long, default_value = "127.0.0.1:7080", value_name = "HOST:PORT")]
    pub via: String,
    /// The version to purge.
    #[arg(value_name = "MODULE@VERSION")]
    pub target: String,
}

/// `goproxy-ha block MODULE[@RANGE] --reason TEXT` / `block --list`.
#[derive(Debug, Args)]
pub struct BlockArgs {
    #[command(flatten)]
    pub tls: AdminTls,
    /// A member's node-to-node address (followers redirect to the leader).
    #[arg(long, default_value = "127.0.0.1:7080", value_name = "HOST:PORT")]
    pub via: String,
    /// `MODULE` (every version) or `MODULE@RANGE`: `v1.2.3`, `<v1.2.5`,
    /// `>=v1.0.0,<v1.2.5`.
    #[arg(value_name = "MODULE[@RANGE]", required_unless_present = "list")]
    pub rule: Option<String>,
    /// Why: shown to every client refused.
    #[arg(long, required_unless_present = "list")]
    pub reason: Option<String>,
    /// List the rules in force instead.
    #[arg(long, conflicts_with_all = ["rule", "reason"])]
    pub list: bool,
}

/// `goproxy-ha unblock MODULE[@RANGE]`.
#[derive(Debug, Args)]
pub struct UnblockArgs {
    #[command(flatten)]
    pub tls: AdminTls,
    /// A member's node-to-node address (followers redirect to the leader).
    #[arg(long, default_value = "127.0.0.1:7080", value_name = "HOST:PORT")]
    pub via: String,
    /// The rule as `block --list` shows it.
    #[arg(value_name = "MODULE[@RANGE]")]
    pub rule: String,
}

/// `goproxy-ha audit …`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub tls: AdminTls,
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The admin trail as one member holds it (every member holds the same, in log order).
    Admin {
        /// A member's node-to-node address.
        #[arg(long, default_value = "127.0.0.1:7080", value_name = "HOST:PORT")]
        via: String,
        /// Only actions since this long ago (`1h`, `7d`) or this time (RFC 3339).
        #[arg(long, value_parser = parse_since)]
        since: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// `--expires`: a duration of at least a second (`0s` must not mean "never").
fn parse_lifetime(value: &str) -> Result<Duration, String> {
    let lifetime = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if lifetime < Duration::from_secs(1) {
        return Err("at least 1s (omit --expires for a token that never expires)".into());
    }
    Ok(lifetime)
}

/// `--since`: a duration ago, or an RFC 3339 time; milliseconds since the Unix epoch.
fn parse_since(value: &str) -> Result<u64, String> {
    let at = match humantime::parse_duration(value) {
        Ok(ago) => std::time::SystemTime::now()
            .checked_sub(ago)
            .ok_or("too long ago")?,
        Err(_) => humantime::parse_rfc3339_weak(value)
            .map_err(|e| format!("{value:?}: neither a duration (1h, 7d) nor a time ({e})"))?,
    };
    Ok(at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64))
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create a cluster CA: DIR/ca.pem (give it to every node and operator) and DIR/ca.key
    /// (keep it off the nodes; it signs certificates).
    Init {
        /// Where to write the CA.
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: PathBuf,
        /// The CA's name.
        #[arg(long, default_value = "goproxy-ha cluster CA")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Issue a certificate signed by the CA in DIR: for node N (DIR/node-N.pem, .key) or for
    /// an operator (DIR/admin-NAME.pem, .key).
    Issue {
        /// Where the CA is, and where the certificate is written.
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: PathBuf,
        /// A node certificate for this node id.
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "admin",
            conflicts_with = "admin"
        )]
        node: Option<u64>,
        /// An admin certificate for this operator name (a-z 0-9 . _ -).
        #[arg(long, value_name = "NAME")]
        admin: Option<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

/// `goproxy-ha route …`.
#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Print the environment, the rule (and which of its patterns matched), the upstream list
    /// and the credential set a module path takes, exactly as a node with this configuration
    /// routes it. Exits 0 when the path would be fetched or served, 3 when it is denied.
    Explain {
        /// A module path, optionally with @VERSION (only the path decides the route).
        #[arg(value_name = "MODULE[@VERSION]")]
        module: String,
        /// The environment (served under /env/NAME/) [default: the root one].
        #[arg(long, value_name = "NAME")]
        env: Option<String>,
        /// Where the configuration comes from.
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// `goproxy-ha cluster …`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show every member: role, term, log/applied index, lag, replication mode, backlog.
    Status {
        /// HTTP address of any member (host:port).
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
        node: String,
    },
    /// Add a running node (configured with peers, not the lowest id) to the group: it joins
    /// as a learner, catches up, then becomes a voter. A node that does not catch up within
    /// --catch-up-timeout stays a learner (it does not count toward quorum) and the command
    /// fails with the reason.
    Join {
        /// Raft (gRPC) address of any member; the change is redirected to the leader.
        #[arg(long, value_name = "HOST:PORT")]
        via: String,
        /// The new node's id.
        #[arg(long)]
        id: u64,
        /// The new node's Raft address.
        #[arg(long, value_name = "HOST:PORT")]
        raft: String,
        /// The new node's GOPROXY HTTP address.
        #[arg(long, value_name = "HOST:PORT")]
        http: String,
        /// How long the new node may take to catch up before it is left a learner (at most 10m).
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        catch_up_timeout: Duration,
    },
    /// Remove a node (voter or learner) from the group. Refused for the leader (transfer
    /// first) and when the voters left would not have a live majority.
    Leave {
        /// Raft (gRPC) address of any member; the change is redirected to the leader.
        #[arg(long, value_name = "HOST:PORT")]
        via: String,
        /// The id of the node to remove.
        #[arg(long)]
        id: u64,
    },
    /// Hand leadership (and with it the VIP) to a caught-up voter: the other voters stop
    /// campaigning, the leader goes quiet for one leader lease, the target wins the election.
    TransferLeader {
        /// Raft (gRPC) address of any member; the request is redirected to the leader.
        #[arg(long, value_name = "HOST:PORT")]
        via: String,
        /// The id of the node that should lead.
        #[arg(long)]
        to: u64,
    },
}

/// `goproxy-ha drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The admin identity for the transfer.
    #[command(flatten)]
    pub tls: AdminTls,
    /// HTTP address of any member (host:port).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub node: String,
    /// URL the probe requests throughout, normally through the VIP
    /// (e.g. http://10.0.0.100:8080/github.com/gin-gonic/gin/@v/v1.8.1.info).
    #[arg(long, value_name = "URL")]
    pub probe: String,
    /// The member that should lead afterwards [default: the most caught-up follower].
    #[arg(long, value_name = "ID")]
    pub to: Option<u64>,
    /// Time between probe requests (each on a new connection).
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Bound on one probe request.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Most log entries any member may lag the leader by.
    #[arg(long, default_value_t = 100)]
    pub max_lag: u64,
    /// How long the probe must succeed before the transfer and again after it.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Bound on the whole drill.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where the configuration comes from.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// TOML configuration file (see cluster/ for examples).
    #[arg(long, short = 'c', env = "GOPROXY_HA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Raft node id, unique in the cluster [default: 1].
    #[arg(long, env = "GOPROXY_HA_NODE_ID", value_name = "N")]
    pub node_id: Option<String>,
    /// HTTP address of the GOPROXY front end [default: 127.0.0.1:8080].
    #[arg(long, env = "GOPROXY_HA_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// gRPC address for node-to-node Raft traffic [default: 127.0.0.1:7080].
    #[arg(long, env = "GOPROXY_HA_RAFT_LISTEN", value_name = "ADDR")]
    pub raft_listen: Option<String>,
    /// Address peers use to reach this node's Raft listener [default: --raft-listen].
    #[arg(long, env = "GOPROXY_HA_RAFT_ADVERTISE", value_name = "HOST:PORT")]
    pub raft_advertise: Option<String>,
    /// Directory for the index and the module blobs [default: ./data].
    #[arg(long, env = "GOPROXY_HA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Upstream proxies in GOPROXY syntax: "," falls through on 404/410 only, "|" on any
    /// error, "off" refuses fetching [default: https://proxy.golang.org].
    #[arg(long, env = "GOPROXY_HA_UPSTREAM", value_name = "LIST")]
    pub upstream: Option<String>,
    /// Verify every public .mod/.zip fill against the checksum database ([[proxy.sumdb]],
    /// default sum.golang.org) before it is cached: true or false [default: true].
    #[arg(long, env = "GOPROXY_HA_VERIFY_FILLS", value_name = "BOOL")]
    pub verify_fills: Option<bool>,
    /// Log format [default: text].
    #[arg(long, env = "GOPROXY_HA_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. "info" or "goproxy_http=debug,info" [default: "warn,goproxy=info":
    /// goproxy-ha's events at info, its dependencies' at warn]. RUST_LOG overrides it.
    #[arg(
        long,
        alias = "log-filter",
        env = "GOPROXY_HA_LOG_LEVEL",
        value_name = "FILTER"
    )]
    pub log_level: Option<String>,
    /// Cluster CA certificate(s) for node-to-node mutual TLS [cluster.tls.ca_file].
    #[arg(long, env = "GOPROXY_HA_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// This node's certificate [cluster.tls.cert_file].
    #[arg(long, env = "GOPROXY_HA_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// This node's private key [cluster.tls.key_file].
    #[arg(long, env = "GOPROXY_HA_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

impl ConfigArgs {
    /// The flag/environment values that override the file.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            node_id: self.node_id.clone(),
            listen: self.listen.clone(),
            raft_listen: self.raft_listen.clone(),
            raft_advertise: self.raft_advertise.clone(),
            data_dir: self.data_dir.clone(),
            upstream: self.upstream.clone(),
            verify_fills: self.verify_fills,
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        }
    }
}
