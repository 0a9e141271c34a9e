//! Whom this member accepts as a leader, and asking the members it knows when in doubt.
//!
//! A certificate of the cluster CA proves an identity, not membership: a removed node keeps
//! its certificate, and openraft accepts any leader whose term is at least its own. So a
//! member accepts `AppendEntries` / `InstallSnapshot` only from a voter of its own membership.
//! A member that was down while another node joined and then became leader does not know that
//! leader yet; rather than refusing it forever, it asks the voters it does know for their
//! membership ([`Vouching::ask`], the `Membership` admin call, dialled with each voter's
//! verified identity). When one of them lists the new leader as a voter in a membership newer
//! than its own, the leader is accepted until this member's own membership catches up.
//! The same question tells a member whether a claim that it was removed is true, and when a
//! retired member has been added back ([`crate::retire`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goproxy_rpc::{Channels, PeerName};

use crate::types::{NodeId, Raft};
use crate::wire::admin::{self, admin_service_client::AdminServiceClient};

/// Bound on one `Membership` call.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an unknown sender may trigger a round of questions.
const ASK_INTERVAL: Duration = Duration::from_secs(1);

/// A membership as one member reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipView {
    /// Log index of its membership entry.
    pub log_index: Option<u64>,
    /// Its voters (both configurations while joint).
    pub voters: BTreeSet<NodeId>,
    /// Its learners.
    pub learners: BTreeSet<NodeId>,
}

/// This member's own membership view.
pub fn own_view(raft: &Raft) -> MembershipView {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    let membership = m.membership_config.membership();
    MembershipView {
        log_index: m.membership_config.log_id().map(|id| id.index),
        voters: membership.voter_ids().collect(),
        learners: membership.learner_ids().collect(),
    }
}

impl From<&MembershipView> for admin::MembershipView {
    fn from(view: &MembershipView) -> Self {
        admin::MembershipView {
            log_index: view.log_index.unwrap_or(0),
            voters: view.voters.iter().copied().collect(),
            learners: view.learners.iter().copied().collect(),
        }
    }
}

impl From<admin::MembershipView> for MembershipView {
    fn from(view: admin::MembershipView) -> Self {
        MembershipView {
            log_index: (view.log_index > 0).then_some(view.log_index),
            voters: view.voters.into_iter().collect(),
            learners: view.learners.into_iter().collect(),
        }
    }
}

#[derive(Default)]
struct State {
    /// Leaders vouched for, valid while this member's membership is at this index.
    vouched: HashSet<NodeId>,
    vouched_at: Option<Option<u64>>,
    /// When each unknown sender last triggered a round of questions.
    asked: HashMap<NodeId, Instant>,
}

/// Vouching for leaders this member's membership does not list yet. Cheap to clone.
#[derive(Clone)]
pub struct Vouching {
    raft: Raft,
    me: NodeId,
    channels: Channels,
    state: Arc<Mutex<State>>,
}

impl Vouching {
    /// Vouching for member `me`, asking its peers over `channels`.
    pub fn new(raft: Raft, me: NodeId, channels: Channels) -> Self {
        Self {
            raft,
            me,
            channels,
            state: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `sender` may lead this member: this member has no membership yet (it waits to
    /// be initialised or added), `sender` is one of its voters, or a voter it knows vouched
    /// for `sender` since its membership last changed. Otherwise a round of questions starts
    /// in the background and `false` is returned.
    pub fn accepts_leader(&self, sender: NodeId) -> bool {
        let own = own_view(&self.raft);
        if own.log_index.is_none() && own.voters.is_empty() {
            return true;
        }
        if own.voters.contains(&sender) {
            return true;
        }
        let mut state = self.lock();
        if state.vouched_at == Some(own.log_index) && state.vouched.contains(&sender) {
            return true;
        }
        let due = state
            .asked
            .get(&sender)
            .is_none_or(|at| at.elapsed() >= ASK_INTERVAL);
        if due {
            state.asked.insert(sender, Instant::now());
            let this = self.clone();
            tokio::spawn(async move { this.vouch_round(sender, own).await });
        }
        false
    }

    async fn vouch_round(&self, sender: NodeId, own: MembershipView) {
        for view in self.ask(&own).await {
            if view.voters.contains(&sender) && view.log_index > own.log_index {
                tracing::info!(
                    sender,
                    membership_index = ?view.log_index,
                    "a member vouched for a leader this node's membership does not list yet"
                );
                let mut state = self.lock();
                if state.vouched_at != Some(own.log_index) {
                    state.vouched.clear();
                    state.vouched_at = Some(own.log_index);
                }
                state.vouched.insert(sender);
                return;
            }
        }
        tracing::warn!(
            sender,
            "refusing a leader that no voter of this node's membership lists"
        );
    }

    /// The membership views of the voters in `own` (other than this member) that answer.
    pub async fn ask(&self, own: &MembershipView) -> Vec<MembershipView> {
        let nodes: Vec<(NodeId, String)> = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            own.voters
                .iter()
                .filter(|id| **id != self.me)
                .filter_map(|id| membership.get_node(id).map(|n| (*id, n.raft_addr.clone())))
                .collect()
        };
        let mut views = Vec::new();
        for (id, addr) in nodes {
            let Ok(channel) = self.channels.get(&addr, PeerName::Node(id)) else {
                continue;
            };
            let mut client = AdminServiceClient::new(channel);
            let call = client.membership(admin::MembershipRequest {});
            if let Ok(Ok(reply)) = tokio::time::timeout(ASK_TIMEOUT, call).await {
                views.push(reply.into_inner().into());
            }
        }
        views
    }
}
