//! `goproxy-ha drill` against three processes on loopback: on a healthy cluster it hands
//! leadership to the most caught-up follower under a live probe and reports it; with a member
//! down, or asked to hand over to the leader itself, it refuses and says why.
//! (The namespace lab runs it through a real VIP: `crates/lab/tests/lab_smoke.rs`.)

mod support;

use std::process::Output;

use support::cluster::{admin_env, agreed_leader, status, three_nodes};
use support::{client, corpus_dir, HttpServer};

const PROBED: &str = "github.com/gin-gonic/gin/@v/v1.8.1.info";

fn drill(dir: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_goproxy-ha"))
        .arg("drill")
        .args(args)
        .envs(admin_env(dir))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_hands_over_under_a_probe_and_refuses_an_unhealthy_cluster() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(dir.path(), &upstream.url);
    let leader = agreed_leader(&nodes).await;
    let node = nodes[&leader].http.clone();
    let probe = nodes[&leader].url(PROBED);
    let response = client().get(&probe).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    // Handing over to the leader itself is refused before anything happens.
    let refused = drill(
        dir.path(),
        &[
            "--node",
            &node,
            "--probe",
            &probe,
            "--to",
            &leader.to_string(),
        ],
    );
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("refusing to drill"), "{stderr}");
    assert!(
        stderr.contains("cannot take over: it is Leader"),
        "{stderr}"
    );

    let out = drill(
        dir.path(),
        &[
            "--node", &node, "--probe", &probe, "--settle", "500ms", "--json",
        ],
    );
    assert!(
        out.status.success(),
        "drill failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    println!("{report}");
    let new = report["new_leader"].as_u64().unwrap();
    assert_eq!(report["old_leader"].as_u64(), Some(leader));
    assert_ne!(new, leader);
    assert!(report["vip_holder"].is_null(), "no VIP is configured");
    assert!(report["probes"].as_u64().unwrap() > 10, "{report}");
    assert!(report["outage_ms"].as_u64().is_some(), "{report}");
    let s = status(&nodes[&new]).await.unwrap();
    assert_eq!(s.state, goproxy_status::Role::Leader, "{s:?}");

    // One member down: the drill refuses and names it.
    let down = *nodes.keys().find(|id| **id != new).unwrap();
    nodes.get_mut(&down).unwrap().kill9();
    let node = nodes[&new].http.clone();
    let refused = drill(
        dir.path(),
        &["--node", &node, "--probe", &nodes[&new].url(PROBED)],
    );
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("refusing to drill"), "{stderr}");
    assert!(
        stderr.contains(&format!("node {down} (")) && stderr.contains("is unreachable"),
        "{stderr}"
    );
}
