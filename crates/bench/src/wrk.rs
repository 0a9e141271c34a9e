//! Running `wrk` and reading its report.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

/// What one wrk run measured.
#[derive(Debug, Clone)]
pub struct WrkResult {
    /// Completed requests per second.
    pub requests_per_sec: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// How long wrk ran.
    pub duration: Duration,
}

/// Runs wrk with two threads (one per core of the reference machine).
pub fn run_wrk(url: &str, connections: u32, duration: Duration) -> anyhow::Result<WrkResult> {
    run_wrk_with(url, connections, duration, &[])
}

/// [`run_wrk`] with `extra` arguments (`-H "Authorization: …"`).
pub fn run_wrk_with(
    url: &str,
    connections: u32,
    duration: Duration,
    extra: &[&str],
) -> anyhow::Result<WrkResult> {
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{}s", duration.as_secs()),
            "--latency",
        ])
        .args(extra)
        .arg(url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    if text.contains("Non-2xx") {
        bail!("wrk saw non-2xx answers from {url}:\n{text}");
    }
    let mut result = parse(&text).with_context(|| format!("parsing wrk output:\n{text}"))?;
    result.duration = duration;
    Ok(result)
}

fn parse(text: &str) -> Option<WrkResult> {
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rps = rest.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("50%") {
            p50 = parse_duration(rest.trim());
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99 = parse_duration(rest.trim());
        }
    }
    Some(WrkResult {
        requests_per_sec: rps?,
        p50: p50?,
        p99: p99?,
        duration: Duration::ZERO,
    })
}

/// wrk prints `812.00us`, `1.23ms`, `2.01s`, `1.5m`.
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_wrk_report() {
        let text = "  Latency Distribution\n     50%  812.00us\n     75%    1.10ms\n     99%    2.50ms\n  1000 requests in 1.00s\nRequests/sec:  12345.67\n";
        let r = parse(text).unwrap();
        assert!((r.requests_per_sec - 12345.67).abs() < 1e-6);
        assert_eq!(r.p50, Duration::from_micros(812));
        assert_eq!(r.p99, Duration::from_micros(2500));
    }
}
