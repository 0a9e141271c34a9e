//! The upstream chain: where misses are filled from, with the go command's fallback rules.
//!
//! - [`UpstreamList`]: a parsed GOPROXY-syntax list.
//! - [`Upstream`]: an HTTP client that walks the list, retrying transient failures.

mod client;
mod list;

pub use client::{Upstream, UpstreamBody, UpstreamError};
pub use list::{redact, redact_list, Fallback, UpstreamEntry, UpstreamList, UpstreamListError};
