//! Pure arithmetic over what the lab recorded: VIP holder samples (at most one holder; the old
//! holder lets go before the new one claims). Client-visible outages, recovery and percentiles
//! come from `goproxy-availability`, shared with `goproxy-ha drill`.

use std::time::Duration;

pub use goproxy_availability::{failures, outage, percentile, recovered, ProbeRecord};

/// A sample reads the nodes one after another. The old holder lets go at least the VIP lease
/// margin (50 ms in the lab) before a new leader may be elected, so only a sample whose reads
/// all fell within a shorter span can prove two holders; one that took longer (the sampler was
/// descheduled between reads) could show a correct handover as two holders and is counted
/// apart as inconclusive.
pub const CONCLUSIVE_SPAN: Duration = Duration::from_millis(20);

/// Which nodes held the VIP (on an interface that was up) at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HolderSample {
    /// When (offset from the run's epoch).
    pub at: Duration,
    /// Bit `i` set: node `i + 1` held it.
    pub holders: u8,
    /// From the first read of the sample to the end of the last.
    pub span: Duration,
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

    /// Whether the sample tells something: at most one holder, or reads close enough in time
    /// ([`CONCLUSIVE_SPAN`]) that two holders really overlapped.
    pub fn is_conclusive(&self) -> bool {
        self.count() <= 1 || self.span <= CONCLUSIVE_SPAN
    }
}

/// Samples at which more than one node held the VIP (the fencing invariant: none).
pub fn double_holders(samples: &[HolderSample]) -> Vec<HolderSample> {
    samples
        .iter()
        .copied()
        .filter(|s| s.count() > 1 && s.is_conclusive())
        .collect()
}

/// Samples that showed two holders but whose reads were too far apart to prove it.
pub fn inconclusive(samples: &[HolderSample]) -> usize {
    samples.iter().filter(|s| !s.is_conclusive()).count()
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
    let after: Vec<&HolderSample> = samples
        .iter()
        .filter(|s| s.at >= fault_at && s.is_conclusive())
        .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sample(at: u64, holders: u8) -> HolderSample {
        HolderSample {
            at: ms(at),
            holders,
            span: ms(1),
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
    fn two_holders_seen_by_reads_far_apart_prove_nothing() {
        let slow = HolderSample {
            span: ms(60),
            ..sample(5, 0b011)
        };
        let samples = [sample(0, 0b001), slow, sample(10, 0b010)];
        assert!(double_holders(&samples).is_empty());
        assert_eq!(inconclusive(&samples), 1);
        assert!(handover(&samples, 1, ms(0)).released_before_claimed());
        let quick = HolderSample {
            span: CONCLUSIVE_SPAN,
            ..sample(5, 0b011)
        };
        assert_eq!(double_holders(&[quick]), vec![quick]);
        let slow_single = HolderSample {
            span: ms(60),
            ..sample(5, 0b010)
        };
        assert!(slow_single.is_conclusive());
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
}
