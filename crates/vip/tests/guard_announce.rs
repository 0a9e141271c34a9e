//! Announcements against a real kernel: the guard runs in namespace a, a packet socket in
//! namespace b captures what arrives, and b's neighbour table shows whether the kernel believed it.
//! Needs root; skipped otherwise.

#[path = "support/guard_run.rs"]
mod guard_run;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/observe.rs"]
mod observe;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use goproxy_vip::GuardConfig;
use guard_run::GuardRun;
use lab::{wait_for, Lab, A_DEV, B_DEV, VIP4, VIP6};
use observe::{is_arp, is_na, Capture};

/// Generous bound for things that should happen "at once" on an idle machine.
const PROMPTLY: Duration = Duration::from_secs(2);
/// How long capture goes on once the expected frames arrived, to catch any beyond them.
const LINGER: Duration = Duration::from_millis(150);

fn config(address: &str) -> GuardConfig {
    let mut cfg = GuardConfig::new(address.parse().unwrap(), A_DEV);
    cfg.garp_count = 3;
    cfg
}

fn mac_bytes(mac: &str) -> Vec<u8> {
    mac.split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect()
}

#[test]
fn acquiring_an_ipv4_vip_sends_both_garp_forms() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("v4");
    let capture = Capture::start(&lab.b.name, B_DEV);
    let mut guard = GuardRun::start(&lab.a, config(VIP4));

    guard.hold_for_ms(10_000);
    assert!(wait_for(PROMPTLY, || lab.a_has(VIP4)), "VIP not added");
    let vip = Ipv4Addr::new(10, 77, 0, 100).octets();
    let garps = |frames: &[Vec<u8>]| -> Vec<Vec<u8>> {
        frames
            .iter()
            .filter(|f| is_arp(f) && f[28..32] == vip && f[38..42] == vip)
            .cloned()
            .collect()
    };
    let count = |garps: &[Vec<u8>], op: u8| garps.iter().filter(|f| f[20..22] == [0, op]).count();
    // 3 rounds, 20 ms apart: wait until they arrived (a loaded machine may delay them), then a
    // little longer so that a fourth would be seen.
    let frames = capture.stop_when(PROMPTLY, LINGER, |frames| {
        let garps = garps(frames);
        count(&garps, 1) >= 3 && count(&garps, 2) >= 3
    });
    let garps = garps(&frames);
    let mac = mac_bytes(&lab.a_mac);
    assert_eq!(
        (count(&garps, 1), count(&garps, 2)),
        (3, 3),
        "GARP requests / replies"
    );
    for f in &garps {
        assert_eq!(f[0..6], [0xff; 6], "broadcast");
        assert_eq!(f[6..12], mac[..], "from va");
        assert_eq!(f[22..28], mac[..], "sender MAC");
    }
    // b accepted them: its neighbour table maps the VIP to a's MAC without ever asking.
    let neigh = || lab.b.ip(&["neigh", "show", "10.77.0.100", "dev", B_DEV]);
    assert!(
        wait_for(PROMPTLY, || neigh().contains(&lab.a_mac)),
        "b's neighbour table: {:?}",
        neigh()
    );

    guard.close().expect("clean exit");
}

#[test]
fn an_ipv6_vip_is_usable_at_once_and_advertised() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("v6");
    // b still believes the VIP is at the previous holder's MAC: the advertisement must override it.
    let old_holder = "02:00:00:00:00:99";
    lab.b.ip(&[
        "-6",
        "neigh",
        "replace",
        "fd77::100",
        "lladdr",
        old_holder,
        "dev",
        B_DEV,
        "nud",
        "stale",
    ]);
    let capture = Capture::start(&lab.b.name, B_DEV);
    let mut guard = GuardRun::start(&lab.a, config(VIP6));
    guard.hold_for_ms(10_000);
    assert!(wait_for(PROMPTLY, || lab.a_has(VIP6)), "VIP not added");
    let line = lab
        .a_addresses()
        .lines()
        .find(|l| l.contains(VIP6))
        .map(str::to_string)
        .unwrap();
    assert!(!line.contains("tentative"), "VIP under DAD: {line}");

    let vip = "fd77::100".parse::<Ipv6Addr>().unwrap().octets();
    let mac = mac_bytes(&lab.a_mac);
    let nas = |frames: &[Vec<u8>]| -> Vec<Vec<u8>> {
        frames
            .iter()
            .filter(|f| is_na(f) && f[62..78] == vip)
            .cloned()
            .collect()
    };
    // 3 rounds, 20 ms apart: wait until they arrived, then a little longer.
    let nas = nas(&capture.stop_when(PROMPTLY, LINGER, |frames| nas(frames).len() >= 3));
    assert_eq!(nas.len(), 3, "one NA per round");
    for f in &nas {
        assert_eq!(f[0..6], [0x33, 0x33, 0, 0, 0, 1], "to all nodes");
        assert_eq!(f[58] & 0xe0, 0x20, "Override only");
        assert_eq!(f[78..80], [2, 1], "target link-layer address option");
        assert_eq!(f[80..86], mac[..]);
    }
    let neigh = || {
        lab.b
            .ip(&["-6", "neigh", "show", "fd77::100", "dev", B_DEV])
    };
    assert!(
        wait_for(PROMPTLY, || neigh().contains(&lab.a_mac)),
        "b's neighbour table: {:?}",
        neigh()
    );
    guard.close().expect("clean exit");
    assert!(!lab.a_has(VIP6), "EOF kept VIP");
}

#[test]
fn refresh_reannounces_and_repairs_a_vanished_vip() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("refresh");
    let mut cfg = config(VIP4);
    cfg.garp_count = 1;
    cfg.garp_refresh = Duration::from_millis(100);
    let capture = Capture::start(&lab.b.name, B_DEV);
    let mut guard = GuardRun::start(&lab.a, cfg);
    guard.hold_for_ms(10_000);
    assert!(wait_for(PROMPTLY, || lab.a_has(VIP4)));
    lab.a.ip(&["addr", "del", VIP4, "dev", A_DEV]);
    assert!(wait_for(PROMPTLY, || lab.a_has(VIP4)), "VIP not repaired");
    let requests = |frames: &[Vec<u8>]| {
        frames
            .iter()
            .filter(|f| is_arp(f) && f[20..22] == [0, 1] && f[28..32] == [10, 77, 0, 100])
            .count()
    };
    // The burst plus refreshes every 100 ms: polled, as a loaded machine may delay them.
    let requests =
        requests(&capture.stop_when(PROMPTLY, Duration::ZERO, |frames| requests(frames) >= 3));
    assert!(requests >= 3, "{requests} announcements: burst + refreshes");
    guard.close().expect("clean exit");
}
