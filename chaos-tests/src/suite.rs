//! The suite: one lab (three nodes on small filesystems of their own, so a disk can fill up),
//! one holder sampler for the whole run, and the scenarios in turn. Each scenario: wait for a
//! steady cluster, start the workload, inject and hold the fault, heal (undo network faults,
//! bring the upstream back, restart whatever is down), let the workload run on, stop it, wait
//! for convergence, read every acknowledged artifact back, and judge the invariants.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use goproxy_lab::analysis;
use goproxy_lab::config::{RaftTiming, HTTP_PORT};
use goproxy_lab::holders::HolderSampler;
use goproxy_lab::lab::{Lab, NODES};
use goproxy_lab::netns;
use goproxy_lab::probe::{ProbeSpec, Prober};
use goproxy_lab::procs::Binaries;
use goproxy_lab::topology::{NODE_INTERFACE, VIP};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::corpus;
use crate::faults::Fault;
use crate::invariants::{self, Availability};
use crate::verify;
use crate::workload::{Pools, Read, Workload, WorkloadSpec};

/// Size of each node's data filesystem.
const NODE_FS_SIZE: &str = "1g";
/// Bound on a steady cluster before a scenario.
const STEADY_BOUND: Duration = Duration::from_secs(90);
/// What the availability probe asks for (filled by its first request, a hit from then on).
const PROBE_PATH: &str = "/github.com/gin-gonic/gin/@v/v1.8.1.info";

/// How the suite runs.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Namespace prefix.
    pub tag: String,
    /// Work directory (corpus copy, node filesystems, logs).
    pub dir: PathBuf,
    /// The real corpus to copy into the upstream.
    pub corpus: PathBuf,
    /// Seeds the corpus, the workload and every choice of target.
    pub seed: u64,
    /// Generated modules × versions.
    pub modules: usize,
    /// Versions per generated module.
    pub versions: usize,
    /// Raft timing of the cluster.
    pub timing: RaftTiming,
    /// Client threads.
    pub workers: usize,
    /// Pause between one worker's requests.
    pub pace: Duration,
    /// How long the workload runs before the fault and after the heal.
    pub calm: Duration,
    /// How long each fault is held.
    pub hold: Duration,
    /// Bound on convergence after heal (invariant 4).
    pub converge_bound: Duration,
    /// Run a real `go` build through the VIP after each heal.
    pub go_builds: bool,
}

/// What one scenario measured and whether each invariant held.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The fault's name.
    pub name: String,
    /// What the fault did (or why it could not be applied).
    pub note: Result<String, String>,
    /// Invariant 5: workload availability during the scenario.
    pub availability: Availability,
    /// Invariant 5: longest gap between answers to a probe of a cached artifact through the
    /// VIP every 10 ms, each on a new connection.
    pub probe_outage: Option<Duration>,
    /// Fills attempted / acknowledged during the scenario.
    pub fills: (usize, usize),
    /// Acknowledged artifacts so far (all scenarios), all of which were read back.
    pub acked_total: usize,
    /// Invariant 4: time to convergence once the post-heal workload (`calm` long) stopped, or
    /// why it did not converge within the bound.
    pub converge: Result<Duration, String>,
    /// Invariant 1 violations.
    pub lost: Vec<String>,
    /// Invariant 2 violations.
    pub conflicting: Vec<String>,
    /// Invariant 3 violations.
    pub two_holders: Vec<String>,
    /// Samples that showed two holders but read the nodes too far apart in time to prove it
    /// (`goproxy_lab::analysis::CONCLUSIVE_SPAN`): reported beside invariant 3, not hidden.
    pub inconclusive_samples: usize,
    /// The `go` build through the VIP after heal, if run.
    pub go_build: Option<Result<Duration, String>>,
}

