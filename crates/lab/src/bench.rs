//! `make failover-bench`: goproxy-ha against keepalived on the same namespaces. For each Raft
//! timing profile, goproxy-ha's leader is power-cut and crashed N times each, partitioned and
//! frozen M times each; then keepalived (stock VRRPv2 `advert_int 1`, tuned VRRPv3
//! `advert_int 0.1`) moves the same VIP in front of standalone nodes and the holder is
//! power-cut N times per setting.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{RaftTiming, Vrrp};
use crate::lab::{Lab, Model};
use crate::procs::Binaries;
use crate::report::Series;
use crate::rounds::{self, Fault, Observers};

/// The module every probe asks for (an `.info` every node serves from its cache).
pub const PROBE_PATH: &str = "/github.com/gin-gonic/gin/@v/v1.8.1.info";

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Namespace prefix.
    pub tag: String,
    /// Configs, data and logs.
    pub dir: PathBuf,
    /// The module tree the upstream serves.
    pub corpus: PathBuf,
    /// goproxy-ha's Raft timing profiles, each measured in turn.
    pub timings: Vec<RaftTiming>,
    /// Power-loss and crash rounds (per model).
    pub rounds: usize,
    /// Partition and freeze rounds.
    pub fencing_rounds: usize,
    /// Time between client requests.
    pub probe_interval: Duration,
    /// Time between holder samples.
    pub sample_period: Duration,
    /// Skip the keepalived runs.
    pub skip_keepalived: bool,
}

/// Runs every series, printing each row as it completes; returns them all.
pub fn run(binaries: Binaries, options: &BenchOptions) -> anyhow::Result<Vec<Series>> {
    let first = *options
        .timings
        .first()
        .ok_or_else(|| anyhow::anyhow!("no timing profile to measure"))?;
    let mut lab = Lab::start(&options.tag, &options.dir, binaries, &options.corpus, first)?;
    let observers = Observers::start(
        &lab,
        PROBE_PATH,
        options.probe_interval,
        options.sample_period,
    )?;
    let mut all = Vec::new();
    for &timing in &options.timings {
        if lab.timing() != timing {
            lab.retime(timing)?;
        }
        warm(&lab)?;
        let ours = timing.label();
        let freeze = Fault::Freeze(timing.election_max * 3);
        for (fault, count) in [
            (Fault::PowerLoss, options.rounds),
            (Fault::Crash, options.rounds),
            (Fault::Partition, options.fencing_rounds),
            (freeze, options.fencing_rounds),
        ] {
            all.push(series(&mut lab, &observers, &ours, true, fault, count)?);
        }
    }
    if !options.skip_keepalived {
        for vrrp in [Vrrp::STOCK, Vrrp::TUNED] {
            lab.switch_model(Model::Keepalived(vrrp))?;
            warm(&lab)?;
            all.push(series(
                &mut lab,
                &observers,
                &vrrp.label(),
                false,
                Fault::PowerLoss,
                options.rounds,
            )?);
        }
    }
    Ok(all)
}

/// Runs `count` rounds of `fault`, printing one line per round.
pub fn series(
    lab: &mut Lab,
    observers: &Observers,
    model: &str,
    ours: bool,
    fault: Fault,
    count: usize,
) -> anyhow::Result<Series> {
    let mut rounds = Vec::with_capacity(count);
    for n in 1..=count {
        let round = rounds::round(lab, observers, PROBE_PATH, fault)?;
        println!(
            "{model} | {} {n}/{count}: node {} -> node {}, outage {} ms (VIP claimed after {} ms), {} failed, {} two-holder samples ({} inconclusive), released first: {}",
            fault.label(),
            round.old,
            round.new,
            round.outage.as_millis(),
            round.claimed_after().map_or("-".into(), |d| d.as_millis().to_string()),
            round.failed,
            round.double_holders,
            round.inconclusive,
            round.handover.released_before_claimed()
        );
        rounds.push(round);
    }
    Ok(Series {
        model: model.to_string(),
        ours,
        rounds,
    })
}

/// Fetches the probed module through every node once, so each serves it from its cache.
pub fn warm(lab: &Lab) -> anyhow::Result<()> {
    for i in 1..=crate::lab::NODES {
        lab.wait(
            &format!("node {i} to serve {PROBE_PATH}"),
            Duration::from_secs(60),
            |lab| {
                anyhow::ensure!(lab.answers(i, PROBE_PATH), "not yet");
                Ok(())
            },
        )?;
    }
    Ok(())
}
