//! What the operator configures: the rates, all off by default.

use serde::{Deserialize, Serialize};

/// The largest sustained rate accepted, per second. Far above what one node serves; a larger
/// value is a typo (or a unit mix-up), and governor's per-cell interval would round to 0 ns
/// past 10^9.
pub const MAX_PER_SECOND: u32 = 1_000_000;

/// The largest bucket size accepted.
pub const MAX_BURST: u32 = 1_000_000;

/// The largest cap on concurrent fills accepted: each fill holds a connection upstream, so
/// anything near this is a typo rather than a plan.
pub const MAX_CONCURRENT_FILLS: u32 = 1_000_000;

/// A token bucket: `burst` requests at once, refilled at `per_second`.
///
/// In TOML: `hits_per_address = { per_second = 200, burst = 400 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// The sustained rate, in requests per second (at least 1).
    pub per_second: u32,
    /// The bucket size: how many requests may arrive at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl Rate {
    /// Every problem with this rate, each naming `field` (the config key it came from).
    fn problems(&self, field: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.per_second == 0 {
            problems.push(format!("{field}.per_second must be at least 1"));
        } else if self.per_second > MAX_PER_SECOND {
            problems.push(format!(
                "{field}.per_second = {} is more than {MAX_PER_SECOND}",
                self.per_second
            ));
        }
        if self.burst == 0 {
            problems.push(format!("{field}.burst must be at least 1"));
        } else if self.burst > MAX_BURST {
            problems.push(format!(
                "{field}.burst = {} is more than {MAX_BURST}",
                self.burst
            ));
        }
        problems
    }
}

/// The client rate limits. Every limit is `None` by default, meaning no limit: a proxy that
/// starts refusing clients after an upgrade is worse than one that serves them, so operators
/// opt in to each limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests of any kind per token (keyed by the token's name). `None`: no limit.
    pub hits_per_token: Option<Rate>,
    /// Requests of any kind per client address (an IPv6 client by its /64). `None`: no limit.
    pub hits_per_address: Option<Rate>,
    /// Requests that make the proxy fetch from upstream, per token. `None`: no limit.
    pub fills_per_token: Option<Rate>,
    /// Requests that make the proxy fetch from upstream, per client address (an IPv6 client by
    /// its /64). `None`: no limit.
    pub fills_per_address: Option<Rate>,
    /// How many upstream fetches may run at once across all clients (at least 1). `None`: no
    /// limit.
    pub max_concurrent_fills: Option<u32>,
}

impl LimitsConfig {
    /// Every problem with this configuration, all at once (so an operator fixes them in one
    /// pass); empty when it is valid. [`Limiter::new`](super::Limiter::new) clamps what this
    /// reports rather than failing, so check this first.
    pub fn problems(&self) -> Vec<String> {
        let rates = [
            ("hits_per_token", &self.hits_per_token),
            ("hits_per_address", &self.hits_per_address),
            ("fills_per_token", &self.fills_per_token),
            ("fills_per_address", &self.fills_per_address),
        ];
        let mut problems: Vec<String> = rates
            .into_iter()
            .filter_map(|(field, rate)| rate.map(|rate| rate.problems(field)))
            .flatten()
            .collect();
        match self.max_concurrent_fills {
            Some(0) => problems.push(
                "max_concurrent_fills must be at least 1 (leave it out for no limit)".to_owned(),
            ),
            Some(cap) if cap > MAX_CONCURRENT_FILLS => problems.push(format!(
                "max_concurrent_fills = {cap} is more than {MAX_CONCURRENT_FILLS}"
            )),
            _ => {}
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_no_limits_and_valid() {
        let config = LimitsConfig::default();
        assert_eq!(config.hits_per_token, None);
        assert_eq!(config.hits_per_address, None);
        assert_eq!(config.fills_per_token, None);
        assert_eq!(config.fills_per_address, None);
        assert_eq!(config.max_concurrent_fills, None);
        assert!(config.problems().is_empty());
    }

    #[test]
    fn problems_lists_every_problem_at_once() {
        let config = LimitsConfig {
            hits_per_token: Some(Rate {
                per_second: 0,
                burst: 0,
            }),
            hits_per_address: Some(Rate {
                per_second: 200,
                burst: 400,
            }),
            fills_per_token: Some(Rate {
                per_second: MAX_PER_SECOND + 1,
                burst: 1,
            }),
            fills_per_address: Some(Rate {
                per_second: 1,
                burst: MAX_BURST + 1,
            }),
            max_concurrent_fills: Some(0),
        };
        let problems = config.problems();
        assert_eq!(problems.len(), 5, "{problems:?}");
        for expected in [
            "hits_per_token.per_second",
            "hits_per_token.burst",
            "fills_per_token.per_second",
            "fills_per_address.burst",
            "max_concurrent_fills",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{expected} missing from {problems:?}"
            );
        }
        assert!(!problems.iter().any(|p| p.contains("hits_per_address")));

        let huge_cap = LimitsConfig {
            max_concurrent_fills: Some(MAX_CONCURRENT_FILLS + 1),
            ..LimitsConfig::default()
        };
        assert_eq!(huge_cap.problems().len(), 1);
    }

    #[test]
    fn serde_round_trips_and_rejects_unknown_fields() {
        let json =
            r#"{"hits_per_address":{"per_second":200,"burst":400},"max_concurrent_fills":64}"#;
        let config: LimitsConfig = serde_json::from_str(json).unwrap();
        assert_eq!(
            config.hits_per_address,
            Some(Rate {
                per_second: 200,
                burst: 400
            })
        );
        assert_eq!(config.max_concurrent_fills, Some(64));
        assert_eq!(config.hits_per_token, None);
        let back: LimitsConfig =
            serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(back, config);

        assert!(serde_json::from_str::<LimitsConfig>(r#"{"hits_per_ip":null}"#).is_err());
        assert!(serde_json::from_str::<LimitsConfig>(
            r#"{"hits_per_token":{"per_second":1,"burst":1,"per_minute":3}}"#
        )
        .is_err());
        assert!(serde_json::from_str::<LimitsConfig>(r#"{"hits_per_token":{"burst":1}}"#).is_err());
    }
}
