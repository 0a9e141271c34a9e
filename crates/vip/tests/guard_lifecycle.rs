//! The guard's life cycle against a real kernel: each test builds two network namespaces joined
//! by a veth pair, runs the guard in namespace a and checks the address with `ip`. Needs root;
//! skipped otherwise.

#[path = "support/guard_run.rs"]
mod guard_run;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/observe.rs"]
mod observe;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use goproxy_vip::command::monotonic_now_ns;
use goproxy_vip::GuardConfig;
use guard_run::GuardRun;
use lab::{wait_for, Lab, A_DEV, VIP4};
use observe::AddrMonitor;

/// Generous bound for things that should happen "at once" on an idle machine.
const PROMPTLY: Duration = Duration::from_secs(2);
/// Longest the address may outlive its deadline (timer granularity, netlink, `ip monitor`,
/// scheduling on a shared 2-core machine).
const EXPIRY_SLACK: Duration = Duration::from_millis(30);
/// The expiry test's first hold, and the second one that extends it.
const FIRST_HOLD_MS: i64 = 1_000;
const SECOND_HOLD_MS: i64 = 2_000;
/// How long after the first deadline the expiry test checks that the VIP is still held.
const PAST_FIRST: Duration = Duration::from_millis(100);

fn config(address: &str) -> GuardConfig {
    let mut cfg = GuardConfig::new(address.parse().unwrap(), A_DEV);
    cfg.garp_count = 3;
    cfg
}

#[test]
fn a_stale_vip_is_removed_at_start() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("stale");
    // Left by an earlier holder, even with another prefix length.
    lab.a.ip(&["addr", "add", "10.77.0.100/32", "dev", A_DEV]);
    assert!(lab.a_has("10.77.0.100/32"));
    let guard = GuardRun::start(&lab.a, config(VIP4));
    assert!(
        wait_for(PROMPTLY, || !lab.a_has("10.77.0.100/32")),
        "stale VIP still there: {}",
        lab.a_addresses()
    );
    guard.close().expect("guard ends cleanly on EOF");
}

#[test]
fn hold_adds_release_removes_eof_removes() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("life");
    let mut guard = GuardRun::start(&lab.a, config(VIP4));
    guard.hold_for_ms(10_000);
    assert!(wait_for(PROMPTLY, || lab.a_has(VIP4)), "VIP not added");
    guard.release();
    assert!(wait_for(PROMPTLY, || !lab.a_has(VIP4)), "release kept VIP");
    guard.hold_for_ms(10_000);
    assert!(wait_for(PROMPTLY, || lab.a_has(VIP4)), "VIP not re-added");
    guard.close().expect("guard ends cleanly on EOF");
    assert!(!lab.a_has(VIP4), "EOF kept VIP: {}", lab.a_addresses());
}

#[test]
fn the_deadline_removes_the_vip_promptly_and_holds_extend_it() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("expiry");
    let monitor = AddrMonitor::start(&lab.a.name);
    let mut guard = GuardRun::start(&lab.a, config(VIP4));
    let is_vip = |l: &str| l.contains("10.77.0.100/24");

    // A hold that is already over is ignored.
    guard.hold_for_ms(-1);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!lab.a_has(VIP4), "a past deadline added the VIP");

    // The deadlines leave the test's own steps (each an `ip` process on a possibly loaded
    // machine) hundreds of milliseconds: the second hold must come before the first deadline,
    // and the check in between must fall after the first deadline and before the second.
    let first_ns = guard.hold_for_ms(FIRST_HOLD_MS);
    assert!(wait_for(PROMPTLY, || lab.a_has(VIP4)), "VIP not added");
    std::thread::sleep(Duration::from_millis(100));
    let deadline_ns = guard.hold_for_ms(SECOND_HOLD_MS);
    let deadline = Instant::now() + Duration::from_nanos(deadline_ns - monotonic_now_ns());
    assert!(
        monotonic_now_ns() < first_ns,
        "the second hold came after the first deadline (machine too slow to test the extension)"
    );
    // Past the first deadline, within the second: still held.
    std::thread::sleep(
        Duration::from_nanos(first_ns.saturating_sub(monotonic_now_ns())) + PAST_FIRST,
    );
    assert!(lab.a_has(VIP4), "the second hold did not extend the first");

    let removed = monitor
        .wait(
            deadline.saturating_duration_since(Instant::now()) + PROMPTLY,
            |l| l.starts_with("Deleted") && is_vip(l),
        )
        .expect("VIP never removed");
    let late = removed.saturating_duration_since(deadline);
    let early = deadline.saturating_duration_since(removed);
    eprintln!("removed {late:?} after the deadline ({early:?} before)");
    assert!(early < Duration::from_millis(2), "removed {early:?} early");
    assert!(late <= EXPIRY_SLACK, "removed {late:?} after the deadline");
    assert!(!guard.finished(), "the guard exits only on EOF");
}

#[test]
fn an_invalid_command_releases() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("invalid");
    let mut guard = GuardRun::start(&lab.a, config(VIP4));
    guard.hold_for_ms(10_000);
    assert!(wait_for(PROMPTLY, || lab.a_has(VIP4)));
    guard.send_line("hold soon");
    assert!(
        wait_for(PROMPTLY, || !lab.a_has(VIP4)),
        "invalid line kept VIP"
    );
    guard.close().expect("clean exit");
}

#[test]
fn a_missing_interface_is_reported() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("noif");
    let cfg = GuardConfig::new(VIP4.parse().unwrap(), "nope0");
    let guard = GuardRun::start(&lab.a, cfg);
    match guard.close() {
        Err(goproxy_vip::VipError::InterfaceNotFound(name)) => assert_eq!(name, "nope0"),
        other => panic!("expected InterfaceNotFound, got {other:?}"),
    }
}

#[test]
fn hooks_are_told_about_transitions() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("hooks");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let hook = dir.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut cfg = config(VIP4);
    cfg.notify_holder = Some(hook.clone());
    cfg.notify_released = Some(hook);
    let mut guard = GuardRun::start(&lab.a, cfg);
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();

    guard.hold_for_ms(10_000);
    assert!(wait_for(PROMPTLY, || logged() == "holder 10.77.0.100/24 va\n"));
    guard.release();
    let both = "holder 10.77.0.100/24 va\nreleased 10.77.0.100/24 va\n";
    assert!(wait_for(PROMPTLY, || logged() == both), "{:?}", logged());
    guard.close().expect("clean exit");
}

#[test]
fn a_missing_hook_does_not_stop_the_guard() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("nohook");
    let mut cfg = config(VIP4);
    cfg.notify_holder = Some(PathBuf::from("/nonexistent/goproxy-ha-hook"));
    let mut guard = GuardRun::start(&lab.a, cfg);
    guard.hold_for_ms(10_000);
    assert!(wait_for(PROMPTLY, || lab.a_has(VIP4)));
    guard.close().expect("clean exit");
    assert!(!lab.a_has(VIP4));
}
