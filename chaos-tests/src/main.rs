//! `goproxy-chaos`: runs the chaos scenarios in the namespace lab and prints the summary table.
//! Exit status 1 when any invariant is violated in any scenario.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chaos_tests::faults::{self, Fault};
use chaos_tests::report;
use chaos_tests::suite::{self, Suite, SuiteOptions};
use clap::Parser;
use goproxy_lab::config::RaftTiming;
use goproxy_lab::procs::Binaries;

/// goproxy-chaos: named faults against a three-node goproxy-ha cluster in network namespaces,
/// a workload through the VIP, and one check per invariant after each heal.
#[derive(Debug, Parser)]
#[command(name = "goproxy-chaos", version, about)]
struct Cli {
    /// Seed for the corpus, the workload and every target choice [default: random, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Scenarios to run, comma-separated (default: all). Names: kill-9-leader-xN,
    /// kill-9-follower, power-loss-leader, sigstop-leader, isolate-leader, asymmetric-leader,
    /// lossy-node, full-restart, rolling-restart, disk-full-follower, disk-full-leader,
    /// upstream-outage, wipe-rejoin, drill.
    #[arg(long, value_delimiter = ',', value_parser = parse_fault)]
    scenarios: Vec<Fault>,
    /// Run the smoke subset that `make test` runs.
    #[arg(long, conflicts_with = "scenarios")]
    smoke: bool,
    /// Namespace prefix.
    #[arg(long, default_value = "gpch")]
    tag: String,
    /// Work directory (removed and recreated).
    #[arg(long, default_value = "/tmp/goproxy-chaos")]
    dir: PathBuf,
    /// The real module tree copied into the upstream [default: shared/testdata beside the
    /// workspace].
    #[arg(long, env = "GOPROXY_HA_CORPUS")]
    corpus: Option<PathBuf>,
    /// Generated modules (each with --versions versions) added to the corpus.
    #[arg(long, default_value_t = 80)]
    modules: usize,
    /// Versions per generated module.
    #[arg(long, default_value_t = 30)]
    versions: usize,
    /// Raft timing: default, fast, or HEARTBEAT/MIN-MAX.
    #[arg(long, default_value = "default", value_parser = RaftTiming::parse)]
    timing: RaftTiming,
    /// Client threads of the workload.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Pause between one worker's requests.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pace: Duration,
    /// Workload time before each fault and after each heal.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    calm: Duration,
    /// How long each fault is held.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// Bound on convergence after heal.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    converge_bound: Duration,
    /// Skip the real `go` build through the VIP after each heal.
    #[arg(long)]
    no_go_builds: bool,
}

fn parse_fault(name: &str) -> Result<Fault, String> {
    Fault::by_name(name).ok_or_else(|| format!("unknown scenario {name:?}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let seed = cli.seed.unwrap_or_else(rand::random);
    let scenarios: Vec<Fault> = if cli.smoke {
        chaos_tests::SMOKE.to_vec()
    } else if cli.scenarios.is_empty() {
        faults::ALL.to_vec()
    } else {
        cli.scenarios.clone()
    };
    println!(
        "chaos: seed {seed} (replay: goproxy-chaos --seed {seed}); {} scenarios",
        scenarios.len()
    );
    let options = SuiteOptions {
        tag: cli.tag,
        dir: cli.dir,
        corpus: match cli.corpus {
            Some(dir) => dir,
            None => match goproxy_testkit::corpus::try_dir() {
                Ok(dir) => dir,
                Err(e) => {
                    eprintln!("goproxy-chaos: {e:#}");
                    return ExitCode::FAILURE;
                }
            },
        },
        seed,
        modules: cli.modules,
        versions: cli.versions,
        timing: cli.timing,
        workers: cli.workers,
        pace: cli.pace,
        calm: cli.calm,
        hold: cli.hold,
        converge_bound: cli.converge_bound,
        go_builds: !cli.no_go_builds,
    };
    match run(options, &scenarios, seed) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("goproxy-chaos (seed {seed}): {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: SuiteOptions, scenarios: &[Fault], seed: u64) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut suite = Suite::start(Binaries::beside_current_exe()?, options)?;
    let mut outcomes = Vec::new();
    for &fault in scenarios {
        let begun = Instant::now();
        let outcome = match suite.scenario(fault) {
            Ok(outcome) => outcome,
            Err(e) => {
                drop(suite);
                println!("\n{}", report::render(seed, &outcomes));
                return Err(e);
            }
        };
        println!(
            "chaos: {} done in {:.0}s: {}",
            outcome.name,
            begun.elapsed().as_secs_f64(),
            if outcome.passed() {
                "every invariant holds"
            } else {
                "VIOLATED"
            }
        );
        outcomes.push(outcome);
    }
    drop(suite);
    println!(
        "\n{}\nchaos: {} scenarios in {:.0}s",
        report::render(seed, &outcomes),
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(suite::require_all_passed(&outcomes).is_ok())
}
