//! The VIP against real kernel state: a node runs in a network namespace of its own (made and
//! removed by this test) with the VIP on a veth interface. Checked: a single-node leader holds
//! the VIP; a frozen node (SIGSTOP) loses it when its lease runs out and gets it back on
//! SIGCONT; a SIGKILLed node leaves no VIP behind (its guard sees the pipe close); SIGTERM
//! releases it. Skipped (with a message) when not root.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use goproxy_testkit::netns;

/// Lease (election_timeout_max 300 ms − margin 50 ms) plus generous slack for a busy host.
const DROP_BOUND: Duration = Duration::from_secs(3);
/// Start-up and re-acquisition bound.
const SETTLE: Duration = Duration::from_secs(15);
const VIP: &str = "10.123.0.100/24";
const DEV: &str = "vip0";
const PEER: &str = "vip0-peer";

/// A network namespace that is deleted (with every process in it) when dropped.
struct Netns(netns::Netns);

impl Netns {
    fn new() -> Option<Netns> {
        if !netns::is_root() {
            eprintln!("skipping: VIP tests need root (network namespaces)");
            return None;
        }
        let ns = netns::Netns::create(&format!("gpvip-{}", std::process::id()))
            .unwrap_or_else(|e| panic!("{e:#}"));
        // A veth pair with both ends inside (not every kernel has the dummy driver).
        for args in [
            &["link", "add", DEV, "type", "veth", "peer", "name", PEER][..],
            &["link", "set", DEV, "up"],
            &["link", "set", PEER, "up"],
        ] {
            ns.ip(args).unwrap_or_else(|e| panic!("{e:#}"));
        }
        Some(Netns(ns))
    }

    fn has_vip(&self) -> bool {
        self.0
            .ip_output(&["-o", "addr", "show", "dev", DEV])
            .is_ok_and(|out| out.contains(VIP))
    }

    fn processes(&self) -> Vec<i32> {
        self.0.pids()
    }

    fn name(&self) -> &str {
        self.0.name()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.0.delete();
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {sig}");
}

fn start(ns: &Netns, dir: &std::path::Path) -> Child {
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "node_id = 1\nlisten = \"127.0.0.1:0\"\nraft_listen = \"127.0.0.1:0\"\n\
             data_dir = {:?}\n[proxy]\nupstream = \"off\"\n\
             [vip]\naddress = \"{VIP}\"\ninterface = \"{DEV}\"\ngarp_count = 2\n",
            dir.join("data")
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("node.log")).unwrap();
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            env!("CARGO_BIN_EXE_goproxy-ha"),
            "serve",
        ])
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn node")
}

/// Waits until `check` holds; returns how long it took.
fn wait(what: &str, bound: Duration, dir: &std::path::Path, check: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        if started.elapsed() > bound {
            let log = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
            panic!("timed out after {bound:?} waiting for {what}; node log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

#[test]
fn the_vip_follows_the_node_through_freeze_crash_and_stop() {
    let Some(ns) = Netns::new() else { return };
    let dir = tempfile::tempdir().unwrap();

    let mut node = start(&ns, dir.path());
    wait("the leader to take the VIP", SETTLE, dir.path(), || {
        ns.has_vip()
    });

    signal(&node, "-STOP");
    let dropped = wait(
        "a frozen node to lose the VIP",
        DROP_BOUND,
        dir.path(),
        || !ns.has_vip(),
    );
    println!("SIGSTOP: VIP removed by the guard after {dropped:?}");
    signal(&node, "-CONT");
    wait(
        "the thawed node to hold it again",
        SETTLE,
        dir.path(),
        || ns.has_vip(),
    );

    node.kill().unwrap();
    node.wait().unwrap();
    let dropped = wait(
        "a SIGKILLed node's VIP to go",
        DROP_BOUND,
        dir.path(),
        || !ns.has_vip(),
    );
    println!("SIGKILL: VIP removed after {dropped:?}");
    wait("the guard to exit", DROP_BOUND, dir.path(), || {
        ns.processes().is_empty()
    });

    let mut node = start(&ns, dir.path());
    wait(
        "the restarted node to take the VIP",
        SETTLE,
        dir.path(),
        || ns.has_vip(),
    );
    signal(&node, "-TERM");
    let status = node.wait().unwrap();
    assert!(status.success(), "SIGTERM exit status {status}");
    assert!(!ns.has_vip(), "VIP left behind after SIGTERM");
    assert!(
        ns.processes().is_empty(),
        "processes left: {:?}",
        ns.processes()
    );
}
