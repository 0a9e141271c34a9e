//! The checksum database through the node (issue 12), against a real Go checksum database
//! over the corpus (golang.org/x/mod/sumdb, Debian's golang-golang-x-mod-dev):
//! - the real go client with GOSUMDB naming the test database (no URL, so it asks the
//!   proxy) builds gin through a node that verified every fill; again with the database
//!   stopped and a fresh client (the cluster kept the lookups and tiles);
//! - a database presenting a forked history is refused, in the log, metrics and status;
//! - in three nodes, an upstream serving altered bytes is refused and cached on no node, and
//!   what one node verified is served by the others after the leader dies and the database
//!   stops.

mod support;

use std::path::Path;

use support::cluster::{agreed_leader, status, three_nodes_configured};
use support::go::{app, go_with};
use support::{cache_only, client, corpus_dir, HttpServer, Node};

const NAME: &str = "sum.test.example";

const GIN_APP: &str =
    "package main\n\nimport \"github.com/gin-gonic/gin\"\n\nfunc main() { _ = gin.New() }\n";

fn database_config(dir: &Path, db: &goproxy_testkit::sumdb_server::SumdbServer) -> String {
    let config = dir.join("node.toml");
    std::fs::write(&config, sumdb_toml(db)).unwrap();
    config.to_string_lossy().into_owned()
}

fn sumdb_toml(db: &goproxy_testkit::sumdb_server::SumdbServer) -> String {
    format!(
        "[[proxy.sumdb]]\nname = \"{NAME}\"\nvkey = \"{}\"\nurl = \"{}\"\n",
        db.vkey, db.url
    )
}

/// `go get gin` + `go build` in a fresh HOME and app directory: (ok, stdout+stderr).
fn build_gin(root: &Path, label: &str, proxy: &str, vkey: &str) -> (bool, String) {
    let home = root.join(format!("home-{label}"));
    let work = root.join(format!("app-{label}"));
    app(&work, GIN_APP);
    let (ok, out, err) = go_with(
        &home,
        &work,
        proxy,
        vkey,
        &["get", "github.com/gin-gonic/gin@v1.8.1"],
    );
    if !ok {
        return (false, format!("go get: {out}\n{err}"));
    }
    let sum = std::fs::read_to_string(work.join("go.sum")).unwrap_or_default();
    if !sum.contains("github.com/gin-gonic/gin v1.8.1 h1:") {
        return (false, format!("go.sum lacks gin: {sum}"));
    }
    let (ok, out, err) = go_with(&home, &work, proxy, vkey, &["build", "-o", "app", "."]);
    (ok, format!("go build: {out}\n{err}"))
}

