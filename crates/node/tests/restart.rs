//! Crash safety: kill -9 during a burst of fills; after restart every acknowledged
//! artifact is served with identical bytes from the cache alone, and no temp file remains.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use support::{cache_only, client, corpus_dir, sha256_hex, HttpServer, Node};

/// Every artifact path of the corpus, escaped as on the wire.
fn corpus_artifacts(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("info" | "mod" | "zip")
            ) {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

/// Bound on the fills acknowledged before the crash (usually well under a second).
const ACK_WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_during_fills_loses_no_acknowledged_artifact() {
    let corpus = corpus_dir();
    let mut upstream = HttpServer::serve_dir(&corpus);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("n1");
    let mut node = Node::start(&data, &upstream.url, &[]);

    let artifacts = corpus_artifacts(&corpus);
    assert!(
        artifacts.len() > 60,
        "corpus too small: {}",
        artifacts.len()
    );
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let http = client();
    let mut tasks = Vec::new();
    for chunk in artifacts.chunks(artifacts.len().div_ceil(8)) {
        let (chunk, acked, http, base) = (
            chunk.to_vec(),
            acked.clone(),
            http.clone(),
            node.http.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for path in chunk {
                let Ok(response) = http.get(format!("{base}/{path}")).send().await else {
                    return;
                };
                if response.status() != StatusCode::OK {
                    continue;
                }
                let Ok(body) = response.bytes().await else {
                    return;
                };
                acked.lock().unwrap().insert(path, sha256_hex(&body));
            }
        }));
    }
    // Let the burst run until some fills are acknowledged, then crash the node. Polled up to a
    // generous deadline: a loaded machine may need far longer than usual for 20 fills.
    let deadline = std::time::Instant::now() + ACK_WAIT;
    while acked.lock().unwrap().len() < 20
        && std::time::Instant::now() < deadline
        && !tasks.iter().all(|t| t.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.kill9();
    for task in tasks {
        let _ = task.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 20,
        "too few fills acknowledged before the crash: {}",
        acked.len()
    );
    println!("{} artifacts acknowledged before kill -9", acked.len());

    // Restart with the upstream gone: only the node's own durable state can answer.
    upstream.stop();
    let node = Node::start(&data, &upstream.url, &[]);
    for (path, sha) in &acked {
        let response = cache_only(&http, &node.url(path)).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{path} lost after kill -9"
        );
        let body = response.bytes().await.unwrap();
        assert_eq!(&sha256_hex(&body), sha, "{path} changed after kill -9");
    }
    let tmp = std::fs::read_dir(data.join("blobs/tmp")).unwrap().count();
    assert_eq!(tmp, 0, "temp files remain after restart");
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(&dir.path().join("n1"), &upstream.url, &[]);
    let status = node.terminate();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        node.log_text()
    );
}
