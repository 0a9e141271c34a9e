//! A node removed from the voters stops campaigning, and says why.
//!
//! openraft's leader stops replicating to a node once its removal is in the log, so the
//! removed node may never see the entry that removed it: it keeps its old membership, times
//! out and campaigns forever with ever higher terms, and when it is added back its term
//! unseats the leader. Two signals retire it instead:
//! 1. after a removal commits, the leader tells the node (`Retire`, from the leader's
//!    certificate only), quoting the log index of the removal;
//! 2. a node that was down at that moment learns it when it campaigns: members refuse the
//!    vote of a node that is not a voter in their membership ([`crate::server`]).
//!
//! A retired node holds its elections ([`ElectionPause::hold`]), logs why, reports it in
//! readiness, and keeps serving what it has. When a later membership (newer than the one it
//! retired under) lists it as a voter again, the hold is lifted.

use std::sync::{Arc, Mutex};

use crate::election_pause::ElectionPause;
use crate::types::{NodeId, Raft};

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
    me: NodeId,
    state: Arc<Mutex<Option<Retired>>>,
}

impl Retirement {
    /// Retirement of member `me`.
    pub fn new(raft: Raft, pause: ElectionPause, me: NodeId) -> Self {
        Self {
            raft,
            pause,
            me,
            state: Arc::default(),
        }
    }

    fn membership(&self) -> (Option<u64>, bool) {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let stored = &m.membership_config;
        let voter = stored.membership().voter_ids().any(|id| id == self.me);
        (stored.log_id().map(|id| id.index), voter)
    }

    /// Stops campaigning for `reason` (logged once per retirement).
    pub fn retire(&self, reason: String) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.is_some() {
            return;
        }
        let (membership_index, _) = self.membership();
        tracing::warn!(node = self.me, %reason, "no longer a voter: not campaigning");
        *state = Some(Retired {
            reason,
            membership_index,
        });
        self.pause.hold();
    }

    /// A member refused this node's vote request because it is not a voter there.
    pub fn retire_on_refusal(&self, peer: NodeId, message: &str) {
        self.retire(format!("node {peer} refused its vote: {message}"));
    }

    /// Why this node retired, while it is retired.
    pub fn reason(&self) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.as_ref().map(|r| r.reason.clone())
    }

    /// Lifts the hold once a membership newer than the retired one lists this node as a voter.
    pub fn check_reinstated(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(retired) = state.as_ref() else {
            return;
        };
        let (index, voter) = self.membership();
        if voter && index > retired.membership_index {
            tracing::info!(
                node = self.me,
                membership_index = ?index,
                "a voter again: elections resume"
            );
            *state = None;
            self.pause.lift_hold();
        }
    }

    /// Watches membership changes and lifts the hold when due, until the Raft core stops.
    pub async fn watch(self) {
        let mut metrics = self.raft.metrics();
        while metrics.changed().await.is_ok() {
            self.check_reinstated();
        }
    }
}
