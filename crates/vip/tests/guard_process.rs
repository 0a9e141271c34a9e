//! The guard as a process: stdin EOF, SIGTERM, and the death of the thread that spawned it all
//! remove the address. The test binary re-executes itself (inside namespace a) as the guard.

#[path = "support/lab.rs"]
mod lab;

use std::io::Write;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use goproxy_vip::command::{monotonic_now_ns, GuardCommand};
use goproxy_vip::{guard_process_main, GuardConfig};
use lab::{wait_for, Lab, A_DEV, VIP4};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Set in the re-executed child: its guard arguments, separated by newlines.
const CHILD_ARGS_ENV: &str = "GPVT_GUARD_CHILD_ARGS";
const PROMPTLY: Duration = Duration::from_secs(3);
/// Hold long enough that only the event under test can remove the address.
const LONG_HOLD: Duration = Duration::from_secs(30);

#[derive(Parser)]
struct ChildCli {
    #[command(flatten)]
    guard: GuardConfig,
}

/// Not a test: the guard process entry when this binary is re-executed by the tests below.
#[test]
fn guard_child_entry() {
    let Ok(args) = std::env::var(CHILD_ARGS_ENV) else {
        return;
    };
    let argv = std::iter::once("vip-guard").chain(args.lines());
    let cfg = ChildCli::parse_from(argv).guard;
    std::process::exit(match guard_process_main(cfg) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("guard failed: {error}");
            1
        }
    });
}

/// Starts the guard process in the lab's namespace a and tells it to hold the VIP.
fn start_holding(lab: &Lab) -> (Child, ChildStdin) {
    let cfg = GuardConfig::new(VIP4.parse().unwrap(), A_DEV);
    let me = std::env::current_exe().unwrap();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.a.name])
        .arg(me)
        .args(["guard_child_entry", "--exact", "--nocapture"])
        .env(CHILD_ARGS_ENV, cfg.to_args().join("\n"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn guard");
    let mut stdin = child.stdin.take().unwrap();
    let until_mono_ns = monotonic_now_ns() + LONG_HOLD.as_nanos() as u64;
    stdin
        .write_all(GuardCommand::Hold { until_mono_ns }.to_line().as_bytes())
        .unwrap();
    assert!(wait_for(PROMPTLY, || lab.a_has(VIP4)), "guard never held");
    (child, stdin)
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let end = Instant::now() + PROMPTLY;
    while Instant::now() < end {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    panic!("guard did not exit");
}

#[test]
fn stdin_eof_removes_the_vip_and_exits() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("peof");
    let (mut child, stdin) = start_holding(&lab);
    drop(stdin);
    assert!(wait_exit(&mut child).success());
    assert!(!lab.a_has(VIP4), "{}", lab.a_addresses());
}

#[test]
fn sigterm_removes_the_vip_and_exits() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("pterm");
    let (mut child, _stdin) = start_holding(&lab);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(wait_exit(&mut child).success());
    assert!(!lab.a_has(VIP4), "{}", lab.a_addresses());
}

#[test]
fn the_death_of_the_spawning_thread_removes_the_vip() {
    if !lab::can_run() {
        return;
    }
    let lab = Lab::new("pdeath");
    // PR_SET_PDEATHSIG fires when the thread that forked the guard ends, even though this process
    // (and the stdin pipe) live on.
    let (mut child, _stdin) =
        std::thread::scope(|s| s.spawn(|| start_holding(&lab)).join()).expect("spawning thread");
    assert!(wait_exit(&mut child).success());
    assert!(!lab.a_has(VIP4), "{}", lab.a_addresses());
}
