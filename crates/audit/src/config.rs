//! The `[audit]` settings.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default [`AuditConfig::max_bytes`]: 100 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 100 << 20;
/// Default [`AuditConfig::keep`].
pub const DEFAULT_KEEP: usize = 10;
/// Default [`AuditConfig::flush_interval`].
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default [`AuditConfig::queue`].
pub const DEFAULT_QUEUE: usize = 65_536;

/// Smallest [`AuditConfig::max_bytes`].
pub const MIN_MAX_BYTES: u64 = 4096;
/// Largest [`AuditConfig::keep`].
pub const MAX_KEEP: usize = 1000;
/// Shortest [`AuditConfig::flush_interval`].
pub const MIN_FLUSH_INTERVAL: Duration = Duration::from_millis(1);
/// Longest [`AuditConfig::flush_interval`].
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(60);

/// Where and how the per-request audit trail is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The audit file (its directory must exist). None: no per-request audit.
    pub path: Option<PathBuf>,
    /// Rotate before a line would make the current file exceed this many bytes (a single
    /// line larger than this still goes, alone, into a fresh file).
    pub max_bytes: u64,
    /// Rotated files kept: `audit.log.1` (newest) to `audit.log.N` (oldest); older ones are
    /// overwritten.
    pub keep: usize,
    /// The most a line waits in memory before it is written to the file.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Records waiting for the writer; when they are this many, request handlers wait
    /// (backpressure) rather than lines being dropped.
    pub queue: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            path: None,
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            queue: DEFAULT_QUEUE,
        }
    }
}

impl AuditConfig {
    /// Every problem with these settings, so all can be reported at once.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_bytes < MIN_MAX_BYTES {
            problems.push(format!("max_bytes: at least {MIN_MAX_BYTES}"));
        }
        if !(1..=MAX_KEEP).contains(&self.keep) {
            problems.push(format!("keep: between 1 and {MAX_KEEP}"));
        }
        if !(MIN_FLUSH_INTERVAL..=MAX_FLUSH_INTERVAL).contains(&self.flush_interval) {
            problems.push(format!(
                "flush_interval: between {} and {}",
                humantime::format_duration(MIN_FLUSH_INTERVAL),
                humantime::format_duration(MAX_FLUSH_INTERVAL),
            ));
        }
        if self.queue == 0 {
            problems.push("queue: at least 1".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = AuditConfig::default();
        assert_eq!(config.problems(), Vec::<String>::new());
        assert_eq!(config.max_bytes, 104_857_600);
        assert_eq!((config.keep, config.queue), (10, 65_536));
        assert_eq!(config.flush_interval, Duration::from_secs(1));
        assert_eq!(config.path, None);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let config = AuditConfig {
            path: Some("/var/log/goproxy/audit.log".into()),
            max_bytes: 4095,
            keep: 0,
            flush_interval: Duration::ZERO,
            queue: 0,
        };
        assert_eq!(
            config.problems(),
            [
                "max_bytes: at least 4096",
                "keep: between 1 and 1000",
                "flush_interval: between 1ms and 1m",
                "queue: at least 1",
            ]
        );
        let too_much = AuditConfig {
            keep: 1001,
            flush_interval: Duration::from_millis(60_001),
            ..AuditConfig::default()
        };
        assert_eq!(
            too_much.problems(),
            [
                "keep: between 1 and 1000",
                "flush_interval: between 1ms and 1m"
            ]
        );
        let edges = AuditConfig {
            max_bytes: 4096,
            keep: 1000,
            flush_interval: Duration::from_secs(60),
            queue: 1,
            ..AuditConfig::default()
        };
        assert_eq!(edges.problems(), Vec::<String>::new());
    }

    #[test]
    fn deserializes_with_defaults_and_rejects_unknown_fields() {
        let config: AuditConfig =
            serde_json::from_str(r#"{"path":"/var/log/audit.log","flush_interval":"250ms"}"#)
                .unwrap();
        assert_eq!(
            config,
            AuditConfig {
                path: Some("/var/log/audit.log".into()),
                flush_interval: Duration::from_millis(250),
                ..AuditConfig::default()
            }
        );
        let unknown = serde_json::from_str::<AuditConfig>(r#"{"max_size":1}"#).unwrap_err();
        assert!(unknown.to_string().contains("max_size"), "{unknown}");
    }
}
