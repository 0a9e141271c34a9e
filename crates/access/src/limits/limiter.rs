//! [`Limiter`]: the checks the HTTP front end makes for every request.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock};

use super::buckets::{address_key, Buckets, MAX_TRACKED_KEYS};
use super::config::{LimitsConfig, Rate, MAX_CONCURRENT_FILLS};

/// A [`Limiter`] drops idle keys from its bucket maps after this many checks, so memory stays
/// bounded even if the node never calls [`Limiter::housekeep`]: each map then holds at most
/// [`MAX_TRACKED_KEYS`] + this many keys.
pub const HOUSEKEEP_EVERY: u64 = 4096;

/// What to tell a client refused by the concurrent-fill cap: fills take about this long, and
/// there is no bucket to compute a better answer from.
pub const CONCURRENT_FILLS_RETRY_AFTER: Duration = Duration::from_secs(1);

const HITS_PER_TOKEN: &str = "hits per token";
const HITS_PER_ADDRESS: &str = "hits per address";
const FILLS_PER_TOKEN: &str = "fills per token";
const FILLS_PER_ADDRESS: &str = "fills per address";
const CONCURRENT_FILLS: &str = "concurrent fills";

/// A refusal: the client is over `limit` and may retry after `wait`. The caller answers 429
/// with `Retry-After: {seconds()}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("over the {limit} limit; retry after {wait:?}")]
pub struct RetryAfter {
    /// How long until the request would be admitted (for a bucket, until it holds a token).
    pub wait: Duration,
    /// Which limit refused: "hits per token", "hits per address", "fills per token",
    /// "fills per address" or "concurrent fills".
    pub limit: &'static str,
}

impl RetryAfter {
    /// [`RetryAfter::wait`] in whole seconds for the `Retry-After` header: rounded up (a client
    /// retrying early would only be refused again) and at least 1 (0 invites a busy loop).
    pub fn seconds(&self) -> u64 {
        let whole = self.wait.as_secs();
        let rounded = if self.wait.subsec_nanos() > 0 {
            whole.saturating_add(1)
        } else {
            whole
        };
        rounded.max(1)
    }
}

/// One slot of the concurrent-fill cap, held for the duration of an upstream fetch and given
/// back when dropped.
#[derive(Debug)]
#[must_use = "the fill slot is given back as soon as the permit is dropped"]
pub struct FillPermit {
    /// Shared by every [`Limiter`] of one [`Limits`](super::Limits), so the slot still counts
    /// (and is given back to the right counter) after a reload.
    in_flight: Arc<AtomicU32>,
}

