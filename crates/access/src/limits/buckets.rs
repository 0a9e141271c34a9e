//! Keyed token buckets (governor's GCRA, one bucket per key in a `DashMap`) whose memory
//! stays bounded however many keys clients present.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{PoisonError, RwLock};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use super::config::{Rate, MAX_BURST, MAX_PER_SECOND};
use super::limiter::RetryAfter;

/// The most keys one bucket map keeps once idle keys are dropped; past it every bucket of that
/// map is reset to full (failing open, briefly: see the module's `housekeep`). At roughly 100
/// bytes a key, 100 000 keys is ~10 MB per map.
pub const MAX_TRACKED_KEYS: usize = 100_000;

/// The prefix length IPv6 clients are keyed by: a /64 is what one subscriber or host is
/// handed, so every address in it is the same client.
const IPV6_CLIENT_PREFIX_BITS: u32 = 64;

/// The key a client address is limited by: an IPv4 address as is, an IPv6 address by its
/// /64 prefix (the rest zeroed), and an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a
/// dual-stack listener reports for IPv4 clients) as the IPv4 address it stands for, since its
/// /64 would otherwise lump every IPv4 client into one bucket.
pub fn address_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (u128::BITS - IPV6_CLIENT_PREFIX_BITS);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// governor's keyed limiter over a `DashMap`, on clock `C`.
type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The quota for `rate`, clamped into the range [`LimitsConfig::problems`] accepts so that
/// building a limiter never fails or panics.
///
/// [`LimitsConfig::problems`]: super::LimitsConfig::problems
fn quota(rate: Rate) -> Quota {
    let nonzero =
        |value: u32, max: u32| NonZeroU32::new(value.clamp(1, max)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(nonzero(rate.per_second, MAX_PER_SECOND))
        .allow_burst(nonzero(rate.burst, MAX_BURST))
}

/// One limit: a token bucket per key, all with the same rate.
pub(crate) struct Buckets<K: Hash + Eq + Clone, C: Clock> {
    /// Which limit this is, for [`RetryAfter::limit`].
    limit: &'static str,
    quota: Quota,
    clock: C,
    max_keys: usize,
    /// Behind a lock only so that [`Buckets::housekeep`] can replace it whole: governor offers
    /// no way to clear a keyed limiter. Checks share the read side.
    state: RwLock<Keyed<K, C>>,
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> Buckets<K, C> {
    /// Buckets for `rate`, named `limit`, keeping at most `max_keys` keys after housekeeping.
    pub(crate) fn new(limit: &'static str, rate: Rate, clock: C, max_keys: usize) -> Self {
        let quota = quota(rate);
        Buckets {
            limit,
            quota,
            state: RwLock::new(RateLimiter::dashmap_with_clock(quota, clock.clone())),
            clock,
            max_keys,
        }
    }

    /// Takes one token from `key`'s bucket, or says how long until one is there.
    pub(crate) fn check(&self, key: &K) -> Result<(), RetryAfter> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state.check_key(key).map_err(|not_until| RetryAfter {
            wait: not_until.wait_time_from(self.clock.now()),
            limit: self.limit,
        })
    }

    /// Drops the keys whose bucket has refilled (they are indistinguishable from a key never
    /// seen), and returns the memory.
    ///
    /// If more than `max_keys` keys are still live after that, every bucket is reset to full.
    /// That fails open, for this one limit and briefly, which is the safe side: a client able to
    /// present that many distinct keys (IPv6 /64s) within one refill time already gets a fresh
    /// bucket with each new key, so a reset gives it little, whereas refusing unseen keys would
    /// lock out every legitimate newcomer. The concurrent-fill cap is unaffected and still
    /// bounds the upstream work.
    pub(crate) fn housekeep(&self) {
        let overflowing = {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            state.retain_recent();
            state.shrink_to_fit();
            state.len() > self.max_keys
        };
        if overflowing {
            let fresh = RateLimiter::dashmap_with_clock(self.quota, self.clock.clone());
            *self.state.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        }
    }

    /// How many keys have state (a bucket that is not full), as of the last check.
    pub(crate) fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    const ONE_PER_SECOND: Rate = Rate {
        per_second: 1,
        burst: 1,
    };

    #[test]
    fn ipv6_keyed_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));

        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(address_key(v4), v4);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), v4);
        let mapped_other: IpAddr = "::ffff:192.0.2.8".parse().unwrap();
        assert_ne!(address_key(mapped), address_key(mapped_other));
    }

    #[test]
    fn housekeep_drops_refilled_keys() {
        let clock = FakeRelativeClock::default();
        let buckets = Buckets::new("test", ONE_PER_SECOND, clock.clone(), 10);
        for key in 0..5u32 {
            buckets.check(&key).unwrap();
        }
        assert_eq!(buckets.len(), 5);
        buckets.housekeep();
        assert_eq!(buckets.len(), 5, "buckets still refilling are kept");
        clock.advance(Duration::from_secs(2));
        buckets.housekeep();
        assert_eq!(buckets.len(), 0);
    }

    #[test]
    fn housekeep_resets_past_max_keys() {
        let clock = FakeRelativeClock::default();
        let buckets = Buckets::new("test", ONE_PER_SECOND, clock, 3);
        for key in 0..4u32 {
            buckets.check(&key).unwrap();
        }
        assert!(buckets.check(&0).is_err());
        buckets.housekeep();
        assert_eq!(buckets.len(), 0);
        buckets.check(&0).expect("a reset bucket is full again");
    }

    #[test]
    fn out_of_range_rates_are_clamped_not_panicking() {
        let clock = FakeRelativeClock::default();
        let zero = Rate {
            per_second: 0,
            burst: 0,
        };
        let buckets = Buckets::new("test", zero, clock.clone(), 10);
        buckets.check(&1u8).unwrap();
        assert!(buckets.check(&1u8).is_err());
        let huge = Rate {
            per_second: u32::MAX,
            burst: u32::MAX,
        };
        Buckets::new("test", huge, clock, 10).check(&1u8).unwrap();
    }
}
