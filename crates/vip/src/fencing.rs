//! The never-two-holders rule as one pure step: given what this node knows now, what must its
//! guard be told?
//!
//! Two leases bound who may hold the VIP. This node's own ([`crate::lease`]): it may hold the
//! address until `lease` after the newest heartbeat round a quorum acknowledged. And the lease of
//! any leader this node itself acknowledged (`foreign_lease`): a new leader must not claim the
//! VIP before the old one's lease, founded on this node's acknowledgement, has run out
//! (`goproxy_consensus::foreign_lease`). The controller calls [`decide`] on every leadership
//! change and every few milliseconds, and sends the guard whatever it returns.

use std::time::Instant;

/// What the guard must be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Hold the address until this instant (a new or later deadline).
    Hold(Instant),
    /// Drop the address now.
    Release,
}

/// One step of the fencing rule. `entitled`: the deadline this node's own lease allows
/// (`None`: not a leader with a quorum acknowledgement); `foreign_until`: until when a lease
/// this node acknowledged to another leader may still run; `last_sent`: the deadline the
/// guard was last given (`None`: it holds nothing). `None`: nothing to send.
pub fn decide(
    now: Instant,
    entitled: Option<Instant>,
    foreign_until: Option<Instant>,
    last_sent: Option<Instant>,
) -> Option<Decision> {
    let foreign_running = foreign_until.is_some_and(|until| until > now);
    let want = entitled
        .filter(|deadline| *deadline > now)
        .filter(|_| !foreign_running);
    match (want, last_sent) {
        (Some(deadline), last) if last != Some(deadline) => Some(Decision::Hold(deadline)),
        (None, Some(_)) => Some(Decision::Release),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_leader_with_a_fresh_lease_holds_and_extends_only_when_the_deadline_moves() {
        let now = Instant::now();
        let d = now + ms(250);
        assert_eq!(decide(now, Some(d), None, None), Some(Decision::Hold(d)));
        assert_eq!(decide(now, Some(d), None, Some(d)), None);
        let later = d + ms(50);
        assert_eq!(
            decide(now + ms(50), Some(later), None, Some(d)),
            Some(Decision::Hold(later))
        );
    }

    #[test]
    fn no_lease_or_an_expired_one_releases_what_is_held_and_sends_nothing_otherwise() {
        let now = Instant::now();
        assert_eq!(decide(now, None, None, None), None);
        assert_eq!(decide(now, None, None, Some(now)), Some(Decision::Release));
        // A deadline that is already past is no entitlement.
        assert_eq!(
            decide(now, Some(now), None, Some(now - ms(1))),
            Some(Decision::Release)
        );
        assert_eq!(decide(now, Some(now - ms(5)), None, None), None);
    }

    #[test]
    fn a_new_leader_waits_out_the_lease_it_acknowledged_to_the_old_one() {
        let now = Instant::now();
        let entitled = Some(now + ms(250));
        let foreign = Some(now + ms(100));
        assert_eq!(decide(now, entitled, foreign, None), None);
        // Holding when the foreign lease turns out to run: release at once.
        assert_eq!(
            decide(now, entitled, foreign, Some(now + ms(200))),
            Some(Decision::Release)
        );
        // Once it has run out, claim.
        let after = now + ms(100);
        assert_eq!(
            decide(after, entitled, foreign, None),
            Some(Decision::Hold(now + ms(250)))
        );
    }

    #[test]
    fn never_a_deadline_in_the_past_nor_while_a_foreign_lease_runs() {
        let base = Instant::now();
        for step in 0..200u64 {
            let now = base + ms(step);
            for (e, f, s) in [
                (0u64, 0u64, 0u64),
                (100, 50, 20),
                (150, 180, 0),
                (90, 0, 120),
            ] {
                let entitled = (e > 0).then(|| base + ms(e));
                let foreign = (f > 0).then(|| base + ms(f));
                let sent = (s > 0).then(|| base + ms(s));
                if let Some(Decision::Hold(until)) = decide(now, entitled, foreign, sent) {
                    assert!(until > now, "step {step}: hold until the past");
                    assert!(
                        foreign.is_none_or(|f| f <= now),
                        "step {step}: foreign lease runs"
                    );
                }
            }
        }
    }
}
