//! A goproxy-ha node as a library: what the `goproxy-ha` binary runs, and what tests and
//! tools can run in-process (`server::run`).
//!
//! # Layout
//! - [`config`]: the one validated configuration struct (file → env → flags).
//! - [`server`]: [`server::run`] opens storage, starts the Raft member, replication, the VIP
//!   controller and the HTTP front end on [`server::Listeners`] the caller bound, and drains
//!   on shutdown; [`signals`] cancels the shutdown token on SIGTERM/SIGINT.
//! - [`raft_index`]: the front end's `CacheIndex` over the consensus crate; [`replication`]:
//!   the replicate crate's `ClusterView` over it and the front end's `BlobPeers` over
//!   replication; [`status`]: `GET /cluster/status`; [`raft_metrics`]: Raft gauges;
//!   [`direct`]: the front end's `direct` entries over the version control fetcher.
//! - [`reload`]: SIGHUP re-reads the configuration (rate limits); idle buckets dropped.
//! - [`tokens`]: the front end's `TokenSource` over the replicated tokens.
//! - [`operate`]: prefetch jobs, purges, block rules, the disk bound and the `/ui`
//!   dashboard over the replicated operating state.
//! - [`vip`]: the VIP controller, the I/O around `goproxy_vip::fencing::decide`.
//! - [`admin`], [`drill`], [`certs`]: the `cluster` commands, the failover drill and the
//!   `certs` commands.
//! - [`telemetry`]: the logging set-up, text or JSON.

pub mod admin;
pub mod certs;
pub mod config;
pub mod direct;
pub mod drill;
pub mod operate;
pub mod raft_index;
pub mod raft_metrics;
pub mod reload;
pub mod replication;
pub mod server;
pub mod signals;
pub mod status;
pub mod telemetry;
pub mod tokens;
pub mod vip;

pub use server::{run, Listeners};
