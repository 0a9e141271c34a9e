//! The chaos smoke subset, as `make test` runs it: six scenarios (leader crash, the leader's
//! disk full, leader cut off from its peers, a follower's disk full, a node wiped and joined
//! again, a `goproxy-ha drill` through the VIP) with the workload running; every invariant
//! must hold in each. The seed is printed; `make chaos` runs every scenario.

use std::time::Duration;

use chaos_tests::suite::{self, Suite, SuiteOptions};
use chaos_tests::{report, SMOKE};
use goproxy_lab::config::RaftTiming;
use goproxy_lab::netns;
use goproxy_lab::procs::Binaries;

#[test]
fn every_invariant_holds_in_the_smoke_scenarios() {
    assert!(
        netns::is_root(),
        "the chaos smoke test needs root (network namespaces); make test runs as root"
    );
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("chaos smoke: seed {seed} (replay: CHAOS_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let corpus = goproxy_testkit::corpus::dir();
    let options = SuiteOptions {
        tag: format!("gpcs{}", std::process::id()),
        dir: dir.path().join("chaos"),
        corpus,
        seed,
        modules: 20,
        versions: 10,
        timing: RaftTiming::DEFAULT,
        workers: 3,
        pace: Duration::from_millis(20),
        calm: Duration::from_secs(2),
        hold: Duration::from_secs(3),
        converge_bound: Duration::from_secs(60),
        go_builds: false,
    };
    let binaries = Binaries::beside_current_exe()
        .expect("goproxy-ha and goproxy-lab are built next to the test (cargo test --workspace)");
    let mut suite = Suite::start(binaries, options).expect("the chaos lab starts");
    let mut outcomes = Vec::new();
    for &fault in SMOKE {
        outcomes.push(suite.scenario(fault).expect("the scenario runs"));
    }
    drop(suite);
    println!("{}", report::render(seed, &outcomes));
    suite::require_all_passed(&outcomes).unwrap_or_else(|e| panic!("seed {seed}: {e:#}"));
    for outcome in &outcomes {
        assert!(
            outcome.acked_total > 0,
            "{}: nothing was acknowledged",
            outcome.name
        );
    }
}
