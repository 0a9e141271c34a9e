//! Failover rounds: wait for a steady lab, inject a fault on the VIP holder, watch the client
//! and the holder samples until another node serves the VIP, restore the node, and measure.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::analysis::{self, Handover};
use crate::holders::HolderSampler;
use crate::lab::{Lab, Model, NODES};
use crate::probe::{ProbeSpec, Prober};
use crate::topology::{Direction, NODE_INTERFACE, VIP};

/// Consecutive successful requests that count as "the client is served again".
const RECOVERED_STREAK: usize = 30;
/// Bound on one failover (keepalived's stock settings need ~4 s).
const RECOVERY_BOUND: Duration = Duration::from_secs(30);
/// Bound on reaching a steady state before a fault.
const STEADY_BOUND: Duration = Duration::from_secs(90);
/// How long the holder samples keep being checked after a node is restored.
const AFTERMATH: Duration = Duration::from_millis(500);

/// A named fault injected on the VIP holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of the node process only.
    Crash,
    /// Link down, then SIGKILL of every process in the node's namespace.
    PowerLoss,
    /// nftables drops all traffic between the holder and the other nodes; the client still
    /// reaches it. Healed once another node serves the VIP.
    Partition,
    /// SIGSTOP of the node process for this long (longer than the election timeout), then
    /// SIGCONT. Its VIP guard keeps running.
    Freeze(Duration),
}

impl Fault {
    /// Short name for tables.
    pub fn label(&self) -> String {
        match self {
            Fault::Crash => "crash (kill -9)".into(),
            Fault::PowerLoss => "power loss".into(),
            Fault::Partition => "partition".into(),
            Fault::Freeze(d) => format!("SIGSTOP {}ms", d.as_millis()),
        }
    }
}

/// The client and the holder sampler, running for the whole benchmark.
pub struct Observers {
    /// Requests through the VIP.
    pub prober: Prober,
    /// VIP holders in every node namespace.
    pub sampler: HolderSampler,
    /// Zero of every recorded time.
    pub epoch: Instant,
}

