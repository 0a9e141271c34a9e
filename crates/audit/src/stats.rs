//! Counters of the audit log, for metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the audit log, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Lines written to the file (not necessarily synced yet).
    pub lines: u64,
    /// Rotations done.
    pub rotations: u64,
    /// Failed attempts to write, sync or rotate (each retried later).
    pub write_errors: u64,
    /// Records dropped because the queue and its overflow were both full (the disk could
    /// not keep up for a long while): the only way a line is lost.
    pub dropped: u64,
}

/// The shared, live form of [`AuditStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    lines: AtomicU64,
    rotations: AtomicU64,
    write_errors: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    pub(crate) fn line(&self) {
        self.lines.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rotation(&self) {
        self.rotations.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn write_error(&self) {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a dropped record; true for the first of each 1024 (to log, not flood).
    pub(crate) fn dropped(&self) -> bool {
        self.dropped
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(1024)
    }

    pub(crate) fn snapshot(&self) -> AuditStats {
        AuditStats {
            lines: self.lines.load(Ordering::Relaxed),
            rotations: self.rotations.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}
