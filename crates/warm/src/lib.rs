//! Prefetch ("warm") jobs: an operator names module versions, and the proxy downloads them,
//! with everything a build needs, before the internet goes away.
//!
//! Layout (each layer knows only the one before it):
//!
//! - [`spec`]: operator input → [`Target`]s: `MODULE@VERSION` ([`Target::parse`]), a list
//!   ([`spec::parse_list`]), a go.mod ([`spec::parse_go_mod`]), a go.sum
//!   ([`spec::parse_go_sum`]); bounded input, line-numbered errors.
//! - [`walk`]: [`Walker`], the pure state machine of the requirement-graph walk: which
//!   artifact to fetch next, what a fetched `.mod` adds, the zips of the MVS selection once
//!   the graph is complete, done/total for a progress bar, and resuming after a restart.
//! - [`mod@run`]: [`run()`] drives a walker over a [`Fetch`] implementation (the node's own
//!   fill path) with bounded concurrency and cancellation, reporting [`Progress`].
//!
//! See `DESIGN.md` next to this crate's manifest for the phases, MVS and the resume contract.
#![forbid(unsafe_code)]

pub mod run;
pub mod spec;
pub mod walk;

pub use run::{run, Fetch, Fetched, Outcome, Progress, Summary};
pub use spec::{Artifact, Artifacts, SpecError, Target};
pub use walk::{Item, Mode, WalkError, Walker, Work};
