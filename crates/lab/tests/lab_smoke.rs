//! The lab end to end, as `make test` runs it: three goproxy-ha nodes in their own network
//! namespaces with the VIP, a client probing the VIP every 10 ms, the holder sampled in every
//! namespace every 5 ms. The leader is crashed, power-cut, partitioned from the followers and
//! frozen past the election timeout; after each fault another node must serve the VIP, and no
//! sample of the whole run may show two holders. (`make failover-bench` runs the long version
//! with keepalived for comparison.)

use std::path::PathBuf;
use std::time::Duration;

use goproxy_lab::analysis;
use goproxy_lab::bench::{self, PROBE_PATH};
use goproxy_lab::config::RaftTiming;
use goproxy_lab::lab::Lab;
use goproxy_lab::netns;
use goproxy_lab::procs::Binaries;
use goproxy_lab::report;
use goproxy_lab::rounds::{Fault, Observers};

fn binaries() -> Binaries {
    let mut binaries = Binaries::beside_current_exe()
        .expect("goproxy-ha is built next to the test binary (cargo test --workspace)");
    binaries.goproxy_lab = PathBuf::from(env!("CARGO_BIN_EXE_goproxy-lab"));
    binaries
}

#[test]
fn the_vip_fails_over_under_every_fault_and_never_has_two_holders() {
    if !netns::is_root() {
        eprintln!("skipping: the lab needs root (network namespaces)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let corpus = goproxy_testkit::corpus::dir();
    let tag = format!("gpls{}", std::process::id());
    let mut lab =
        Lab::start(&tag, dir.path(), binaries(), &corpus, RaftTiming::DEFAULT).expect("lab starts");
    let observers = Observers::start(
        &lab,
        PROBE_PATH,
        Duration::from_millis(10),
        Duration::from_millis(5),
    )
    .expect("observers start");
    bench::warm(&lab).expect("every node serves the probed module");

    let freeze = Fault::Freeze(RaftTiming::DEFAULT.election_max * 3);
    let mut all = Vec::new();
    for (fault, count) in [
        (Fault::Crash, 2),
        (Fault::PowerLoss, 1),
        (Fault::Partition, 1),
        (freeze, 1),
    ] {
        let series = bench::series(&mut lab, &observers, "goproxy-ha", true, fault, count)
            .unwrap_or_else(|e| panic!("{}: {e:#}", fault.label()));
        all.push(series);
    }
    println!("{}", report::render(&all));

    let Observers {
        prober, sampler, ..
    } = observers;
    let samples = sampler.stop().expect("the sampler ran to the end");
    let records = prober.stop().expect("the prober ran to the end");
    drop(lab);

    let violations = report::fencing_violations(&all);
    assert!(violations.is_empty(), "{violations:#?}");
    let doubles = analysis::double_holders(&samples);
    assert!(
        doubles.is_empty(),
        "{} of {} samples over the whole run saw two holders: {:?}",
        doubles.len(),
        samples.len(),
        &doubles[..doubles.len().min(5)]
    );
    assert!(
        samples.len() > 100,
        "the sampler ran: {} samples",
        samples.len()
    );
    assert!(
        records.len() > 100,
        "the client ran: {} requests",
        records.len()
    );
}
