//! What one level measured, and the curve as a table (one row per level).

use std::time::Duration;

use serde::Serialize;

use crate::stats::{Latency, Memory};

/// Everything measured at one index size.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Level {
    /// Index entries asked for.
    pub level: u64,
    /// Index entries the node reported (`/cluster/status` `index_entries`).
    pub index_entries: u64,
    /// Blob files in the node's store.
    pub blobs: u64,
    /// Generating (or extending) the data directory up to this level.
    pub generate: Duration,
    /// Spawn → `/readyz` answers 200.
    pub startup: Duration,
    /// Node memory once ready.
    pub started: Memory,
    /// Node memory after the hits.
    pub after_hits: Memory,
    /// Node memory after the snapshot (its `hwm_kib` is the peak so far).
    pub after_snapshot: Memory,
    /// `GET /cluster/status`.
    pub status: Latency,
    /// Cache hits of random artifacts (every body checked).
    pub hits: Latency,
    /// The snapshot the node built on request.
    pub snapshot: Snapshot,
    /// The wiped nodes that joined.
    pub joiners: Vec<Rejoin>,
    /// `[raft] snapshot_chunk_bytes` the nodes ran with (`None`: their default).
    pub chunk_bytes: Option<u64>,
}

/// A snapshot build.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// The log index it covers.
    pub index: Option<u64>,
    /// Its size (`/cluster/status` `snapshots.bytes`, else the node's log line).
    pub bytes: Option<u64>,
    /// Build time (`snapshots.last_build_ms`, else the node's answer to the request).
    pub build: Duration,
    /// `/cluster/status` `snapshots`, when the node reports it.
    pub status: Option<serde_json::Value>,
}

/// A node that joined with an empty data directory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rejoin {
    /// Its id.
    pub id: u64,
    /// Join started → the join command returned (the learner caught up and was promoted).
    pub joined: Duration,
    /// Join started → it applied the leader's index (snapshot install and log).
    pub installed: Duration,
    /// Join started → every blob on its disk as well.
    pub converged: Duration,
    /// Its applied index at the end.
    pub applied: u64,
    /// The leader's applied index then.
    pub leader_applied: u64,
    /// The log index of its snapshot (an installed snapshot shows here).
    pub snapshot_index: Option<u64>,
    /// Its index entries.
    pub index_entries: u64,
    /// `missing_blobs` it reported at the end.
    pub missing_blobs: u64,
    /// Blob files on its disk at the end.
    pub blobs: u64,
    /// Its memory at the end (`hwm_kib`: the peak of the install and catch-up).
    pub memory: Memory,
    /// `snapshots.last_install_chunks`, when the node reports it.
    pub install_chunks: Option<u64>,
    /// `/cluster/status` `snapshots`, when the node reports it.
    pub snapshots: Option<serde_json::Value>,
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn millis(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

fn max_of(joiners: &[Rejoin], f: impl Fn(&Rejoin) -> Duration) -> String {
    joiners.iter().map(f).max().map_or("-".into(), secs)
}

/// The header and the cells of one level.
fn cells(level: &Level) -> [String; 12] {
    let chunks: Vec<String> = level
        .joiners
        .iter()
        .map(|j| j.install_chunks.map_or("-".into(), |c| c.to_string()))
        .collect();
    let joiner_peak = level.joiners.iter().map(|j| j.memory.hwm_kib).max();
    [
        level.level.to_string(),
        level.index_entries.to_string(),
        secs(level.generate),
        secs(level.startup),
        format!(
            "{}/{}/{}",
            mib(level.started.rss_kib),
            mib(level.after_hits.rss_kib),
            mib(level.after_snapshot.hwm_kib)
        ),
        format!("{}/{}", millis(level.status.p50), millis(level.status.p99)),
        format!("{}/{}", millis(level.hits.p50), millis(level.hits.p99)),
        level.snapshot.bytes.map_or("-".into(), |b| {
            format!("{:.1}", b as f64 / (1 << 20) as f64)
        }),
        secs(level.snapshot.build),
        format!(
            "{}/{}",
            max_of(&level.joiners, |j| j.installed),
            max_of(&level.joiners, |j| j.converged)
        ),
        joiner_peak.map_or("-".into(), mib),
        if chunks.is_empty() {
            "-".into()
        } else {
            chunks.join(",")
        },
    ]
}

const HEADER: [&str; 12] = [
    "level",
    "entries",
    "generate",
    "start-up",
    "RSS start/hits/peak MiB",
    "status p50/p99 ms",
    "hit p50/p99 ms",
    "snapshot MiB",
    "snap build",
    "rejoin install/all",
    "joiner peak MiB",
    "install chunks",
];

/// The curve: a header and one row per level, columns aligned.
pub fn table(levels: &[Level]) -> String {
    let rows: Vec<[String; 12]> = std::iter::once(HEADER.map(String::from))
        .chain(levels.iter().map(cells))
        .collect();
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:>width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_aligned_row_per_level() {
        let level = Level {
            level: 10_000,
            index_entries: 10_002,
            generate: Duration::from_millis(3_210),
            started: Memory {
                rss_kib: 40 * 1024,
                hwm_kib: 41 * 1024,
            },
            after_snapshot: Memory {
                rss_kib: 50 * 1024,
                hwm_kib: 60 * 1024,
            },
            status: Latency {
                count: 200,
                p50: Duration::from_micros(420),
                p99: Duration::from_micros(1_500),
            },
            snapshot: Snapshot {
                bytes: Some(3 << 20),
                ..Snapshot::default()
            },
            joiners: vec![
                Rejoin {
                    installed: Duration::from_secs(2),
                    converged: Duration::from_secs(9),
                    install_chunks: Some(12),
                    ..Rejoin::default()
                },
                Rejoin {
                    installed: Duration::from_secs(3),
                    converged: Duration::from_secs(8),
                    ..Rejoin::default()
                },
            ],
            ..Level::default()
        };
        let text = table(&[level.clone(), level]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].trim_start().starts_with("level"));
        assert_eq!(lines[1], lines[2]);
        assert_eq!(lines[0].len(), lines[1].len());
        for cell in [
            "10002",
            "3.21s",
            "40/0/60",
            "0.42/1.50",
            "3.0",
            "3.00s/9.00s",
            "12,-",
        ] {
            assert!(lines[1].contains(cell), "{cell} in {}", lines[1]);
        }
        assert_eq!(table(&[]).lines().count(), 1);
    }
}
