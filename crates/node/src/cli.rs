//! Command-line interface. Every `serve` flag also reads a `GOPROXY_HA_*` variable;
//! precedence is flag > environment > config file > built-in default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{LogFormat, Overrides};

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
    /// Validate the configuration and print it as TOML, with every default filled in.
    Config(ConfigArgs),
    /// Inspect or change the cluster.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Internal: the VIP guard process `serve` starts when `[vip]` is configured. It owns the
    /// address, reads `hold <deadline>` / `release` on stdin and drops the VIP at the deadline
    /// or when stdin closes.
    #[command(hide = true)]
    VipGuard(goproxy_vip::GuardConfig),
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
    /// as a learner, catches up, then becomes a voter.
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
    },
    /// Remove a node from the group.
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
    /// Log format [default: text].
    #[arg(long, env = "GOPROXY_HA_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. "info" or "goproxy_http=debug,info" [default: info].
    #[arg(long, env = "GOPROXY_HA_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
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
            log_format: self.log_format,
            log_level: self.log_level.clone(),
        }
    }
}
