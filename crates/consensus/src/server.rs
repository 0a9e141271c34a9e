//! Incoming Raft RPCs: the tonic service handing frames to the local Raft instance.
//!
//! Each request is authorized by the certificate it came with ([`Caller`]): a node may
//! append, install snapshots or ask for votes only as the id its certificate names, and only
//! as a voter of this node's membership (or one a voter it knows vouches for:
//! [`crate::vouch`]). A certificate alone is not membership: a removed node keeps its own.
//! A candidate that is not a voter is told so, with this node's membership index, and stops
//! campaigning ([`crate::retire`]). Acknowledgements given to another leader are noted for
//! VIP fencing ([`ForeignLease`]).

use std::sync::Arc;
use std::time::Instant;

use goproxy_rpc::Caller;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest};
use tonic::{Request, Response, Status};

use crate::election_pause::ElectionPause;
use crate::foreign_lease::ForeignLease;
use crate::state_machine::SnapshotStats;
use crate::types::{NodeId, Raft, TypeConfig};
use crate::vouch::{own_view, Vouching};
use crate::wire::{self, pb};

/// Marks a vote refused because the candidate is not a voter here (see
/// [`not_a_voter_at`]).
const NOT_A_VOTER: &str = "not a voter of this cluster";
/// Metadata of such a refusal: the refuser's membership log index.
const MEMBERSHIP_INDEX: &str = "x-goproxy-membership-index";

/// If `status` refuses a vote because the candidate is not a voter, the refuser's membership
/// log index (0: none).
pub fn not_a_voter_at(status: &Status) -> Option<u64> {
    if status.code() != tonic::Code::PermissionDenied || !status.message().contains(NOT_A_VOTER) {
        return None;
    }
    let index = status.metadata().get(MEMBERSHIP_INDEX)?.to_str().ok()?;
    index.parse().ok()
}

/// The gRPC service of one node.
#[derive(Clone)]
pub struct RaftGrpc {
    raft: Raft,
    me: NodeId,
    foreign: ForeignLease,
    vouching: Vouching,
    snapshots: Arc<SnapshotStats>,
    pause: ElectionPause,
    /// Elections held after an install, for the leader's next message.
    after_install: std::time::Duration,
}

/// Elections held at most this long while a snapshot installs (as long as a chunk may take).
const INSTALL_HOLD: std::time::Duration =
    std::time::Duration::from_millis(crate::node::INSTALL_SNAPSHOT_TIMEOUT_MS);

/// The node a Raft message says it comes from (the leader or the candidate of its vote).
fn sender(vote: &openraft::Vote<NodeId>) -> Result<NodeId, Status> {
    vote.leader_id()
        .voted_for()
        .ok_or_else(|| Status::invalid_argument("raft message without a sender"))
}

impl RaftGrpc {
    /// Serves RPCs for `raft` (member `me`), recording acknowledgements in `foreign`;
    /// `vouching` decides which leaders are members; snapshot chunks are counted and
    /// checked in `snapshots`; `pause` holds elections while a snapshot installs and for
    /// `after_install` after it.
    pub fn new(
        raft: Raft,
        me: NodeId,
        foreign: ForeignLease,
        vouching: Vouching,
        snapshots: Arc<SnapshotStats>,
        pause: ElectionPause,
        after_install: std::time::Duration,
    ) -> Self {
        Self {
            raft,
            me,
            foreign,
            vouching,
            snapshots,
            pause,
            after_install,
        }
    }

    /// Refuses a leader that is not a voter of this node's membership (nor vouched for).
    fn check_leader(&self, leader: NodeId) -> Result<(), Status> {
        if self.vouching.accepts_leader(leader) {
            return Ok(());
        }
        Err(Status::permission_denied(format!(
            "node {leader} is not a voter of this node's membership (log index {:?}); asking the members it knows",
            own_view(&self.raft).log_index
        )))
    }

    fn sent_by_another_leader(&self, vote: &openraft::Vote<NodeId>) -> bool {
        vote.leader_id().voted_for() != Some(self.me)
    }

    /// Refuses a candidate that is not a voter of this node's membership. A node that has no
    /// membership yet (waiting to be initialised or added) votes as openraft decides.
    fn check_candidate(&self, candidate: NodeId) -> Result<(), Status> {
        let own = own_view(&self.raft);
        let initialised = own.log_index.is_some() || !own.voters.is_empty();
        if initialised && !own.voters.contains(&candidate) {
            let mut status = Status::permission_denied(format!(
                "node {candidate} is {NOT_A_VOTER} (membership at log index {:?}): it was removed or never joined",
                own.log_index
            ));
            if let Ok(value) = own.log_index.unwrap_or(0).to_string().parse() {
                status.metadata_mut().insert(MEMBERSHIP_INDEX, value);
            }
            return Err(status);
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl pb::raft_service_server::RaftService for RaftGrpc {
    async fn append_entries(
        &self,
        request: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        let caller = Caller::of(&request)?;
        let rpc: AppendEntriesRequest<TypeConfig> = wire::parse_request(request.get_ref())?;
        let leader = sender(&rpc.vote)?;
        caller.require_node(leader, "append entries")?;
        self.check_leader(leader)?;
        let foreign = self.sent_by_another_leader(&rpc.vote);
        let result = self.raft.append_entries(rpc).await;
        // Anything but "I know a newer leader" tells the sender its heartbeat got here.
        if foreign && matches!(&result, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_)))
        {
            self.foreign.acknowledged(Instant::now());
        }
        Ok(Response::new(wire::reply(&result)?))
    }

    async fn vote(
        &self,
        request: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        let caller = Caller::of(&request)?;
        let rpc: VoteRequest<NodeId> = wire::parse_request(request.get_ref())?;
        let candidate = sender(&rpc.vote)?;
        caller.require_node(candidate, "ask for votes")?;
        self.check_candidate(candidate)?;
        let result = self.raft.vote(rpc).await;
        Ok(Response::new(wire::reply(&result)?))
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        let caller = Caller::of(&request)?;
        let rpc = wire::parse_snapshot_request(request.into_inner())?;
        let leader = sender(&rpc.vote)?;
        caller.require_node(leader, "install a snapshot")?;
        self.check_leader(leader)?;
        let (foreign, vote) = (self.sent_by_another_leader(&rpc.vote), rpc.vote);
        if let Err(damaged) = self
            .snapshots
            .chunk_received(rpc.offset, &rpc.data, rpc.done)
        {
            tracing::warn!(leader, "refused a snapshot transfer: {damaged}");
            return Err(Status::data_loss(damaged));
        }
        // The last chunk installs the snapshot, which takes a while on a large index: no
        // election meanwhile (the leader's heartbeats to this node wait for the answer), and
        // a short pause after it for the leader's next message.
        let installs = rpc.done;
        if installs {
            self.pause.pause_for(INSTALL_HOLD, false);
        }
        let result = self.raft.install_snapshot(rpc).await;
        if installs {
            self.pause.pause_for(self.after_install, false);
        }
        if foreign && matches!(&result, Ok(r) if r.vote == vote) {
            self.foreign.acknowledged(Instant::now());
        }
        Ok(Response::new(wire::reply(&result)?))
    }
}