impl Outcome {
    /// Every invariant held and the fault was applied.
    pub fn passed(&self) -> bool {
        self.note.is_ok()
            && self.converge.is_ok()
            && self.lost.is_empty()
            && self.conflicting.is_empty()
            && self.two_holders.is_empty()
            && !matches!(self.go_build, Some(Err(_)))
    }
}

/// The lab with its observers; drops the lab before unmounting the node filesystems.
pub struct Suite {
    lab: Lab,
    sampler: HolderSampler,
    prober: Prober,
    pools: Arc<Mutex<Pools>>,
    rng: StdRng,
    epoch: Instant,
    reads: Vec<Read>,
    options: SuiteOptions,
    _mounts: Mounts,
}

impl Suite {
    /// Builds the corpus, mounts the node filesystems, starts the lab and the sampler.
    pub fn start(binaries: Binaries, options: SuiteOptions) -> anyhow::Result<Suite> {
        anyhow::ensure!(
            netns::is_root(),
            "the chaos suite needs root (network namespaces)"
        );
        let mut rng = StdRng::seed_from_u64(options.seed);
        let _ = std::fs::remove_dir_all(&options.dir);
        std::fs::create_dir_all(&options.dir)?;
        let corpus = corpus::build(
            &options.dir.join("upstream"),
            &options.corpus,
            options.modules,
            options.versions,
            &mut rng,
        )?;
        let lab_dir = options.dir.join("lab");
        let mounts = Mounts::tmpfs(
            (1..=NODES).map(|i| Lab::cluster_node_dir(&lab_dir, i)),
            NODE_FS_SIZE,
        )?;
        let lab = Lab::start(
            &options.tag,
            &lab_dir,
            binaries,
            &corpus.root,
            options.timing,
        )?;
        let epoch = Instant::now();
        let sampler = HolderSampler::start(
            &lab.node_namespaces(),
            VIP,
            NODE_INTERFACE,
            Duration::from_millis(5),
            epoch,
        )?;
        let prober = Prober::start(
            lab.topology().client(),
            ProbeSpec {
                target: (VIP, HTTP_PORT).into(),
                path: PROBE_PATH.to_string(),
                interval: Duration::from_millis(10),
                timeout: Duration::from_secs(2),
            },
            epoch,
        );
        let pools = Arc::new(Mutex::new(Pools::new(corpus.artifacts, &mut rng)));
        Ok(Suite {
            lab,
            sampler,
            prober,
            pools,
            rng,
            epoch,
            reads: Vec::new(),
            options,
            _mounts: mounts,
        })
    }

    /// The lab (for extra checks).
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// Runs one scenario.
    pub fn scenario(&mut self, fault: Fault) -> anyhow::Result<Outcome> {
        let name = fault.name();
        self.steady()
            .with_context(|| format!("{name}: no steady cluster to start from"))?;
        let start = self.epoch.elapsed();
        let spec = WorkloadSpec {
            target: (VIP, HTTP_PORT).into(),
            workers: self.options.workers,
            pace: self.options.pace,
            fill_share: 0.3,
            timeout: Duration::from_secs(10),
            max_requests: 100_000,
            max_time: Duration::from_secs(600),
        };
        let seed = rand::Rng::random(&mut self.rng);
        let workload = Workload::start(
            self.lab.topology().client(),
            &spec,
            self.pools.clone(),
            seed,
            self.epoch,
        );
        std::thread::sleep(self.options.calm);
        let note = fault
            .run(&mut self.lab, self.options.hold, &mut self.rng)
            .map_err(|e| format!("{e:#}"));
        self.heal();
        std::thread::sleep(self.options.calm);
        let reads = workload.stop();
        let stopped = Instant::now();
        self.reads.extend(reads.iter().cloned());
        let acked = invariants::acknowledged(&self.reads);
        let blobs: Vec<&str> = acked.values().map(String::as_str).collect();
        let converge = self
            .converge(&blobs, self.options.converge_bound)
            .map(|_| stopped.elapsed())
            .map_err(|e| format!("{e:#}"));
        let probes = self.prober.since(start);
        let probe_outage = probes
            .iter()
            .find(|r| r.ok)
            .and_then(|first| analysis::outage(&probes, first.finished));
        let go_build = self.options.go_builds.then(|| {
            let work = self.options.dir.join("gobuild");
            verify::go_build(&self.lab, &work, &self.options.dir.join("gocache"))
                .map_err(|e| format!("{e:#}"))
        });
        let fills = (
            reads.iter().filter(|r| r.fill).count(),
            reads.iter().filter(|r| r.fill && r.acknowledged()).count(),
        );
        let availability = invariants::availability(&reads);
        let checks = verify::read_back(&self.lab, &acked)?;
        let lost = invariants::acknowledged_served(&acked, &checks);
        let conflicting = invariants::one_content_per_path(&self.reads);
        let samples = self.sampler.since(start);
        let two_holders = invariants::single_holder(&samples);
        let inconclusive_samples = goproxy_lab::analysis::inconclusive(&samples);
        Ok(Outcome {
            name,
            note,
            availability,
            probe_outage,
            fills,
            acked_total: acked.len(),
            converge,
            lost,
            conflicting,
            two_holders,
            inconclusive_samples,
            go_build,
        })
    }

