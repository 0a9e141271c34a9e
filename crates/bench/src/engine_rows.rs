//! goproxy-ha beside goproxy.cn's engine (`BENCH_ONLY=engine-rows`), both cold over the same
//! upstream (nginx over the corpus): the cold `go mod download all` of the corpus graph, and
//! the requests that reach the upstream when many clients miss one zip at once; with the
//! hit throughput of the hits table when it ran. Without the engine, goproxy-ha's figures
//! are printed alone and the report says why.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cluster::{corpus_zips, median};
use crate::engine::{self, Engine};
use crate::misses::{self, Burst};
use crate::procs::{free_port, Nginx, ProxyNode};
use crate::{fmt_ms, gomod};

/// Fresh caches per round; the go command's own time varies from run to run.
const ROUNDS: usize = 5;
/// Concurrent clients missing one zip (from the issue).
const MISSERS: usize = 32;
/// The zip they all miss: 1.1 MiB, so a fill takes long enough for every miss to overlap it.
const MISSED_ZIP: &str = "google.golang.org/protobuf/@v/v1.28.1.zip";
/// How long the upstream's access log must stay unchanged before it is counted (a proxy may
/// still be fetching after it answered).
const LOG_QUIET: Duration = Duration::from_millis(500);

/// One hit measurement of the hits table: artifact, connections, goproxy-ha's and the
/// engine's requests/s.
pub type HitRow = (String, u32, f64, f64);

/// The proxies compared: goproxy-ha, and the engine when it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proxy {
    Ours,
    Engine,
}

/// A cold proxy over `upstream` with its data in `dir`; dropped to stop it.
enum Running {
    Ours(ProxyNode),
    Engine(Engine),
}

impl Running {
    fn start(proxy: Proxy, dir: &Path, upstream: &str) -> anyhow::Result<Self> {
        Ok(match proxy {
            Proxy::Ours => {
                let node = ProxyNode::start_with(
                    &dir.join("node"),
                    upstream,
                    &["--verify-fills", "false"],
                )?;
                node.wait_ready()?;
                Running::Ours(node)
            }
            Proxy::Engine => {
                let binary = engine::binary().ok_or_else(|| anyhow::anyhow!("no engine"))?;
                Running::Engine(Engine::start_in(&binary, &dir.join("cache"), upstream)?)
            }
        })
    }

    fn url(&self) -> &str {
        match self {
            Running::Ours(node) => &node.url,
            Running::Engine(engine) => &engine.url,
        }
    }
}

/// Measures and prints the rows; `hits` are the hits table's figures when it ran.
pub fn run(corpus: &Path, work: &Path, upstream: &str, hits: &[HitRow]) -> anyhow::Result<()> {
    let mut proxies = vec![Proxy::Ours];
    if engine::binary().is_some() {
        proxies.push(Proxy::Engine);
    } else {
        println!(
            "\ngoproxy.cn's engine is not built ({} missing): goproxy-ha's rows alone",
            engine::ANCHOR_BINARY
        );
    }
    let downloads = if gomod::available() {
        Some(download_rounds(work, upstream, &proxies)?)
    } else {
        println!("\nthe go command is missing (apt-get install golang-go): no go mod download row");
        None
    };
    let mut bursts = Vec::new();
    for &proxy in &proxies {
        bursts.push(miss_burst(corpus, work, proxy)?);
    }
    print_table(hits, downloads.as_ref(), &bursts);
    Ok(())
}

/// Cold download times: direct from the upstream, then each proxy, median over rounds.
struct Downloads {
    modules: usize,
    direct: Vec<Duration>,
    proxies: Vec<Vec<Duration>>,
}

/// Interleaved rounds, the order rotated each round so none always meets a colder machine.
fn download_rounds(work: &Path, upstream: &str, proxies: &[Proxy]) -> anyhow::Result<Downloads> {
    let mut out = Downloads {
        modules: 0,
        direct: Vec::new(),
        proxies: vec![Vec::new(); proxies.len()],
    };
    let slots = proxies.len() + 1;
    for round in 0..ROUNDS {
        for k in 0..slots {
            let slot = (round + k) % slots;
            let dir = work.join(format!("gomod-{round}-{slot}"));
            if slot == 0 {
                out.direct.push(gomod::download_all(&dir, upstream)?);
                let cached = dir.join("modcache").join("cache").join("download");
                out.modules = corpus_zips(&cached)?.len();
            } else {
                let running = Running::start(proxies[slot - 1], &dir, upstream)?;
                out.proxies[slot - 1].push(gomod::download_all(&dir.join("go"), running.url())?);
            }
            std::fs::remove_dir_all(&dir)?;
        }
    }
    Ok(out)
}

/// What reached the upstream while [`MISSERS`] clients missed [`MISSED_ZIP`] at once.
struct MissCount {
    burst: Burst,
    zip_requests: usize,
    all_requests: usize,
}

