//! The configuration files the lab writes: a goproxy-ha node (clustered with the VIP, or a
//! standalone responder behind keepalived) and a keepalived VRRP instance. Pure text rendering.

use std::path::Path;
use std::time::Duration;

use crate::topology::{node_ip, NODE_INTERFACE, PREFIX_LEN, UPSTREAM_IP, VIP};

/// Port of every node's GOPROXY front end (and of what the client probes on the VIP).
pub const HTTP_PORT: u16 = 8080;
/// Port of every node's Raft/blob gRPC listener.
pub const RAFT_PORT: u16 = 7080;
/// Port the upstream (the corpus served as a GOPROXY) listens on, on the bridge.
pub const UPSTREAM_PORT: u16 = 8000;

/// Raft timing for the lab's cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTiming {
    /// Leader heartbeat period.
    pub heartbeat: Duration,
    /// Lower bound of the election timeout.
    pub election_min: Duration,
    /// Upper bound of the election timeout (also the VIP lease).
    pub election_max: Duration,
}

impl RaftTiming {
    /// goproxy-ha's built-in defaults (50 ms heartbeats, 150–300 ms elections).
    pub const DEFAULT: RaftTiming = RaftTiming {
        heartbeat: Duration::from_millis(50),
        election_min: Duration::from_millis(150),
        election_max: Duration::from_millis(300),
    };

    /// The fast profile for nodes on one L2 segment (the VIP needs one anyway): 15 ms
    /// heartbeats, 65–130 ms elections. A failover takes the leader lease (130 ms) plus a
    /// short random stagger: about 170 ms.
    pub const FAST: RaftTiming = RaftTiming {
        heartbeat: Duration::from_millis(15),
        election_min: Duration::from_millis(65),
        election_max: Duration::from_millis(130),
    };

    /// `default`, `fast`, or `HEARTBEAT/MIN-MAX` with units (`15ms/65ms-130ms`).
    pub fn parse(text: &str) -> Result<RaftTiming, String> {
        match text {
            "default" => return Ok(RaftTiming::DEFAULT),
            "fast" => return Ok(RaftTiming::FAST),
            _ => {}
        }
        let shape =
            || format!("{text:?}: expected default, fast or HEARTBEAT/MIN-MAX (15ms/65ms-130ms)");
        let (heartbeat, window) = text.split_once('/').ok_or_else(shape)?;
        let (min, max) = window.split_once('-').ok_or_else(shape)?;
        let parse =
            |part: &str| humantime::parse_duration(part).map_err(|e| format!("{part:?}: {e}"));
        let timing = RaftTiming {
            heartbeat: parse(heartbeat)?,
            election_min: parse(min)?,
            election_max: parse(max)?,
        };
        if timing.heartbeat.is_zero()
            || timing.heartbeat >= timing.election_min
            || timing.election_min >= timing.election_max
        {
            return Err(format!(
                "{text:?}: need 0 < heartbeat < election min < election max"
            ));
        }
        Ok(timing)
    }

    /// Label for tables: `goproxy-ha 15ms/65-130ms`.
    pub fn label(&self) -> String {
        format!(
            "goproxy-ha {}ms/{}-{}ms",
            self.heartbeat.as_millis(),
            self.election_min.as_millis(),
            self.election_max.as_millis()
        )
    }
}

/// The upstream URL every node fetches from.
pub fn upstream_url() -> String {
    format!("http://{UPSTREAM_IP}:{UPSTREAM_PORT}")
}

/// Node `id` of an `members`-node cluster that holds the VIP while it leads, with
/// node-to-node mutual TLS from the certificates in `tls` ([`crate::certs`]).
pub fn cluster_node(
    id: usize,
    members: usize,
    data_dir: &Path,
    timing: RaftTiming,
    tls: &Path,
) -> String {
    let ip = node_ip(id);
    let mut peers = String::new();
    for peer in 1..=members {
        let peer_ip = node_ip(peer);
        peers.push_str(&format!(
            "  {{ id = {peer}, raft = \"{peer_ip}:{RAFT_PORT}\", http = \"{peer_ip}:{HTTP_PORT}\" }},\n"
        ));
    }
    format!(
        "# goproxy-ha lab node {id} (written by goproxy-lab)\n\
         node_id = {id}\n\
         listen = \"0.0.0.0:{HTTP_PORT}\"\n\
         raft_listen = \"{ip}:{RAFT_PORT}\"\n\
         data_dir = {data_dir:?}\n\
         shutdown_grace = \"2s\"\n\n\
         [proxy]\n\
         upstream = \"{upstream}\"\n\
         # The lab's upstream is the corpus, with no checksum database beside it.\n\
         verify_fills = false\n\n\
         [raft]\n\
         heartbeat_interval = \"{heartbeat}\"\n\
         election_timeout_min = \"{min}\"\n\
         election_timeout_max = \"{max}\"\n\n\
         [cluster]\n\
         http_advertise = \"{ip}:{HTTP_PORT}\"\n\
         peers = [\n{peers}]\n\n\
         [cluster.tls]\n\
         ca_file = {ca:?}\n\
         cert_file = {cert:?}\n\
         key_file = {key:?}\n\n\
         [vip]\n\
         address = \"{VIP}/{PREFIX_LEN}\"\n\
         interface = \"{NODE_INTERFACE}\"\n",
        upstream = upstream_url(),
        heartbeat = humantime::format_duration(timing.heartbeat),
        min = humantime::format_duration(timing.election_min),
        max = humantime::format_duration(timing.election_max),
        ca = tls.join("ca.pem"),
        cert = tls.join(format!("node-{id}.pem")),
        key = tls.join(format!("node-{id}.key")),
    )
}

