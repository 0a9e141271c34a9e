//! `direct` routes: modules fetched from their version control repositories with the real go
//! toolchain (`go list -m`, `go mod download`), as Athens and goproxy.cn's engine do.
//!
//! Every operation runs `go` with `GOPROXY=direct` in an isolated environment under the
//! node's data directory (its own HOME, GOPATH, module cache and git configuration per
//! credential set), never prompting, with a timeout, a bound on concurrent operations, and
//! its whole process group killed on timeout or cancellation. What comes back is checked
//! here (sizes, hostile symlinks) and again by the front end like any upstream artifact.
//!
//! # Layout
//! - [`config`]: `[vcs]` and `[credentials.NAME]`, validated, secrets only from files or env.
//! - [`secret`]: secrets that never print, and the redaction of everything they appear in.
//! - [`workspace`]: the environment of one credential set (`.netrc`, `.gitconfig`, env vars).
//! - [`command`]: one bounded `go` process.
//! - [`outcome`]: what a failed `go` run means (not found, authentication, host down), with
//!   local paths and secrets scrubbed from the message.
//! - [`tree`]: symbolic links in a fetched revision that point outside the module.
//! - [`fetcher`]: the operations the front end asks for.
#![forbid(unsafe_code)]

pub mod command;
pub mod config;
pub mod fetcher;
pub mod outcome;
pub mod secret;
pub mod tree;
pub mod workspace;

pub use config::{CredentialSpec, TokenSpec, VcsConfig};
pub use fetcher::{Fetcher, ModuleInfo};
pub use outcome::VcsError;
