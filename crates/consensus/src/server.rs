//! Incoming Raft RPCs: the tonic service handing frames to the local Raft instance.
//!
//! Each request is authorized by the certificate it came with ([`Caller`]): a node may
//! append, install snapshots or ask for votes only as the id its certificate names, and only
//! a voter of this node's membership may ask for its vote (a removed node is told so, and
//! stops campaigning: [`crate::retire`]). Acknowledgements given to another leader are noted
//! for VIP fencing ([`ForeignLease`]).

use std::time::Instant;

use goproxy_rpc::Caller;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest};
use tonic::{Request, Response, Status};

use crate::foreign_lease::ForeignLease;
use crate::types::{NodeId, Raft, TypeConfig};
use crate::wire::{self, pb};

/// Marks a vote refused because the candidate is not a voter here (see
/// [`is_not_a_voter`]).
const NOT_A_VOTER: &str = "not a voter of this cluster";

/// Whether `status` is a refusal of a vote request because the candidate is not a voter.
pub fn is_not_a_voter(status: &Status) -> bool {
    status.code() == tonic::Code::PermissionDenied && status.message().contains(NOT_A_VOTER)
}

/// The gRPC service of one node.
#[derive(Clone)]
pub struct RaftGrpc {
    raft: Raft,
    me: NodeId,
    foreign: ForeignLease,
}

/// The node a Raft message says it comes from (the leader or the candidate of its vote).
fn sender(vote: &openraft::Vote<NodeId>) -> Result<NodeId, Status> {
    vote.leader_id()
        .voted_for()
        .ok_or_else(|| Status::invalid_argument("raft message without a sender"))
}

impl RaftGrpc {
    /// Serves RPCs for `raft` (member `me`), recording acknowledgements in `foreign`.
    pub fn new(raft: Raft, me: NodeId, foreign: ForeignLease) -> Self {
        Self { raft, me, foreign }
    }

    fn sent_by_another_leader(&self, vote: &openraft::Vote<NodeId>) -> bool {
        vote.leader_id().voted_for() != Some(self.me)
    }

    /// Refuses a candidate that is not a voter of this node's membership. A node that has no
    /// membership yet (waiting to be initialised or added) votes as openraft decides.
    fn check_candidate(&self, candidate: NodeId) -> Result<(), Status> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let initialised = membership.nodes().next().is_some();
        if initialised && !membership.voter_ids().any(|id| id == candidate) {
            return Err(Status::permission_denied(format!(
                "node {candidate} is {NOT_A_VOTER} (membership at log index {:?}): it was removed or never joined",
                m.membership_config.log_id().map(|id| id.index)
            )));
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
        caller.require_node(sender(&rpc.vote)?, "append entries")?;
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
        caller.require_node(sender(&rpc.vote)?, "install a snapshot")?;
        let (foreign, vote) = (self.sent_by_another_leader(&rpc.vote), rpc.vote);
        let result = self.raft.install_snapshot(rpc).await;
        if foreign && matches!(&result, Ok(r) if r.vote == vote) {
            self.foreign.acknowledged(Instant::now());
        }
        Ok(Response::new(wire::reply(&result)?))
    }
}
