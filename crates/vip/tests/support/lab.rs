#![allow(dead_code)] // shared by several test crates, each using a part
//! A two-namespace lab: `gpvt-<pid>-<tag>-a` and `-b` joined by a veth pair (`va` / `vb`).
//!
//! Everything lives in namespaces this process created; the root namespace's interfaces are never
//! touched. Dropping the lab deletes both namespaces (which deletes the veth pair), also when the
//! test panics; namespaces left by a killed earlier run (dead pid) are removed on the next start.

use std::process::Command;
use std::time::Duration;

use goproxy_testkit::netns;

/// Prefix of every namespace these tests create.
const NS_PREFIX: &str = "gpvt-";
/// The guard's side of the veth pair (in namespace a).
pub const A_DEV: &str = "va";
/// The observer's side (in namespace b).
pub const B_DEV: &str = "vb";
const A_V4: &str = "10.77.0.1/24";
const B_V4: &str = "10.77.0.2/24";
const A_V6: &str = "fd77::1/64";
const B_V6: &str = "fd77::2/64";
/// Longest wait for the veth pair to become operational.
const LINK_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// The IPv4 VIP.
pub const VIP4: &str = "10.77.0.100/24";
/// The IPv6 VIP.
pub const VIP6: &str = "fd77::100/64";

/// True when the tests can create namespaces; otherwise says why they are skipped.
pub fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: network namespace tests need root (run `cargo test` as root)");
        return false;
    }
    true
}

/// Runs `ip` with `args`, panicking with its stderr on failure; returns stdout.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("the `ip` command (iproute2) is required");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One network namespace, deleted (with every process in it) on drop.
pub struct Netns {
    inner: netns::Netns,
    /// Its name under /run/netns.
    pub name: String,
}

impl Netns {
    fn create(name: String) -> Netns {
        let inner = netns::Netns::create(&name).unwrap_or_else(|e| panic!("{e:#}"));
        Netns { inner, name }
    }

    /// `ip -n <name> <args>`, its standard output.
    pub fn ip(&self, args: &[&str]) -> String {
        self.inner
            .ip_output(args)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// `sysctl -w key=value` inside the namespace.
    pub fn sysctl(&self, setting: &str) {
        self.inner
            .exec("sysctl", &["-q", "-w", setting])
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
}

/// Moves the calling thread into namespace `name` (sockets it opens afterwards belong there).
pub fn enter_netns(name: &str) {
    netns::Netns::existing(name)
        .enter()
        .unwrap_or_else(|e| panic!("{e:#}"));
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.inner.delete();
    }
}

/// Namespace a (runs the guard) and b (observes), with a veth pair between them.
pub struct Lab {
    /// Where the guard runs.
    pub a: Netns,
    /// The neighbour that must learn where the VIP is.
    pub b: Netns,
    /// MAC address of `va`, as `ip` prints it.
    pub a_mac: String,
}

impl Lab {
    /// A fresh lab; `tag` tells tests of one run apart.
    pub fn new(tag: &str) -> Lab {
        remove_leftovers();
        let base = format!("{NS_PREFIX}{}-{tag}", std::process::id());
        let a = Netns::create(format!("{base}-a"));
        let b = Netns::create(format!("{base}-b"));
        a.ip(&[
            "link", "add", A_DEV, "type", "veth", "peer", "name", B_DEV, "netns", &b.name,
        ]);
        for (ns, dev, v4, v6) in [(&a, A_DEV, A_V4, A_V6), (&b, B_DEV, B_V4, B_V6)] {
            ns.ip(&["addr", "add", v4, "dev", dev]);
            ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
            ns.ip(&["link", "set", dev, "up"]);
        }
        // The kernel finishes bringing a veth up asynchronously (link watch, up to a second); until
        // then IPv6 has no multicast route and drops neighbour advertisements.
        for (ns, dev) in [(&a, A_DEV), (&b, B_DEV)] {
            let ready = wait_for(LINK_READY_TIMEOUT, || {
                ns.ip(&["-6", "route", "show", "table", "local", "dev", dev])
                    .contains("ff00::/8")
            });
            assert!(ready, "{dev} in {} never became ready", ns.name);
        }
        // Let b learn neighbours from unsolicited announcements (off by default).
        b.sysctl("net.ipv4.conf.all.arp_accept=1");
        b.sysctl(&format!("net.ipv4.conf.{B_DEV}.arp_accept=1"));
        let link = a.ip(&["-o", "link", "show", A_DEV]);
        let a_mac = link
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .expect("va has a MAC")
            .to_string();
        Lab { a, b, a_mac }
    }

    /// `va`'s addresses, one per line.
    pub fn a_addresses(&self) -> String {
        self.a.ip(&["-o", "addr", "show", "dev", A_DEV])
    }

    /// Whether `va` carries `address` (`ip/prefix`).
    pub fn a_has(&self, address: &str) -> bool {
        self.a_addresses()
            .lines()
            .any(|l| l.split_whitespace().any(|w| w == address))
    }
}

/// Deletes `gpvt-<pid>-…` namespaces whose process is gone (a run killed before its drops ran).
fn remove_leftovers() {
    for line in ip(&["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Polls `check` every few milliseconds until it holds or `timeout` passes.
pub use goproxy_testkit::poll::wait_for;
