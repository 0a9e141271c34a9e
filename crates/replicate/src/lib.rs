//! Blob replication between nodes: everything that moves blob bytes from one node to another
//! (see `DESIGN.md`).
//!
//! # Layout
//! - [`replication`]: [`Replication`], what the node uses: semi-synchronous pushes (wait for
//!   `sync_replicas` fsyncs, or degrade after `sync_timeout`), the bounded under-replication
//!   [`backlog`] and its background repair, fetches of missing blobs, and the [`catch_up`]
//!   that brings every committed blob to this node.
//! - [`client`]: [`Replicator`], the pushes and fetches over gRPC.
//! - [`server`]: the gRPC `BlobService` a node mounts next to its Raft service: receives
//!   pushed blobs (only from node certificates, only for an artifact the [`PushGate`] ties to
//!   a fill in progress or a committed entry, within that kind's size limit; staged,
//!   sha256-verified, fsynced, then made visible) and streams committed blobs to peers that
//!   miss them.
//! - [`gate`]: [`PushGate`] and the node's gate, [`CommittedOrLeader`].
//! - [`cluster`]: [`ClusterView`], what replication needs to know about the cluster
//!   (implemented by the node over its Raft member).
//! - [`metrics`]: [`ReplicationMetrics`], registered into the node's registry.
//! - `wire`: the generated protobuf types (`proto/blob.proto`) and the artifact conversion.

pub mod backlog;
pub mod catch_up;
pub mod client;
pub mod cluster;
pub mod gate;
pub mod metrics;
pub mod replication;
pub mod server;

/// Generated gRPC types (`goproxyha.blob.v1`).
pub use goproxy_rpc::blob as wire;

pub use client::{FetchDeadline, PeerList, PushOutcome, Replicator, ReplicatorConfig};
pub use cluster::ClusterView;
pub use gate::{CommittedOrLeader, PushGate};
pub use metrics::ReplicationMetrics;
pub use replication::{Replication, ReplicationConfig};
pub use server::BlobGrpc;

/// Size of the chunks blobs travel in.
pub const CHUNK: usize = 256 * 1024;
/// Largest gRPC message: one chunk plus framing.
pub const MAX_MESSAGE: usize = 2 * CHUNK;
/// Most blobs one `FetchMany` may ask for.
pub const MAX_FETCH_MANY: usize = 256;
/// Longest a push may wait for its next chunk before the receiver gives up on it.
pub const CHUNK_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
