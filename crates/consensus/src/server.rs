//! Incoming Raft RPCs: the tonic service handing frames to the local Raft instance.

use tonic::{Request, Response, Status};

use crate::types::Raft;
use crate::wire::{self, pb};

/// The gRPC service of one node.
#[derive(Clone)]
pub struct RaftGrpc {
    raft: Raft,
}

impl RaftGrpc {
    /// Serves RPCs for `raft`.
    pub fn new(raft: Raft) -> Self {
        Self { raft }
    }
}

#[tonic::async_trait]
impl pb::raft_service_server::RaftService for RaftGrpc {
    async fn append_entries(
        &self,
        request: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        let rpc = wire::parse_request(request.get_ref())?;
        let result = self.raft.append_entries(rpc).await;
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
        let result = self.raft.install_snapshot(rpc).await;
        Ok(Response::new(wire::reply(&result)?))
    }
}
