//! Behaviour of [`Limiter`] and [`Limits`], on governor's fake clock (no sleeps).

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use governor::clock::FakeRelativeClock;

use super::*;

const BURST: u32 = 5;
const RATE: Rate = Rate {
    per_second: 1,
    burst: BURST,
};
const GENEROUS: Rate = Rate {
    per_second: 1000,
    burst: 1000,
};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn limiter(config: LimitsConfig) -> (Limiter<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    (Limiter::with_clock(&config, clock.clone()), clock)
}

#[test]
fn burst_passes_then_refused_with_limit_and_wait_then_refills() {
    let (limiter, clock) = limiter(LimitsConfig {
        hits_per_address: Some(RATE),
        ..LimitsConfig::default()
    });
    let client = ip("192.0.2.1");
    for _ in 0..BURST {
        limiter.check_hit(None, client).unwrap();
    }
    let refused = limiter.check_hit(None, client).unwrap_err();
    assert_eq!(refused.limit, "hits per address");
    assert!(refused.wait > Duration::ZERO && refused.wait <= Duration::from_secs(1));
    assert_eq!(refused.seconds(), 1);

    clock.advance(refused.wait);
    limiter.check_hit(None, client).expect("one token refilled");
    assert!(limiter.check_hit(None, client).is_err());
}

#[test]
fn addresses_have_separate_buckets() {
    let (limiter, _clock) = limiter(LimitsConfig {
        hits_per_address: Some(RATE),
        ..LimitsConfig::default()
    });
    for _ in 0..BURST {
        limiter.check_hit(None, ip("192.0.2.1")).unwrap();
    }
    assert!(limiter.check_hit(None, ip("192.0.2.1")).is_err());
    limiter.check_hit(None, ip("192.0.2.2")).unwrap();
    limiter.check_hit(None, ip("2001:db8::1")).unwrap();
}

#[test]
fn ipv6_addresses_in_one_64_share_a_bucket() {
    let (limiter, _clock) = limiter(LimitsConfig {
        hits_per_address: Some(RATE),
        ..LimitsConfig::default()
    });
    for host in 0..BURST {
        let address = Ipv6Addr::new(0x2001, 0xdb8, 7, 7, 0, 0, 0, host as u16 + 1);
        limiter.check_hit(None, address.into()).unwrap();
    }
    let refused = limiter
        .check_hit(None, ip("2001:db8:7:7:dead:beef::1"))
        .unwrap_err();
    assert_eq!(refused.limit, "hits per address");
    limiter
        .check_hit(None, ip("2001:db8:7:8::1"))
        .expect("the next /64 is another client");
}

#[test]
fn token_and_address_buckets_both_apply() {
    let (limiter, _clock) = limiter(LimitsConfig {
        hits_per_token: Some(RATE),
        hits_per_address: Some(Rate {
            per_second: 1,
            burst: BURST * 2,
        }),
        ..LimitsConfig::default()
    });
    // One token from many addresses: the token's bucket refuses.
    for n in 0..BURST {
        limiter
            .check_hit(Some("ci"), ip(&format!("192.0.2.{n}")))
            .unwrap();
    }
    let refused = limiter
        .check_hit(Some("ci"), ip("198.51.100.1"))
        .unwrap_err();
    assert_eq!(refused.limit, "hits per token");
    // Another token, or none, is not held back by it.
    limiter.check_hit(Some("dev"), ip("198.51.100.1")).unwrap();
    limiter.check_hit(None, ip("198.51.100.1")).unwrap();
    // Many tokens from one address: the address's bucket refuses.
    for n in 0..BURST * 2 {
        limiter
            .check_hit(Some(&format!("t{n}")), ip("203.0.113.9"))
            .unwrap();
    }
    let refused = limiter
        .check_hit(Some("fresh"), ip("203.0.113.9"))
        .unwrap_err();
    assert_eq!(refused.limit, "hits per address");
}

#[test]
fn fills_and_hits_are_separate_buckets() {
    let (limiter, _clock) = limiter(LimitsConfig {
        hits_per_token: Some(RATE),
        fills_per_token: Some(Rate {
            per_second: 1,
            burst: 2,
        }),
        fills_per_address: Some(GENEROUS),
        ..LimitsConfig::default()
    });
    let client = ip("192.0.2.1");
    for _ in 0..BURST {
        limiter.check_hit(Some("ci"), client).unwrap();
    }
    assert!(limiter.check_hit(Some("ci"), client).is_err());
    // Hits are spent, fills are not.
    drop(limiter.check_fill(Some("ci"), client).unwrap());
    drop(limiter.check_fill(Some("ci"), client).unwrap());
    let refused = limiter.check_fill(Some("ci"), client).unwrap_err();
    assert_eq!(refused.limit, "fills per token");
}

