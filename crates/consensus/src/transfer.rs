//! Planned leadership transfer (`goproxy-ha cluster transfer-leader`, the failover drill).
//!
//! openraft 0.9 has no transfer API, and its followers honour a leader lease: they refuse to vote
//! until `election_timeout_max` has passed since they last heard from the leader. So the leader:
//! 1. checks the target is a voter whose log matches its own (no acknowledged entry can be lost
//!    and the target can win);
//! 2. pauses elections on every other voter that is up and on itself (self-ending pauses,
//!    they still vote); a voter that has not answered for a few election timeouts is down and
//!    cannot campaign (and holds its elections when it returns), so it is skipped;
//! 3. stops sending heartbeats, waits for the followers' leases to run out;
//! 4. asks the target to campaign: it wins with the votes of the paused voters;
//! 5. resumes heartbeats and elections everywhere, whatever happened.
//!
//! The old leader's VIP lease ends with its last acknowledged heartbeat, before step 4.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::ServerState;

use goproxy_rpc::{Channels, PeerName};

use crate::election_pause::ElectionPause;
use crate::network::{live_window, PeerContact};
use crate::types::{NodeId, PeerNode, Raft};
use crate::wire::admin::{self, admin_service_client::AdminServiceClient};

/// Added to the lease wait for heartbeats that were in flight when they were stopped.
const LEASE_SETTLE: Duration = Duration::from_millis(30);
/// How long the target may lag before the transfer is refused.
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);
/// Bound on one admin call to a peer.
const PEER_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a transfer did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Ask the leader instead.
    #[error("not the leader")]
    NotLeader {
        /// The leader's addresses, when known.
        leader: Option<PeerNode>,
    },
    /// The target is not a voter of the current membership.
    #[error("node {0} is not a voter")]
    NotAVoter(NodeId),
    /// The target's log is behind the leader's.
    #[error("node {target} has not caught up (matched {matched:?} of {last:?}); is the cluster healthy?")]
    TargetLagging {
        /// The target.
        target: NodeId,
        /// Its last replicated log index.
        matched: Option<u64>,
        /// The leader's last log index.
        last: Option<u64>,
    },
    /// A voter could not be told to pause; nothing was changed.
    #[error("voter {id} at {addr} is unreachable: {reason}")]
    PeerUnreachable {
        /// The voter.
        id: NodeId,
        /// Its Raft address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The target did not become leader in time.
    #[error("node {target} did not take over within {waited:?} (leader now: {leader:?})")]
    Timeout {
        /// The target.
        target: NodeId,
        /// How long we waited.
        waited: Duration,
        /// Who leads now, if anyone.
        leader: Option<NodeId>,
    },
}

/// How long a transfer keeps the other voters from campaigning: long enough for the lease
/// wait and the target's election, short enough that a crash mid-transfer costs little.
pub fn transfer_window(raft: &Raft) -> Duration {
    Duration::from_millis(raft.config().election_timeout_max * 6 + 2_000)
}

/// Runs a transfer from this node (which must lead) to `target`.
pub async fn transfer_leadership(
    raft: &Raft,
    pause: &ElectionPause,
    channels: &Channels,
    contact: &PeerContact,
    me: NodeId,
    target: NodeId,
) -> Result<(), TransferError> {
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership().clone();
    if metrics.state != ServerState::Leader || metrics.current_leader != Some(me) {
        let leader = metrics
            .current_leader
            .and_then(|id| membership.get_node(&id).cloned());
        return Err(TransferError::NotLeader { leader });
    }
    if target == me {
        return Ok(());
    }
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    if !voters.contains(&target) {
        return Err(TransferError::NotAVoter(target));
    }
    wait_caught_up(raft, target).await?;
    let node_of = |id: NodeId| membership.get_node(&id).cloned().unwrap_or_default();
    let window = transfer_window(raft);
    let live = live_window(raft);
    let others: Vec<NodeId> = voters
        .iter()
        .copied()
        .filter(|id| *id != me && *id != target)
        .filter(|id| {
            let up = contact.answered_within(*id, live);
            if !up {
                tracing::info!(id, "transfer: voter is down, not pausing it");
            }
            up
        })
        .collect();
    for &id in &others {
        let addr = node_of(id).raft_addr;
        if let Err(reason) = call(channels, id, &addr, Call::Pause(window)).await {
            resume_all(pause, channels, &others, &node_of).await;
            return Err(TransferError::PeerUnreachable { id, addr, reason });
        }
    }
    pause.pause(window);
    raft.runtime_config().heartbeat(false);
    let outcome = hand_over(raft, channels, target, &node_of(target).raft_addr).await;
    raft.runtime_config().heartbeat(true);
    resume_all(pause, channels, &others, &node_of).await;
    outcome
}

