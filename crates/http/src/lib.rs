//! The GOPROXY HTTP front end.
//!
//! # Layout
//! - [`frontend`]: shared state, the router and per-route dispatch.
//! - [`access`]: the front door: tokens (401/403, `goproxy-access`) and rate limits (429).
//! - [`audited`]: the layer writing one audit record per request (`goproxy-audit`).
//! - `routed`: a request's environment and route rule (`goproxy-routing`): its upstream,
//!   cache-only mode, or a 403.
//! - `artifacts`: immutable `.info`/`.mod`/`.zip` answers from the index and local blobs.
//! - `listing`: `list`, `@latest` and version queries (mutable, TTL-cached, stale-if-error).
//! - `sumdb`: checksum-database endpoints: lookups and tiles verified and kept for the
//!   cluster by the [`checksum`] checker (`goproxy-checksum` over the index), which also
//!   verifies every public `.mod`/`.zip` fill.
//! - `forward`: misses on a follower are proxied to the leader, which fills.
//! - [`operate`]: block rules on every request, served versions noted for eviction, purged
//!   versions forgotten, prefetch fetches (the node runs the jobs).
//! - [`fill`]: single-flight, validated fills from upstream into the store and index.
//! - [`upstream`]: the GOPROXY-syntax upstream chain and its HTTP client.
//! - [`serve`]: ETag, conditional and range answers streamed from disk.
//! - `prepared`: repeated hits on small artifacts answered from a prepared answer per
//!   request path, skipping parsing, routing and header building (not the checks).
//! - [`error`]: the one place errors become HTTP responses.
//! - [`index`]: the cache-index interface this crate needs (implemented by the node).
//! - [`listener`]: the accept loop with the connection cap, header and idle timeouts.
//! - [`metrics`], [`config`], and small helpers ([`single_flight`], [`ttl_cache`], `answers`).

pub mod access;
mod answers;
mod artifacts;
pub mod audited;
pub mod checksum;
pub mod config;
pub mod error;
pub mod fill;
mod forward;
pub mod frontend;
pub mod index;
pub mod listener;
mod listing;
pub mod metrics;
pub mod operate;
mod prepared;
mod routed;
pub mod serve;
pub mod single_flight;
mod sumdb;
pub mod ttl_cache;
pub mod upstream;

pub use config::FrontendConfig;
pub use frontend::{Frontend, FrontendError};
pub use index::{BlobPeers, CacheIndex, CachedVersion, IndexError, Leadership};
pub use metrics::Metrics;
