//! The lab's network: one L2 segment (a bridge inside a "switch" namespace), three node
//! namespaces, a client namespace, and the upstream's address on the bridge itself.
//!
//! ```text
//!   {tag}-n1  eth0 10.99.0.11 ─┐
//!   {tag}-n2  eth0 10.99.0.12 ─┤  {tag}-sw: br0 10.99.0.1 (the upstream listens here)
//!   {tag}-n3  eth0 10.99.0.13 ─┤
//!   {tag}-cl  eth0 10.99.0.50 ─┘            VIP 10.99.0.100/24 moves between n1..n3
//! ```
//!
//! Every interface lives inside a namespace the lab created, so labs with different tags run
//! side by side and nothing touches the host's own network. Dropping a [`Topology`] deletes
//! its namespaces and kills every process in them, on success, failure or panic.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;

use crate::netns::{self, Netns};
use crate::relay::Relay;

/// The interface name inside every node and client namespace.
pub const NODE_INTERFACE: &str = "eth0";
/// The virtual IP the nodes (or keepalived) move between them.
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
/// Prefix length of the lab subnet (and of the VIP).
pub const PREFIX_LEN: u8 = 24;
/// The bridge's address, where the upstream listens.
pub const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
/// The client namespace's address.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 50);
/// Name of the nftables table the partition faults install in a node namespace.
const FAULT_TABLE: &str = "gplab_fault";

/// Address of node `i` (1-based): 10.99.0.1i.
pub fn node_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 99, 0, 10 + i as u8)
}

/// Which traffic a partition drops, seen from the isolated node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Nothing in or out between the node and the listed peers.
    Both,
    /// The node hears nothing from them; what it sends still arrives.
    Inbound,
    /// What the node sends to them is lost; it still hears them.
    Outbound,
}

/// The namespaces and links of one lab.
#[derive(Debug)]
pub struct Topology {
    tag: String,
    switch: Netns,
    nodes: Vec<Netns>,
    client: Netns,
    /// User-space netem relays, by node (see [`Topology::impair`]).
    relays: Mutex<BTreeMap<usize, Relay>>,
    keep: bool,
}

impl Topology {
    /// Builds the switch, `node_count` nodes and the client, all named `{tag}-…`. Anything
    /// left from an earlier lab with the same tag is removed first.
    pub fn build(tag: &str, node_count: usize) -> anyhow::Result<Topology> {
        teardown(tag);
        let switch = Netns::create(&format!("{tag}-sw"))?;
        let mut topology = Topology {
            tag: tag.to_string(),
            switch,
            nodes: Vec::new(),
            client: Netns::existing(&format!("{tag}-cl")),
            relays: Mutex::default(),
            keep: false,
        };
        topology.wire_switch()?;
        for i in 1..=node_count {
            let ns = Netns::create(&format!("{tag}-n{i}"))?;
            topology.nodes.push(ns.clone());
            topology.attach(&ns, &format!("p{i}"), node_ip(i))?;
        }
        topology.client = Netns::create(&format!("{tag}-cl"))?;
        let client = topology.client.clone();
        topology.attach(&client, "pc", CLIENT_IP)?;
        Ok(topology)
    }

    fn wire_switch(&self) -> anyhow::Result<()> {
        let sw = &self.switch;
        sw.ip(&["link", "add", "br0", "type", "bridge"])?;
        sw.ip(&[
            "addr",
            "add",
            &format!("{UPSTREAM_IP}/{PREFIX_LEN}"),
            "dev",
            "br0",
        ])?;
        sw.ip(&["link", "set", "br0", "up"])
    }

    /// A veth pair: `port` on the bridge, `eth0` with `ip` inside `ns`.
    fn attach(&self, ns: &Netns, port: &str, ip: Ipv4Addr) -> anyhow::Result<()> {
        let sw = &self.switch;
        sw.ip(&[
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            NODE_INTERFACE,
            "netns",
            ns.name(),
        ])
        .with_context(|| format!("veth for {}", ns.name()))?;
        sw.ip(&["link", "set", port, "master", "br0", "up"])?;
        ns.ip(&[
            "addr",
            "add",
            &format!("{ip}/{PREFIX_LEN}"),
            "dev",
            NODE_INTERFACE,
        ])?;
        ns.ip(&["link", "set", NODE_INTERFACE, "up"])
    }

