//! `make bench`: measures goproxy-ha against nginx serving the same files in the same run,
//! and against goproxy.cn's engine (`engine`) when it is built.
//!
//! nginx serves the corpus directory as a static GOPROXY tree and is also goproxy-ha's
//! upstream. After warming goproxy-ha's cache, `wrk` loads each server in turn with the
//! same request at 64 and 256 connections; the report prints requests/s and p50/p99
//! latency for both, their ratios, and goproxy-ha's peak RSS; then goproxy-ha beside the
//! engine, both cold (`engine-rows`: `go mod download all` of the corpus graph, upstream
//! requests for concurrent misses of one zip, with the hits' ratios); then the cluster figures
//! (`cluster`: fill latency 3-node vs single, hit throughput per node), the cost of checksum
//! verification on cold fills (`verify`), hits with client access control (HTTPS, tokens,
//! audit) on vs off (`secure`), and index commits vs etcd. Nothing here asserts an
//! absolute time: the machine is shared, so only same-run ratios are meaningful.

mod cluster;
mod commit;
mod engine;
mod engine_rows;
mod etcd;
mod gomod;
mod misses;
mod procs;
mod secure;
mod verify;
mod wrk;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::procs::{free_port, Nginx, ProxyNode};
use crate::wrk::{run_wrk, WrkResult};

/// The artifacts measured, one per size class a module proxy serves: `.info` and `.mod` of
/// a few hundred bytes, zips of ~10 KiB, ~100 KiB, ~1 MiB and ~8 MiB (from the corpus).
const CASES: &[(&str, &str)] = &[
    ("info", "example.com/hello/@v/v1.1.0.info"),
    ("mod", "github.com/gin-gonic/gin/@v/v1.8.1.mod"),
    ("zip 10 KiB", "github.com/leodido/go-urn/@v/v1.2.1.zip"),
    ("zip 98 KiB", "gopkg.in/yaml.v3/@v/v3.0.1.zip"),
    ("zip 1.1 MiB", "google.golang.org/protobuf/@v/v1.28.1.zip"),
    ("zip 8.1 MiB", "golang.org/x/text/@v/v0.7.0.zip"),
];
/// Connection counts from the issue.
const CONNECTIONS: &[u32] = &[64, 256];

fn main() -> anyhow::Result<()> {
    let corpus = corpus_dir()?;
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let duration = Duration::from_secs(seconds);
    let work = tempfile::tempdir()?;
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only == "commit" {
        return commit_throughput(work.path(), duration);
    }
    let nginx = Nginx::start(&corpus, work.path(), free_port()?)?;
    if only == "verify" {
        return verify::run(&corpus, work.path(), &nginx.url);
    }
    if only == "secure" {
        return secure::run(work.path(), &nginx.url, duration);
    }
    if only == "engine-rows" {
        return engine_rows::run(&corpus, work.path(), &nginx.url, &[]);
    }
    if only == "cluster" {
        return cluster::run(&corpus, work.path(), &nginx.url, duration);
    }
    let hits = hits_table(work.path(), &nginx.url, duration)?;
    if only == "hits" {
        return Ok(());
    }
    engine_rows::run(&corpus, work.path(), &nginx.url, &hits)?;
    cluster::run(&corpus, work.path(), &nginx.url, duration)?;
    verify::run(&corpus, work.path(), &nginx.url)?;
    secure::run(work.path(), &nginx.url, duration)?;
    commit_throughput(work.path(), duration)
}

