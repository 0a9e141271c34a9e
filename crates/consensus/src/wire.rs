//! Conversions between openraft messages and the gRPC frames of `proto/raft.proto`.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Generated gRPC types (`goproxyha.raft.v1`).
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("goproxyha.raft.v1");
}

/// Generated admin gRPC types (`goproxyha.admin.v1`).
pub mod admin {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("goproxyha.admin.v1");
}

/// Frames an openraft request.
pub fn request<T: Serialize>(message: &T) -> Result<pb::RaftRequest, serde_json::Error> {
    Ok(pb::RaftRequest {
        payload: serde_json::to_vec(message)?,
    })
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
