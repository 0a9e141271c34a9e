//! Conversions between openraft messages and the gRPC frames of `proto/raft.proto`.

use openraft::raft::InstallSnapshotRequest;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::types::TypeConfig;

/// Generated gRPC types (`goproxyha.raft.v1`).
pub use goproxy_rpc::raft as pb;

/// Generated admin gRPC types (`goproxyha.admin.v1`).
pub use goproxy_rpc::admin;

/// Frames an openraft request.
pub fn request<T: Serialize>(message: &T) -> Result<pb::RaftRequest, serde_json::Error> {
    Ok(pb::RaftRequest {
        payload: serde_json::to_vec(message)?,
        data: Vec::new(),
    })
}

/// Frames an `InstallSnapshot` chunk: its bytes go in `data`, the rest as JSON in `payload`.
pub fn snapshot_request(
    mut message: InstallSnapshotRequest<TypeConfig>,
) -> Result<pb::RaftRequest, serde_json::Error> {
    let data = std::mem::take(&mut message.data);
    Ok(pb::RaftRequest {
        payload: serde_json::to_vec(&message)?,
        data,
    })
}

/// Reads an `InstallSnapshot` chunk framed by [`snapshot_request`].
pub fn parse_snapshot_request(
    request: pb::RaftRequest,
) -> Result<InstallSnapshotRequest<TypeConfig>, tonic::Status> {
    let mut message: InstallSnapshotRequest<TypeConfig> = parse_request(&request)?;
    message.data = request.data;
    Ok(message)
}

/// Reads an openraft request.
pub fn parse_request<T: DeserializeOwned>(request: &pb::RaftRequest) -> Result<T, tonic::Status> {
    serde_json::from_slice(&request.payload)
        .map_err(|e| tonic::Status::invalid_argument(format!("undecodable raft request: {e}")))
}

/// Frames an openraft result.
pub fn reply<T: Serialize, E: Serialize>(
    result: &Result<T, E>,
) -> Result<pb::RaftReply, tonic::Status> {
    let encode =
        |e: serde_json::Error| tonic::Status::internal(format!("encoding raft reply: {e}"));
    Ok(match result {
        Ok(value) => pb::RaftReply {
            payload: serde_json::to_vec(value).map_err(encode)?,
            error: Vec::new(),
        },
        Err(error) => pb::RaftReply {
            payload: Vec::new(),
            error: serde_json::to_vec(error).map_err(encode)?,
        },
    })
}

/// Reads an openraft result: `Ok(Ok(response))`, `Ok(Err(remote raft error))`, or a decode error.
pub fn parse_reply<T: DeserializeOwned, E: DeserializeOwned>(
    reply: &pb::RaftReply,
) -> Result<Result<T, E>, serde_json::Error> {
    if reply.error.is_empty() {
        Ok(Ok(serde_json::from_slice(&reply.payload)?))
    } else {
        Ok(Err(serde_json::from_slice(&reply.error)?))
    }
}
