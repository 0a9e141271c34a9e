//! goproxy-lab: a network-namespace lab for goproxy-ha.
//!
//! Three node namespaces, a client namespace and the upstream share one bridge (an L2 segment
//! on which the VIP and gratuitous ARP behave as on a real LAN). The lab starts a goproxy-ha
//! cluster that moves the VIP, or keepalived in front of standalone nodes for comparison;
//! applies named faults (crash, power loss, partition, freeze, packet loss); probes the VIP from the
//! client every few milliseconds; samples which node holds the VIP; and reports outages and
//! fencing counters. `make lab-up` / `make lab-down` and `make failover-bench` drive it; the
//! chaos suite builds on it.
//!
//! Layers: [`netns`] and [`topology`] (the network; [`relay`] and [`impairment`] stand in
//! for netem where the kernel lacks it), [`procs`] and [`config`] (what runs),
//! [`lab`] and [`maintenance`] (both together, faults and operations by node number),
//! [`probe`] and [`holders`] (observers), [`analysis`] and [`report`] (pure arithmetic),
//! [`rounds`] and [`bench`] (the procedure).

pub mod analysis;
pub mod bench;
pub mod certs;
pub mod config;
pub mod holders;
pub mod impairment;
pub mod lab;
pub mod maintenance;
/// Network namespaces (from the shared test kit).
pub use goproxy_testkit::netns;
pub mod probe;
pub mod procs;
pub mod relay;
pub mod report;
pub mod rounds;
pub mod topology;
