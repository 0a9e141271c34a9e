//! Client-visible availability, computed from what a prober recorded: each request's start,
//! end and success. The outage is the longest gap between successful answers around an event,
//! counting an answer when it arrives (a request stalled by a retransmitted SYN cannot hide an
//! outage). Pure arithmetic, shared by `goproxy-ha drill` and the namespace lab.

use std::time::Duration;

/// One client request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRecord {
    /// When it started (offset from the run's epoch).
    pub started: Duration,
    /// When it ended: answered, failed or timed out.
    pub finished: Duration,
    /// Whether it got a `200`.
    pub ok: bool,
}

/// The client-visible outage around a fault injected at `fault_at`: the longest gap between
/// consecutive successful answers, from the last success before the fault to the last record.
/// A success that only arrives after a long stall (a SYN retransmitted after a second) counts
/// at the time it arrived, so it cannot hide an outage. `None` if nothing succeeded after the
/// fault.
pub fn outage(records: &[ProbeRecord], fault_at: Duration) -> Option<Duration> {
    let mut successes: Vec<Duration> = records
        .iter()
        .filter(|r| r.ok)
        .map(|r| r.finished)
        .collect();
    successes.sort();
    let before = successes.partition_point(|t| *t <= fault_at);
    if before == successes.len() {
        return None;
    }
    let anchor = if before > 0 {
        successes[before - 1]
    } else {
        fault_at
    };
    let mut longest = Duration::ZERO;
    let mut previous = anchor;
    for &t in &successes[before..] {
        longest = longest.max(t - previous);
        previous = t;
    }
    Some(longest)
}

/// Whether the last `streak` requests (by start time) all succeeded.
pub fn recovered(records: &[ProbeRecord], streak: usize) -> bool {
    records.len() >= streak && records[records.len() - streak..].iter().all(|r| r.ok)
}

/// How many of `records` failed.
pub fn failures(records: &[ProbeRecord]) -> usize {
    records.iter().filter(|r| !r.ok).count()
}

/// Nearest-rank percentile `p` (0–100) of `values`; `None` when empty.
pub fn percentile(values: &[Duration], p: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn rec(started: u64, finished: u64, ok: bool) -> ProbeRecord {
        ProbeRecord {
            started: ms(started),
            finished: ms(finished),
            ok,
        }
    }

    #[test]
    fn the_outage_is_the_longest_gap_between_answers_across_the_fault() {
        let records = [
            rec(0, 1, true),
            rec(10, 11, true),
            rec(20, 120, false),
            rec(30, 130, false),
            rec(300, 301, true),
            rec(310, 311, true),
        ];
        assert_eq!(outage(&records, ms(15)), Some(ms(290)));
    }

    #[test]
    fn a_late_success_counts_when_it_arrives_not_when_it_started() {
        // Started during the outage, answered after a SYN retransmission at +1 s.
        // Requests every 10 ms answer again from 400 ms on.
        let mut records = vec![rec(0, 1, true), rec(20, 1020, true)];
        records.extend((0..70).map(|k| rec(400 + 10 * k, 401 + 10 * k, true)));
        assert_eq!(outage(&records, ms(10)), Some(ms(400)));
        // Had it counted when it started, the outage would look like 20 ms.
        let stalled_only = [rec(0, 1, true), rec(20, 1020, true)];
        assert_eq!(outage(&stalled_only, ms(10)), Some(ms(1019)));
    }

    #[test]
    fn no_success_after_the_fault_is_no_recovery() {
        let records = [rec(0, 1, true), rec(10, 20, false)];
        assert_eq!(outage(&records, ms(5)), None);
        assert!(!recovered(&records, 1));
        assert_eq!(failures(&records), 1);
    }

    #[test]
    fn recovery_needs_an_unbroken_streak_at_the_end() {
        let records = [rec(0, 1, false), rec(10, 11, true), rec(20, 21, true)];
        assert!(recovered(&records, 2));
        assert!(!recovered(&records, 3));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<Duration> = (1..=20).map(ms).collect();
        assert_eq!(percentile(&values, 50.0), Some(ms(10)));
        assert_eq!(percentile(&values, 99.0), Some(ms(20)));
        assert_eq!(percentile(&values, 100.0), Some(ms(20)));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
