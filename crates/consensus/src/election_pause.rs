//! Switching this node's elections off: a self-ending pause while leadership is handed over,
//! and an open-ended hold while the node is no longer a voter ([`crate::retire`]).
//!
//! A node told to pause stops campaigning when its leader goes quiet, but still votes. Every
//! pause ends by itself after its duration, so a transfer cut short by a crash can never leave a
//! voter that would not replace a dead leader. The retirement hold does not end by itself: it
//! is lifted when the node is a voter again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::types::Raft;

/// Pauses and resumes elections on one Raft member. Cheap to clone.
#[derive(Clone)]
pub struct ElectionPause {
    raft: Raft,
    /// Bumped by every pause/resume, so a pause's timer only ends its own pause.
    generation: Arc<AtomicU64>,
    /// Whether a pause is in force (openraft's runtime config cannot be read back).
    paused: Arc<AtomicBool>,
    /// Whether the node is retired (removed from the voters): no elections until lifted.
    retired: Arc<AtomicBool>,
}

impl ElectionPause {
    /// Controls elections of `raft`.
    pub fn new(raft: Raft) -> Self {
        Self {
            raft,
            generation: Arc::new(AtomicU64::new(0)),
            paused: Arc::new(AtomicBool::new(false)),
            retired: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Tells openraft whether this node may start elections now.
    fn apply(&self) {
        let elect = !self.paused.load(Ordering::SeqCst) && !self.retired.load(Ordering::SeqCst);
        self.raft.runtime_config().elect(elect);
    }

    /// Stops starting elections for `duration` (replacing any earlier pause).
    pub fn pause(&self, duration: Duration) {
        self.pause_for(duration, true);
    }

    /// Like [`pause`](Self::pause); `warn_on_expiry: false` for a pause meant to run out.
    pub fn pause_for(&self, duration: Duration, warn_on_expiry: bool) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.paused.store(true, Ordering::SeqCst);
        self.apply();
        let (this, current) = (self.clone(), self.generation.clone());
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            if current.load(Ordering::SeqCst) == generation {
                this.paused.store(false, Ordering::SeqCst);
                this.apply();
                if warn_on_expiry {
                    tracing::warn!(?duration, "election pause expired without a resume");
                }
            }
        });
    }

    /// Ends any pause now (a retirement hold stays).
    pub fn resume(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.paused.store(false, Ordering::SeqCst);
        self.apply();
    }

    /// Holds elections until [`lift_hold`](Self::lift_hold): the node is not a voter.
    pub fn hold(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.apply();
    }

    /// Lifts the hold of [`hold`](Self::hold).
    pub fn lift_hold(&self) {
        self.retired.store(false, Ordering::SeqCst);
        self.apply();
    }

    /// Whether elections are paused or held now.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst) || self.retired.load(Ordering::SeqCst)
    }
}