    /// The lab's tag (the prefix of every namespace name).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Node `i`'s namespace (1-based).
    pub fn node(&self, i: usize) -> &Netns {
        &self.nodes[i - 1]
    }

    /// Every node namespace, node 1 first.
    pub fn nodes(&self) -> &[Netns] {
        &self.nodes
    }

    /// The client namespace.
    pub fn client(&self) -> &Netns {
        &self.client
    }

    /// The switch namespace (the bridge and the upstream).
    pub fn switch(&self) -> &Netns {
        &self.switch
    }

    /// Power loss of node `i`: its link goes down, then every process in it is SIGKILLed.
    pub fn power_off(&self, i: usize) -> anyhow::Result<()> {
        let ns = self.node(i);
        ns.ip(&["link", "set", NODE_INTERFACE, "down"])?;
        ns.kill_all();
        Ok(())
    }

    /// Powers node `i` back on as a reboot would leave it: only its own address, link up, no
    /// processes (the caller starts them), no VIP, no fault rules.
    pub fn power_on(&self, i: usize) -> anyhow::Result<()> {
        let ns = self.node(i);
        ns.kill_all();
        self.heal(i);
        ns.ip(&["addr", "flush", "dev", NODE_INTERFACE])?;
        ns.ip(&[
            "addr",
            "add",
            &format!("{}/{PREFIX_LEN}", node_ip(i)),
            "dev",
            NODE_INTERFACE,
        ])?;
        ns.ip(&["link", "set", NODE_INTERFACE, "up"])
    }

    /// Removes the VIP from every node (between runs of different failover models).
    pub fn clear_vip(&self) {
        for ns in &self.nodes {
            let _ = ns.ip(&[
                "addr",
                "del",
                &format!("{VIP}/{PREFIX_LEN}"),
                "dev",
                NODE_INTERFACE,
            ]);
        }
    }

    /// Drops traffic between node `i` and `peers` (nftables inside node `i`'s namespace); the
    /// client and the upstream still reach it.
    pub fn isolate(
        &self,
        i: usize,
        peers: &[Ipv4Addr],
        direction: Direction,
    ) -> anyhow::Result<()> {
        let set = peers
            .iter()
            .map(Ipv4Addr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let mut rules = format!("table inet {FAULT_TABLE} {{\n");
        if direction != Direction::Outbound {
            rules.push_str(&format!(
                "  chain input {{ type filter hook input priority 0; ip saddr {{ {set} }} drop; }}\n"
            ));
        }
        if direction != Direction::Inbound {
            rules.push_str(&format!(
                "  chain output {{ type filter hook output priority 0; ip daddr {{ {set} }} drop; }}\n"
            ));
        }
        rules.push_str("}\n");
        self.heal(i);
        self.node(i).exec_with_input("nft", &["-f", "-"], &rules)
    }

    /// Removes the partition and loss rules, any netem qdisc and any user-space relay from
    /// node `i`.
    pub fn heal(&self, i: usize) {
        let ns = self.node(i);
        let _ = ns.exec("nft", &["delete", "table", "inet", FAULT_TABLE]);
        let _ = ns.exec("tc", &["qdisc", "del", "dev", NODE_INTERFACE, "root"]);
        let relay = self
            .relays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&i);
        if let Some(relay) = relay {
            drop(relay);
            let (port, relay_port) = relay_ports(i);
            let _ = self.switch.ip(&["link", "del", &relay_port]);
            let _ = self.switch.ip(&["link", "set", &port, "master", "br0"]);
            let _ = set_offloads(ns, NODE_INTERFACE, true);
        }
    }

