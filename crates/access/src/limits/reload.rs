//! [`Limits`]: the handle the node keeps, swapping in a new [`Limiter`] when the operator
//! changes the limits (SIGHUP).

use std::net::IpAddr;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, PoisonError, RwLock};

use governor::clock::{Clock, MonotonicClock};

use super::config::LimitsConfig;
use super::limiter::{FillPermit, Limiter, RetryAfter};

/// The current [`Limiter`], replaceable while requests are being checked.
///
/// A reload starts every bucket full again (an abuser gets one fresh burst per reload, which
/// is rare enough not to matter), but the fills in flight carry over: permits taken before a
/// reload still count against the new cap and are given back to it.
pub struct Limits<C: Clock = MonotonicClock> {
    clock: C,
    /// One counter for the life of the node, handed to each new limiter.
    in_flight: Arc<AtomicU32>,
    /// A plain lock (rather than an atomic swap crate): readers hold it only to clone the Arc.
    current: RwLock<Arc<Limiter<C>>>,
}

impl Limits {
    /// Limits enforcing `config`, on the monotonic clock.
    pub fn new(config: &LimitsConfig) -> Self {
        Self::with_clock(config, MonotonicClock)
    }
}

impl<C: Clock + Clone> Limits<C> {
    /// Limits enforcing `config` on `clock` (tests pass governor's `FakeRelativeClock`).
    pub fn with_clock(config: &LimitsConfig, clock: C) -> Self {
        let in_flight = Arc::new(AtomicU32::new(0));
        let limiter = Limiter::sharing_in_flight(config, clock.clone(), Arc::clone(&in_flight));
        Limits {
            clock,
            in_flight,
            current: RwLock::new(Arc::new(limiter)),
        }
    }

    /// Enforces `config` from now on. Checks already under way finish against the old limiter.
    pub fn reload(&self, config: &LimitsConfig) {
        let limiter =
            Limiter::sharing_in_flight(config, self.clock.clone(), Arc::clone(&self.in_flight));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(limiter);
    }

    /// The limiter in force now.
    pub fn current(&self) -> Arc<Limiter<C>> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// [`Limiter::check_hit`] on the limiter in force now.
    pub fn check_hit(&self, token: Option<&str>, address: IpAddr) -> Result<(), RetryAfter> {
        self.current().check_hit(token, address)
    }

    /// [`Limiter::check_fill`] on the limiter in force now.
    pub fn check_fill(
        &self,
        token: Option<&str>,
        address: IpAddr,
    ) -> Result<FillPermit, RetryAfter> {
        self.current().check_fill(token, address)
    }

    /// [`Limiter::check_hit_address`] on the limiter in force now.
    pub fn check_hit_address(&self, address: IpAddr) -> Result<(), RetryAfter> {
        self.current().check_hit_address(address)
    }

    /// [`Limiter::check_hit_token`] on the limiter in force now.
    pub fn check_hit_token(&self, token: &str) -> Result<(), RetryAfter> {
        self.current().check_hit_token(token)
    }

    /// [`Limiter::fill_slot`] of the current limits.
    pub fn fill_slot(&self) -> Result<FillPermit, RetryAfter> {
        self.current().fill_slot()
    }

    /// [`Limiter::housekeep`] on the limiter in force now (an old one is freed whole once its
    /// last check ends). Call it on a timer.
    pub fn housekeep(&self) {
        self.current().housekeep();
    }
}

impl<C: Clock> std::fmt::Debug for Limits<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Limits")
            .field("current", &**current)
            .finish_non_exhaustive()
    }
}
