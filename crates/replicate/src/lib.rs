//! Blob replication between nodes.
//!
//! # Layout
//! - [`server`]: the gRPC `BlobService` a node mounts next to its Raft service: receives
//!   pushed blobs (staged, sha256-verified, fsynced, then made visible) and streams
//!   committed blobs to peers that miss them.
//! - [`client`]: [`Replicator`], used by the filling node: push a new blob to every peer
//!   and wait for `sync_replicas` of them (semi-synchronous, with a timeout that degrades
//!   to asynchronous), and fetch a missing blob from whichever peer has it.
//! - `wire`: the generated protobuf types (`proto/blob.proto`).

pub mod client;
pub mod server;

/// Generated gRPC types (`goproxyha.blob.v1`).
pub use goproxy_rpc::blob as wire;

pub use client::{PushOutcome, Replicator, ReplicatorConfig};
pub use server::BlobGrpc;

/// Size of the chunks blobs travel in.
pub const CHUNK: usize = 256 * 1024;
/// Largest gRPC message: one chunk plus framing.
pub const MAX_MESSAGE: usize = 2 * CHUNK;