/// A cold `proxy` over its own counting nginx; the burst, then the upstream's log.
fn miss_burst(corpus: &Path, work: &Path, proxy: Proxy) -> anyhow::Result<MissCount> {
    let dir = work.join(format!("misses-{proxy:?}"));
    let upstream_dir = dir.join("upstream");
    std::fs::create_dir_all(&upstream_dir)?;
    let upstream = Nginx::start_logged(corpus, &upstream_dir, free_port()?)?;
    let running = Running::start(proxy, &dir, &upstream.url)?;
    let burst = misses::burst(running.url(), MISSED_ZIP, MISSERS)?;
    let paths = quiet_log(&upstream_dir)?;
    Ok(MissCount {
        burst,
        zip_requests: paths.iter().filter(|p| p.as_str() == MISSED_ZIP).count(),
        all_requests: paths.len(),
    })
}

/// The access log's paths once it has not grown for [`LOG_QUIET`] (at most 10 s).
fn quiet_log(upstream_dir: &Path) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut paths = Nginx::logged_paths(upstream_dir)?;
    loop {
        std::thread::sleep(LOG_QUIET);
        let now = Nginx::logged_paths(upstream_dir)?;
        if now.len() == paths.len() || Instant::now() > deadline {
            return Ok(now);
        }
        paths = now;
    }
}

/// Lower is better for times and counts: the ratio is the engine's over goproxy-ha's, so
/// above 1 means goproxy-ha is ahead on every row.
fn ahead(ours: f64, engine: f64) -> String {
    format!("{:.2}x", engine / ours.max(f64::MIN_POSITIVE))
}

fn print_table(hits: &[HitRow], downloads: Option<&Downloads>, bursts: &[MissCount]) {
    let engine = bursts.len() > 1;
    println!(
        "\ngoproxy-ha vs goproxy.cn's engine, both cold over the same upstream (nginx over the corpus), same run; ratio > 1: goproxy-ha ahead\n"
    );
    println!(
        "{:<58} | {:>16} | {:>16} | {:>7}",
        "row", "goproxy-ha", "engine", "ratio"
    );
    let row = |name: &str, ours: String, theirs: Option<String>, ratio: Option<String>| {
        println!(
            "{:<58} | {:>16} | {:>16} | {:>7}",
            name,
            ours,
            theirs.unwrap_or_else(|| "-".into()),
            ratio.unwrap_or_else(|| "-".into())
        );
    };
    if !hits.is_empty() {
        let ratios: Vec<(f64, &HitRow)> = hits.iter().map(|h| (h.2 / h.3, h)).collect();
        let geomean = (ratios.iter().map(|r| r.0.ln()).sum::<f64>() / ratios.len() as f64).exp();
        let (min, worst) = ratios
            .iter()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|r| (r.0, r.1))
            .expect("hits is not empty");
        row(
            &format!(
                "(1) cache hits, {} cases, geomean of rps ratios",
                hits.len()
            ),
            "see hits table".into(),
            None,
            Some(format!("{geomean:.2}x")),
        );
        row(
            &format!("    lowest: {} at {} connections", worst.0, worst.1),
            format!("{:.0} rps", worst.2),
            Some(format!("{:.0} rps", worst.3)),
            Some(format!("{min:.2}x")),
        );
    }
    if let Some(d) = downloads {
        let direct = median(d.direct.clone()).as_secs_f64();
        let times: Vec<f64> = d
            .proxies
            .iter()
            .map(|p| median(p.clone()).as_secs_f64())
            .collect();
        let secs = |s: f64| format!("{s:.2}s");
        row(
            &format!(
                "(2) cold go mod download all, {} modules, median of {ROUNDS}",
                d.modules
            ),
            secs(times[0]),
            times.get(1).map(|&t| secs(t)),
            times.get(1).map(|&t| ahead(times[0], t)),
        );
        row(
            "    the same direct from the upstream, and x of it",
            format!("{} {:.2}x", secs(direct), times[0] / direct),
            times.get(1).map(|&t| format!("{:.2}x", t / direct)),
            None,
        );
        let rounds = |p: &[Duration]| {
            p.iter()
                .map(|t| format!("{:.2}", t.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "    rounds (s): direct {}; goproxy-ha {}{}",
            rounds(&d.direct),
            rounds(&d.proxies[0]),
            d.proxies
                .get(1)
                .map(|p| format!("; engine {}", rounds(p)))
                .unwrap_or_default()
        );
    }
    let count = |m: &MissCount| format!("{} zip, {} in all", m.zip_requests, m.all_requests);
    row(
        &format!("(3) upstream requests, {MISSERS} concurrent misses of one zip"),
        count(&bursts[0]),
        engine.then(|| count(&bursts[1])),
        engine.then(|| ahead(bursts[0].zip_requests as f64, bursts[1].zip_requests as f64)),
    );
    let answered = |m: &MissCount| {
        let failed = if m.burst.failed > 0 {
            format!(" ({} failed)", m.burst.failed)
        } else {
            String::new()
        };
        format!("{}{failed}", fmt_ms(m.burst.all_answered))
    };
    row(
        &format!("    until all {MISSERS} answered"),
        answered(&bursts[0]),
        engine.then(|| answered(&bursts[1])),
        engine.then(|| {
            ahead(
                bursts[0].burst.all_answered.as_secs_f64(),
                bursts[1].burst.all_answered.as_secs_f64(),
            )
        }),
    );
    println!("    the zip missed: {MISSED_ZIP}");
    for (m, name) in bursts.iter().zip(["goproxy-ha", "engine"]) {
        if let Some(e) = &m.burst.first_error {
            println!("    {name}: first failed miss: {e}");
        }
    }
}
