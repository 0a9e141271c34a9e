//! Cluster administration (`goproxy-ha cluster join|leave|transfer-leader`) and the internal
//! calls a leader makes to its peers, served on the node-to-node gRPC listener.
//!
//! Every call is authorized by the caller's certificate ([`Caller`]): membership changes and
//! transfers need an admin identity; pausing elections, campaigning and retiring are accepted
//! only from the node this member currently follows as leader, with bounded durations. A
//! follower answers an operator with the leader's address instead of acting.

use std::time::Duration;

use goproxy_rpc::{Caller, Channels};
use tonic::{Request, Response, Status};

use crate::admin_tokens::{self as tokens, record_cluster};
use crate::election_pause::ElectionPause;
use crate::error::ConsensusError;
use crate::membership::{Membership, MembershipError, DEFAULT_CATCH_UP, MAX_CATCH_UP};
use crate::network::PeerContact;
use crate::retire::Retirement;
use crate::transfer::{transfer_leadership, transfer_window, TransferError};
use crate::types::AdminAction;
use crate::types::{NodeId, PeerNode, Raft};
use crate::vouch::own_view;
use crate::wire::admin::{self, admin_service_server::AdminService};

/// The admin service of one node.
#[derive(Clone)]
pub struct AdminGrpc {
    /// The member's Raft.
    pub(crate) raft: Raft,
    /// Its election pause (transfers).
    pub(crate) pause: ElectionPause,
    /// Membership changes.
    pub(crate) membership: Membership,
    /// Whether it was removed.
    pub(crate) retirement: Retirement,
    /// Channels to its peers.
    pub(crate) channels: Channels,
    /// Which peers are up.
    pub(crate) contact: PeerContact,
    /// Its id.
    pub(crate) me: NodeId,
    /// The applied state: tokens and the admin trail.
    pub(crate) reader: crate::reader::IndexReader,
}

impl AdminGrpc {
    /// `Ok` when `caller` is the leader this member follows (or the cluster is insecure).
    fn require_leader(&self, caller: &Caller, what: &str) -> Result<(), Status> {
        let leader = self.raft.metrics().borrow().current_leader;
        match leader {
            Some(leader) if leader != self.me => caller.require_node(leader, what),
            _ => match caller {
                Caller::Insecure => Ok(()),
                other => Err(Status::permission_denied(format!(
                    "{other} may not {what}: only the leader this node follows may, and it follows none"
                ))),
            },
        }
    }

    /// Records a membership change this leader made, or failed to make, in the admin trail
    /// (a follower's redirect is not an action).
    async fn record<T>(
        &self,
        caller: &Caller,
        kind: &str,
        detail: String,
        result: &Result<T, MembershipError>,
    ) {
        let outcome = match result {
            Err(MembershipError::NotLeader { .. }) => return,
            Err(e) => e.to_string(),
            Ok(_) => "ok".into(),
        };
        record_cluster(&self.raft, self.me, caller, kind, detail, outcome).await;
    }