impl Drop for FillPermit {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The per-token and per-address buckets of one kind of request (hits or fills).
struct KindLimits<C: Clock> {
    per_token: Option<Buckets<String, C>>,
    per_address: Option<Buckets<IpAddr, C>>,
}

impl<C: Clock + Clone> KindLimits<C> {
    fn new(
        (token_limit, per_token): (&'static str, Option<Rate>),
        (address_limit, per_address): (&'static str, Option<Rate>),
        clock: &C,
    ) -> Self {
        KindLimits {
            per_token: per_token
                .map(|rate| Buckets::new(token_limit, rate, clock.clone(), MAX_TRACKED_KEYS)),
            per_address: per_address
                .map(|rate| Buckets::new(address_limit, rate, clock.clone(), MAX_TRACKED_KEYS)),
        }
    }

    /// Token bucket first, then address: a refusal by the first does not charge the second.
    fn check(&self, token: Option<&str>, address: IpAddr) -> Result<(), RetryAfter> {
        self.check_token(token)?;
        self.check_address(address)
    }

    fn check_token(&self, token: Option<&str>) -> Result<(), RetryAfter> {
        if let (Some(buckets), Some(token)) = (&self.per_token, token) {
            buckets.check(&token.to_owned())?;
        }
        Ok(())
    }

    fn check_address(&self, address: IpAddr) -> Result<(), RetryAfter> {
        if let Some(buckets) = &self.per_address {
            buckets.check(&address_key(address))?;
        }
        Ok(())
    }

    fn housekeep(&self) {
        self.per_token.iter().for_each(Buckets::housekeep);
        self.per_address.iter().for_each(Buckets::housekeep);
    }

    fn tracked_keys(&self) -> usize {
        self.per_token.iter().map(Buckets::len).sum::<usize>()
            + self.per_address.iter().map(Buckets::len).sum::<usize>()
    }
}

/// The rate limits of one configuration, on clock `C` (the real monotonic clock unless a test
/// injects governor's `FakeRelativeClock`).
pub struct Limiter<C: Clock = MonotonicClock> {
    config: LimitsConfig,
    hits: KindLimits<C>,
    fills: KindLimits<C>,
    /// The cap on concurrent fills, `u32::MAX` (never reached) when unlimited.
    fill_cap: u32,
    /// Fills running now. Counted even without a cap, so a reload that adds one starts right.
    in_flight: Arc<AtomicU32>,
    checks: AtomicU64,
    housekeeping: AtomicBool,
}

impl Limiter {
    /// The limiter for `config`, on the monotonic clock. Out-of-range values (which
    /// [`LimitsConfig::problems`] reports) are clamped into range rather than failing.
    pub fn new(config: &LimitsConfig) -> Self {
        Self::with_clock(config, MonotonicClock)
    }
}

impl<C: Clock + Clone> Limiter<C> {
    /// The limiter for `config` on `clock` (tests pass governor's `FakeRelativeClock`).
    pub fn with_clock(config: &LimitsConfig, clock: C) -> Self {
        Self::sharing_in_flight(config, clock, Arc::new(AtomicU32::new(0)))
    }

    /// The limiter for `config` counting its fills in `in_flight`, shared with the limiter it
    /// replaces so permits held across a reload still count.
    pub(crate) fn sharing_in_flight(
        config: &LimitsConfig,
        clock: C,
        in_flight: Arc<AtomicU32>,
    ) -> Self {
        Limiter {
            config: config.clone(),
            hits: KindLimits::new(
                (HITS_PER_TOKEN, config.hits_per_token),
                (HITS_PER_ADDRESS, config.hits_per_address),
                &clock,
            ),
            fills: KindLimits::new(
                (FILLS_PER_TOKEN, config.fills_per_token),
                (FILLS_PER_ADDRESS, config.fills_per_address),
                &clock,
            ),
            fill_cap: config
                .max_concurrent_fills
                .map_or(u32::MAX, |cap| cap.clamp(1, MAX_CONCURRENT_FILLS)),
            in_flight,
            checks: AtomicU64::new(0),
            housekeeping: AtomicBool::new(false),
        }
    }

    /// Admits one request (of any kind) from `address`, presenting `token` (the name of the
    /// token that authenticated it, never a name the client merely claims), or says which
    /// limit refused it and for how long.
    pub fn check_hit(&self, token: Option<&str>, address: IpAddr) -> Result<(), RetryAfter> {
        self.count_check();
        self.hits.check(token, address)
    }

    /// The per-address half of [`Limiter::check_hit`], for a request whose credentials are
    /// not checked yet: refused requests (bad tokens, probing) are limited too.
    pub fn check_hit_address(&self, address: IpAddr) -> Result<(), RetryAfter> {
        self.count_check();
        self.hits.check_address(address)
    }

    /// The per-token half of [`Limiter::check_hit`], once the token is known.
    pub fn check_hit_token(&self, token: &str) -> Result<(), RetryAfter> {
        self.hits.check_token(Some(token))
    }

    /// Admits one fill (a fetch from upstream), on top of the [`Limiter::check_hit`] the
    /// request already passed: takes a slot of the concurrent-fill cap, then a token from the
    /// fill buckets. Hold the permit until the fetch is done.
    ///
    /// The slot is taken first because giving it back is free, whereas a bucket token, once
    /// taken, stays spent: a client refused for lack of slots is not charged.
    pub fn check_fill(
        &self,
        token: Option<&str>,
        address: IpAddr,
    ) -> Result<FillPermit, RetryAfter> {
        self.count_check();
        let permit = self.take_fill_slot()?;
        self.fills.check(token, address)?;
        Ok(permit)
    }

    /// Drops the idle keys (whose bucket has refilled) from every bucket map and returns the
    /// memory; resets a map still holding more than [`MAX_TRACKED_KEYS`] keys (failing open
    /// for that limit, briefly). Runs by itself every [`HOUSEKEEP_EVERY`] checks; the node
    /// should also call it on a timer (every few seconds) so memory is returned when traffic
    /// stops. A call while another is running returns at once.
    pub fn housekeep(&self) {
        if self.housekeeping.swap(true, Ordering::Acquire) {
            return;
        }
        self.hits.housekeep();
        self.fills.housekeep();
        self.housekeeping.store(false, Ordering::Release);
    }

    /// The configuration this limiter enforces.
    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// How many fills hold a permit now (for metrics).
    pub fn fills_in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// How many keys the bucket maps hold now, all limits together (for metrics).
    pub fn tracked_keys(&self) -> usize {
        self.hits.tracked_keys() + self.fills.tracked_keys()
    }

    fn count_check(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEP_EVERY == HOUSEKEEP_EVERY - 1 {
            self.housekeep();
        }
    }

    /// Takes a slot of the global cap on concurrent fills only, for a fill already charged
    /// to its client elsewhere (a miss another member forwarded).
    pub fn fill_slot(&self) -> Result<FillPermit, RetryAfter> {
        self.take_fill_slot()
    }

    fn take_fill_slot(&self) -> Result<FillPermit, RetryAfter> {
        let cap = self.fill_cap;
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .map(|_| FillPermit {
                in_flight: Arc::clone(&self.in_flight),
            })
            .map_err(|_| RetryAfter {
                wait: CONCURRENT_FILLS_RETRY_AFTER,
                limit: CONCURRENT_FILLS,
            })
    }
}

impl<C: Clock> fmt::Debug for Limiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("config", &self.config)
            .field("fills_in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