impl Observers {
    /// Starts probing `path` through the VIP every `interval` and sampling holders every
    /// `sample_period`.
    pub fn start(
        lab: &Lab,
        path: &str,
        interval: Duration,
        sample_period: Duration,
    ) -> anyhow::Result<Observers> {
        let epoch = Instant::now();
        let sampler = HolderSampler::start(
            &lab.node_namespaces(),
            VIP,
            NODE_INTERFACE,
            sample_period,
            epoch,
        )?;
        let prober = Prober::start(
            lab.topology().client(),
            ProbeSpec {
                target: (VIP, crate::config::HTTP_PORT).into(),
                path: path.to_string(),
                interval,
                timeout: Duration::from_secs(2),
            },
            epoch,
        );
        Ok(Observers {
            prober,
            sampler,
            epoch,
        })
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

/// What one round measured.
#[derive(Debug, Clone)]
pub struct Round {
    /// The fault.
    pub fault: Fault,
    /// The holder it hit.
    pub old: usize,
    /// The node that held the VIP afterwards.
    pub new: usize,
    /// Longest gap between successful client answers across the fault.
    pub outage: Duration,
    /// Client requests that failed.
    pub failed: usize,
    /// Samples with more than one holder, from the fault until after the restore.
    pub double_holders: usize,
    /// Samples whose reads were too far apart to tell ([`analysis::CONCLUSIVE_SPAN`]).
    pub inconclusive: usize,
    /// How the VIP changed hands.
    pub handover: Handover,
    /// When the fault was injected.
    pub fault_at: Duration,
}

impl Round {
    /// Time from the fault until another node was first seen holding the VIP.
    pub fn claimed_after(&self) -> Option<Duration> {
        self.handover
            .new_first_held
            .map(|(at, _)| at.saturating_sub(self.fault_at))
    }
}

/// Waits until the lab is steady: (cluster) a healthy leader holds the VIP, or (keepalived)
/// every responder answers and one node holds it; and the client's last requests succeeded.
/// Returns the holder.
pub fn steady(lab: &Lab, observers: &Observers, path: &str) -> anyhow::Result<usize> {
    lab.wait("a steady lab", STEADY_BOUND, |lab| {
        let holder = observers
            .sampler
            .latest()
            .and_then(|s| s.single())
            .context("no single VIP holder")?;
        match lab.model() {
            Model::GoproxyHa => {
                let leader = lab.healthy_leader()?;
                anyhow::ensure!(leader == holder, "leader {leader} but holder {holder}");
            }
            Model::Keepalived(_) => {
                for i in 1..=NODES {
                    anyhow::ensure!(lab.answers(i, path), "node {i} does not answer");
                }
            }
        }
        let recent = observers
            .prober
            .since(observers.now().saturating_sub(Duration::from_secs(1)));
        anyhow::ensure!(
            analysis::recovered(&recent, RECOVERED_STREAK),
            "the client is not served"
        );
        Ok(holder)
    })
}

/// One round: fault on the current holder, recovery, restore, measurements.
pub fn round(
    lab: &mut Lab,
    observers: &Observers,
    path: &str,
    fault: Fault,
) -> anyhow::Result<Round> {
    let old = steady(lab, observers, path)?;
    let fault_at = observers.now();
    match fault {
        Fault::Crash => lab.crash(old),
        Fault::PowerLoss => lab.power_off(old)?,
        Fault::Partition => lab.isolate(old, Direction::Both)?,
        Fault::Freeze(_) => lab.freeze(old, true)?,
    }
    let new = wait_for_failover(lab, observers, old, fault_at);
    if let Fault::Freeze(duration) = fault {
        let thaw_at = observers.epoch + fault_at + duration;
        std::thread::sleep(thaw_at.saturating_duration_since(Instant::now()));
        lab.freeze(old, false)?;
    }
    let new = new?;
    match fault {
        Fault::Crash => lab.start_node(old)?,
        Fault::PowerLoss => lab.power_on(old)?,
        Fault::Partition => lab.heal(old),
        Fault::Freeze(_) => {}
    }
    if let Model::Keepalived(vrrp) = lab.model() {
        // A restarted keepalived stays BACKUP (nopreempt) once it has heard the master.
        std::thread::sleep(Duration::from_secs_f64(3.5 * vrrp.advert_int));
    }
    std::thread::sleep(AFTERMATH);
    let records = observers
        .prober
        .since(fault_at.saturating_sub(Duration::from_secs(2)));
    let outage = analysis::outage(&records, fault_at).context("the client never recovered")?;
    let samples = observers.sampler.since(fault_at);
    Ok(Round {
        fault,
        old,
        new,
        outage,
        failed: analysis::failures(&observers.prober.since(fault_at)),
        double_holders: analysis::double_holders(&samples).len(),
        inconclusive: analysis::inconclusive(&samples),
        handover: analysis::handover(&samples, old, fault_at),
        fault_at,
    })
}

/// Waits until a node other than `old` holds the VIP and the client is served again.
fn wait_for_failover(
    lab: &Lab,
    observers: &Observers,
    old: usize,
    fault_at: Duration,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    loop {
        let holder = observers.sampler.latest().and_then(|s| s.single());
        let records = observers.prober.since(fault_at);
        if let Some(new) = holder.filter(|&h| h != old) {
            let served = records.iter().any(|r| r.ok && r.finished > fault_at);
            if served && analysis::recovered(&records, RECOVERED_STREAK) {
                return Ok(new);
            }
        }
        if started.elapsed() > RECOVERY_BOUND {
            bail!(
                "no failover from node {old} within {RECOVERY_BOUND:?} (holder {holder:?})\n{}",
                lab.log_tails()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
