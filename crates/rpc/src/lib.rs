//! Generated gRPC code for the node-to-node services in `proto/`. Only framing lives
//! here; conversions to domain types stay in the crates that own those types
//! (`consensus::wire` for openraft messages, `replicate` for blobs).
//!
//! # Layout
//! - [`raft`]: `RaftService` (AppendEntries, Vote, InstallSnapshot), `proto/raft.proto`.
//! - [`blob`]: `BlobService` (Push, Fetch), `proto/blob.proto`.
//! - [`admin`]: `AdminService` (AddMember, RemoveMember), `proto/admin.proto`.
#![allow(missing_docs, clippy::all)]

/// `goproxyha.raft.v1`.
pub mod raft {
    tonic::include_proto!("goproxyha.raft.v1");
}

/// `goproxyha.blob.v1`.
pub mod blob {
    tonic::include_proto!("goproxyha.blob.v1");
}

/// `goproxyha.admin.v1`.
pub mod admin {
    tonic::include_proto!("goproxyha.admin.v1");
}
