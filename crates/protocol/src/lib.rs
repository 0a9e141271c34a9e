//! The GOPROXY protocol, pure and I/O-free.
//!
//! # Layout
//! - [`path`]: module path validation (`module.CheckPath`) and `!`-case-encoding.
//! - [`semver`]: Go's semantic versions, canonical forms, ordering, pseudo-versions.
//! - [`version`]: `module.Check` — a version agrees with the path's major suffix.
//! - [`route`]: a request path becomes a typed [`route::Route`].
//! - [`sumdb`]: checksum-database request paths.
//! - [`artifact`]: validation of upstream `.info` and `.mod`.
//! - [`zipcheck`]: module zip rules and the Go `h1:` dirhash.
//! - [`index`]: the cache index's data model shared with consensus.
//! - [`fuzzing`]: invariants exercised by the fuzz target.

pub mod artifact;
pub mod fuzzing;
pub mod index;
pub mod path;
pub mod route;
pub mod semver;
pub mod sumdb;
pub mod version;
pub mod zipcheck;
