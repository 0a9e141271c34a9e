//! Incoming Raft RPCs: the tonic service handing frames to the local Raft instance, noting
//! each acknowledgement given to another leader ([`ForeignLease`]).

use std::time::Instant;

use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use tonic::{Request, Response, Status};

use crate::foreign_lease::ForeignLease;
use crate::types::{NodeId, Raft, TypeConfig};
use crate::wire::{self, pb};

/// The gRPC service of one node.
#[derive(Clone)]
pub struct RaftGrpc {
    raft: Raft,
    me: NodeId,
    foreign: ForeignLease,
}

impl RaftGrpc {
    /// Serves RPCs for `raft` (member `me`), recording acknowledgements in `foreign`.
    pub fn new(raft: Raft, me: NodeId, foreign: ForeignLease) -> Self {
        Self { raft, me, foreign }
    }

    fn sent_by_another_leader(&self, vote: &openraft::Vote<NodeId>) -> bool {
        vote.leader_id().voted_for() != Some(self.me)
    }
}

#[tonic::async_trait]
impl pb::raft_service_server::RaftService for RaftGrpc {
    async fn append_entries(
        &self,
        request: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = wire::parse_request(request.get_ref())?;
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
        let rpc = wire::parse_request(request.get_ref())?;
        let result = self.raft.vote(rpc).await;
        Ok(Response::new(wire::reply(&result)?))
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        let rpc = wire::parse_snapshot_request(request.into_inner())?;
        let (foreign, vote) = (self.sent_by_another_leader(&rpc.vote), rpc.vote);
        let result = self.raft.install_snapshot(rpc).await;
        if foreign && matches!(&result, Ok(r) if r.vote == vote) {
            self.foreign.acknowledged(Instant::now());
        }
        Ok(Response::new(wire::reply(&result)?))
    }
}
