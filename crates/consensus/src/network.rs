//! Outgoing Raft RPCs over the cluster's channel pool (mutual TLS, each peer verified as the
//! node id Raft dials), recording when each peer last answered ([`PeerContact`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::types::PeerNode;
use goproxy_rpc::{Channels, PeerName};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use tonic::transport::Channel;

use crate::retire::Retirement;
use crate::types::{NodeId, TypeConfig};
use crate::wire::{self, pb, pb::raft_service_client::RaftServiceClient};

/// Room for the framing around the largest Raft message: an `InstallSnapshot` chunk of
/// `snapshot_max_chunk_size` bytes, or an append of `max_payload_entries` index entries
/// ([`crate::node::MAX_LOG_ENTRY_BYTES`] each at most).
pub(crate) const MESSAGE_HEADROOM: usize = 2 << 20;

/// The largest Raft message accepted or sent, for a given snapshot chunk size.
pub fn max_message(snapshot_chunk_bytes: u64) -> usize {
    usize::try_from(snapshot_chunk_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(MESSAGE_HEADROOM)
}

/// How recently a follower must have answered the leader to count as up: a few election
/// timeouts (the leader heartbeats every follower far more often).
pub fn live_window(raft: &crate::types::Raft) -> Duration {
    Duration::from_millis(raft.config().election_timeout_max * 3)
}

/// When each peer last answered a Raft RPC, and the last failure talking to it. Cheap to
/// clone.
#[derive(Debug, Clone, Default)]
pub struct PeerContact {
    last: Arc<Mutex<HashMap<NodeId, Instant>>>,
    failures: Arc<Mutex<HashMap<NodeId, String>>>,
}

impl PeerContact {
    fn answered(&self, id: NodeId) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.insert(id, Instant::now());
    }

    fn failed(&self, id: NodeId, why: String) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.insert(id, why);
    }

    /// The last failure talking to `id`, if any.
    pub fn last_failure(&self, id: NodeId) -> Option<String> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.get(&id).cloned()
    }

    /// Whether `id` answered within `within` (only meaningful on the leader, which
    /// heartbeats every follower).
    pub fn answered_within(&self, id: NodeId, within: Duration) -> bool {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.get(&id).is_some_and(|at| at.elapsed() <= within)
    }
}

/// Creates a client per peer.
#[derive(Clone)]
pub struct Network {
    channels: Channels,
    retry_after: Duration,
    max_message: usize,
    contact: PeerContact,
    /// Set once the Raft member exists (the network is created before it).
    retirement: Arc<OnceLock<Retirement>>,
}

impl Network {
    /// Clients over `channels` that retry an unreachable peer every `retry_after`. Use the
    /// heartbeat interval: openraft's default (500 ms) lets a restarted member go unheard for
    /// longer than its election timeout, so it campaigns and unseats a healthy leader.
    pub fn new(
        channels: Channels,
        retry_after: Duration,
        max_message: usize,
        contact: PeerContact,
        retirement: Arc<OnceLock<Retirement>>,
    ) -> Self {
        Self {
            channels,
            retry_after,
            max_message,
            contact,
            retirement,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.raft_addr.clone(),
            network: self.clone(),
        }
    }
}

/// The RPC client for one peer.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    network: Network,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, PeerNode, E>>;

impl PeerClient {
    fn client(&self) -> Result<RaftServiceClient<Channel>, Unreachable> {
        let channel = self
            .network
            .channels
            .get(&self.addr, PeerName::Node(self.target))
            .map_err(|e| Unreachable::new(&e))?;
        let limit = self.network.max_message;
        Ok(RaftServiceClient::new(channel)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit))
    }

    async fn call<Resp, E>(
        &mut self,
        kind: Rpc,
        frame: Result<pb::RaftRequest, serde_json::Error>,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let frame = frame.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = self.client().map_err(RPCError::Unreachable)?;
        let mut request = tonic::Request::new(frame);
        request.set_timeout(option.hard_ttl());
        let reply = match kind {
            Rpc::Append => client.append_entries(request).await,
            Rpc::Vote => client.vote(request).await,
            Rpc::Snapshot => client.install_snapshot(request).await,
        };
        let reply = reply
            .map_err(|status| self.transport_error(kind, status))?
            .into_inner();
        self.network.contact.answered(self.target);
        match wire::parse_reply::<Resp, E>(&reply) {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new(self.target, remote))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }

    /// Connection-level failures make openraft back off from this peer; others are retried.
    /// A vote refused because this node is not a voter there means it was removed from the
    /// cluster while it could not hear so: it stops campaigning ([`Retirement`]).
    fn transport_error<E: std::error::Error>(
        &mut self,
        kind: Rpc,
        status: tonic::Status,
    ) -> RPCError<NodeId, PeerNode, E> {
        self.network.contact.failed(self.target, describe(&status));
        if let Some(index) =
            crate::server::not_a_voter_at(&status).filter(|_| matches!(kind, Rpc::Vote))
        {
            if let Some(retirement) = self.network.retirement.get() {
                retirement.retire_on_refusal(self.target, index, status.message());
            }
        }
        match status.code() {
            tonic::Code::Unavailable | tonic::Code::Unknown => {
                self.network.channels.forget(&self.addr);
                RPCError::Unreachable(Unreachable::new(&status))
            }
            _ => RPCError::Network(NetworkError::new(&status)),
        }
    }
}

/// A status with its sources (tonic hides a refused handshake behind "transport error").
pub fn describe(status: &tonic::Status) -> String {
    let mut text = format!("{}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[derive(Clone, Copy)]
enum Rpc {
    Append,
    Vote,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for PeerClient {
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(self.network.retry_after))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        self.call(Rpc::Append, wire::request(&rpc), &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.call(Rpc::Vote, wire::request(&rpc), &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(Rpc::Snapshot, wire::snapshot_request(rpc), &option)
            .await
    }
}
