//! The per-request audit trail of the proxy: one JSON line per HTTP request, appended to a
//! file, buffered in memory for at most a flush interval, rotated by size with a retention
//! count. No line is lost at rotation (a line never straddles two files) nor at shutdown
//! (the task writes, flushes and syncs every queued record once every handle is dropped).
//! Memory stays bounded: when the disk stalls so long that the queue and as many waiting
//! records are full, further records are dropped and counted ([`AuditStats::dropped`]).
//!
//! Layout:
//!
//! - [`record`]: [`Record`], one request as one JSON line (fields in a fixed order), its
//!   [`Outcome`], and [`now_rfc3339`] (UTC with milliseconds, no calendar dependency).
//! - [`config`]: [`AuditConfig`], the `[audit]` settings and their
//!   [`problems`](AuditConfig::problems).
//! - [`writer`]: [`AuditWriter`], the synchronous file side: lines waiting in memory,
//!   written in order, rotation (`audit.log` → `audit.log.1` … `audit.log.N`), retry after
//!   write errors.
//! - [`stats`]: [`AuditStats`], the counters (lines, rotations, write errors) for metrics.
//! - [`task`]: the handle [`AuditLog`] (cheap to clone; request handlers record through it)
//!   and [`AuditTask`] (the writer task the caller spawns), built by [`open`].
//! - [`error`]: what can fail, [`AuditError`].
//! - [`downloads`]: per-version download counts of one node ([`downloads::Downloads`]),
//!   saved in its data directory, and their sum across the cluster ([`downloads::sum`]).
#![forbid(unsafe_code)]

pub mod config;
pub mod downloads;
pub mod error;
pub mod record;
pub mod stats;
pub mod task;
pub mod writer;

pub use config::AuditConfig;
pub use error::AuditError;
pub use record::{format_rfc3339, now_rfc3339, Outcome, Record};
pub use stats::AuditStats;
pub use task::{open, AuditLog, AuditTask, StatsHandle};
pub use writer::AuditWriter;
