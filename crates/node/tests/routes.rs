//! Route rules and environments through a real node and the real `go` command: a private
//! module from its own upstream next to a public one in one build, a denied path refused with
//! its reason, a cache-only environment that serves what is cached and fills nothing, and
//! `goproxy-ha route explain` printing the decisions the node acts on.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use support::go::{go, go_ok};
use support::{corpus_dir, HttpServer, Node};

const MAIN_GO: &str = r#"package main

import (
	"fmt"

	"corp.example/platform/lib"
	"example.com/hello"
)

func main() { fmt.Println(lib.Name(), hello.Greeting()) }
"#;

/// A private module `corp.example/platform/lib` v1.0.0 laid out as a module proxy serves it.
fn private_proxy_dir(dir: &Path) {
    let v = dir.join("corp.example/platform/lib/@v");
    std::fs::create_dir_all(&v).unwrap();
    let go_mod = "module corp.example/platform/lib\n\ngo 1.18\n";
    std::fs::write(v.join("list"), "v1.0.0\n").unwrap();
    std::fs::write(
        v.join("v1.0.0.info"),
        r#"{"Version":"v1.0.0","Time":"2026-11-01T00:00:00Z"}"#,
    )
    .unwrap();
    std::fs::write(v.join("v1.0.0.mod"), go_mod).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(v.join("v1.0.0.zip")).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    let root = "corp.example/platform/lib@v1.0.0";
    zip.start_file(format!("{root}/go.mod"), options).unwrap();
    zip.write_all(go_mod.as_bytes()).unwrap();
    zip.start_file(format!("{root}/lib.go"), options).unwrap();
    zip.write_all(b"package lib\n\n// Name names the private library.\nfunc Name() string { return \"private lib\" }\n")
        .unwrap();
    zip.finish().unwrap();
}

fn config(private_url: &str) -> String {
    format!(
        r#"
[[route]]
match = "corp.example/platform"
upstream = "{private_url}"

[[route]]
match = "github.com/banned-org"
deny = true
reason = "banned by security (SEC-42)"

[env.prod]
mode = "cache-only"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_and_a_public_module_build_together_denied_paths_stop_and_prod_is_cache_only() {
    let public = HttpServer::serve_dir(&corpus_dir());
    let private_dir = tempfile::tempdir().unwrap();
    private_proxy_dir(private_dir.path());
    let private = HttpServer::serve_dir(private_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("node.toml");
    std::fs::write(&config_file, config(&private.url)).unwrap();
    let config_arg = config_file.to_str().unwrap().to_string();
    let node = Node::start(
        &dir.path().join("node"),
        &public.url,
        &["--config", &config_arg],
    );
    let root = node.http.clone();
    let prod = format!("{}/env/prod", node.http);

    let home = dir.path().join("home");
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("go.mod"), "module example.com/app\n\ngo 1.18\n").unwrap();
    std::fs::write(app.join("main.go"), MAIN_GO).unwrap();

    tokio::task::spawn_blocking(move || {
        // The cache-only environment has nothing yet: the go command is told why.
        let (ok, _, stderr) = go(
            &home,
            &app,
            &prod,
            &["get", "corp.example/platform/lib@v1.0.0"],
        );
        assert!(!ok);
        assert!(
            stderr.contains("environment \"prod\" is cache-only"),
            "{stderr}"
        );

        // Through the root: the private module from its upstream, the public one from the
        // corpus, in one build.
        go_ok(
            &home,
            &app,
            &root,
            &["get", "corp.example/platform/lib@v1.0.0"],
        );
        go_ok(&home, &app, &root, &["get", "example.com/hello@v1.1.0"]);
        go_ok(&home, &app, &root, &["build", "-o", "app", "."]);
        let out = Command::new(app.join("app")).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "private lib hello v1.1.0"
        );

        // Denied: the go command stops at the 403 and prints the reason.
        let (ok, _, stderr) = go(
            &home,
            &app,
            &root,
            &["get", "github.com/banned-org/tool@v1.0.0"],
        );
        assert!(!ok);
        assert!(
            stderr.contains("403") && stderr.contains("banned by security (SEC-42)"),
            "{stderr}"
        );

        // Now prod serves what the cluster holds, from a clean module cache.
        go_ok(&home, &app, &prod, &["clean", "-modcache"]);
        std::fs::remove_file(app.join("app")).unwrap();
        go_ok(&home, &app, &prod, &["build", "-o", "app", "."]);
        let versions = go_ok(
            &home,
            &app,
            &prod,
            &["list", "-m", "-versions", "corp.example/platform/lib"],
        );
        assert_eq!(versions.trim(), "corp.example/platform/lib v1.0.0");
    })
    .await
    .unwrap();

    // route explain prints what the node did, from the same configuration.
    let explain = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_goproxy-ha"))
            .args(["route", "explain"])
            .args(args)
            .args(["--config", &config_arg, "--upstream", &public.url])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = explain(&["corp.example/platform/lib@v1.0.0"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("route[0] (matched \"corp.example/platform\")"),
        "{text}"
    );
    assert!(
        text.contains(&format!("fetch from {}", private.url)),
        "{text}"
    );
    let (code, text) = explain(&["github.com/banned-org/tool"]);
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("deny (403): banned by security (SEC-42)"),
        "{text}"
    );
    let (code, text) = explain(&["example.com/hello", "--env", "prod"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("environment: prod (cache-only)"), "{text}");
    assert!(
        text.contains("default upstream (no rule matched)"),
        "{text}"
    );
    let (code, _) = explain(&["example.com/hello", "--env", "staging"]);
    assert_eq!(code, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_route_without_a_usable_go_command_is_reported_not_ready() {
    let public = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("node.toml");
    std::fs::write(
        &config_file,
        "[[route]]\nmatch = \"git.corp.example\"\nupstream = \"direct\"\n[vcs]\ngo = \"/nonexistent/bin/go\"\n",
    )
    .unwrap();
    let config_arg = config_file.to_str().unwrap().to_string();
    let args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--raft-listen",
        "127.0.0.1:0",
        "--upstream",
        &public.url,
        "--config",
        &config_arg,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let node = Node::spawn(&dir.path().join("node"), &args);
    let client = support::client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let text = loop {
        let response = client.get(node.url("readyz")).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        if status == 503 && text.contains("direct routes need the go toolchain and git") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readyz: {status} {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(text.contains("/nonexistent/bin/go"), "{text}");
    assert!(
        node.log_text().contains("direct routes cannot fetch"),
        "{}",
        node.log_text()
    );
    // Public modules are still served.
    let response = client
        .get(node.url("example.com/hello/@v/v1.1.0.mod"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