/// Before a planned stop: if this node leads a group with other voters, hand leadership to
/// the most caught-up one. Returns the new leader, or `None` when there was nothing to do.
pub async fn step_down(
    raft: &Raft,
    pause: &ElectionPause,
    channels: &Channels,
    contact: &PeerContact,
    me: NodeId,
) -> Result<Option<NodeId>, TransferError> {
    let metrics = raft.metrics().borrow().clone();
    if metrics.state != ServerState::Leader {
        return Ok(None);
    }
    let live = live_window(raft);
    let voters: Vec<NodeId> = metrics
        .membership_config
        .membership()
        .voter_ids()
        .filter(|id| *id != me && contact.answered_within(*id, live))
        .collect();
    let matched = |id: &NodeId| {
        metrics
            .replication
            .as_ref()
            .and_then(|r| r.get(id).cloned().flatten())
            .map(|log_id| log_id.index)
    };
    let Some(target) = voters.iter().max_by_key(|id| matched(id)).copied() else {
        return Ok(None);
    };
    transfer_leadership(raft, pause, channels, contact, me, target).await?;
    Ok(Some(target))
}

async fn hand_over(
    raft: &Raft,
    channels: &Channels,
    target: NodeId,
    target_addr: &str,
) -> Result<(), TransferError> {
    let lease = Duration::from_millis(raft.config().election_timeout_max);
    tokio::time::sleep(lease + LEASE_SETTLE).await;
    // If the call fails the target still campaigns on its own timer: keep waiting.
    if let Err(reason) = call(channels, target, target_addr, Call::Campaign).await {
        tracing::warn!(target, %reason, "asking the target to campaign failed");
    }
    let waited = lease * 8 + Duration::from_secs(1);
    let mut metrics = raft.metrics();
    let took_over = tokio::time::timeout(
        waited,
        metrics.wait_for(|m| m.current_leader == Some(target)),
    )
    .await;
    match took_over {
        Ok(Ok(_)) => Ok(()),
        _ => Err(TransferError::Timeout {
            target,
            waited,
            leader: raft.metrics().borrow().current_leader,
        }),
    }
}

async fn wait_caught_up(raft: &Raft, target: NodeId) -> Result<(), TransferError> {
    let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
    loop {
        let (matched, last) = {
            let m = raft.metrics().borrow().clone();
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&target).cloned().flatten())
                .map(|log_id| log_id.index);
            (matched, m.last_log_index)
        };
        if matched.is_some() && matched == last {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TransferError::TargetLagging {
                target,
                matched,
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn resume_all(
    pause: &ElectionPause,
    channels: &Channels,
    others: &[NodeId],
    node_of: &impl Fn(NodeId) -> PeerNode,
) {
    pause.resume();
    for &id in others {
        let addr = node_of(id).raft_addr;
        if let Err(reason) = call(channels, id, &addr, Call::Pause(Duration::ZERO)).await {
            // Its pause ends by itself; nothing is stuck.
            tracing::warn!(id, %reason, "could not resume elections on a voter");
        }
    }
}

/// After removing node `id` (reachable at `addr`), tells it so, so that it stops campaigning
/// (best effort: a node that is down learns it from the refused votes of its next campaign).
pub async fn tell_retired(channels: &Channels, id: NodeId, addr: &str, removed_at_index: u64) {
    if let Err(reason) = call(channels, id, addr, Call::Retire(removed_at_index)).await {
        tracing::info!(id, %reason, "could not tell the removed node to stop campaigning");
    }
}

enum Call {
    Pause(Duration),
    Campaign,
    Retire(u64),
}

async fn call(channels: &Channels, id: NodeId, addr: &str, call: Call) -> Result<(), String> {
    let request = async {
        let channel = channels
            .get(addr, PeerName::Node(id))
            .map_err(|e| e.to_string())?;
        let mut client = AdminServiceClient::new(channel);
        let reply = match call {
            Call::Pause(duration) => {
                let duration_ms = duration.as_millis() as u64;
                client
                    .pause_elections(admin::PauseElectionsRequest { duration_ms })
                    .await
            }
            Call::Campaign => client.campaign(admin::CampaignRequest {}).await,
            Call::Retire(removed_at_index) => {
                client
                    .retire(admin::RetireRequest { removed_at_index })
                    .await
            }
        };
        let reply = reply
            .map_err(|status| crate::network::describe(&status))?
            .into_inner();
        if reply.ok {
            Ok(())
        } else {
            Err(reply.message)
        }
    };
    tokio::time::timeout(PEER_CALL_TIMEOUT, request)
        .await
        .map_err(|_| "timed out".to_string())?
}
