//! Quorum-lease fencing: until when may this node answer for the VIP?
//!
//! openraft 0.9 keeps reporting `Leader` after a leader loses its majority, so leadership alone
//! is not enough. What is safe is the age of the newest heartbeat round a quorum acknowledged
//! (`millis_since_quorum_ack`, measured from when the leader *sent* it). A follower that received
//! that heartbeat refuses to vote for anyone, and does not even start an election, until the
//! leader lease (`election_timeout_max`) has passed since it received it. So no new leader can
//! exist before `acked_at + election_timeout_max`; the old leader gives the VIP up at
//! `acked_at + election_timeout_max - margin`, the margin covering the time between openraft
//! reporting the metric and the guard acting on it.

use std::time::{Duration, Instant};

/// openraft reports the age in whole milliseconds, truncated: count one more so the age is never
/// under-estimated.
const AGE_ROUNDING: Duration = Duration::from_millis(1);

/// What the node knew about its leadership at one instant.
#[derive(Debug, Clone, Copy)]
pub struct LeadershipSample {
    /// Raft reports this node as leader.
    pub is_leader: bool,
    /// Age of the newest heartbeat round acknowledged by a quorum (`None` when not leading or
    /// before the first round completes).
    pub quorum_ack_age: Option<Duration>,
    /// When the sample was taken.
    pub observed_at: Instant,
}

/// The lease is not shorter than the followers' election window.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("vip lease margin ({margin:?}) must be shorter than raft.election_timeout_max ({election_timeout_max:?})")]
pub struct LeaseError {
    /// The configured margin.
    pub margin: Duration,
    /// The Raft election timeout upper bound (= openraft's leader lease).
    pub election_timeout_max: Duration,
}

/// How long after a quorum acknowledgement the VIP may still be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeasePolicy {
    lease: Duration,
}

impl LeasePolicy {
    /// A lease of `election_timeout_max - margin`.
    pub fn new(election_timeout_max: Duration, margin: Duration) -> Result<Self, LeaseError> {
        if margin.is_zero() || margin >= election_timeout_max {
            return Err(LeaseError {
                margin,
                election_timeout_max,
            });
        }
        Ok(LeasePolicy {
            lease: election_timeout_max - margin,
        })
    }

    /// How long the VIP outlives the quorum acknowledgement that justified it.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The instant until which this node may hold the VIP, or `None` if it may not hold it at all
    /// (not leader, no quorum acknowledgement yet, or the lease already ran out when sampled).
    pub fn deadline(&self, sample: &LeadershipSample) -> Option<Instant> {
        if !sample.is_leader {
            return None;
        }
        let age = sample.quorum_ack_age? + AGE_ROUNDING;
        let acked_at = sample.observed_at.checked_sub(age)?;
        let deadline = acked_at + self.lease;
        (deadline > sample.observed_at).then_some(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_millis(300);
    const MARGIN: Duration = Duration::from_millis(50);

    fn sample(is_leader: bool, age_ms: Option<u64>) -> LeadershipSample {
        LeadershipSample {
            is_leader,
            quorum_ack_age: age_ms.map(Duration::from_millis),
            observed_at: Instant::now(),
        }
    }

    #[test]
    fn margin_must_fit_inside_the_election_window() {
        assert!(LeasePolicy::new(MAX, MAX).is_err());
        assert!(LeasePolicy::new(MAX, Duration::ZERO).is_err());
        assert_eq!(LeasePolicy::new(MAX, MARGIN).unwrap().lease(), MAX - MARGIN);
    }

    #[test]
    fn fresh_leader_holds_until_ack_plus_lease() {
        let policy = LeasePolicy::new(MAX, MARGIN).unwrap();
        let s = sample(true, Some(40));
        let deadline = policy.deadline(&s).expect("entitled");
        assert_eq!(
            deadline,
            s.observed_at - Duration::from_millis(41) + MAX - MARGIN
        );
    }

    #[test]
    fn followers_and_unacknowledged_leaders_hold_nothing() {
        let policy = LeasePolicy::new(MAX, MARGIN).unwrap();
        assert_eq!(policy.deadline(&sample(false, Some(0))), None);
        assert_eq!(policy.deadline(&sample(true, None)), None);
    }

    #[test]
    fn a_leader_cut_off_from_its_quorum_loses_the_lease() {
        let policy = LeasePolicy::new(MAX, MARGIN).unwrap();
        // Exactly at the boundary and beyond it: not entitled.
        assert_eq!(policy.deadline(&sample(true, Some(249))), None);
        assert_eq!(policy.deadline(&sample(true, Some(10_000))), None);
        assert!(policy.deadline(&sample(true, Some(248))).is_some());
    }

    #[test]
    fn the_deadline_never_reaches_a_followers_election() {
        // Whatever the age, the deadline is strictly before ack time + election_timeout_max,
        // the earliest instant another node can win an election.
        let policy = LeasePolicy::new(MAX, MARGIN).unwrap();
        for age in 0..400 {
            let s = sample(true, Some(age));
            if let Some(deadline) = policy.deadline(&s) {
                let acked_at = s.observed_at - Duration::from_millis(age);
                assert!(deadline < acked_at + MAX, "age {age}");
            }
        }
    }
}
