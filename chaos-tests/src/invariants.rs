//! The invariants, one check each, as pure functions over what was recorded. Each returns the
//! violations it found (empty: it holds), so a report can name every one.
//!
//! 1. Acknowledged artifacts survive: after heal, the VIP and every node serve each
//!    acknowledged artifact with the acknowledged sha256 (`acknowledged_served`; the reads are
//!    made by `verify`).
//! 2. One module@version, one content: no two reads of a path ever returned different bytes
//!    (`one_content_per_path`).
//! 3. At most one VIP holder at every sample (`single_holder`).
//! 4. Convergence after heal within a bound (checked by `verify`, reported as a duration).
//! 5. Availability: share of requests answered and the longest client-visible gap
//!    (`availability`); reported, not asserted.

use std::collections::BTreeMap;
use std::time::Duration;

use goproxy_lab::analysis::HolderSample;

use crate::workload::Read;

/// Which sha256 each acknowledged path was acknowledged with (the first acknowledgement; a
/// conflicting later one is invariant 2's business).
pub fn acknowledged(reads: &[Read]) -> BTreeMap<String, String> {
    let mut acked = BTreeMap::new();
    for read in reads.iter().filter(|r| r.acknowledged()) {
        if let Some(sha) = &read.sha256 {
            acked
                .entry(read.path.clone())
                .or_insert_with(|| sha.clone());
        }
    }
    acked
}

/// Invariant 2: every read of a path that returned a body returned the same bytes.
pub fn one_content_per_path<'a>(reads: impl IntoIterator<Item = &'a Read>) -> Vec<String> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut violations = Vec::new();
    for read in reads {
        let Some(sha) = read.sha256.as_deref() else {
            continue;
        };
        match seen.get(read.path.as_str()) {
            Some(first) if *first != sha => violations.push(format!(
                "{}: served as {} and as {sha}",
                read.path,
                &first[..12.min(first.len())]
            )),
            Some(_) => {}
            None => {
                seen.insert(&read.path, sha);
            }
        }
    }
    violations
}

/// What one post-heal read found for an acknowledged artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedCheck {
    /// `VIP` or `node N`.
    pub via: String,
    /// The path.
    pub path: String,
    /// sha256 of the `200` body, or the failure.
    pub got: Result<String, String>,
}

/// Invariant 1: every post-heal read of an acknowledged artifact returned it, unchanged.
pub fn acknowledged_served(
    acked: &BTreeMap<String, String>,
    checks: &[ServedCheck],
) -> Vec<String> {
    let mut violations = Vec::new();
    for check in checks {
        let Some(expected) = acked.get(&check.path) else {
            continue;
        };
        match &check.got {
            Ok(sha) if sha == expected => {}
            Ok(sha) => violations.push(format!(
                "{} via {}: sha256 {sha}, acknowledged {expected}",
                check.path, check.via
            )),
            Err(why) => violations.push(format!("{} via {}: {why}", check.path, check.via)),
        }
    }
    violations
}

/// Invariant 3: no sample shows two holders (among samples whose reads were close enough in
/// time to prove it: [`goproxy_lab::analysis::CONCLUSIVE_SPAN`]).
pub fn single_holder(samples: &[HolderSample]) -> Vec<String> {
    samples
        .iter()
        .filter(|s| s.count() > 1 && s.is_conclusive())
        .map(|s| {
            format!(
                "{} holders at {} ms (mask {:03b})",
                s.count(),
                s.at.as_millis(),
                s.holders
            )
        })
        .collect()
}

/// Invariant 5, reported: share of requests answered with a `200`, and the longest time
/// between two successive `200`s (by arrival) within the reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Availability {
    /// Requests made.
    pub requests: usize,
    /// Requests answered with a `200`.
    pub ok: usize,
    /// Longest gap between answers.
    pub longest_gap: Duration,
}

impl Availability {
    /// `ok / requests` in percent (100 when nothing was asked).
    pub fn percent(&self) -> f64 {
        if self.requests == 0 {
            100.0
        } else {
            100.0 * self.ok as f64 / self.requests as f64
        }
    }
}

/// Availability of `reads`.
pub fn availability(reads: &[Read]) -> Availability {
    let mut answered: Vec<Duration> = reads
        .iter()
        .filter(|r| r.acknowledged())
        .map(|r| r.finished)
        .collect();
    answered.sort();
    let longest_gap = answered
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    Availability {
        requests: reads.len(),
        ok: answered.len(),
        longest_gap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &str, at: u64, sha: Option<&str>) -> Read {
        Read {
            path: path.into(),
            started: Duration::from_millis(at),
            finished: Duration::from_millis(at + 1),
            status: Some(if sha.is_some() { 200 } else { 503 }),
            sha256: sha.map(str::to_string),
            fill: false,
        }
    }

    #[test]
    fn two_contents_for_one_path_break_invariant_two() {
        let reads = [
            read("/a", 0, Some("aaaa")),
            read("/a", 5, Some("aaaa")),
            read("/b", 6, Some("bbbb")),
        ];
        assert!(one_content_per_path(&reads).is_empty());
        let bad = [read("/a", 0, Some("aaaa")), read("/a", 5, Some("cccc"))];
        assert_eq!(
            one_content_per_path(&bad),
            ["/a: served as aaaa and as cccc"]
        );
    }

    #[test]
    fn an_acknowledged_artifact_missing_or_changed_after_heal_breaks_invariant_one() {
        let acked = acknowledged(&[read("/a", 0, Some("aaaa")), read("/b", 1, None)]);
        assert_eq!(acked.len(), 1, "a 503 acknowledges nothing");
        let check = |via: &str, got: Result<&str, &str>| ServedCheck {
            via: via.into(),
            path: "/a".into(),
            got: got.map(str::to_string).map_err(str::to_string),
        };
        assert!(acknowledged_served(&acked, &[check("VIP", Ok("aaaa"))]).is_empty());
        let violations = acknowledged_served(
            &acked,
            &[check("node 2", Err("404")), check("node 3", Ok("dddd"))],
        );
        assert_eq!(
            violations,
            [
                "/a via node 2: 404",
                "/a via node 3: sha256 dddd, acknowledged aaaa"
            ]
        );
    }

    #[test]
    fn two_holders_in_a_sample_break_invariant_three() {
        let sample = |at, holders| HolderSample {
            at: Duration::from_millis(at),
            holders,
            span: Duration::from_millis(1),
        };
        assert!(single_holder(&[sample(0, 0b001), sample(5, 0b000), sample(10, 0b100)]).is_empty());
        assert_eq!(
            single_holder(&[sample(5, 0b011)]),
            ["2 holders at 5 ms (mask 011)"]
        );
    }

    #[test]
    fn availability_counts_answers_and_the_longest_gap() {
        let reads = [
            read("/a", 0, Some("a")),
            read("/a", 10, None),
            read("/a", 400, Some("a")),
        ];
        let a = availability(&reads);
        assert_eq!((a.requests, a.ok), (3, 2));
        assert_eq!(a.longest_gap, Duration::from_millis(400));
        assert!((a.percent() - 66.66).abs() < 0.1);
    }
}
