//! Outgoing Raft RPCs over tonic: one lazily connected channel per peer.

use std::time::Duration;

use crate::types::PeerNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use tonic::transport::{Channel, Endpoint};

use crate::types::{NodeId, TypeConfig};
use crate::wire::{self, pb, pb::raft_service_client::RaftServiceClient};

/// Time allowed to establish a connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Largest gRPC message. Snapshots travel in chunks of `snapshot_max_chunk_size` (3 MiB by
/// default) and append requests are bounded by `max_payload_entries`, so this is headroom.
pub const MAX_MESSAGE: usize = 512 << 20;

/// Creates a client per peer.
#[derive(Debug, Clone)]
pub struct Network {
    retry_after: Duration,
}

impl Network {
    /// Clients that retry an unreachable peer every `retry_after`. Use the heartbeat interval:
    /// openraft's default (500 ms) lets a restarted member go unheard for longer than its
    /// election timeout, so it campaigns and unseats a healthy leader.
    pub fn new(retry_after: Duration) -> Self {
        Self { retry_after }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.raft_addr.clone(),
            client: None,
            retry_after: self.retry_after,
        }
    }
}

/// The RPC client for one peer.
#[derive(Debug)]
pub struct PeerClient {
    target: NodeId,
    addr: String,
    client: Option<RaftServiceClient<Channel>>,
    retry_after: Duration,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, PeerNode, E>>;

impl PeerClient {
    fn client(&mut self) -> Result<RaftServiceClient<Channel>, Unreachable> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr))
            .map_err(|e| Unreachable::new(&e))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        let client = RaftServiceClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        self.client = Some(client.clone());
        Ok(client)
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
            .map_err(|status| self.transport_error(status))?
            .into_inner();
        match wire::parse_reply::<Resp, E>(&reply) {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new(self.target, remote))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }

    /// Connection-level failures make openraft back off from this peer; others are retried.
    fn transport_error<E: std::error::Error>(
        &mut self,
        status: tonic::Status,
    ) -> RPCError<NodeId, PeerNode, E> {
        match status.code() {
            tonic::Code::Unavailable | tonic::Code::Unknown => {
                self.client = None;
                RPCError::Unreachable(Unreachable::new(&status))
            }
            _ => RPCError::Network(NetworkError::new(&status)),
        }
    }
}

enum Rpc {
    Append,
    Vote,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for PeerClient {
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(self.retry_after))
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
