//! Cache policy, as pure decisions: what an operator has blocked, and which cached versions
//! a node should drop to stay under its disk bound. Nothing here touches the network; the
//! only I/O is saving and loading access times.
//!
//! # Layout
//! - [`block`]: block rules (`MODULE` or `MODULE@RANGE` with a reason), version ranges in
//!   Go's semver order, and the [`BlockList`] the request path asks on every request
//!   (one hash lookup, no allocation when the module has no rule).
//! - [`evict`]: the eviction plan (idle versions first, then least recently used down to a
//!   low watermark, pins never) and [`AccessTimes`], the per-node record of last accesses
//!   that nodes exchange and merge by maximum instead of writing every hit through Raft.
#![forbid(unsafe_code)]

pub mod block;
pub mod evict;

pub use block::{BlockError, BlockList, BlockRule, BlockTarget, Comparator, Op, VersionRange};
pub use evict::{
    plan, AccessEntry, AccessTimes, Candidate, Cause, Evicted, PersistError, Plan, Policy,
};
