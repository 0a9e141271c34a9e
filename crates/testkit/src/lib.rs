//! Support shared by goproxy-ha's tests, lab, chaos suite and benchmarks (never a dependency
//! of the product binary).
//!
//! # Layout
//! - [`netns`]: named network namespaces: create, run commands and threads inside, delete
//!   with every process in them.
//! - [`git_host`]: a private git host (`git http-backend`, basic auth, `go-import` meta tags)
//!   and the repositories of the private-module tests.
//! - [`corpus`]: where the real module tree is (`GOPROXY_HA_CORPUS` or `../shared`).
//! - [`upstream`]: [`HttpServer`], a static GOPROXY tree (or any router) on `127.0.0.1:0`.
//! - [`sumdb_server`]: a real Go checksum database over a module tree (golang.org/x/mod/sumdb).
//! - [`ssh_host`]: sshd in a test's namespace, with host and client keys, for git over SSH.
//! - [`process`]: the `listening http=… raft=…` line a node prints once it serves.
//! - [`ports`]: ports chosen below the ephemeral range for processes configured up front.
//! - [`poll`]: waiting for a condition with a deadline, never a fixed sleep.
//! - [`chromium`]: headless Chromium, one run per page load (DOM dump or screenshot), and
//!   [`dom`]: a reader for the DOM it dumps (the dashboard's tests).
//! - [`memory`]: an in-memory cache index and a peerless replication for driving the front
//!   end's router directly (`tower::ServiceExt::oneshot`).

pub mod chromium;
pub mod corpus;
pub mod dom;
pub mod git_host;
pub mod memory;
pub mod netns;
pub mod poll;
pub mod ports;
pub mod process;
pub mod ssh_host;
pub mod sumdb_server;
pub mod upstream;

pub use upstream::HttpServer;
