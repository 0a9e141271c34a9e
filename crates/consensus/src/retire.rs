//! A node removed from the voters stops campaigning, and says why.
//!
//! openraft's leader stops replicating to a node once its removal is in the log, so the
//! removed node may never see the entry that removed it: it keeps its old membership, times
//! out and campaigns forever with ever higher terms, and when it is added back its term
//! unseats the leader. Two signals retire it instead:
//! 1. after a removal commits, the leader tells the node (`Retire`, accepted only from the
//!    leader this node follows, and refused when this node's own membership at or after the
//!    removal's log index still lists it as a voter);
//! 2. a node that was down at that moment learns it when it campaigns: members refuse the
//!    vote of a node that is not a voter in their membership ([`crate::server`]). A refusal
//!    counts only from a member whose membership is at least as new as this node's own, so a
//!    stale member cannot retire a real voter.
//!
//! A retired node holds its elections ([`ElectionPause::hold`]), logs why, reports it in
//! readiness, and keeps serving what it has. The hold is lifted when a membership newer than
//! the one it retired under lists it as a voter: its own (it was added back and replicated
//! to), or that of a voter it knows, asked every few seconds ([`Vouching::ask`]), so a
//! retirement that turns out wrong does not last.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::election_pause::ElectionPause;
use crate::types::{NodeId, Raft};
use crate::vouch::{own_view, Vouching};

/// How often a retired node asks the members it knows whether it is a voter again.
const RECHECK: Duration = Duration::from_secs(3);

/// Why and under which membership this node retired.
#[derive(Debug, Clone)]
struct Retired {
    reason: String,
    /// Log index of the membership this node had when it retired; only a newer one that lists
    /// it as a voter lifts the hold.
    membership_index: Option<u64>,
}

/// The retirement state of one member. Cheap to clone.
#[derive(Clone)]
pub struct Retirement {
    raft: Raft,
    pause: ElectionPause,
    vouching: Vouching,
    me: NodeId,
    state: Arc<Mutex<Option<Retired>>>,
}

impl Retirement {
    /// Retirement of member `me`.
    pub fn new(raft: Raft, pause: ElectionPause, vouching: Vouching, me: NodeId) -> Self {
        Self {
            raft,
            pause,
            vouching,
            me,
            state: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Retired>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops campaigning for `reason` (logged once per retirement).
    fn retire(&self, reason: String) {
        let mut state = self.lock();
        if state.is_some() {
            return;
        }
        let membership_index = own_view(&self.raft).log_index;
        tracing::warn!(node = self.me, %reason, "no longer a voter: not campaigning");
        *state = Some(Retired {
            reason,
            membership_index,
        });
        self.pause.hold();
    }

    /// The leader says this node was removed by the membership at `removed_at_index`.
    /// Refused when this node's own membership, at that index or later, still lists it.
    pub fn retire_by_leader(&self, leader: &str, removed_at_index: u64) -> Result<(), String> {
        let own = own_view(&self.raft);
        if own.log_index >= Some(removed_at_index) && own.voters.contains(&self.me) {
            return Err(format!(
                "this node's membership at log index {:?} (not older than {removed_at_index}) lists it as a voter",
                own.log_index
            ));
        }
        self.retire(format!(
            "{leader} removed it from the membership at log index {removed_at_index}"
        ));
        Ok(())
    }

    /// Member `peer`, whose membership is at log index `peer_index` (0: none), refused this
    /// node's vote request because it is not a voter there. Believed only from a membership
    /// at least as new as this node's own.
    pub fn retire_on_refusal(&self, peer: NodeId, peer_index: u64, message: &str) {
        let own = own_view(&self.raft).log_index;
        let theirs = (peer_index > 0).then_some(peer_index);
        if theirs < own {
            tracing::debug!(
                peer,
                ?theirs,
                ?own,
                "ignoring a vote refusal from an older membership"
            );
            return;
        }
        self.retire(format!("node {peer} refused its vote: {message}"));
    }

    /// Why this node retired, while it is retired.
    pub fn reason(&self) -> Option<String> {
        self.lock().as_ref().map(|r| r.reason.clone())
    }

    fn lift(&self, why: &str, membership_index: Option<u64>) {
        let mut state = self.lock();
        if state.take().is_some() {
            tracing::info!(
                node = self.me,
                ?membership_index,
                why,
                "a voter again: elections resume"
            );
            self.pause.lift_hold();
        }
    }

    /// The membership index the node retired under, while retired.
    fn retired_under(&self) -> Option<Option<u64>> {
        self.lock().as_ref().map(|r| r.membership_index)
    }

    /// Lifts the hold when this node's own membership, newer than the retired one, lists it
    /// as a voter.
    pub fn check_reinstated(&self) {
        let Some(retired_under) = self.retired_under() else {
            return;
        };
        let own = own_view(&self.raft);
        if own.voters.contains(&self.me) && own.log_index > retired_under {
            self.lift("its own membership lists it", own.log_index);
        }
    }

    /// Asks the voters it knows whether one lists it as a voter in a newer membership.
    async fn ask_reinstated(&self) {
        let Some(retired_under) = self.retired_under() else {
            return;
        };
        let own = own_view(&self.raft);
        for view in self.vouching.ask(&own).await {
            if view.voters.contains(&self.me) && view.log_index > retired_under {
                self.lift("a member's membership lists it", view.log_index);
                return;
            }
        }
    }

    /// Watches membership changes and lifts the hold when due, until the Raft core stops.
    pub async fn watch(self) {
        let mut metrics = self.raft.metrics();
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = metrics.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.check_reinstated();
                }
                _ = recheck.tick() => self.ask_reinstated().await,
            }
        }
    }
}
