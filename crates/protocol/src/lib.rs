//! The GOPROXY protocol, pure and I/O-free.
//!
//! # Layout
//! - [`path`]: module path validation (`module.CheckPath`) and `!`-case-encoding.
//! - [`semver`]: Go's semantic versions, canonical forms, ordering, pseudo-versions.
//! - [`version`]: `module.Check` — a version agrees with the path's major suffix.
//! - [`route`]: a request path becomes a typed [`route::Route`].
//! - [`sumdb`]: checksum-database request paths.
//! - [`artifact`]: validation of upstream `.info` and `.mod`.
//! - [`zipcheck`]: module zip rules (`golang.org/x/mod/zip`), sizes counted, not trusted.
//! - `zipentry` (private): per-entry zip name rules and the case-fold collision check.
//! - `zipraw` (private): raw zip records where the `zip` crate's view differs from Go's.
//! - [`dirhash`]: the Go `h1:` hash of a zip or a `.mod`, as written in go.sum.
//! - [`index`]: the cache index's data model shared with consensus.
//! - [`fuzzing`]: invariants exercised by the fuzz target.

pub mod artifact;
pub mod dirhash;
pub mod fuzzing;
pub mod index;
pub mod path;
pub mod route;
pub mod semver;
pub mod sumdb;
pub mod version;
pub mod zipcheck;
mod zipentry;
mod zipraw;
