//! Pure arithmetic over what the lab recorded: client-visible outages, recovery, VIP holder
//! samples (at most one holder; the old holder lets go before the new one claims), percentiles.

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

/// Which nodes held the VIP (on an interface that was up) at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HolderSample {
    /// When (offset from the run's epoch).
    pub at: Duration,
    /// Bit `i` set: node `i + 1` held it.
    pub holders: u8,
}

impl HolderSample {
    /// How many nodes held the VIP.
    pub fn count(&self) -> u32 {
        self.holders.count_ones()
    }

    /// The single holder (1-based node number), if exactly one.
    pub fn single(&self) -> Option<usize> {
        (self.count() == 1).then(|| self.holders.trailing_zeros() as usize + 1)
    }

    /// Whether node `i` (1-based) held it.
    pub fn holds(&self, i: usize) -> bool {
        self.holders & (1 << (i - 1)) != 0
    }
}

/// Samples at which more than one node held the VIP (the fencing invariant: none).
pub fn double_holders(samples: &[HolderSample]) -> Vec<HolderSample> {
    samples.iter().copied().filter(|s| s.count() > 1).collect()
}

/// How the VIP changed hands after a fault at `fault_at` on holder `old`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    /// Last sample (at or after the fault) at which `old` still held the VIP.
    pub old_last_held: Option<Duration>,
    /// First sample after the fault at which another node held it, and which node.
    pub new_first_held: Option<(Duration, usize)>,
}

impl Handover {
    /// The old holder was seen letting go strictly before any other node was seen holding.
    pub fn released_before_claimed(&self) -> bool {
        match (self.old_last_held, self.new_first_held) {
            (Some(old), Some((new, _))) => old < new,
            (None, Some(_)) => true,
            (_, None) => false,
        }
    }
}

/// The handover from `old` in `samples` after `fault_at`.
pub fn handover(samples: &[HolderSample], old: usize, fault_at: Duration) -> Handover {
    let after: Vec<&HolderSample> = samples.iter().filter(|s| s.at >= fault_at).collect();
    let new_first_held = after
        .iter()
        .find_map(|s| (1..=8).find(|&i| i != old && s.holds(i)).map(|i| (s.at, i)));
    let old_last_held = after
        .iter()
        .filter(|s| new_first_held.is_none_or(|(t, _)| s.at <= t))
        .filter(|s| s.holds(old))
        .map(|s| s.at)
        .next_back();
    Handover {
        old_last_held,
        new_first_held,
    }
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

    fn sample(at: u64, holders: u8) -> HolderSample {
        HolderSample {
            at: ms(at),
            holders,
        }
    }

    #[test]
    fn two_holders_in_one_sample_break_the_invariant() {
        let samples = [sample(0, 0b001), sample(5, 0b011), sample(10, 0b010)];
        assert_eq!(double_holders(&samples), vec![sample(5, 0b011)]);
        assert_eq!(sample(10, 0b010).single(), Some(2));
        assert_eq!(sample(5, 0b011).single(), None);
    }

    #[test]
    fn a_clean_handover_releases_before_the_claim() {
        let samples = [
            sample(0, 0b001),
            sample(5, 0b001),
            sample(10, 0b000),
            sample(15, 0b100),
        ];
        let h = handover(&samples, 1, ms(2));
        assert_eq!(h.old_last_held, Some(ms(5)));
        assert_eq!(h.new_first_held, Some((ms(15), 3)));
        assert!(h.released_before_claimed());
    }

    #[test]
    fn an_overlapping_handover_is_caught() {
        let samples = [sample(0, 0b001), sample(5, 0b011), sample(10, 0b010)];
        let h = handover(&samples, 1, ms(0));
        assert!(!h.released_before_claimed());
        assert!(!handover(&[sample(0, 0b001)], 1, ms(0)).released_before_claimed());
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