    /// Commits a token action, as a reply the CLI understands (a follower redirects).
    async fn token_action(
        &self,
        caller: &Caller,
        action: AdminAction,
    ) -> Result<admin::MembershipReply, Status> {
        match tokens::commit(&self.raft, self.me, caller, action).await {
            Ok(Ok(_)) => Ok(ok()),
            Ok(Err(reason)) => Ok(refused(reason)),
            Err(ConsensusError::NotLeader { leader, .. }) => Ok(not_leader(leader)),
            Err(e @ ConsensusError::EntryTooLarge { .. }) => {
                Err(Status::invalid_argument(e.to_string()))
            }
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }

    fn reader(&self) -> crate::reader::IndexReader {
        self.reader.clone()
    }

    /// The longest election pause a leader may ask of this member: twice its own transfer
    /// window (timings may differ slightly between members).
    fn max_pause(&self) -> Duration {
        transfer_window(&self.raft) * 2
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

fn membership_reply<T>(
    result: Result<T, MembershipError>,
) -> Result<Response<admin::MembershipReply>, Status> {
    Ok(Response::new(match result {
        Ok(_) => ok(),
        Err(MembershipError::NotLeader { leader }) => not_leader(leader),
        Err(e) => refused(e.to_string()),
    }))
}

#[tonic::async_trait]
impl AdminService for AdminGrpc {
    async fn add_member(
        &self,
        request: Request<admin::AddMemberRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        let caller = Caller::of(&request)?;
        caller.require_admin("add members")?;
        let request = request.into_inner();
        if request.id == 0 || request.raft_addr.is_empty() || request.http_addr.is_empty() {
            return Err(Status::invalid_argument(
                "id, raft_addr and http_addr are required",
            ));
        }
        let catch_up = match request.catch_up_timeout_ms {
            0 => DEFAULT_CATCH_UP,
            ms => Duration::from_millis(ms),
        };
        if catch_up > MAX_CATCH_UP {
            return Err(Status::invalid_argument(format!(
                "catch_up_timeout_ms: at most {} ms",
                MAX_CATCH_UP.as_millis()
            )));
        }
        let node = PeerNode {
            raft_addr: request.raft_addr,
            http_addr: request.http_addr,
        };
        let detail = format!("node {} {node}", request.id);
        let joined = self.membership.join(request.id, node, catch_up).await;
        self.record(&caller, "add-member", detail, &joined).await;
        membership_reply(joined)
    }

    async fn remove_member(
        &self,
        request: Request<admin::RemoveMemberRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        let caller = Caller::of(&request)?;
        caller.require_admin("remove members")?;
        let id = request.into_inner().id;
        let removed = self.membership.leave(id).await;
        self.record(&caller, "remove-member", format!("node {id}"), &removed)
            .await;
        if let Ok((node, index)) = &removed {
            crate::transfer::tell_retired(&self.channels, id, &node.raft_addr, *index).await;
        }
        membership_reply(removed)
    }

    async fn transfer_leader(
        &self,
        request: Request<admin::TransferLeaderRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        let caller = Caller::of(&request)?;
        caller.require_admin("transfer leadership")?;
        let target = request.into_inner().target_id;
        let outcome = transfer_leadership(
            &self.raft,
            &self.pause,
            &self.channels,
            &self.contact,
            self.me,
            target,
        )
        .await;
        if !matches!(outcome, Err(TransferError::NotLeader { .. })) {
            let result = outcome
                .as_ref()
                .map_or_else(|e| e.to_string(), |()| "ok".into());
            // The old leader records it: the new one may still be taking over.
            record_cluster(
                &self.raft,
                self.me,
                &caller,
                "transfer-leader",
                format!("{} to node {target}", self.me),
                result,
            )
            .await;
        }
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
        self.require_leader(&Caller::of(&request)?, "pause elections")?;
        let requested = Duration::from_millis(request.into_inner().duration_ms);
        if requested > self.max_pause() {
            return Err(Status::invalid_argument(format!(
                "an election pause of {requested:?} exceeds the {:?} a transfer needs",
                self.max_pause()
            )));
        }
        if requested.is_zero() {
            self.pause.resume();
        } else {
            self.pause.pause(requested);
        }
        Ok(Response::new(ok()))
    }

    async fn campaign(
        &self,
        request: Request<admin::CampaignRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        self.require_leader(&Caller::of(&request)?, "start an election here")?;
        if let Some(reason) = self.retirement.reason() {
            return Ok(Response::new(refused(format!("not a voter: {reason}"))));
        }
        self.raft
            .trigger()
            .elect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(ok()))
    }

    async fn retire(
        &self,
        request: Request<admin::RetireRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        let caller = Caller::of(&request)?;
        self.require_leader(&caller, "retire this node")?;
        let index = request.into_inner().removed_at_index;
        match self.retirement.retire_by_leader(&caller.to_string(), index) {
            Ok(()) => Ok(Response::new(ok())),
            Err(why) => Err(Status::failed_precondition(why)),
        }
    }

    async fn create_token(
        &self,
        request: Request<admin::CreateTokenRequest>,
    ) -> Result<Response<admin::CreateTokenReply>, Status> {
        let caller = Caller::of(&request)?;
        caller.require_admin("create client tokens")?;
        let token = goproxy_access::token::generate();
        let grant = tokens::grant_of(request.get_ref(), token.hash, tokens::now_ms())?;
        let status = self
            .token_action(&caller, AdminAction::CreateToken(grant))
            .await?;
        let secret = if status.ok {
            token.secret
        } else {
            String::new()
        };
        Ok(Response::new(admin::CreateTokenReply {
            status: Some(status),
            secret,
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<admin::RevokeTokenRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        let caller = Caller::of(&request)?;
        caller.require_admin("revoke client tokens")?;
        let name = request.into_inner().name;
        goproxy_access::policy::check_name(&name)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let action = AdminAction::RevokeToken { name };
        Ok(Response::new(self.token_action(&caller, action).await?))
    }

    async fn purge(
        &self,
        request: Request<admin::PurgeRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        let caller = Caller::of(&request)?;
        caller.require_admin("purge cached versions")?;
        let action = crate::admin_ops::purge_of(request.into_inner())?;
        Ok(Response::new(self.token_action(&caller, action).await?))
    }

    async fn block(
        &self,
        request: Request<admin::BlockRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        let caller = Caller::of(&request)?;
        caller.require_admin("block modules")?;
        let action = crate::admin_ops::block_of(request.into_inner())?;
        Ok(Response::new(self.token_action(&caller, action).await?))
    }

    async fn unblock(
        &self,
        request: Request<admin::UnblockRequest>,
    ) -> Result<Response<admin::MembershipReply>, Status> {
        let caller = Caller::of(&request)?;
        caller.require_admin("unblock modules")?;
        let action = crate::admin_ops::unblock_of(request.into_inner())?;
        Ok(Response::new(self.token_action(&caller, action).await?))
    }

    async fn list_blocks(
        &self,
        request: Request<admin::ListBlocksRequest>,
    ) -> Result<Response<admin::BlockList>, Status> {
        Caller::of(&request)?.require_admin("list block rules")?;
        let blocks = self
            .reader()
            .blocks()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(admin::BlockList {
            blocks: blocks.into_iter().map(Into::into).collect(),
        }))
    }

    async fn list_tokens(
        &self,
        request: Request<admin::ListTokensRequest>,
    ) -> Result<Response<admin::TokenList>, Status> {
        Caller::of(&request)?.require_admin("list client tokens")?;
        let grants = self
            .reader()
            .tokens()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(admin::TokenList {
            tokens: grants.iter().map(tokens::token_info).collect(),
        }))
    }

    async fn admin_trail(
        &self,
        request: Request<admin::AdminTrailRequest>,
    ) -> Result<Response<admin::AdminTrail>, Status> {
        Caller::of(&request)?.require_admin("read the admin trail")?;
        let since = request.into_inner().since_ms;
        let events = self
            .reader()
            .admin_trail(0)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(admin::AdminTrail {
            events: events
                .into_iter()
                .filter(|e| e.at_ms >= since)
                .map(Into::into)
                .collect(),
        }))
    }

    async fn membership(
        &self,
        request: Request<admin::MembershipRequest>,
    ) -> Result<Response<admin::MembershipView>, Status> {
        Caller::of(&request)?.require_any_node("read the membership")?;
        Ok(Response::new((&own_view(&self.raft)).into()))
    }
}
