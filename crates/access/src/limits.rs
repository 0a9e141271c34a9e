//! Rate limits for the proxy's clients, checked by the HTTP front end for every request.
//!
//! Two kinds of work are limited separately, because they cost different things:
//!
//! - **hits**: every request (cheap when served from the store);
//! - **fills**: a request that makes the proxy fetch from upstream (costs upstream work and
//!   upstream's patience with us).
//!
//! Each kind has a token bucket per token (keyed by the token's name) and one per client
//! address (IPv4 address, or the /64 prefix of an IPv6 address: one host usually owns a whole
//! /64, so keying by full address would hand it 2^64 buckets). Fills also share a global cap on
//! how many may run at once. Over a limit, the caller answers 429 with `Retry-After:
//! {RetryAfter::seconds}`.
//!
//! - [`config`]: [`LimitsConfig`] and [`Rate`], all off by default (operators opt in), and
//!   [`LimitsConfig::problems`].
//! - [`buckets`]: keyed token buckets (governor's GCRA) with bounded memory.
//! - [`limiter`]: [`Limiter`] (`check_hit`, `check_fill`), [`RetryAfter`], [`FillPermit`].
//! - [`reload`]: [`Limits`], the reloadable handle the node keeps and swaps on SIGHUP.

pub mod buckets;
pub mod config;
pub mod limiter;
pub mod reload;

pub use buckets::{address_key, MAX_TRACKED_KEYS};
pub use config::{LimitsConfig, Rate, MAX_BURST, MAX_CONCURRENT_FILLS, MAX_PER_SECOND};
pub use limiter::{FillPermit, Limiter, RetryAfter, CONCURRENT_FILLS_RETRY_AFTER, HOUSEKEEP_EVERY};
pub use reload::Limits;

#[cfg(test)]
mod tests;