/// A standalone goproxy-ha (its own one-member group, no VIP): the responder keepalived fronts.
pub fn standalone_node(data_dir: &Path) -> String {
    format!(
        "# goproxy-ha responder behind keepalived (written by goproxy-lab)\n\
         node_id = 1\n\
         listen = \"0.0.0.0:{HTTP_PORT}\"\n\
         raft_listen = \"127.0.0.1:{RAFT_PORT}\"\n\
         data_dir = {data_dir:?}\n\n\
         [proxy]\n\
         upstream = \"{}\"\n\
         verify_fills = false\n",
        upstream_url()
    )
}

/// keepalived's VRRP settings for one comparison run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vrrp {
    /// Advertisement interval in seconds (VRRPv3 allows fractions).
    pub advert_int: f64,
    /// VRRP protocol version (2 or 3).
    pub version: u8,
}

impl Vrrp {
    /// Debian's keepalived as most people run it: VRRPv2, one advertisement per second.
    pub const STOCK: Vrrp = Vrrp {
        advert_int: 1.0,
        version: 2,
    };
    /// Tuned: VRRPv3 with 100 ms advertisements.
    pub const TUNED: Vrrp = Vrrp {
        advert_int: 0.1,
        version: 3,
    };

    /// Short label for tables.
    pub fn label(&self) -> String {
        format!(
            "keepalived v{} advert_int {}",
            self.version, self.advert_int
        )
    }
}

/// keepalived.conf for node `id`: every node starts as BACKUP with `nopreempt` (a returning
/// node does not take the VIP back), priorities 150, 140, 130…
pub fn keepalived(id: usize, vrrp: Vrrp) -> String {
    let priority = 160 - 10 * id;
    format!(
        "# keepalived for lab node {id} (written by goproxy-lab)\n\
         global_defs {{\n\
         \x20 router_id lab_n{id}\n\
         \x20 vrrp_version {version}\n\
         \x20 vrrp_garp_master_delay 0\n\
         }}\n\
         vrrp_instance lab_vip {{\n\
         \x20 state BACKUP\n\
         \x20 nopreempt\n\
         \x20 interface {NODE_INTERFACE}\n\
         \x20 virtual_router_id 51\n\
         \x20 priority {priority}\n\
         \x20 advert_int {advert}\n\
         \x20 virtual_ipaddress {{\n\
         \x20   {VIP}/{PREFIX_LEN} dev {NODE_INTERFACE}\n\
         \x20 }}\n\
         }}\n",
        version = vrrp.version,
        advert = vrrp.advert_int,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_node_lists_every_peer_and_the_vip() {
        let text = cluster_node(
            2,
            3,
            Path::new("/tmp/d"),
            RaftTiming::DEFAULT,
            Path::new("/tmp/tls"),
        );
        assert!(text.contains("node_id = 2\n"));
        assert!(text.contains("raft_listen = \"10.99.0.12:7080\""));
        for ip in ["10.99.0.11", "10.99.0.12", "10.99.0.13"] {
            assert!(text.contains(&format!("raft = \"{ip}:7080\"")), "{ip}");
        }
        assert!(text.contains("address = \"10.99.0.100/24\""));
        assert!(text.contains("election_timeout_max = \"300ms\""));
        assert!(text.contains("cert_file = \"/tmp/tls/node-2.pem\""));
    }

    #[test]
    fn keepalived_priorities_fall_with_the_node_id_and_all_start_as_backup() {
        let one = keepalived(1, Vrrp::TUNED);
        let three = keepalived(3, Vrrp::STOCK);
        assert!(one.contains("priority 150") && three.contains("priority 130"));
        assert!(one.contains("vrrp_version 3") && one.contains("advert_int 0.1"));
        assert!(three.contains("vrrp_version 2") && three.contains("advert_int 1\n"));
        assert!(one.contains("state BACKUP") && one.contains("nopreempt"));
    }

    #[test]
    fn timing_profiles_parse_by_name_or_by_value() {
        assert_eq!(RaftTiming::parse("default"), Ok(RaftTiming::DEFAULT));
        assert_eq!(RaftTiming::parse("fast"), Ok(RaftTiming::FAST));
        assert_eq!(RaftTiming::parse("15ms/65ms-130ms"), Ok(RaftTiming::FAST));
        assert_eq!(RaftTiming::FAST.label(), "goproxy-ha 15ms/65-130ms");
        for bad in [
            "",
            "quick",
            "20ms",
            "20ms/80ms",
            "x/80ms-160ms",
            "100ms/80ms-160ms",
            "20ms/160ms-80ms",
        ] {
            assert!(RaftTiming::parse(bad).is_err(), "{bad}");
        }
    }
}
