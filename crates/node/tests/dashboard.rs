//! `/ui` of a real three-node cluster in headless Chromium (Debian's `chromium`): the page a
//! follower serves shows three members and the leader; after the leader is killed, the page
//! a survivor serves shows the new leader and the dead member as unreachable. Screenshots are
//! written to `$CARGO_TARGET_TMPDIR/cluster-dashboard-*.png`.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use goproxy_testkit::chromium::{Chromium, DESKTOP};
use goproxy_testkit::dom::{by_id, with_attr};
use support::cluster::{admin_env, agreed_leader, goproxy_ha, raft_of, three_nodes, SETTLE};
use support::{client, corpus_dir, HttpServer, Node};

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cluster-dashboard-{name}.png"))
}

/// Loads `url` until the page shows `leader` (a page may be loaded mid-election), within
/// [`SETTLE`]; returns its DOM.
async fn page_with_leader(chromium: &Chromium, url: &str, leader: u64) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        let page = chromium.load(url).await;
        let shown = by_id(&page.dom, "leader")
            .attr("data-leader")
            .map(str::to_string);
        if shown.as_deref() == Some(leader.to_string().as_str()) {
            assert!(page.console.is_empty(), "console: {:?}", page.console);
            return page.dom;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never showed leader {leader}: {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_cluster_and_follows_a_leader_kill() {
    let chromium = Chromium::find();
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: BTreeMap<u64, Node> = three_nodes(dir.path(), &upstream.url);
    let leader = agreed_leader(&nodes).await;
    let follower = *nodes.keys().find(|id| **id != leader).unwrap();
    // Some traffic: fills (through a follower, forwarded) and a refusal.
    for path in [
        "example.com/hello/@v/v1.1.0.zip",
        "gopkg.in/yaml.v3/@v/v3.0.1.zip",
    ] {
        let answer = client()
            .get(nodes[&follower].url(path))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{path}");
    }
    // A finished prefetch job and a block rule, as an operator would have them.
    let warm = std::process::Command::new(env!("CARGO_BIN_EXE_goproxy-ha"))
        .args(["warm", "--node", &nodes[&follower].http, "--no-deps"])
        .args([
            "--description",
            "release 1.2 dependencies",
            "example.com/hello@v1.0.0",
        ])
        .output()
        .unwrap();
    assert!(
        warm.status.success(),
        "{}",
        String::from_utf8_lossy(&warm.stderr)
    );
    let raft = raft_of(dir.path(), 1);
    let block = goproxy_ha(
        &admin_env(dir.path()),
        &[
            "block",
            "--via",
            &raft,
            "example.com/hello@<v1.0.0",
            "--reason",
            "CVE-2026-0001",
        ],
    );
    assert!(
        block.status.success(),
        "{}",
        String::from_utf8_lossy(&block.stderr)
    );
    let url = nodes[&follower].url("ui");
    let dom = page_with_leader(&chromium, &url, leader).await;
    let jobs = with_attr(&dom, "data-job-id", None);
    assert_eq!(jobs.len(), 1, "the job is shown");
    assert_eq!(jobs[0].attr("data-state"), Some("done"));
    assert!(
        jobs[0].text().contains("release 1.2 dependencies"),
        "{}",
        jobs[0].text()
    );
    assert_eq!(
        with_attr(&dom, "data-rule", Some("example.com/hello@<v1.0.0")).len(),
        1,
        "the block rule is shown"
    );
    let cards = with_attr(&dom, "data-member-id", None);
    assert_eq!(cards.len(), 3, "three members");
    assert!(cards
        .iter()
        .all(|c| c.attr("data-reachable") == Some("true")));
    let roles: Vec<&str> = cards.iter().filter_map(|c| c.attr("data-role")).collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "leader").count(),
        1,
        "{roles:?}"
    );
    assert_eq!(
        by_id(&dom, "answered-by").attr("data-node-id"),
        Some(follower.to_string().as_str())
    );
    assert!(
        !with_attr(&dom, "data-outcome", Some("forwarded")).is_empty(),
        "recent fills shown"
    );
    let png = screenshot_path("healthy");
    chromium.screenshot(&url, &png, DESKTOP).await;
    eprintln!("screenshot: {}", png.display());

    nodes.get_mut(&leader).unwrap().kill9();
    let survivors: BTreeMap<u64, Node> =
        nodes.into_iter().filter(|(id, _)| *id != leader).collect();
    let next = agreed_leader(&survivors).await;
    let survivor = *survivors.keys().find(|id| **id != next).unwrap_or(&next);
    let url = survivors[&survivor].url("ui");
    let dom = page_with_leader(&chromium, &url, next).await;
    let dead = with_attr(&dom, "data-member-id", Some(leader.to_string().as_str()));
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].attr("data-reachable"),
        Some("false"),
        "the killed leader is unreachable"
    );
    let png = screenshot_path("after-leader-kill");
    chromium.screenshot(&url, &png, DESKTOP).await;
    eprintln!("screenshot: {}", png.display());
}
