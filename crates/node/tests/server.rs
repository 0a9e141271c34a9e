//! The node as a library: `goproxy_ha::run` in this process on port-0 listeners, serving a
//! fill and its status, and returning cleanly when its shutdown token is cancelled.

mod support;

use std::time::Duration;

use goproxy_ha::config::Config;
use goproxy_ha::Listeners;
use goproxy_status::{NodeStatus, Role};
use reqwest::StatusCode;
use support::{client, corpus_dir, HttpServer};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_runs_in_process_and_stops_on_its_token() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.proxy.upstream = upstream.url.clone();
    config.proxy.verify_fills = false;
    assert_eq!(config.problems(), Vec::<String>::new());
    let listeners = Listeners::bind(&config).await.unwrap();
    assert!(
        listeners.raft.is_none(),
        "a single node without TLS needs no node-to-node port"
    );
    let base = format!("http://{}", listeners.http.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let node = tokio::spawn(goproxy_ha::run(config, listeners, shutdown.clone()));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client().get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = "github.com/gin-gonic/gin/@v/v1.8.1.mod";
    let body = client()
        .get(format!("{base}/{path}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, std::fs::read(corpus_dir().join(path)).unwrap());
    let status = client()
        .get(format!("{base}/cluster/status"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let status: NodeStatus = serde_json::from_slice(&status).unwrap();
    assert_eq!((status.state, status.index_entries), (Role::Leader, 1));

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(30), node)
        .await
        .expect("run returns after the token is cancelled");
    stopped.unwrap().unwrap();
    assert!(client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err());
}
