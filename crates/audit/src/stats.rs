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
}

/// The shared, live form of [`AuditStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    lines: AtomicU64,
    rotations: AtomicU64,
    write_errors: AtomicU64,
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

    pub(crate) fn snapshot(&self) -> AuditStats {
        AuditStats {
            lines: self.lines.load(Ordering::Relaxed),
            rotations: self.rotations.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }
}