/// The hits table: every size class at every connection count, goproxy-ha (warm) against
/// nginx and the engine (warm) when built; returns the rows measured beside the engine.
fn hits_table(
    work: &std::path::Path,
    upstream: &str,
    duration: Duration,
) -> anyhow::Result<Vec<engine_rows::HitRow>> {
    let seconds = duration.as_secs();
    let node = ProxyNode::start(work, upstream)?;
    for (_, path) in CASES {
        node.warm(path).with_context(|| format!("warming {path}"))?;
    }
    // goproxy.cn's engine over the same upstream, when it is built.
    let engine = match engine::binary() {
        Some(binary) => {
            let engine = engine::Engine::start(&binary, work, upstream)?;
            for (_, path) in CASES {
                engine.warm(path)?;
            }
            Some(engine)
        }
        None => {
            println!(
                "goproxy.cn's engine is not built ({} missing): build it with \
                 `bash ../shared/anchors/goproxy_build.sh GITDIR` to measure beside it\n",
                engine::ANCHOR_BINARY
            );
            None
        }
    };
    println!("cache hits: goproxy-ha vs nginx (and goproxy.cn's engine), same files, same run, wrk -d {seconds}s\n");
    println!(
        "{:<12} {:>5} | {:>9} {:>9} {:>6} {:>9} {:>6} | {:>8} {:>8} | {:>8} {:>8} {:>8}",
        "artifact",
        "conns",
        "rps ours",
        "nginx",
        "ratio",
        "engine",
        "ratio",
        "p50 ours",
        "p50 ng",
        "p99 ours",
        "p99 ng",
        "p99 eng"
    );
    let mut rows = Vec::new();
    for (name, path) in CASES {
        for &conns in CONNECTIONS {
            let theirs = run_wrk(&format!("{upstream}/{path}"), conns, duration)?;
            let ours = run_wrk(&format!("{}/{path}", node.url), conns, duration)?;
            let engine = match &engine {
                Some(engine) => Some(run_wrk(&format!("{}/{path}", engine.url), conns, duration)?),
                None => None,
            };
            print_row(name, conns, &ours, &theirs, engine.as_ref());
            if let Some(engine) = engine {
                rows.push((
                    name.to_string(),
                    conns,
                    ours.requests_per_sec,
                    engine.requests_per_sec,
                ));
            }
        }
    }
    println!(
        "\npeak RSS of goproxy-ha: {:.1} MiB",
        node.peak_rss_kib()? as f64 / 1024.0
    );
    Ok(rows)
}

/// Index commits/s of a 3-node group next to etcd 3.4 puts/s, same writers, same run.
fn commit_throughput(work: &std::path::Path, duration: Duration) -> anyhow::Result<()> {
    let ours =
        tokio::runtime::Runtime::new()?.block_on(commit::index_commits_per_sec(work, duration))?;
    let etcd = etcd::Etcd::start(work)?;
    let theirs = etcd.puts_per_sec(duration, commit::writers())?;
    println!(
        "\nindex commit throughput, 3 members on loopback, {} writers: goproxy-ha {:.0} entries/s, etcd {:.0} puts/s, ratio {:.2}x",
        commit::writers(),
        ours,
        theirs,
        ours / theirs.max(f64::MIN_POSITIVE)
    );
    Ok(())
}

fn print_row(
    name: &str,
    conns: u32,
    ours: &WrkResult,
    nginx: &WrkResult,
    engine: Option<&WrkResult>,
) {
    let ratio =
        |other: &WrkResult| ours.requests_per_sec / other.requests_per_sec.max(f64::MIN_POSITIVE);
    let (engine_rps, engine_ratio, engine_p99) = match engine {
        Some(engine) => (
            format!("{:.0}", engine.requests_per_sec),
            format!("{:.2}x", ratio(engine)),
            fmt_ms(engine.p99),
        ),
        None => ("-".into(), "-".into(), "-".into()),
    };
    println!(
        "{:<12} {:>5} | {:>9.0} {:>9.0} {:>5.2}x {:>9} {:>6} | {:>8} {:>8} | {:>8} {:>8} {:>8}",
        name,
        conns,
        ours.requests_per_sec,
        nginx.requests_per_sec,
        ratio(nginx),
        engine_rps,
        engine_ratio,
        fmt_ms(ours.p50),
        fmt_ms(nginx.p50),
        fmt_ms(ours.p99),
        fmt_ms(nginx.p99),
        engine_p99,
    );
}

pub(crate) fn fmt_ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

fn corpus_dir() -> anyhow::Result<PathBuf> {
    goproxy_testkit::corpus::try_dir()
}
