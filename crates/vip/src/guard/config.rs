//! What a guard owns and how it announces it: the `vip-guard` command line.
//!
//! The node builds a [`GuardConfig`] from its own configuration and passes
//! [`GuardConfig::to_args`] to the child it spawns; the child parses them back with clap. The two
//! directions are tested to round-trip exactly.

use std::path::PathBuf;
use std::time::Duration;

use crate::address::VipAddress;

/// Announcement rounds sent when the address is acquired.
pub const DEFAULT_GARP_COUNT: u32 = 5;
/// Spacing of the rounds of one burst.
pub const DEFAULT_GARP_INTERVAL: Duration = Duration::from_millis(20);
/// Re-announcement period while holding.
pub const DEFAULT_GARP_REFRESH: Duration = Duration::from_secs(5);

/// Everything the guard process needs (`goproxy-ha vip-guard <args>`).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct GuardConfig {
    /// The virtual IP with its prefix length (`10.0.0.100/24`, `fd00::100/64`; no prefix means a
    /// host prefix).
    #[arg(long)]
    pub address: VipAddress,
    /// Interface that carries the VIP; it must have an Ethernet MAC address.
    #[arg(long)]
    pub interface: String,
    /// Announcement rounds (gratuitous ARP request + reply, or one neighbour advertisement) sent
    /// when the address is acquired; several, because one lost frame must not strand clients.
    #[arg(long, default_value_t = DEFAULT_GARP_COUNT)]
    pub garp_count: u32,
    /// Spacing of the rounds of the acquisition burst.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20ms")]
    pub garp_interval: Duration,
    /// Re-announce this often while holding (`0s` = never), for neighbours that missed the burst.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub garp_refresh: Duration,
    /// Program run as `<program> holder <address> <interface>` after the address is acquired.
    #[arg(long)]
    pub notify_holder: Option<PathBuf>,
    /// Program run as `<program> released <address> <interface>` after the address is removed.
    #[arg(long)]
    pub notify_released: Option<PathBuf>,
}

impl GuardConfig {
    /// A guard for `address` on `interface` with the default announcement settings and no hooks.
    pub fn new(address: VipAddress, interface: impl Into<String>) -> GuardConfig {
        GuardConfig {
            address,
            interface: interface.into(),
            garp_count: DEFAULT_GARP_COUNT,
            garp_interval: DEFAULT_GARP_INTERVAL,
            garp_refresh: DEFAULT_GARP_REFRESH,
            notify_holder: None,
            notify_released: None,
        }
    }

    /// The command-line arguments that parse back into this configuration (every option spelled
    /// out, so the child never depends on defaults matching). Hook paths must be valid UTF-8.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--address".to_string(),
            self.address.to_string(),
            "--interface".to_string(),
            self.interface.clone(),
            "--garp-count".to_string(),
            self.garp_count.to_string(),
            "--garp-interval".to_string(),
            humantime::format_duration(self.garp_interval).to_string(),
            "--garp-refresh".to_string(),
            humantime::format_duration(self.garp_refresh).to_string(),
        ];
        for (flag, hook) in [
            ("--notify-holder", &self.notify_holder),
            ("--notify-released", &self.notify_released),
        ] {
            if let Some(path) = hook {
                args.push(flag.to_string());
                args.push(path.to_string_lossy().into_owned());
            }
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        guard: GuardConfig,
    }

    fn parse(args: &[String]) -> GuardConfig {
        let argv = std::iter::once("vip-guard".to_string()).chain(args.iter().cloned());
        Cli::try_parse_from(argv).expect("parses").guard
    }

    #[test]
    fn defaults_match_the_constructor() {
        let args = ["--address", "10.0.0.100/24", "--interface", "eth0"].map(String::from);
        let parsed = parse(&args);
        assert_eq!(
            parsed,
            GuardConfig::new("10.0.0.100/24".parse().unwrap(), "eth0")
        );
    }

    #[test]
    fn args_round_trip() {
        let mut full = GuardConfig::new("fd00::100/64".parse().unwrap(), "bond0.42");
        full.garp_count = 0;
        full.garp_interval = Duration::from_micros(1500);
        full.garp_refresh = Duration::ZERO;
        full.notify_holder = Some(PathBuf::from("/etc/goproxy-ha/hook with space.sh"));
        full.notify_released = Some(PathBuf::from("relative/hook"));
        let plain = GuardConfig::new("192.0.2.1/32".parse().unwrap(), "eth0");
        for cfg in [full, plain] {
            assert_eq!(parse(&cfg.to_args()), cfg);
        }
    }

    #[test]
    fn exact_args() {
        let mut cfg = GuardConfig::new("10.0.0.100/24".parse().unwrap(), "eth0");
        cfg.garp_refresh = Duration::from_millis(2500);
        cfg.notify_released = Some(PathBuf::from("/hook"));
        assert_eq!(
            cfg.to_args().join(" "),
            "--address 10.0.0.100/24 --interface eth0 --garp-count 5 --garp-interval 20ms \
             --garp-refresh 2s 500ms --notify-released /hook"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let cases: [&[&str]; 3] = [
            &["--address", "10.0.0.1/40", "--interface", "eth0"],
            &[
                "--address",
                "10.0.0.1",
                "--interface",
                "eth0",
                "--garp-interval",
                "soon",
            ],
            &["--interface", "eth0"],
        ];
        for args in cases {
            let argv = std::iter::once("vip-guard").chain(args.iter().copied());
            assert!(Cli::try_parse_from(argv).is_err(), "{args:?} accepted");
        }
    }
}
