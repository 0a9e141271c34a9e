//! Blob replication between nodes.
//!
//! # Layout
//! - [`server`]: the gRPC `BlobService` a node mounts next to its Raft service: receives
//!   pushed blobs (only from node certificates, only for an artifact the [`PushGate`] ties to
//!   a fill in progress or a committed entry, within that kind's size limit; staged,
//!   sha256-verified, fsynced, then made visible) and streams committed blobs to peers that
//!   miss them.
//! - [`client`]: [`Replicator`], used by the filling node: push a new blob to every peer
//!   and wait for `sync_replicas` of them (semi-synchronous, with a timeout that degrades
//!   to asynchronous), and fetch a missing blob from whichever peer has it.
//! - [`gate`]: [`PushGate`], the check the receiving node makes (implemented by the node over
//!   its index and leadership).
//! - `wire`: the generated protobuf types (`proto/blob.proto`) and the artifact conversion.

pub mod client;
pub mod gate;
pub mod server;

/// Generated gRPC types (`goproxyha.blob.v1`).
pub use goproxy_rpc::blob as wire;

pub use client::{PeerList, PushOutcome, Replicator, ReplicatorConfig};
pub use gate::PushGate;
pub use server::BlobGrpc;

/// Size of the chunks blobs travel in.
pub const CHUNK: usize = 256 * 1024;
/// Largest gRPC message: one chunk plus framing.
pub const MAX_MESSAGE: usize = 2 * CHUNK;
/// Longest a push may wait for its next chunk before the receiver gives up on it.
pub const CHUNK_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
