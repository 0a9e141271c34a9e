//! The upstream chain: where misses are filled from, with the go command's fallback rules.
//!
//! - [`UpstreamList`]: a parsed GOPROXY-syntax list (from `goproxy-routing`).
//! - [`Upstream`]: an HTTP client that walks the list, retrying transient failures.

mod client;

pub use client::{Upstream, UpstreamBody, UpstreamError};
pub use goproxy_routing::list::{
    redact, redact_list, Fallback, UpstreamEntry, UpstreamList, UpstreamListError,
};