    /// Impairs everything node `i` sends: `loss_percent` random loss plus `delay`, like
    /// `tc netem loss P% delay D`. On kernels built without `sch_netem` a user-space relay
    /// ([`crate::relay`]) takes the node's port off the bridge and does the same, its drop
    /// decisions drawn from `seed`. Returns what was applied.
    pub fn impair(
        &self,
        i: usize,
        loss_percent: u8,
        delay: Duration,
        seed: u64,
    ) -> anyhow::Result<String> {
        self.heal(i);
        let ns = self.node(i);
        let (loss, delay_ms) = (
            format!("{loss_percent}%"),
            format!("{}ms", delay.as_millis()),
        );
        let netem = [
            "qdisc",
            "replace",
            "dev",
            NODE_INTERFACE,
            "root",
            "netem",
            "loss",
            &loss,
            "delay",
            &delay_ms,
        ];
        match ns.exec("tc", &netem) {
            Ok(()) => Ok(format!("netem loss {loss} delay {delay_ms}")),
            Err(e) if !format!("{e:#}").contains("qdisc kind is unknown") => Err(e),
            Err(_) => {
                self.relay(i, loss_percent, delay, seed)?;
                Ok(format!(
                    "user-space netem loss {loss} delay {delay_ms} (this kernel has no sch_netem)"
                ))
            }
        }
    }

    /// What node `i`'s user-space relay measured so far, if one runs.
    pub fn impairment_report(&self, i: usize) -> Option<String> {
        let relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
        relays.get(&i).map(Relay::report)
    }

    /// Puts a relay between node `i` and the bridge: `p{i}` leaves the bridge, a new pair
    /// `r{i}`–`q{i}` joins it, and the relay copies frames between `p{i}` and `r{i}`. A raw
    /// socket forwards whole frames, so segmentation and checksum offloads are turned off
    /// where frames enter the relay: on the node's interface and on `q{i}`.
    fn relay(&self, i: usize, loss_percent: u8, delay: Duration, seed: u64) -> anyhow::Result<()> {
        let ns = self.node(i);
        let sw = &self.switch;
        let (port, relay_port) = relay_ports(i);
        let bridge_side = format!("r{i}");
        let mac = node_mac(ns)?;
        let wired = (|| -> anyhow::Result<Relay> {
            set_offloads(ns, NODE_INTERFACE, false)?;
            sw.ip(&["link", "set", &port, "nomaster"])?;
            sw.ip(&[
                "link",
                "add",
                &relay_port,
                "type",
                "veth",
                "peer",
                "name",
                &bridge_side,
            ])?;
            set_offloads(sw, &relay_port, false)?;
            sw.ip(&["link", "set", &bridge_side, "up"])?;
            let relay = Relay::start(sw, &port, &bridge_side, mac, loss_percent, delay, seed)?;
            sw.ip(&["link", "set", &relay_port, "master", "br0", "up"])?;
            Ok(relay)
        })();
        match wired {
            Ok(relay) => {
                let mut relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
                relays.insert(i, relay);
                Ok(())
            }
            Err(e) => {
                let _ = sw.ip(&["link", "del", &relay_port]);
                let _ = sw.ip(&["link", "set", &port, "master", "br0"]);
                let _ = set_offloads(ns, NODE_INTERFACE, true);
                Err(e.context(format!("user-space netem for node {i}")))
            }
        }
    }

    /// Leaves the namespaces in place when this value is dropped (`make lab-up`).
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if !self.keep {
            teardown(&self.tag);
        }
    }
}

/// Node `i`'s port on the bridge and the port its relay uses instead while impaired.
fn relay_ports(i: usize) -> (String, String) {
    (format!("p{i}"), format!("q{i}"))
}

/// The MAC address of the node's interface.
fn node_mac(ns: &Netns) -> anyhow::Result<pnet_datalink::MacAddr> {
    let brief = ns.ip_output(&["-br", "link", "show", "dev", NODE_INTERFACE])?;
    brief
        .split_whitespace()
        .nth(2)
        .and_then(|mac| mac.parse().ok())
        .with_context(|| format!("no MAC address in {brief:?}"))
}

/// Turns checksum and segmentation offloads of `interface` in `ns` on or off (ethtool).
fn set_offloads(ns: &Netns, interface: &str, on: bool) -> anyhow::Result<()> {
    let state = if on { "on" } else { "off" };
    ns.exec(
        "ethtool",
        &["-K", interface, "tx", state, "tso", state, "gso", state],
    )
}

/// Deletes every namespace of the lab `tag` (and kills its processes): `make lab-down`.
pub fn teardown(tag: &str) -> usize {
    let names = netns::list(&format!("{tag}-"));
    for name in &names {
        Netns::existing(name).delete();
    }
    names.len()
}
