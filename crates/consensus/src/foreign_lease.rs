//! How long another leader's VIP lease may still run, as far as this member can tell.
//!
//! A leader holds the VIP until `election_timeout_max − margin` after the newest heartbeat a
//! quorum acknowledged (`crates/vip`, `lease.rs`). The followers' own lease (they refuse votes
//! until `election_timeout_max` after that heartbeat) makes this safe as long as a follower
//! that acknowledged it does not become leader before then. openraft checks that atomically for
//! the votes a member *grants*, but not for the election a member *starts* through
//! `trigger().elect()` ([`crate::prompt_election`], the transfer): a heartbeat can be
//! acknowledged between the check and the election. So each member remembers when it last
//! acknowledged another leader, and as a new leader it does not claim the VIP before
//! `election_timeout_max` has passed since then (in a normal failover that moment is long
//! past and nothing waits).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The newest acknowledgement this member sent to another leader. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ForeignLease {
    last_ack: Arc<Mutex<Option<Instant>>>,
}

impl ForeignLease {
    /// This member acknowledged another leader's append or snapshot at `at`.
    pub fn acknowledged(&self, at: Instant) {
        let mut last = self.last_ack.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|seen| seen < at) {
            *last = Some(at);
        }
    }

    /// Until when a lease founded on that acknowledgement may run (`lease` =
    /// `election_timeout_max`), if this member ever acknowledged another leader.
    pub fn until(&self, lease: Duration) -> Option<Instant> {
        let last = self.last_ack.lock().unwrap_or_else(|e| e.into_inner());
        last.map(|at| at + lease)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_acknowledgement() {
        let lease = Duration::from_millis(300);
        let foreign = ForeignLease::default();
        assert_eq!(foreign.until(lease), None);
        let t0 = Instant::now();
        foreign.acknowledged(t0 + Duration::from_millis(10));
        foreign.acknowledged(t0); // a late, older one does not move it back
        assert_eq!(foreign.until(lease), Some(t0 + Duration::from_millis(310)));
        let clone = foreign.clone();
        clone.acknowledged(t0 + Duration::from_millis(50));
        assert_eq!(foreign.until(lease), Some(t0 + Duration::from_millis(350)));
    }
}
