//! A self-ending pause of this node's elections, used while leadership is handed over.
//!
//! A node told to pause stops campaigning when its leader goes quiet, but still votes. Every
//! pause ends by itself after its duration, so a transfer cut short by a crash can never leave a
//! voter that would not replace a dead leader.

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
}

impl ElectionPause {
    /// Controls elections of `raft`.
    pub fn new(raft: Raft) -> Self {
        Self {
            raft,
            generation: Arc::new(AtomicU64::new(0)),
            paused: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Stops starting elections for `duration` (replacing any earlier pause).
    pub fn pause(&self, duration: Duration) {
        self.pause_for(duration, true);
    }

    /// Like [`pause`](Self::pause); `warn_on_expiry: false` for a pause meant to run out.
    pub fn pause_for(&self, duration: Duration, warn_on_expiry: bool) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.paused.store(true, Ordering::SeqCst);
        self.raft.runtime_config().elect(false);
        let (raft, current) = (self.raft.clone(), self.generation.clone());
        let paused = self.paused.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            if current.load(Ordering::SeqCst) == generation {
                paused.store(false, Ordering::SeqCst);
                raft.runtime_config().elect(true);
                if warn_on_expiry {
                    tracing::warn!(?duration, "election pause expired without a resume");
                }
            }
        });
    }

    /// Ends any pause now.
    pub fn resume(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.paused.store(false, Ordering::SeqCst);
        self.raft.runtime_config().elect(true);
    }

    /// Whether elections are paused now.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
}
