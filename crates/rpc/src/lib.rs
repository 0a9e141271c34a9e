//! The node-to-node gRPC surface: generated services for `proto/`, and how they are secured
//! and dialed. Conversions to domain types stay in the crates that own those types
//! (`consensus::wire` for openraft messages, `replicate` for blobs).
//!
//! # Layout
//! - [`raft`]: `RaftService` (AppendEntries, Vote, InstallSnapshot), `proto/raft.proto`.
//! - [`blob`]: `BlobService` (Push, Fetch, FetchMany), `proto/blob.proto`.
//! - [`admin`]: `AdminService` (membership, leadership transfer and the internal calls a
//!   transfer makes), `proto/admin.proto`.
//! - [`transport`]: [`Transport`], mutual TLS against the cluster CA (or explicit plaintext),
//!   server and client settings, and the limits every service shares.
//! - [`caller`]: [`Caller`], who sent a request, read from its verified client certificate.
//! - [`channels`]: [`Channels`], one lazily connected channel per peer for every service.
//! - [`incoming`]: the bounded accept loop of the node-to-node listener.
#![allow(clippy::all)]

pub mod caller;
pub mod channels;
pub mod incoming;
pub mod transport;

pub use caller::Caller;
pub use channels::Channels;
pub use transport::{PeerName, Transport, TransportError};

/// `goproxyha.raft.v1`.
#[allow(missing_docs)]
pub mod raft {
    tonic::include_proto!("goproxyha.raft.v1");
}

/// `goproxyha.blob.v1`.
#[allow(missing_docs)]
pub mod blob {
    tonic::include_proto!("goproxyha.blob.v1");
}

/// `goproxyha.admin.v1`.
#[allow(missing_docs)]
pub mod admin {
    tonic::include_proto!("goproxyha.admin.v1");
}