async fn metric(node: &Node, line_prefix: &str) -> f64 {
    let text = client()
        .get(node.url("metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(line_prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_command_builds_gin_verified_through_the_node_and_again_without_the_database() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let mut db =
        goproxy_testkit::sumdb_server::SumdbServer::start(&corpus_dir(), NAME, 7, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = database_config(dir.path(), &db);
    let node = Node::start(
        &dir.path().join("node"),
        &upstream.url,
        &["--config", &config, "--verify-fills", "true"],
    );
    let (root, proxy, vkey) = (dir.path().to_path_buf(), node.http.clone(), db.vkey.clone());
    let built = {
        let (root, proxy, vkey) = (root.clone(), proxy.clone(), vkey.clone());
        tokio::task::spawn_blocking(move || build_gin(&root, "first", &proxy, &vkey))
            .await
            .unwrap()
    };
    assert!(built.0, "{}", built.1);
    // Every fill was verified by the node (and none refused).
    let verified = metric(&node, "goproxy_sumdb_checks_total{outcome=\"verified\"}").await;
    assert!(verified > 0.0, "no verification counted");
    assert_eq!(
        metric(&node, "goproxy_checksum_mismatches_total").await,
        0.0
    );
    let state = status(&node).await.unwrap();
    let db_state = &state.checksum_databases[0];
    assert_eq!(db_state.name, NAME);
    assert!(db_state.tree_size.unwrap_or(0) > 0, "{db_state:?}");
    assert_eq!(db_state.forks, 0);

    // A key the database does not sign with: the go command refuses what comes through.
    let stranger =
        goproxy_testkit::sumdb_server::SumdbServer::start(&corpus_dir(), NAME, 9, 0).unwrap();
    let refused = {
        let (root, proxy, vkey) = (root.clone(), proxy.clone(), stranger.vkey.clone());
        tokio::task::spawn_blocking(move || build_gin(&root, "stranger", &proxy, &vkey))
            .await
            .unwrap()
    };
    assert!(!refused.0, "verified with the wrong key");
    assert!(refused.1.contains(NAME), "{}", refused.1);

    // The database is gone: a fresh client (no go.sum, no module or sumdb cache) still
    // builds, verifying through what the cluster kept.
    db.stop();
    let again = tokio::task::spawn_blocking(move || build_gin(&root, "offline", &proxy, &vkey))
        .await
        .unwrap();
    assert!(again.0, "{}", again.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_checksum_database_is_refused_and_shown_in_status() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let honest =
        goproxy_testkit::sumdb_server::SumdbServer::start(&corpus_dir(), NAME, 7, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let config = database_config(dir.path(), &honest);
    let args = ["--config", config.as_str(), "--verify-fills", "true"];
    let mut node = Node::start(&data, &upstream.url, &args);
    let http = client();
    for version in ["v1.0.0", "v1.1.0"] {
        let url = node.url(&format!("example.com/hello/@v/{version}.mod"));
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    node.terminate();

    // The same key signs another history; the node (its index kept the verified tree)
    // is pointed at it.
    let forked =
        goproxy_testkit::sumdb_server::SumdbServer::start(&corpus_dir(), NAME, 7, 3).unwrap();
    assert_eq!(forked.vkey, honest.vkey);
    let config = database_config(dir.path(), &forked);
    let args = ["--config", config.as_str(), "--verify-fills", "true"];
    let node = Node::start(&data, &upstream.url, &args);
    let response = http
        .get(node.url("github.com/gin-gonic/gin/@v/v1.8.1.mod"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let reason = response.text().await.unwrap();
    assert!(reason.contains("forked tree"), "{reason}");
    let response = http
        .get(node.url("github.com/gin-gonic/gin/@v/v1.8.1.mod"))
        .header("Disable-Module-Fetch", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "nothing cached");
    let state = status(&node).await.unwrap();
    let db_state = &state.checksum_databases[0];
    assert_eq!(db_state.forks, 1, "{db_state:?}");
    assert!(
        db_state
            .last_fork
            .as_deref()
            .unwrap_or("")
            .contains("forked tree"),
        "{db_state:?}"
    );
    assert!(metric(&node, "goproxy_sumdb_checks_total{outcome=\"fork\"}").await >= 1.0);
    let log = node.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("forked tree"))
        .unwrap_or_else(|| panic!("no error line for the fork:\n{log}"));
    println!("{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_refuse_altered_bytes_everywhere_and_serve_what_they_verified_without_leader_or_database(
) {
    use goproxy_testkit::corpus::{tampered, Tamper};
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let mut db =
        goproxy_testkit::sumdb_server::SumdbServer::start(&corpus_dir(), NAME, 7, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad");
    tampered(&bad, "github.com/BurntSushi/toml", "v1.2.0", Tamper::Zip).unwrap();
    let bad_upstream = HttpServer::serve_dir(&bad);
    let extra = format!(
        "{}[[route]]\nmatch = \"github.com/BurntSushi/toml\"\nupstream = \"{}\"\n",
        sumdb_toml(&db),
        bad_upstream.url
    );
    let mut nodes = three_nodes_configured(
        dir.path(),
        &upstream.url,
        &extra,
        &["--verify-fills", "true"],
    );
    let leader = agreed_leader(&nodes).await;
    let follower = *nodes.keys().find(|id| **id != leader).unwrap();

    // Altered bytes, asked through a follower: refused with the reason, on no node after.
    let http = client();
    let path = "github.com/!burnt!sushi/toml/@v/v1.2.0.zip";
    let response = http.get(nodes[&follower].url(path)).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let reason = response.text().await.unwrap();
    assert!(
        reason.contains("checksum mismatch against sum.test.example"),
        "{reason}"
    );
    for node in nodes.values() {
        let response = cache_only(&http, &node.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "cached on {}", node.http);
    }
    let log = nodes[&leader].log_text();
    let line = log
        .lines()
        .find(|l| l.contains("checksum mismatch") && l.contains("computed"))
        .unwrap_or_else(|| panic!("no refusal line on the leader:\n{log}"));
    println!("{line}");

    // A build through a follower: the leader verifies and keeps lookups and tiles.
    let (root, vkey) = (dir.path().to_path_buf(), db.vkey.clone());
    let proxy = nodes[&follower].http.clone();
    let built = {
        let (root, vkey) = (root.clone(), vkey.clone());
        tokio::task::spawn_blocking(move || build_gin(&root, "cluster", &proxy, &vkey))
            .await
            .unwrap()
    };
    assert!(built.0, "{}", built.1);

    // The leader dies and the database stops: a fresh client through a survivor verifies
    // against what the cluster kept.
    nodes.get_mut(&leader).unwrap().kill9();
    db.stop();
    let survivors: std::collections::BTreeMap<u64, Node> =
        nodes.into_iter().filter(|(id, _)| *id != leader).collect();
    agreed_leader(&survivors).await;
    let proxy = survivors.values().next().unwrap().http.clone();
    let again = tokio::task::spawn_blocking(move || build_gin(&root, "survivor", &proxy, &vkey))
        .await
        .unwrap();
    assert!(again.0, "{}", again.1);
}
