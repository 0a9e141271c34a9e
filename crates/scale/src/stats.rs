//! Latency samples and their percentiles, and memory figures from `/proc`.

use std::time::Duration;

/// p50 and p99 of a set of request latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Latency {
    /// Requests measured.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Latency {
    /// The percentiles of `samples` (in any order).
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self {
            count: samples.len(),
            p50: percentile(&samples, 50.0),
            p99: percentile(&samples, 99.0),
        }
    }
}

/// The nearest-rank `p`th percentile of `sorted` (ascending); zero when it is empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A process's resident memory, KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub rss_kib: u64,
    /// The most it was ever resident (`VmHWM`).
    pub hwm_kib: u64,
}

impl Memory {
    /// Parses `/proc/PID/status`.
    pub fn parse(status: &str) -> Option<Self> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        Some(Self {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
        })
    }

    /// Process `pid`'s memory now.
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        let path = format!("/proc/{pid}/status");
        let text = std::fs::read_to_string(&path)?;
        Self::parse(&text).ok_or_else(|| anyhow::anyhow!("no VmRSS/VmHWM in {path}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).rev().map(ms).collect();
        let latency = Latency::of(samples);
        assert_eq!(
            (latency.count, latency.p50, latency.p99),
            (100, ms(50), ms(99))
        );
        assert_eq!(percentile(&[ms(7)], 99.0), ms(7));
        assert_eq!(percentile(&[ms(1), ms(2)], 50.0), ms(1));
        assert_eq!(percentile(&[ms(1), ms(2)], 99.0), ms(2));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        assert_eq!(percentile(&[ms(3)], 0.0), ms(3));
    }

    #[test]
    fn memory_from_proc_status() {
        let status = "Name:\tgoproxy-ha\nVmHWM:\t  81234 kB\nVmRSS:\t   70000 kB\nThreads:\t9\n";
        assert_eq!(
            Memory::parse(status),
            Some(Memory {
                rss_kib: 70_000,
                hwm_kib: 81_234
            })
        );
        assert_eq!(Memory::parse("Name:\tx\n"), None);
        assert!(Memory::of(std::process::id()).unwrap().rss_kib > 0);
    }
}
