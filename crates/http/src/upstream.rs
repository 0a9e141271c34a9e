//! The upstream chain: where misses are filled from, with the go command's fallback rules.
//!
//! - [`UpstreamList`]: a parsed GOPROXY-syntax list (from `goproxy-routing`).
//! - [`Upstream`]: an HTTP client that walks the list, retrying transient failures; `direct`
//!   entries go to a [`DirectSource`] (version control).

mod client;
mod direct;

pub use client::{Upstream, UpstreamBody, UpstreamError};
pub use direct::{DirectBody, DirectError, DirectRequest, DirectSource};
pub use goproxy_routing::list::{
    redact, redact_list, Fallback, UpstreamEntry, UpstreamList, UpstreamListError,
};
