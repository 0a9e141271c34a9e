//! Black-box GOPROXY protocol tests against the real binary and the corpus upstream.

mod support;

use reqwest::header;
use reqwest::StatusCode;
use support::{cache_only, client, corpus_dir, sha256_hex, HttpServer, Node};

fn corpus_file(path: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(path)).expect("corpus file")
}

#[tokio::test]
async fn serves_corpus_artifacts_with_identical_bytes_and_immutable_headers() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("n1"), &upstream.url, &[]);
    let http = client();
    for path in [
        "example.com/hello/@v/v1.1.0.info",
        "example.com/hello/@v/v1.1.0.mod",
        "example.com/hello/@v/v1.1.0.zip",
        "github.com/!burnt!sushi/toml/@v/v1.2.0.mod",
        "github.com/!burnt!sushi/toml/@v/v1.2.0.zip",
        "github.com/gin-gonic/gin/@v/v1.8.1.zip",
    ] {
        let expected = corpus_file(path);
        for round in ["miss", "hit"] {
            let response = http.get(node.url(path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path} ({round})");
            let headers = response.headers().clone();
            assert_eq!(
                headers[header::CACHE_CONTROL],
                "public, max-age=604800, immutable"
            );
            assert_eq!(
                headers[header::ETAG].to_str().unwrap(),
                format!("\"{}\"", sha256_hex(&expected))
            );
            assert_eq!(
                headers[header::CONTENT_LENGTH].to_str().unwrap(),
                expected.len().to_string()
            );
            let body = response.bytes().await.unwrap();
            assert!(body == expected, "{path} bytes differ ({round})");
        }
    }
}

#[tokio::test]
async fn conditional_range_and_head_requests() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("n1"), &upstream.url, &[]);
    let http = client();
    let path = "github.com/gin-gonic/gin/@v/v1.8.1.zip";
    let expected = corpus_file(path);
    let etag = format!("\"{}\"", sha256_hex(&expected));

    let head = http.head(node.url(path)).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()[header::CONTENT_TYPE], "application/zip");
    assert_eq!(
        head.headers()[header::CONTENT_LENGTH].to_str().unwrap(),
        expected.len().to_string()
    );

    let not_modified = http
        .get(node.url(path))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);

    let partial = http
        .get(node.url(path))
        .header(header::RANGE, "bytes=100-1099")
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        partial.headers()[header::CONTENT_RANGE].to_str().unwrap(),
        format!("bytes 100-1099/{}", expected.len())
    );
    assert_eq!(partial.bytes().await.unwrap(), &expected[100..1100]);

    let beyond = http
        .get(node.url(path))
        .header(header::RANGE, format!("bytes={}-", expected.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
}

#[tokio::test]
async fn list_unites_upstream_and_cache_and_latest_falls_back_to_the_cache() {
    let mut upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "[proxy]\nlist_ttl = \"1ms\"\nupstream_attempts = 1\n",
    )
    .unwrap();
    let node = Node::start(
        &dir.path().join("n1"),
        &upstream.url,
        &["--config", config.to_str().unwrap()],
    );
    let http = client();
    let list = http
        .get(node.url("example.com/hello/@v/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(
        list.text().await.unwrap(),
        "v1.0.0\nv1.1.0\nv1.2.0-beta.1\n"
    );

    // The corpus has no @latest: upstream says 404 and nothing is cached yet.
    let latest = http
        .get(node.url("example.com/hello/@latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(latest.status(), StatusCode::NOT_FOUND);

    for version in ["v1.0.0", "v1.1.0", "v1.2.0-beta.1"] {
        let info = http
            .get(node.url(&format!("example.com/hello/@v/{version}.info")))
            .send()
            .await
            .unwrap();
        assert_eq!(info.status(), StatusCode::OK);
    }
    upstream.stop();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    // Upstream down: list is served stale, @latest from the cache.
    let list = http
        .get(node.url("example.com/hello/@v/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(
        list.text().await.unwrap(),
        "v1.0.0\nv1.1.0\nv1.2.0-beta.1\n"
    );
    let latest = http
        .get(node.url("example.com/hello/@latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(latest.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_slice(&latest.bytes().await.unwrap()).unwrap();
    assert_eq!(body["Version"], "v1.1.0");

    // A module never seen: a 404 the go command can fall back from, not cacheable.
    let unknown = http
        .get(node.url("example.com/other/@v/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.headers()[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn disable_module_fetch_answers_from_the_cache_only() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("n1"), &upstream.url, &[]);
    let http = client();
    let path = "example.com/hello/@v/v1.0.0.mod";
    let offline = |url: String| cache_only(&http, &url).send();
    let miss = offline(node.url(path)).await.unwrap();
    assert_eq!(miss.status(), StatusCode::NOT_FOUND);
    assert!(miss.text().await.unwrap().contains("Disable-Module-Fetch"));
    assert_eq!(
        http.get(node.url(path)).send().await.unwrap().status(),
        StatusCode::OK
    );
    let hit = offline(node.url(path)).await.unwrap();
    assert_eq!(hit.status(), StatusCode::OK);
    let list = offline(node.url("example.com/hello/@v/list"))
        .await
        .unwrap();
    assert_eq!(list.text().await.unwrap(), "v1.0.0\n");
}

#[tokio::test]
async fn admin_endpoints_report_health_readiness_and_metrics() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("n1"), &upstream.url, &[]);
    let http = client();
    assert_eq!(
        http.get(node.url("healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let mut ready = false;
    for _ in 0..100 {
        if http.get(node.url("readyz")).send().await.unwrap().status() == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "node never became ready");
    http.get(node.url("example.com/hello/@v/v1.0.0.info"))
        .send()
        .await
        .unwrap();
    http.get(node.url("example.com/hello/@v/v1.0.0.info"))
        .send()
        .await
        .unwrap();
    let metrics = http
        .get(node.url("metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "goproxy_http_requests_total{route=\"info\",status=\"200\"} 2",
        "goproxy_cache_lookups_total{kind=\"info\",outcome=\"hit\"} 1",
        "goproxy_cache_lookups_total{kind=\"info\",outcome=\"miss\"} 1",
        "goproxy_fills_total{kind=\"info\",outcome=\"ok\"} 1",
        "goproxy_upstream_request_seconds",
        "goproxy_raft_is_leader 1",
        "goproxy_raft_term",
        "goproxy_replication_backlog_blobs 0",
        "goproxy_index_commit_seconds_count 1",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_blob_lost_on_disk_is_repaired_from_upstream_with_identical_bytes() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("n1"), &upstream.url, &[]);
    let http = client();
    // Larger than what is kept in memory (2 MiB), so every hit reads the file.
    let path = "github.com/go-playground/locales/@v/v0.14.0.zip";
    let expected = corpus_file(path);
    assert_eq!(
        http.get(node.url(path)).send().await.unwrap().status(),
        StatusCode::OK
    );
    let sha = sha256_hex(&expected);
    let blob = node
        .data_dir
        .join("blobs/sha256")
        .join(&sha[..2])
        .join(&sha);
    std::fs::remove_file(&blob).expect("blob file exists under its sha256");

    let offline = cache_only(&http, &node.url(path)).send().await.unwrap();
    assert_eq!(
        offline.status(),
        StatusCode::NOT_FOUND,
        "cache-only request must not refetch"
    );
    let repaired = http.get(node.url(path)).send().await.unwrap();
    assert_eq!(repaired.status(), StatusCode::OK);
    assert!(repaired.bytes().await.unwrap() == expected);
    assert!(blob.exists(), "repaired blob is back on disk");
}
