//! The real `go` command (Debian's golang-go) uses the node as its GOPROXY: it builds a
//! gin app, then builds it again from the node's cache alone after the upstream is gone.

mod support;

use support::go::go_ok as go;
use support::{cluster, corpus_dir, HttpServer, Node};

const MAIN_GO: &str = r#"package main

import "github.com/gin-gonic/gin"

func main() {
	r := gin.New()
	r.GET("/", func(c *gin.Context) { c.String(200, "ok") })
	_ = r
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_builds_gin_through_the_proxy_then_from_its_cache_alone() {
    let mut upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"), &upstream.url, &[]);
    let proxy = node.http.clone();
    let home = dir.path().join("home");
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("go.mod"), "module example.com/app\n\ngo 1.19\n").unwrap();
    std::fs::write(app.join("main.go"), MAIN_GO).unwrap();

    let (home2, app2, proxy2) = (home.clone(), app.clone(), proxy.clone());
    tokio::task::spawn_blocking(move || {
        go(
            &home2,
            &app2,
            &proxy2,
            &["get", "github.com/gin-gonic/gin@v1.8.1"],
        );
        go(&home2, &app2, &proxy2, &["build", "-o", "app", "."]);
        let versions = go(
            &home2,
            &app2,
            &proxy2,
            &["list", "-m", "-versions", "example.com/hello"],
        );
        assert_eq!(
            versions.trim(),
            "example.com/hello v1.0.0 v1.1.0 v1.2.0-beta.1"
        );
        let latest = go(
            &home2,
            &app2,
            &proxy2,
            &["list", "-m", "example.com/hello@latest"],
        );
        assert_eq!(latest.trim(), "example.com/hello v1.1.0");
        let toml = go(
            &home2,
            &app2,
            &proxy2,
            &[
                "mod",
                "download",
                "-json",
                "github.com/BurntSushi/toml@v1.2.0",
            ],
        );
        assert!(toml.contains("\"Version\": \"v1.2.0\""), "{toml}");
    })
    .await
    .unwrap();

    // Upstream gone, module cache wiped: the build must come from the node alone.
    upstream.stop();
    let (home2, app2) = (home.clone(), app.clone());
    tokio::task::spawn_blocking(move || {
        go(&home2, &app2, &proxy, &["clean", "-modcache"]);
        std::fs::remove_file(app2.join("app")).unwrap();
        go(&home2, &app2, &proxy, &["build", "-o", "app", "."]);
        assert!(app2.join("app").exists());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_builds_gin_through_each_node_of_a_cluster_in_turn() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster::three_nodes(dir.path(), &upstream.url);
    let home = dir.path().join("home");
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("go.mod"), "module example.com/app\n\ngo 1.19\n").unwrap();
    std::fs::write(app.join("main.go"), MAIN_GO).unwrap();
    let proxies: Vec<String> = nodes.values().map(|n| n.http.clone()).collect();
    tokio::task::spawn_blocking(move || {
        for (i, proxy) in proxies.iter().enumerate() {
            // A clean module cache each time: every module comes through this node.
            go(&home, &app, proxy, &["clean", "-modcache"]);
            if i == 0 {
                go(
                    &home,
                    &app,
                    proxy,
                    &["get", "github.com/gin-gonic/gin@v1.8.1"],
                );
            }
            go(&home, &app, proxy, &["build", "-o", "app", "."]);
            assert!(
                app.join("app").exists(),
                "build through node {} produced no binary",
                i + 1
            );
            std::fs::remove_file(app.join("app")).unwrap();
        }
    })
    .await
    .unwrap();
}
