//! The replicated cache index: which bytes the cluster serves for every artifact.
//!
//! # Layout
//! - [`types`]: the openraft type configuration, log commands and apply results.
//! - [`log_store`]: the Raft log on sled; appends and votes flushed before acknowledgement.
//! - [`batcher`]: group commit: concurrent puts share one log entry.
//! - [`state_machine`]: the index as a deterministic, insert-only state machine; snapshots.
//! - [`ops`]: operating the cache through the log: prefetch jobs, purges, block rules,
//!   pins, evictions (applied in `state_machine`'s `ops` part).
//! - [`reader`]: local reads of the applied index for the front end.
//! - [`network`] / [`server`] / [`wire`]: Raft RPCs over tonic gRPC (`proto/raft.proto`)
//!   with mutual TLS; a node may speak only as the id in its certificate; openraft ⇄
//!   protobuf conversions in `wire` only.
//! - [`admin`]: membership changes and leadership transfer over gRPC (`proto/admin.proto`),
//!   authorized by the caller's certificate; [`membership`] keeps changes from breaking
//!   quorum, [`transfer`] and [`election_pause`] implement the transfer, [`retire`] stops a
//!   removed node from campaigning.
//! - [`warm`]: a live connection to every member, so a campaign never waits for a handshake.
//! - [`vouch`]: which leaders this member accepts (voters of its membership, or ones the
//!   voters it knows vouch for).
//! - [`foreign_lease`]: when this member last acknowledged another leader (VIP fencing).
//! - [`prompt_election`]: a follower campaigns as soon as a silent leader's lease is over.
//! - [`node`]: the facade the binary uses ([`Consensus`]); [`view`]: its Raft state in the
//!   node's terms ([`RaftView`], [`RaftWatch`]), so nothing above reads openraft's types.
//! - [`error`]: [`ConsensusError`], with "not leader" as its own variant.

// openraft's trait methods return its own (large) StorageError; helpers return it too.
#![allow(clippy::result_large_err)]

pub mod admin;
mod admin_ops;
mod admin_tokens;
pub mod batcher;
pub mod election_pause;
pub mod error;
pub mod foreign_lease;
mod keys;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod node;
pub mod ops;
pub mod prompt_election;
pub mod reader;
pub mod retire;
pub mod server;
pub mod state_machine;
pub mod transfer;
pub mod types;
pub mod view;
pub mod vouch;
pub mod warm;
pub mod wire;

pub use error::ConsensusError;
pub use node::{Consensus, ConsensusConfig};
pub use reader::{IndexReader, VersionSummary};
pub use types::{
    AdminAction, AdminEvent, AdminRecord, ApplyResponse, IndexCommand, NodeId, PeerNode,
    RaftMetrics, TypeConfig,
};
pub use view::{RaftView, RaftWatch};
