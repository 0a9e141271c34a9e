//! `goproxy-scale`: generate synthetic indexes of growing size and print the curve of what
//! a `goproxy-ha` node does with them (see the library's documentation).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The scale test of `make scale`.
#[derive(Debug, Parser)]
#[command(name = "goproxy-scale", about)]
struct Args {
    /// The goproxy-ha binary under test [default: next to this one].
    #[arg(long, value_name = "PATH")]
    goproxy_ha: Option<PathBuf>,
    /// Index sizes (entries), ascending, comma-separated.
    #[arg(
        long,
        env = "SCALE_LEVELS",
        value_delimiter = ',',
        default_value = "10000,100000,1000000"
    )]
    levels: Vec<u64>,
    /// /cluster/status requests timed per level.
    #[arg(long, default_value_t = 200)]
    status_requests: usize,
    /// Cache hits timed per level.
    #[arg(long, default_value_t = 2000)]
    hit_requests: usize,
    /// [raft] snapshot_chunk_bytes for the nodes, if the binary has that setting.
    #[arg(long)]
    snapshot_chunk_bytes: Option<u64>,
    /// Where the run's temporary directory goes [default: the system's temporary directory].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Keep the run's directory (data, configurations, node logs).
    #[arg(long)]
    keep: bool,
    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Interrupted, the run is dropped: its nodes are killed and its directory removed,
    // even with --keep (a partial run is not worth keeping).
    let interrupted = async {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            _ => std::future::pending().await,
        }
    };
    tokio::select! {
        outcome = run(args) => match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("goproxy-scale: {e:#}");
                ExitCode::FAILURE
            }
        },
        signal = interrupted => {
            eprintln!("goproxy-scale: {signal}: stopping the nodes and removing the run's directory");
            ExitCode::from(130)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let binary = match args.goproxy_ha {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("goproxy-ha"),
    };
    let mut options = goproxy_scale::Options::new(binary);
    options.levels = args.levels;
    options.status_requests = args.status_requests;
    options.hit_requests = args.hit_requests;
    options.snapshot_chunk_bytes = args.snapshot_chunk_bytes;
    options.work_dir = args.work_dir;
    options.keep = args.keep;
    let levels = goproxy_scale::run(&options, |level| {
        eprint!("{}", goproxy_scale::table(std::slice::from_ref(level)));
    })
    .await?;
    print!("{}", goproxy_scale::table(&levels));
    if let Some(path) = args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&levels)?)?;
    }
    Ok(())
}
