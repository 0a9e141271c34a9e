//! Membership changes that cannot break quorum (`goproxy-ha cluster join | leave`).
//!
//! - One change at a time: a second request while one runs (or while a joint configuration
//!   is still being committed) is refused with what is in progress.
//! - A joiner is added as a learner, which does not count toward quorum, and promoted to voter
//!   only once its log has caught up with the leader's. If it does not catch up in time (it is
//!   unreachable, or presents the wrong certificate) it stays a learner and the refusal says
//!   why; `leave` removes it.
//! - A voter is removed only if the voters left still have a live majority (the leader and
//!   the followers that answered it recently), never the leader itself (transfer first), and
//!   then told it was removed, so it stops campaigning ([`crate::retire`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};

use crate::network::PeerContact;
use crate::types::{NodeId, PeerNode, Raft};

/// How long a joiner may take to catch up unless the request says otherwise.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(30);
/// The longest catch-up wait a request may ask for.
pub const MAX_CATCH_UP: Duration = Duration::from_secs(600);
/// How often the catch-up wait looks at the learner's progress.
const CATCH_UP_POLL: Duration = Duration::from_millis(50);

/// Why a membership change was refused or did not finish.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MembershipError {
    /// Ask the leader instead.
    #[error("not the leader")]
    NotLeader {
        /// The leader's addresses, when known.
        leader: Option<PeerNode>,
    },
    /// Another change is under way.
    #[error("another membership change is in progress ({0}); wait for it to finish")]
    Busy(String),
    /// The request itself is wrong (bad id, address taken, …).
    #[error("{0}")]
    Invalid(String),
    /// The joiner did not catch up: it stays a learner.
    #[error("node {id} was added as a learner but did not catch up within {waited:?} (replicated up to log index {matched:?} of {target}{failure}); it stays a learner and does not count toward quorum. Check that {addr} is reachable and presents a certificate for node {id}, then run join again, or remove it with leave")]
    NotCaughtUp {
        /// The joiner.
        id: NodeId,
        /// Its address.
        addr: String,
        /// How long we waited.
        waited: Duration,
        /// How far it got.
        matched: Option<u64>,
        /// Where it had to get.
        target: u64,
        /// `; last error: …` when the leader failed to reach it.
        failure: String,
    },
    /// The removal would leave fewer live voters than a majority.
    #[error("removing node {id} would leave {live} live of {remaining} voters, fewer than the {needed} a quorum needs; bring the other voters back first")]
    WouldLoseQuorum {
        /// The node to remove.
        id: NodeId,
        /// Voters after the removal.
        remaining: usize,
        /// Of those, how many answered recently.
        live: usize,
        /// A majority of `remaining`.
        needed: usize,
    },
    /// Raft refused or failed the change.
    #[error("raft: {0}")]
    Raft(String),
}

type WriteError = RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>;

fn raft_error(e: WriteError) -> MembershipError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            MembershipError::NotLeader {
                leader: forward.leader_node,
            }
        }
        other => MembershipError::Raft(other.to_string()),
    }
}

/// Whether the voters left after removing one keep a live majority. `remaining` excludes the
/// removed node; `live` counts those of them that answered recently (the leader included).
pub fn removal_keeps_quorum(remaining: usize, live: usize) -> Result<(), (usize, usize)> {
    let needed = remaining / 2 + 1;
    if remaining == 0 || live < needed {
        Err((live, needed))
    } else {
        Ok(())
    }
}

/// Runs membership changes on one member (they act only while it leads).
#[derive(Clone)]
pub struct Membership {
    raft: Raft,
    me: NodeId,
    contact: PeerContact,
    /// The change in progress, if any: at most one at a time.
    running: Arc<std::sync::Mutex<Option<String>>>,
}

/// Releases the one-change-at-a-time slot when a change ends, however it ends.
struct Slot(Arc<std::sync::Mutex<Option<String>>>);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl Membership {
    /// Membership changes of member `me`; `contact` tells which peers answer.
    pub fn new(raft: Raft, me: NodeId, contact: PeerContact) -> Self {
        Self {
            raft,
            me,
            contact,
            running: Arc::default(),
        }
    }

    fn leading(&self) -> Result<crate::types::RaftMetrics, MembershipError> {
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader || m.current_leader != Some(self.me) {
            let leader = m
                .current_leader
                .and_then(|id| m.membership_config.membership().get_node(&id).cloned());
            return Err(MembershipError::NotLeader { leader });
        }
        if m.membership_config.membership().get_joint_config().len() > 1 {
            return Err(MembershipError::Busy(
                "a joint configuration is being committed".into(),
            ));
        }
        Ok(m)
    }

