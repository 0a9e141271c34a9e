//! Eviction: keep a node's blob disk under its bound and drop versions nobody uses.
//!
//! - `plan`: [`plan`] chooses, from the cached versions and their last use, which to
//!   evict and in what order. Pure and deterministic: every node given the same inputs
//!   chooses the same versions.
//! - `access`: [`AccessTimes`], each node's record of when it last served a version,
//!   exchanged with peers and merged by maximum, so a hit costs a map update rather than a
//!   Raft write.
//! - `persist`: saving and loading access times as JSON, atomically, so they survive a
//!   restart.

mod access;
mod persist;
mod plan;

pub use access::{AccessEntry, AccessTimes, MAX_TRACKED};
pub use persist::PersistError;
pub use plan::{plan, Candidate, Cause, Evicted, Plan, Policy, LOW_WATERMARK_PERCENT};
