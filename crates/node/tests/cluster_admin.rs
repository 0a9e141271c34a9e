//! The `cluster` commands against three processes with mutual TLS (issue: cluster surface,
//! findings 2 and 3): joining nodes nobody can reach leaves them learners and the cluster
//! filling, and membership or leadership cannot be changed without an admin certificate.

mod support;

use std::process::Output;

use reqwest::StatusCode;
use support::cluster::goproxy_ha as goproxy;
use support::cluster::{admin_env, agreed_leader, free_ports, raft_of, status, three_nodes};
use support::{client, corpus_dir, HttpServer};

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_unreachable_nodes_leaves_learners_and_the_cluster_fills() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let nodes = three_nodes(dir.path(), &upstream.url);
    let leader = agreed_leader(&nodes).await;
    let via = raft_of(dir.path(), leader);
    let admin = admin_env(dir.path());
    let paths = [
        "example.com/hello/@v/v1.0.0.mod",
        "example.com/hello/@v/v1.0.0.zip",
        "gopkg.in/yaml.v3/@v/v3.0.1.mod",
    ];
    for (id, path) in ["9", "10", "11"].into_iter().zip(paths) {
        let dead = format!("127.0.0.1:{}", free_ports(1)[0]);
        let out = goproxy(
            &admin,
            &[
                "cluster",
                "join",
                "--via",
                &via,
                "--id",
                id,
                "--raft",
                &dead,
                "--http",
                &dead,
                "--catch-up-timeout",
                "2s",
            ],
        );
        assert!(
            !out.status.success(),
            "node {id} reported joined: {}",
            text(&out)
        );
        assert!(text(&out).contains("stays a learner"), "{}", text(&out));
        let response = client().get(nodes[&leader].url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "fill after joining {id}");
    }
    for id in ["9", "10", "11"] {
        let out = goproxy(&admin, &["cluster", "leave", "--via", &via, "--id", id]);
        assert!(out.status.success(), "leave {id}: {}", text(&out));
    }
    let members = status(&nodes[&leader]).await.unwrap().members.len();
    assert_eq!(members, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_and_leadership_need_an_admin_certificate() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let nodes = three_nodes(dir.path(), &upstream.url);
    let leader = agreed_leader(&nodes).await;
    let follower = *nodes.keys().find(|id| **id != leader).unwrap();
    let via = raft_of(dir.path(), leader);
    let to = follower.to_string();
    let commands: [Vec<&str>; 2] = [
        vec!["cluster", "transfer-leader", "--via", &via, "--to", &to],
        vec!["cluster", "leave", "--via", &via, "--id", &to],
    ];
    // Plaintext: the TLS listener refuses, and the CLI says what is missing.
    for command in &commands {
        let out = goproxy(&[], command);
        assert!(
            !out.status.success(),
            "{command:?} without a certificate: {}",
            text(&out)
        );
        assert!(
            text(&out).contains("--ca, --cert and --key"),
            "{}",
            text(&out)
        );
    }
    // A node's certificate is not an operator's: the CLI refuses to use it...
    let tls = dir.path().join("tls");
    let as_node: Vec<(String, String)> = [
        ("GOPROXY_HA_ADMIN_CA", "ca.pem"),
        ("GOPROXY_HA_ADMIN_CERT", "node-1.pem"),
        ("GOPROXY_HA_ADMIN_KEY", "node-1.key"),
    ]
    .iter()
    .map(|(k, f)| (k.to_string(), tls.join(f).display().to_string()))
    .collect();
    for command in &commands {
        let out = goproxy(&as_node, command);
        assert!(
            !out.status.success(),
            "{command:?} as a node: {}",
            text(&out)
        );
        assert!(text(&out).contains("not an operator"), "{}", text(&out));
    }
    // ...and nothing changed.
    assert_eq!(agreed_leader(&nodes).await, leader);
    let members = status(&nodes[&leader]).await.unwrap().members.len();
    assert_eq!(members, 3);
}

/// A leader that loses leadership while it fills a miss asks the new leader instead of
/// failing the request (it answered 404 "this node is not the cluster leader").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_that_outlives_its_leadership_is_answered_by_the_new_leader() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const HELD: &str = "/example.com/hello/@v/v1.0.0.info";
    // The first upstream request for HELD is held until the test releases it.
    let arrived = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let router = {
        let (arrived, release) = (arrived.clone(), release.clone());
        axum::Router::new()
            .fallback_service(tower_http::services::ServeDir::new(corpus_dir()))
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let (arrived, release) = (arrived.clone(), release.clone());
                    async move {
                        if request.uri().path() == HELD
                            && arrived.fetch_add(1, Ordering::SeqCst) == 0
                        {
                            let _ = release.acquire().await;
                        }
                        next.run(request).await
                    }
                },
            ))
    };
    let upstream = HttpServer::serve(router);
    let dir = tempfile::tempdir().unwrap();
    let nodes = three_nodes(dir.path(), &upstream.url);
    let leader = agreed_leader(&nodes).await;
    let to = *nodes.keys().find(|id| **id != leader).unwrap();

    let url = nodes[&leader].url(HELD.trim_start_matches('/'));
    let request = tokio::spawn(async move { client().get(url).send().await });
    goproxy_testkit::poll::until(
        "the fill reached the upstream",
        std::time::Duration::from_secs(30),
        || arrived.load(Ordering::SeqCst) >= 1,
    )
    .await;
    let (via, target) = (raft_of(dir.path(), leader), to.to_string());
    let out = goproxy(
        &admin_env(dir.path()),
        &["cluster", "transfer-leader", "--via", &via, "--to", &target],
    );
    assert!(out.status.success(), "transfer: {}", text(&out));
    assert_eq!(agreed_leader(&nodes).await, to);
    release.add_permits(1);

    let response = request.await.unwrap().unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("v1.0.0"), "{body}");
    assert!(
        nodes[&leader]
            .log_text()
            .contains("leadership moved during the fill"),
        "the old leader retried through the new one"
    );
}