    /// Undoes every network fault, brings the upstream back and restarts what is down.
    fn heal(&mut self) {
        for i in 1..=NODES {
            self.lab.heal(i);
        }
        if let Err(e) = self.lab.upstream_up() {
            eprintln!("chaos: restarting the upstream: {e:#}");
        }
        match self.lab.restart_stopped() {
            Ok(restarted) if !restarted.is_empty() => {
                println!("chaos: heal restarted nodes {restarted:?}")
            }
            Ok(_) => {}
            Err(e) => eprintln!("chaos: restarting nodes: {e:#}"),
        }
    }

    fn steady(&mut self) -> anyhow::Result<()> {
        self.converge(&[], STEADY_BOUND)
    }

    /// Waits for [`verify::converged`] up to `bound`, starting any node that exited meanwhile
    /// (as a supervisor would: a node whose storage failed exits to be restarted).
    fn converge(&mut self, blobs: &[&str], bound: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            match self.lab.restart_stopped() {
                Ok(restarted) if !restarted.is_empty() => {
                    println!("chaos: supervisor restarted nodes {restarted:?}")
                }
                Ok(_) => {}
                Err(e) => eprintln!("chaos: restarting nodes: {e:#}"),
            }
            match verify::converged(&self.lab, &self.sampler, blobs) {
                Ok(()) => return Ok(()),
                Err(e) if started.elapsed() > bound => {
                    bail!(
                        "not converged within {bound:?}: {e:#}\n{}",
                        self.lab.log_tails()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// tmpfs filesystems mounted for the suite; unmounted on drop.
struct Mounts(Vec<PathBuf>);

impl Mounts {
    fn tmpfs(dirs: impl Iterator<Item = PathBuf>, size: &str) -> anyhow::Result<Mounts> {
        let mut mounts = Mounts(Vec::new());
        for dir in dirs {
            std::fs::create_dir_all(&dir)?;
            let options = format!("size={size}");
            netns::run(
                "mount",
                &[
                    "-t",
                    "tmpfs",
                    "-o",
                    &options,
                    "tmpfs",
                    &dir.to_string_lossy(),
                ],
            )?;
            mounts.0.push(dir);
        }
        Ok(mounts)
    }
}

impl Drop for Mounts {
    /// Unmounts (each node's log, `cluster-n1.log`, lives beside its filesystem and stays).
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = netns::run("umount", &["-l", &dir.to_string_lossy()]);
        }
    }
}

/// Fails with the scenario names whose invariants did not hold.
pub fn require_all_passed(outcomes: &[Outcome]) -> anyhow::Result<()> {
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| o.name.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("invariants violated in: {}", failed.join(", "));
    }
    Ok(())
}