#[test]
fn concurrent_fill_cap_refuses_then_admits_after_a_drop() {
    let (limiter, _clock) = limiter(LimitsConfig {
        max_concurrent_fills: Some(2),
        fills_per_address: Some(Rate {
            per_second: 1,
            burst: 3,
        }),
        ..LimitsConfig::default()
    });
    let client = ip("192.0.2.1");
    let first = limiter.check_fill(None, client).unwrap();
    let _second = limiter.check_fill(None, client).unwrap();
    assert_eq!(limiter.fills_in_flight(), 2);
    let refused = limiter.check_fill(None, ip("192.0.2.99")).unwrap_err();
    assert_eq!(refused.limit, "concurrent fills");
    assert_eq!(refused.wait, CONCURRENT_FILLS_RETRY_AFTER);
    // Refused by the cap: not charged to the address's fill bucket (third token still there).
    assert!(limiter.check_fill(None, client).is_err());
    drop(first);
    assert_eq!(limiter.fills_in_flight(), 1);
    let _third = limiter
        .check_fill(None, client)
        .expect("a slot was given back");
    assert_eq!(limiter.fills_in_flight(), 2);
}

#[test]
fn permit_held_across_reload_still_counts() {
    let capped = LimitsConfig {
        max_concurrent_fills: Some(1),
        ..LimitsConfig::default()
    };
    let limits = Limits::with_clock(&LimitsConfig::default(), FakeRelativeClock::default());
    let client = ip("192.0.2.1");
    let held = limits.check_fill(None, client).unwrap();
    limits.reload(&capped);
    assert_eq!(limits.current().config(), &capped);
    assert_eq!(limits.current().fills_in_flight(), 1);
    let refused = limits.check_fill(None, client).unwrap_err();
    assert_eq!(refused.limit, "concurrent fills");

    let old = limits.current();
    limits.reload(&capped);
    assert!(limits.check_fill(None, client).is_err());
    drop(held);
    let _admitted = limits
        .check_fill(None, client)
        .expect("the held slot came back");
    assert_eq!(old.fills_in_flight(), 1, "one counter across reloads");
}

#[test]
fn reload_changes_the_buckets() {
    let limits = Limits::with_clock(&LimitsConfig::default(), FakeRelativeClock::default());
    let client = ip("192.0.2.1");
    limits.check_hit(None, client).unwrap();
    limits.reload(&LimitsConfig {
        hits_per_address: Some(Rate {
            per_second: 1,
            burst: 1,
        }),
        ..LimitsConfig::default()
    });
    limits.check_hit(None, client).unwrap();
    assert!(limits.check_hit(None, client).is_err());
    limits.reload(&LimitsConfig::default());
    limits.check_hit(None, client).unwrap();
}

#[test]
fn seconds_rounds_up_and_is_at_least_one() {
    let after = |wait| RetryAfter {
        wait,
        limit: "hits per token",
    };
    assert_eq!(after(Duration::ZERO).seconds(), 1);
    assert_eq!(after(Duration::from_nanos(1)).seconds(), 1);
    assert_eq!(after(Duration::from_secs(1)).seconds(), 1);
    assert_eq!(after(Duration::from_millis(1001)).seconds(), 2);
    assert_eq!(after(Duration::from_secs(7)).seconds(), 7);
    assert_eq!(after(Duration::MAX).seconds(), u64::MAX);
    assert!(after(Duration::from_secs(3))
        .to_string()
        .contains("hits per token"));
}

#[test]
fn no_limits_configured_admits_everything() {
    let limiter = Limiter::new(&LimitsConfig::default());
    let client = ip("192.0.2.1");
    let mut held = Vec::new();
    for n in 0..1000 {
        limiter.check_hit(Some("ci"), client).unwrap();
        held.push(limiter.check_fill(Some("ci"), client).unwrap());
        assert_eq!(limiter.fills_in_flight(), n + 1);
    }
    assert_eq!(limiter.tracked_keys(), 0);
    drop(held);
    assert_eq!(limiter.fills_in_flight(), 0);
}

#[test]
fn many_distinct_prefixes_stay_bounded() {
    let (limiter, _clock) = limiter(LimitsConfig {
        hits_per_address: Some(RATE),
        ..LimitsConfig::default()
    });
    let bound = MAX_TRACKED_KEYS + HOUSEKEEP_EVERY as usize;
    for n in 0..(MAX_TRACKED_KEYS as u64 + 2 * HOUSEKEEP_EVERY) {
        let prefix = Ipv6Addr::from(u128::from(n) << 64 | 1);
        limiter.check_hit(None, prefix.into()).unwrap();
        if n % 1000 == 0 {
            assert!(limiter.tracked_keys() <= bound);
        }
    }
    assert!(limiter.tracked_keys() <= bound);
}

#[test]
fn handles_are_shareable_across_threads() {
    fn send_static<T: Send + 'static>() {}
    fn send_sync<T: Send + Sync + 'static>() {}
    send_static::<FillPermit>();
    send_sync::<Limiter>();
    send_sync::<Limits>();
    send_sync::<RetryAfter>();
}
