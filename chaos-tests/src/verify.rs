//! After heal: wait for convergence (invariant 4), read every acknowledged artifact back
//! through the VIP and from every node's own cache (the reads invariant 1 judges), and build a
//! real Go program through the VIP.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt};
use goproxy_lab::config::HTTP_PORT;
use goproxy_lab::holders::HolderSampler;
use goproxy_lab::lab::{Lab, NODES};
use goproxy_lab::topology::{node_ip, VIP};
use sha2::{Digest, Sha256};

use crate::invariants::ServedCheck;

/// Concurrent read-back requests.
const READ_BACK_CONCURRENCY: usize = 8;

/// Whether the cluster has converged: every node answers, follows one leader, has applied the
/// leader's whole log (so holds the same index), replication is in sync with no backlog,
/// every blob in `blobs` (sha256 of acknowledged bodies) is on every node's disk, and the
/// leader alone holds the VIP. The error says what is still off.
pub fn converged(lab: &Lab, sampler: &HolderSampler, blobs: &[&str]) -> anyhow::Result<()> {
    let missing = missing_blobs(lab, blobs);
    if let Some((node, sha)) = missing.first() {
        bail!(
            "{} blob(s) missing, e.g. {sha} on node {node}",
            missing.len()
        );
    }
    let leader = lab.healthy_leader()?;
    let holder = sampler.latest().and_then(|s| s.single());
    if holder != Some(leader) {
        bail!("VIP holder {holder:?}, leader {leader}");
    }
    Ok(())
}

/// The blobs of `blobs` that some node does not hold: (node, sha256).
pub fn missing_blobs<'a>(lab: &Lab, blobs: &[&'a str]) -> Vec<(usize, &'a str)> {
    let mut missing = Vec::new();
    for i in 1..=NODES {
        let store = lab.data_dir(i).join("blobs").join("sha256");
        for sha in blobs {
            if !store.join(&sha[..2.min(sha.len())]).join(sha).is_file() {
                missing.push((i, *sha));
            }
        }
    }
    missing
}

/// Reads every path in `acked` through the VIP and from each node with
/// `Disable-Module-Fetch: true` (so a node can only answer from what the cluster holds).
pub fn read_back(lab: &Lab, acked: &BTreeMap<String, String>) -> anyhow::Result<Vec<ServedCheck>> {
    let mut targets = vec![("VIP".to_string(), VIP)];
    targets.extend((1..=NODES).map(|i| (format!("node {i}"), node_ip(i))));
    let mut jobs = Vec::new();
    for (via, ip) in &targets {
        for path in acked.keys() {
            jobs.push((
                via.clone(),
                format!("http://{ip}:{HTTP_PORT}{path}"),
                path.clone(),
            ));
        }
    }
    lab.topology().client().block_on(move || async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let checks = stream::iter(jobs)
            .map(|(via, url, path)| {
                let http = http.clone();
                async move {
                    let got = fetch(&http, &url).await;
                    ServedCheck { via, path, got }
                }
            })
            .buffer_unordered(READ_BACK_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        Ok(checks)
    })
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = http
        .get(url)
        .header("Disable-Module-Fetch", "true")
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("body failed: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    Ok(hex::encode(Sha256::digest(&body)))
}

const MAIN_GO: &str = "package main\n\nimport \"github.com/gin-gonic/gin\"\n\nfunc main() {\n\tr := gin.New()\n\t_ = r\n}\n";

/// Builds a gin program with the real `go` command in the client namespace, through the VIP,
/// with an empty module cache (every module comes from the proxy). `cache` keeps the compile
/// cache between builds.
pub fn go_build(lab: &Lab, work: &Path, cache: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(work);
    let app = work.join("app");
    std::fs::create_dir_all(&app)?;
    std::fs::write(app.join("go.mod"), "module example.com/app\n\ngo 1.19\n")?;
    std::fs::write(app.join("main.go"), MAIN_GO)?;
    let modcache = work.join("modcache");
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let output = lab
            .topology()
            .client()
            .command("timeout")
            .arg("300")
            .arg("go")
            .args(args)
            .current_dir(&app)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", work)
            .env("GOPATH", work.join("gopath"))
            .env("GOMODCACHE", &modcache)
            .env("GOCACHE", cache)
            .env("GOPROXY", format!("http://{VIP}:{HTTP_PORT}"))
            .env("GOSUMDB", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .env("CGO_ENABLED", "0")
            .output()
            .context("running go (apt-get install golang-go)")?;
        if !output.status.success() {
            bail!(
                "go {args:?}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    };
    run(&["get", "github.com/gin-gonic/gin@v1.8.1"])?;
    run(&["build", "-o", "app", "."])?;
    let _ = run(&["clean", "-modcache"]);
    Ok(started.elapsed())
}
