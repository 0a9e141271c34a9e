//! `goproxy-lab`: bring the namespace lab up or down, run the failover benchmark, or (inside
//! the lab) serve the upstream corpus.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use goproxy_lab::bench::{self, BenchOptions, PROBE_PATH};
use goproxy_lab::config::{RaftTiming, HTTP_PORT};
use goproxy_lab::lab::Lab;
use goproxy_lab::procs::Binaries;
use goproxy_lab::topology::{self, node_ip, VIP};
use goproxy_lab::{netns, report};

/// goproxy-lab: a three-node goproxy-ha cluster in network namespaces, with a client, an
/// upstream and a VIP on one bridge.
#[derive(Debug, Parser)]
#[command(name = "goproxy-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the lab, start the cluster, wait until it serves through the VIP, and leave it
    /// running (remove it with `goproxy-lab down`).
    Up {
        #[command(flatten)]
        lab: LabArgs,
        /// Raft timing: `default` (50ms/150ms-300ms), `fast` (15ms/65ms-130ms) or
        /// HEARTBEAT/MIN-MAX. The election maximum is also the VIP lease.
        #[arg(long, default_value = "default", value_parser = parse_timing)]
        timing: RaftTiming,
    },
    /// Delete every namespace of the lab (and every process in them).
    Down {
        /// Namespace prefix.
        #[arg(long, default_value = "gplab")]
        tag: String,
    },
    /// Kill the VIP holder again and again (power loss, crash, partition, SIGSTOP) while a
    /// client probes the VIP; then the same with keepalived; print outages and ratios.
    FailoverBench {
        #[command(flatten)]
        lab: LabArgs,
        /// Raft timing profiles to measure, in turn (comma-separated): `default`
        /// (50ms/150ms-300ms), `fast` (15ms/65ms-130ms) or HEARTBEAT/MIN-MAX.
        #[arg(long, default_value = "default,fast", value_delimiter = ',', value_parser = parse_timing)]
        timing: Vec<RaftTiming>,
        /// Power-loss and crash rounds per model.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        /// Partition and SIGSTOP rounds.
        #[arg(long, default_value_t = 5)]
        fencing_rounds: usize,
        /// Time between client requests through the VIP.
        #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
        probe_interval: Duration,
        /// Time between samples of which node holds the VIP.
        #[arg(long, default_value = "5ms", value_parser = humantime::parse_duration)]
        sample_period: Duration,
        /// Only goproxy-ha (no keepalived comparison).
        #[arg(long)]
        skip_keepalived: bool,
    },
    /// Internal: serve a directory over HTTP (the lab's upstream).
    #[command(hide = true)]
    ServeDir {
        /// Address to listen on.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// Directory to serve.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
struct LabArgs {
    /// Namespace prefix ({tag}-sw, {tag}-n1…n3, {tag}-cl).
    #[arg(long, default_value = "gplab")]
    tag: String,
    /// Directory for configs, data and logs.
    #[arg(long, default_value = "/tmp/goproxy-lab")]
    dir: PathBuf,
    /// Module tree the upstream serves.
    /// The module tree the upstream serves [default: shared/testdata beside the workspace].
    #[arg(long, env = "GOPROXY_HA_CORPUS")]
    corpus: Option<PathBuf>,
}

fn parse_timing(text: &str) -> Result<RaftTiming, String> {
    RaftTiming::parse(text)
}

impl LabArgs {
    fn corpus(&self) -> anyhow::Result<PathBuf> {
        match &self.corpus {
            Some(dir) => std::fs::canonicalize(dir)
                .map_err(|e| anyhow::anyhow!("corpus {}: {e}", dir.display())),
            None => goproxy_testkit::corpus::try_dir(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up { lab, timing } => up(&lab, timing),
        Command::Down { tag } => {
            let removed = topology::teardown(&tag);
            println!("removed {removed} namespaces of lab {tag}");
            Ok(true)
        }
        Command::FailoverBench {
            lab,
            timing,
            rounds,
            fencing_rounds,
            probe_interval,
            sample_period,
            skip_keepalived,
        } => lab.corpus().and_then(|corpus| {
            failover_bench(&BenchOptions {
                tag: lab.tag.clone(),
                dir: lab.dir.clone(),
                corpus,
                timings: timing,
                rounds,
                fencing_rounds,
                probe_interval,
                sample_period,
                skip_keepalived,
            })
        }),
        Command::ServeDir { listen, dir } => serve_dir(listen, dir).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("goproxy-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn require_root() -> anyhow::Result<()> {
    anyhow::ensure!(netns::is_root(), "the lab needs root (network namespaces)");
    Ok(())
}

fn up(args: &LabArgs, timing: RaftTiming) -> anyhow::Result<bool> {
    require_root()?;
    let lab = Lab::start(
        &args.tag,
        &args.dir,
        Binaries::beside_current_exe()?,
        &args.corpus()?,
        timing,
    )?;
    let leader = lab.wait(
        "a healthy leader",
        Duration::from_secs(60),
        Lab::healthy_leader,
    )?;
    let leader_ns = lab.topology().node(leader).clone();
    lab.wait(
        "the leader to hold the VIP",
        Duration::from_secs(10),
        |_| {
            let addresses = leader_ns.ip_output(&["-o", "addr", "show", "dev", "eth0"])?;
            anyhow::ensure!(addresses.contains(&format!(" {VIP}/")), "not yet");
            Ok(())
        },
    )?;
    bench::warm(&lab)?;
    let client = lab.topology().client().name().to_string();
    println!(
        "lab {tag} is up: node {leader} leads and holds the VIP {VIP}\n\
         nodes: {} {} {} (namespaces {tag}-n1..n3), client namespace {client}\n\
         try:   ip netns exec {client} curl -s http://{VIP}:{HTTP_PORT}{PROBE_PATH}\n\
         status: ip netns exec {client} curl -s http://{}:{HTTP_PORT}/cluster/status\n\
         admin: {admin} (for goproxy-ha cluster … / drill)\n\
         logs:  {}\n\
         down:  make lab-down (or goproxy-lab down --tag {tag})",
        node_ip(1),
        node_ip(2),
        node_ip(3),
        node_ip(1),
        args.dir.display(),
        tag = args.tag,
        admin = goproxy_lab::certs::admin_env(&args.dir.join("tls"))
            .iter()
            .map(|(var, path)| format!("{var}={}", path.display()))
            .collect::<Vec<_>>()
            .join(" "),
    );
    lab.keep_running();
    Ok(true)
}

fn failover_bench(options: &BenchOptions) -> anyhow::Result<bool> {
    require_root()?;
    let binaries = Binaries::beside_current_exe()?;
    println!(
        "failover-bench: lab {} in {}; {} power-loss and crash rounds, {} partition and SIGSTOP rounds",
        options.tag,
        options.dir.display(),
        options.rounds,
        options.fencing_rounds
    );
    let series = bench::run(binaries, options);
    topology::teardown(&options.tag);
    let series = series?;
    println!("\n{}", report::render(&series));
    let violations = report::fencing_violations(&series);
    for violation in &violations {
        println!("FENCING VIOLATION: {violation}");
    }
    Ok(violations.is_empty())
}

fn serve_dir(listen: std::net::SocketAddr, dir: PathBuf) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let app = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir));
        let listener = tokio::net::TcpListener::bind(listen).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}
