//! This member's Raft state in the node's own terms, so nothing above the consensus crate
//! reads openraft's types: one snapshot ([`RaftView`]) and a watch that says when it changed.

use std::time::Duration;

use goproxy_status::Role;
use openraft::ServerState;
use tokio::sync::watch;

use crate::types::{NodeId, PeerNode, RaftMetrics};

/// What this member knows about itself and the group at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftView {
    /// This member's id.
    pub node_id: NodeId,
    /// Its role.
    pub role: Role,
    /// Whether it leads (its role is leader and it names itself as leader).
    pub is_leader: bool,
    /// The leader it follows, if known.
    pub current_leader: Option<NodeId>,
    /// Current term.
    pub current_term: u64,
    /// Index of the last log entry.
    pub last_log_index: Option<u64>,
    /// Index of the last applied entry.
    pub last_applied: Option<u64>,
    /// Log index the current snapshot covers.
    pub snapshot: Option<u64>,
    /// Leader only: age of the newest heartbeat round a quorum acknowledged.
    pub quorum_ack_age: Option<Duration>,
    /// Leader only: the log index the slowest follower has matched.
    pub slowest_follower_matched: Option<u64>,
    /// Every member (voters and learners), with its addresses.
    pub members: Vec<(NodeId, PeerNode)>,
}

fn role(state: ServerState) -> Role {
    match state {
        ServerState::Leader => Role::Leader,
        ServerState::Follower => Role::Follower,
        ServerState::Candidate => Role::Candidate,
        ServerState::Learner => Role::Learner,
        ServerState::Shutdown => Role::Shutdown,
    }
}

impl RaftView {
    pub(crate) fn of(m: &RaftMetrics) -> Self {
        let slowest_follower_matched = m.replication.as_ref().and_then(|followers| {
            followers
                .values()
                .map(|matched| matched.map_or(0, |id| id.index))
                .min()
        });
        RaftView {
            node_id: m.id,
            role: role(m.state),
            is_leader: m.state == ServerState::Leader && m.current_leader == Some(m.id),
            current_leader: m.current_leader,
            current_term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|id| id.index),
            snapshot: m.snapshot.map(|id| id.index),
            quorum_ack_age: m.millis_since_quorum_ack.map(Duration::from_millis),
            slowest_follower_matched,
            members: m
                .membership_config
                .membership()
                .nodes()
                .map(|(id, node)| (*id, node.clone()))
                .collect(),
        }
    }
}

/// Changes of this member's [`RaftView`]. Cheap to clone.
#[derive(Clone)]
pub struct RaftWatch {
    metrics: watch::Receiver<RaftMetrics>,
}

impl RaftWatch {
    pub(crate) fn new(metrics: watch::Receiver<RaftMetrics>) -> Self {
        Self { metrics }
    }

    /// Waits until the view changes; `false` once the Raft member has stopped.
    pub async fn changed(&mut self) -> bool {
        self.metrics.changed().await.is_ok()
    }

    /// The view now (and marks it seen).
    pub fn view(&mut self) -> RaftView {
        RaftView::of(&self.metrics.borrow_and_update())
    }
}
