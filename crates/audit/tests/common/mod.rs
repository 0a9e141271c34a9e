//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use goproxy_audit::{now_rfc3339, AuditConfig, Outcome, Record};

/// A record whose `bytes` is its sequence number `i`.
pub fn record(i: u64) -> Record {
    Record {
        time: now_rfc3339(),
        node: 1,
        client: "2001:db8::7".into(),
        token: i.is_multiple_of(2).then(|| "ci".to_string()),
        method: "GET".into(),
        path: format!("/example.com/m/@v/v1.0.{i}.info"),
        module: Some("example.com/m".into()),
        version: Some(format!("v1.0.{i}")),
        artifact: Some("info".into()),
        outcome: Outcome::Hit,
        status: 200,
        bytes: i,
        duration_ms: 0.125,
        sha256: Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()),
    }
}

/// `dir/audit.log` with the given size limit and retention.
pub fn config(dir: &Path, max_bytes: u64, keep: usize) -> AuditConfig {
    AuditConfig {
        path: Some(dir.join("audit.log")),
        max_bytes,
        keep,
        flush_interval: Duration::from_millis(20),
        queue: 16,
    }
}

/// `path.n`.
pub fn numbered(path: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// The sequence numbers of the lines of `path` (none if it is missing), checking every
/// line parses as a whole record.
pub fn sequence(path: &Path) -> Vec<u64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{path:?} ends mid-line"
    );
    text.lines()
        .map(|line| {
            let record: Record = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{path:?}: {error}: {line}"));
            assert_eq!(
                record.path,
                format!("/example.com/m/@v/v1.0.{}.info", record.bytes)
            );
            record.bytes
        })
        .collect()
}

/// The sequence numbers across `path.keep` … `path.1`, `path` (oldest first), checking no
/// file exceeds `max_bytes`.
pub fn all_files(path: &Path, keep: usize, max_bytes: u64) -> Vec<u64> {
    let mut all = Vec::new();
    for n in (1..=keep).rev() {
        all.extend(checked(&numbered(path, n), max_bytes));
    }
    all.extend(checked(path, max_bytes));
    all
}

fn checked(path: &Path, max_bytes: u64) -> Vec<u64> {
    if let Ok(meta) = std::fs::metadata(path) {
        assert!(meta.len() <= max_bytes, "{path:?} has {} bytes", meta.len());
    }
    sequence(path)
}
