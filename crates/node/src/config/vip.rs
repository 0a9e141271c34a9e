//! `[vip]`: the virtual IP that follows the leader (absent `address`: no VIP).

use std::path::PathBuf;
use std::time::Duration;

use goproxy_vip::VipAddress;
use serde::{Deserialize, Serialize};

/// Longest Linux interface name.
const IFNAMSIZ_MAX: usize = 15;

/// The virtual IP and how it is announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VipConfig {
    /// The VIP with its prefix length, e.g. `10.0.0.100/24` or `fd00::100/64` (no prefix: a
    /// host prefix). Absent: the node never touches any address.
    pub address: Option<String>,
    /// Interface that carries it (the one on the clients' L2 segment).
    pub interface: String,
    /// The VIP is held until `raft.election_timeout_max - lease_margin` after the newest heartbeat
    /// a quorum acknowledged; the margin absorbs scheduling delays between metric and guard.
    #[serde(with = "humantime_serde")]
    pub lease_margin: Duration,
    /// Gratuitous ARPs (or neighbour advertisements) sent when the VIP is taken.
    pub garp_count: u32,
    /// Spacing of that burst.
    #[serde(with = "humantime_serde")]
    pub garp_interval: Duration,
    /// Re-announcement period while holding (0 = never).
    #[serde(with = "humantime_serde")]
    pub garp_refresh: Duration,
    /// Run as `script holder <address> <interface>` when this node takes the VIP.
    pub notify_holder: Option<PathBuf>,
    /// Run as `script released <address> <interface>` when it gives it up.
    pub notify_released: Option<PathBuf>,
}

impl Default for VipConfig {
    fn default() -> Self {
        Self {
            address: None,
            interface: "eth0".into(),
            lease_margin: Duration::from_millis(50),
            garp_count: 5,
            garp_interval: Duration::from_millis(20),
            garp_refresh: Duration::from_secs(5),
            notify_holder: None,
            notify_released: None,
        }
    }
}

impl VipConfig {
    /// Problems, given the Raft election window the lease must fit in.
    pub fn problems(&self, election_timeout_max: Duration) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(address) = &self.address else {
            return problems;
        };
        if let Err(e) = address.parse::<VipAddress>() {
            problems.push(format!("vip.address: {e}"));
        }
        if self.interface.is_empty()
            || self.interface.len() > IFNAMSIZ_MAX
            || self.interface.contains(['/', ' '])
        {
            problems.push(format!(
                "vip.interface: {:?} is not an interface name",
                self.interface
            ));
        }
        if self.lease_margin.is_zero() || self.lease_margin >= election_timeout_max {
            problems.push(format!(
                "vip.lease_margin: must be above 0 and below raft.election_timeout_max ({election_timeout_max:?})"
            ));
        }
        if self.garp_count == 0 {
            problems.push("vip.garp_count: must be at least 1".into());
        }
        for (what, hook) in [
            ("notify_holder", &self.notify_holder),
            ("notify_released", &self.notify_released),
        ] {
            if let Some(path) = hook {
                if !path.is_absolute() {
                    problems.push(format!("vip.{what}: {} must be absolute", path.display()));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mistake_is_reported() {
        let vip = VipConfig {
            address: Some("10.0.0.1/33".into()),
            interface: "an-interface-name-too-long".into(),
            lease_margin: Duration::from_millis(300),
            garp_count: 0,
            notify_holder: Some("relative.sh".into()),
            ..VipConfig::default()
        };
        let problems = vip.problems(Duration::from_millis(300));
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(VipConfig::default()
            .problems(Duration::from_millis(1))
            .is_empty());
    }
}