    fn claim(&self, what: String) -> Result<Slot, MembershipError> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = running.as_ref() {
            return Err(MembershipError::Busy(current.clone()));
        }
        *running = Some(what);
        Ok(Slot(self.running.clone()))
    }

    /// Adds node `id` at `node`: learner, catch up (within `catch_up`), then voter.
    pub async fn join(
        &self,
        id: NodeId,
        node: PeerNode,
        catch_up: Duration,
    ) -> Result<(), MembershipError> {
        let m = self.leading()?;
        let _slot = self.claim(format!("adding node {id}"))?;
        let membership = m.membership_config.membership();
        if let Some((other, _)) = membership
            .nodes()
            .find(|(other, n)| **other != id && n.raft_addr == node.raft_addr)
        {
            return Err(MembershipError::Invalid(format!(
                "node {other} already uses {}",
                node.raft_addr
            )));
        }
        let known = membership.get_node(&id).cloned();
        let voter = membership.voter_ids().any(|v| v == id);
        match known {
            Some(existing) if existing.raft_addr != node.raft_addr => {
                return Err(MembershipError::Invalid(format!(
                    "node {id} is already a member at {}; remove it with leave first",
                    existing.raft_addr
                )));
            }
            Some(_) if voter => return Ok(()),
            Some(_) => {}
            None => {
                tracing::info!(id, %node, "membership: adding a learner");
                self.raft
                    .add_learner(id, node.clone(), false)
                    .await
                    .map_err(raft_error)?;
            }
        }
        self.wait_caught_up(id, &node.raft_addr, catch_up).await?;
        tracing::info!(id, "membership: learner caught up, promoting it to voter");
        let voters = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        self.raft
            .change_membership(voters, true)
            .await
            .map_err(raft_error)?;
        Ok(())
    }

    async fn wait_caught_up(
        &self,
        id: NodeId,
        addr: &str,
        catch_up: Duration,
    ) -> Result<(), MembershipError> {
        let target = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        let started = tokio::time::Instant::now();
        loop {
            let m = self.raft.metrics().borrow().clone();
            if m.state != ServerState::Leader {
                return Err(MembershipError::NotLeader {
                    leader: m
                        .current_leader
                        .and_then(|l| m.membership_config.membership().get_node(&l).cloned()),
                });
            }
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .map(|log_id| log_id.index);
            if matched.is_some_and(|matched| matched >= target) {
                return Ok(());
            }
            if started.elapsed() >= catch_up {
                let failure = self
                    .contact
                    .last_failure(id)
                    .map(|f| format!("; last error: {f}"))
                    .unwrap_or_default();
                return Err(MembershipError::NotCaughtUp {
                    id,
                    addr: addr.to_string(),
                    waited: catch_up,
                    matched,
                    target,
                    failure,
                });
            }
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
    }

    /// Removes node `id` (a voter or a learner) without breaking quorum. Returns where it was
    /// and the log index of the membership that no longer lists it.
    pub async fn leave(&self, id: NodeId) -> Result<(PeerNode, u64), MembershipError> {
        let m = self.leading()?;
        let _slot = self.claim(format!("removing node {id}"))?;
        if id == self.me {
            return Err(MembershipError::Invalid(format!(
                "node {id} leads: hand leadership to another voter first (cluster transfer-leader)"
            )));
        }
        let membership = m.membership_config.membership();
        let Some(node) = membership.get_node(&id).cloned() else {
            return Err(MembershipError::Invalid(format!(
                "node {id} is not a member"
            )));
        };
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let change = if voters.contains(&id) {
            let remaining: Vec<NodeId> = voters.iter().copied().filter(|v| *v != id).collect();
            let window = crate::network::live_window(&self.raft);
            let live = remaining
                .iter()
                .filter(|v| **v == self.me || self.contact.answered_within(**v, window))
                .count();
            removal_keeps_quorum(remaining.len(), live).map_err(|(live, needed)| {
                MembershipError::WouldLoseQuorum {
                    id,
                    remaining: remaining.len(),
                    live,
                    needed,
                }
            })?;
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        tracing::info!(id, "membership: removing a member");
        let response = self
            .raft
            .change_membership(change, false)
            .await
            .map_err(raft_error)?;
        Ok((node, response.log_id.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removal_needs_a_live_majority_of_the_voters_left() {
        // 3 voters, remove one, both others alive: fine.
        assert_eq!(removal_keeps_quorum(2, 2), Ok(()));
        // 3 voters, one already down, remove a live one: 1 live of 2 is not a majority.
        assert_eq!(removal_keeps_quorum(2, 1), Err((1, 2)));
        // 5 voters, one down, remove another: 3 live of 4 is.
        assert_eq!(removal_keeps_quorum(4, 3), Ok(()));
        assert_eq!(removal_keeps_quorum(4, 2), Err((2, 3)));
        // Removing the last voter is never allowed.
        assert_eq!(removal_keeps_quorum(0, 0), Err((0, 1)));
    }
}
