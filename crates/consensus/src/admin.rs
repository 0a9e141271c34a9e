//! Cluster administration (`goproxy-ha cluster join|leave|transfer-leader`), served on the
//! node-to-node gRPC listener. A follower answers with the leader's address instead of acting.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::ChangeMembers;
use tonic::{Request, Response, Status};

use crate::election_pause::ElectionPause;
use crate::transfer::{transfer_leadership, TransferError};
use crate::types::{NodeId, PeerNode, Raft};
use crate::wire::admin::{self, admin_service_server::AdminService};

/// The admin service of one node.
#[derive(Clone)]
pub struct AdminGrpc {
    raft: Raft,
    pause: ElectionPause,
    me: NodeId,
}

impl AdminGrpc {
    /// Serves administration of node `me` running `raft`.
    pub fn new(raft: Raft, pause: ElectionPause, me: NodeId) -> Self {
        Self { raft, pause, me }
    }
}

fn ok() -> admin::MembershipReply {
    admin::MembershipReply {
        ok: true,
        leader_raft_addr: String::new(),
        message: String::new(),
        not_leader: false,
    }
}

/// A refusal because this node does not lead; `leader` is whom to ask, when known.
fn not_leader(leader: Option<PeerNode>) -> admin::MembershipReply {
    admin::MembershipReply {
        ok: false,
        leader_raft_addr: leader.map(|n| n.raft_addr).unwrap_or_default(),
        message: "not the leader".into(),
        not_leader: true,
    }
}

/// A refusal for any other reason.
fn refused(message: String) -> admin::MembershipReply {
    admin::MembershipReply {
        ok: false,
        leader_raft_addr: String::new(),
        message,
        not_leader: false,
    }
}

/// Upper bound on a requested election pause: a peer cannot silence this node for long.
const MAX_PAUSE_MS: u64 = 60_000;

type WriteError = RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>;

fn reply<T>(result: Result<T, WriteError>) -> Result<Response<admin::MembershipReply>, Status> {
    let reply = match result {
        Ok(_) => ok(),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
            not_leader(forward.leader_node)
        }
        Err(e) => refused(e.to_string()),
    };
    Ok(Response::new(reply))
}

#[tonic::async_trait]
impl AdminService for AdminGrpc {
    async fn add_member(
        &self,
        request: Request<admin::AddMemberRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        let request = request.into_inner();
        if request.id == 0 || request.raft_addr.is_empty() || request.http_addr.is_empty() {
            return Err(Status::invalid_argument(
                "id, raft_addr and http_addr are required",
            ));
        }
        let node = PeerNode {
            raft_addr: request.raft_addr,
            http_addr: request.http_addr,
        };
        // Learner first: it catches up (by log or snapshot) before it may vote.
        let learner = self.raft.add_learner(request.id, node, true).await;
        if learner.is_err() {
            return reply(learner);
        }
        let voters = ChangeMembers::AddVoterIds(BTreeSet::from([request.id]));
        reply(self.raft.change_membership(voters, false).await)
    }

    async fn remove_member(
        &self,
        request: Request<admin::RemoveMemberRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        let id = request.into_inner().id;
        let voters = ChangeMembers::RemoveVoters(BTreeSet::from([id]));
        reply(self.raft.change_membership(voters, false).await)
    }

    async fn transfer_leader(
        &self,
        request: Request<admin::TransferLeaderRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        let target = request.into_inner().target_id;
        let outcome = transfer_leadership(&self.raft, &self.pause, self.me, target).await;
        let reply = match outcome {
            Ok(()) => ok(),
            Err(TransferError::NotLeader { leader }) => not_leader(leader),
            Err(e) => refused(e.to_string()),
        };
        Ok(Response::new(reply))
    }

    async fn pause_elections(
        &self,
        request: Request<admin::PauseElectionsRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        match request.into_inner().duration_ms {
            0 => self.pause.resume(),
            ms => self
                .pause
                .pause(Duration::from_millis(ms.min(MAX_PAUSE_MS))),
        }
        Ok(Response::new(ok()))
    }

    async fn campaign(
        &self,
        _request: Request<admin::CampaignRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        self.raft
            .trigger()
            .elect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(ok()))
    }
}
