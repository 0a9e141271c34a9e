//! What a client or a log reader must never learn, and what `/readyz` must not claim (issue:
//! cluster surface, findings 7 and 8): upstream credentials stay out of bodies, logs and the
//! configuration dump (while still being sent to the upstream); storage errors do not reveal
//! the data directory; a redirect to another host is not followed or cached; a full disk,
//! a full replication backlog and a lost quorum make the node not ready, with the reason.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use reqwest::StatusCode;
use support::{cache_only, client, corpus_dir, HttpServer, Node};

const PASSWORD: &str = "hunter2-s3cret";

#[tokio::test]
async fn upstream_credentials_are_sent_but_never_shown() {
    // An upstream that records the Authorization it gets, then fails.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let failing = HttpServer::serve(axum::Router::new().fallback(move |headers: HeaderMap| {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        record.lock().unwrap().push(auth);
        async { (AxumStatus::BAD_GATEWAY, "upstream trouble").into_response() }
    }));
    let with_credentials = failing
        .url
        .replace("http://", &format!("http://ci:{PASSWORD}@"));
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        &dir.path().join("n1"),
        &with_credentials,
        &["--log-level", "debug"],
    );
    let response = client()
        .get(node.url("example.com/hello/@v/v1.0.0.info"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response.text().await.unwrap();
    assert!(body.contains("bad upstream http://***@"), "{body}");
    assert!(
        !body.contains(PASSWORD),
        "the body leaks the password: {body}"
    );
    let log = node.log_text();
    assert!(
        log.contains("***@"),
        "the log should name the upstream:\n{log}"
    );
    assert!(
        !log.contains(PASSWORD),
        "the log leaks the password:\n{log}"
    );
    // The credentials still reach the upstream, as HTTP basic auth.
    let sent = seen.lock().unwrap().clone();
    assert!(
        !sent.is_empty() && sent.iter().all(|a| a.starts_with("Basic ")),
        "{sent:?}"
    );

    let dump = Command::new(env!("CARGO_BIN_EXE_goproxy-ha"))
        .args(["config", "--upstream", &with_credentials])
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("upstream = \"http://***@"), "{dump}");
    assert!(
        !dump.contains(PASSWORD),
        "the config dump leaks the password:\n{dump}"
    );
}

#[tokio::test]
async fn storage_failures_do_not_reveal_local_paths() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("n1"), &upstream.url, &[]);
    // The staging directory becomes a file: every fill fails with an I/O error on a path
    // under the data directory.
    let staging = node.data_dir.join("blobs/tmp");
    std::fs::remove_dir_all(&staging).unwrap();
    std::fs::write(&staging, b"not a directory").unwrap();
    let response = client()
        .get(node.url("example.com/hello/@v/v1.0.0.mod"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response.text().await.unwrap();
    let data_dir = node.data_dir.display().to_string();
    assert!(body.contains("internal error on this node"), "{body}");
    assert!(
        !body.contains(&data_dir) && !body.contains("/tmp"),
        "{body}"
    );
    // The detail is in the node's log for the operator.
    assert!(node.log_text().contains("blobs/tmp"), "{}", node.log_text());
}

#[tokio::test]
async fn redirects_to_other_hosts_are_not_followed_or_cached() {
    let evil_hits = Arc::new(AtomicUsize::new(0));
    let hits = evil_hits.clone();
    let evil = HttpServer::serve(axum::Router::new().fallback(move || {
        hits.fetch_add(1, Ordering::SeqCst);
        async { "module example.com/hello\n// poisoned\n" }
    }));
    // Another host name for the same server: reachable, but not the upstream's host.
    let elsewhere = evil.url.replace("127.0.0.1", "localhost");
    let corpus = corpus_dir();
    let redirecting =
        HttpServer::serve(axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let corpus = corpus.clone();
            let elsewhere = elsewhere.clone();
            async move {
                let path = uri.path().to_string();
                if path.ends_with(".mod") {
                    // Off-host: must not be followed.
                    return axum::response::Redirect::to(&format!("{elsewhere}{path}"))
                        .into_response();
                }
                if let Some(real) = path.strip_suffix(".moved") {
                    return std::fs::read(corpus.join(real.trim_start_matches('/')))
                        .map(IntoResponse::into_response)
                        .unwrap_or_else(|_| AxumStatus::NOT_FOUND.into_response());
                }
                // Same host: followed.
                axum::response::Redirect::to(&format!("{path}.moved")).into_response()
            }
        }));
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("n1"), &redirecting.url, &[]);
    let http = client();
    let off_host = node.url("example.com/hello/@v/v1.0.0.mod");
    let response = http.get(&off_host).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response.text().await.unwrap();
    assert!(body.contains("redirects are followed only"), "{body}");
    assert_eq!(
        evil_hits.load(Ordering::SeqCst),
        0,
        "the off-host redirect was followed"
    );
    let cached = cache_only(&http, &off_host).send().await.unwrap();
    assert_eq!(
        cached.status(),
        StatusCode::NOT_FOUND,
        "something was cached"
    );

    let same_host = http
        .get(node.url("example.com/hello/@v/v1.0.0.info"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        same_host.status(),
        StatusCode::OK,
        "a same-host redirect is followed"
    );
}

/// Polls `/readyz` until its status is `want`; returns the body.
async fn readyz_until(node: &Node, want: StatusCode) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = client().get(node.url("readyz")).send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        if status == want {
            return body;
        }
        assert!(Instant::now() < deadline, "readyz stayed {status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A small tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size_mib: u64) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount (the test runs as root, like the rest of make test)");
        assert!(status.success(), "mounting a tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_makes_the_node_not_ready_until_space_is_freed() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("n1");
    let _fs = Tmpfs::mount(&data, 48);
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[proxy]\nmin_free_bytes = 16777216\n").unwrap();
    let node = Node::start(
        &data,
        &upstream.url,
        &["--config", config.to_str().unwrap()],
    );
    readyz_until(&node, StatusCode::OK).await;

    // Ballast leaves less than min_free_bytes: not ready, and the body says why.
    let ballast = data.join("ballast");
    let free = nix_free(&data);
    std::fs::write(&ballast, vec![0u8; (free - (8 << 20)) as usize]).unwrap();
    let body = readyz_until(&node, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(body.contains("disk full"), "{body}");
    assert!(!body.contains(&data.display().to_string()), "{body}");

    std::fs::remove_file(&ballast).unwrap();
    readyz_until(&node, StatusCode::OK).await;
}

/// Free bytes on the filesystem of `path` (from `df`, to stay independent of the node).
fn nix_free(path: &std::path::Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}
