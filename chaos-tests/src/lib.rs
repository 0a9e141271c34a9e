//! Chaos tests for goproxy-ha: a three-node cluster in the namespace lab (`goproxy-lab`), a
//! workload through the VIP that records every acknowledged artifact, named faults, and one
//! check per invariant after a heal-then-converge phase.
//!
//! Layers: [`corpus`] (the upstream: the real corpus plus generated modules), [`workload`]
//! (client threads), [`faults`] (the named faults), [`invariants`] (pure checks), [`verify`]
//! (post-heal reads, convergence, a real `go` build), [`suite`] (the procedure), [`report`]
//! (the summary table). `make chaos` runs every scenario (`goproxy-chaos`); `make test` runs
//! [`SMOKE`] through `tests/chaos_smoke.rs`.

pub mod corpus;
pub mod faults;
pub mod invariants;
pub mod report;
pub mod suite;
pub mod verify;
pub mod workload;

use faults::Fault;

/// The subset `make test` runs: a leader crash, the leader's disk full (early, while the
/// workload still has fills to do: a full leader notices on a fill), a leader cut off from its
/// peers while the client still reaches it, a follower's disk full, a node wiped and joined
/// again, and a drill.
pub const SMOKE: &[Fault] = &[
    Fault::KillLeader(1),
    Fault::DiskFullLeader,
    Fault::IsolateLeader,
    Fault::DiskFull,
    Fault::WipeRejoin,
    Fault::Drill,
];
