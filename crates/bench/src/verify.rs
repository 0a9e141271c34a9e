//! The cost of checksum verification: cold fills of every corpus zip through a single node
//! with `verify_fills` on (against a real Go checksum database over the corpus, on loopback)
//! and off, interleaved over a few rounds on fresh nodes, same run.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use goproxy_testkit::sumdb_server::{http_get, SumdbServer};

use crate::cluster::{corpus_zips, fill_all, median};
use crate::procs::ProxyNode;

const NAME: &str = "sum.bench.example";
const ROUNDS: usize = 3;

/// Prints the median cold-fill latency with verification on and off, and their ratio.
pub fn run(corpus: &Path, work: &Path, upstream: &str) -> anyhow::Result<()> {
    let zips = corpus_zips(corpus)?;
    let db = SumdbServer::start(corpus, NAME, 11, 0)?;
    // The test database hashes a version the first time it is looked up (sum.golang.org has
    // done so long before): look every version up once, so rounds measure the proxy.
    for zip in &zips {
        let (module, version) = zip
            .trim_end_matches(".zip")
            .split_once("/@v/")
            .context("a corpus zip path")?;
        let (status, body) = http_get(&format!("{}/lookup/{module}@{version}", db.url))?;
        anyhow::ensure!(
            status == 200,
            "{module}@{version}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let config = work.join("verify.toml");
    std::fs::write(
        &config,
        format!(
            "[[proxy.sumdb]]\nname = \"{NAME}\"\nvkey = \"{}\"\nurl = \"{}\"\n",
            db.vkey, db.url
        ),
    )?;
    let mut samples: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let verify = if which == 0 { "true" } else { "false" };
            let config = config.to_string_lossy();
            let node = ProxyNode::start_with(
                &work.join(format!("verify-{verify}-{round}")),
                upstream,
                &["--config", &config, "--verify-fills", verify],
            )?;
            node.wait_ready()?;
            samples[which].push(fill_all(&node, &zips)?);
        }
    }
    let on = median(samples[0].clone()).as_secs_f64();
    let off = median(samples[1].clone()).as_secs_f64();
    let rounds = |s: &[Duration]| {
        s.iter()
            .map(|d| format!("{:.2}", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "\ncold fill, {} zips each a miss (.mod + .zip), single node: checksum verification on {:.2}ms, off {:.2}ms, ratio {:.2}x (goal < 1.2x; rounds on {} ms, off {} ms)",
        zips.len(),
        on * 1e3,
        off * 1e3,
        on / off.max(f64::MIN_POSITIVE),
        rounds(&samples[0]),
        rounds(&samples[1]),
    );
    Ok(())
}
