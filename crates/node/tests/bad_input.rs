//! Hostile request paths and hostile or failing upstreams: clear 404s, nothing cached,
//! no panic, the node keeps serving.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::StatusCode as AxumStatus;
use axum::response::IntoResponse;
use reqwest::{header, StatusCode};
use support::{cache_only, client, corpus_dir, HttpServer, Node};

#[tokio::test]
async fn hostile_request_paths_get_clear_404s() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("n1"), &upstream.url, &[]);
    let http = client();
    let huge = format!("example.com/{}/@v/list", "a".repeat(5000));
    let cases: Vec<&str> = vec![
        "example.com/../../etc/passwd/@v/list",
        "example.com/hello/@v/../../../etc/passwd.info",
        "example.com/%2e%2e/@v/list",
        "example.com/hello/@v/v1.0.0%00.info",
        "github.com/BurntSushi/toml/@v/list",
        "github.com/!!burnt/toml/@v/list",
        "github.com/burnt!/toml/@v/list",
        "example.com/hello/@v/v1.0.zip",
        "example.com/hello/@v/1.0.0.mod",
        "example.com/hello/@v/v1.0.0+meta.zip",
        "example.com/hello/@v/v2.0.0.zip",
        "example.com/hello/v2/@v/v1.0.0.mod",
        "example.com/hello/@v/master.zip",
        "example.com/hello/@v/v1.0.0.exe",
        "example.com/hello/@v/",
        "nodot/@v/list",
        "example.com//hello/@v/list",
        "-example.com/x/@v/list",
        &huge,
    ];
    for path in cases {
        let response = http.get(node.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain"),
            "{path}"
        );
        let reason = response.text().await.unwrap();
        assert!(!reason.trim().is_empty(), "{path} has no reason");
    }
    let post = http
        .post(node.url("example.com/hello/@v/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    let ok = http
        .get(node.url("example.com/hello/@v/v1.0.0.mod"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK, "node still serves");
}

fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, body) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

/// An upstream whose artifacts for example.com/bad are each broken in one way.
fn hostile_upstream() -> HttpServer {
    const MOD: &[u8] = b"module example.com/bad\n";
    let routes: Vec<(&'static str, Vec<u8>)> = vec![
        ("/example.com/bad/@v/v1.0.0.mod", MOD.to_vec()),
        (
            "/example.com/bad/@v/v1.0.0.zip",
            zip_with(&[("example.com/bad@v1.0.0/../../evil.go", b"package evil")]),
        ),
        ("/example.com/bad/@v/v1.1.0.mod", MOD.to_vec()),
        (
            "/example.com/bad/@v/v1.1.0.zip",
            zip_with(&[("example.com/other@v1.1.0/a.go", b"package a")]),
        ),
        ("/example.com/bad/@v/v1.2.0.mod", MOD.to_vec()),
        (
            "/example.com/bad/@v/v1.2.0.zip",
            zip_with(&[
                ("example.com/bad@v1.2.0/A.go", b"package a"),
                ("example.com/bad@v1.2.0/a.go", b"package a"),
            ]),
        ),
        ("/example.com/bad/@v/v1.3.0.mod", MOD.to_vec()),
        (
            "/example.com/bad/@v/v1.3.0.zip",
            b"PK\x03\x04 this is not a zip".to_vec(),
        ),
        ("/example.com/bad/@v/v1.4.0.mod", MOD.to_vec()),
        (
            "/example.com/bad/@v/v1.4.0.zip",
            zip_with(&[(
                "example.com/bad@v1.4.0/go.mod",
                b"module example.com/evil\n",
            )]),
        ),
        (
            "/example.com/bad/@v/v1.5.0.mod",
            b"module example.com/evil\n".to_vec(),
        ),
        (
            "/example.com/bad/@v/v1.6.0.info",
            br#"{"Version":"v9.9.9","Time":"2022-01-01T00:00:00Z"}"#.to_vec(),
        ),
        ("/example.com/bad/@v/v1.7.0.info", b"not json".to_vec()),
        ("/example.com/bad/@v/v1.8.0.info", vec![b' '; 100 * 1024]),
    ];
    let mut router = axum::Router::new();
    for (path, body) in routes {
        router = router.route(
            path,
            axum::routing::get(move || async move { body.clone() }),
        );
    }
    HttpServer::serve(router)
}

#[tokio::test]
async fn invalid_upstream_content_is_never_cached() {
    let upstream = hostile_upstream();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("n1"), &upstream.url, &[]);
    let http = client();
    let bad = [
        "v1.0.0.zip",
        "v1.1.0.zip",
        "v1.2.0.zip",
        "v1.3.0.zip",
        "v1.4.0.zip",
        "v1.5.0.mod",
        "v1.6.0.info",
        "v1.7.0.info",
        "v1.8.0.info",
    ];
    for file in bad {
        let url = node.url(&format!("example.com/bad/@v/{file}"));
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{file}");
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "no-store",
            "{file}"
        );
        let offline = cache_only(&http, &url).send().await.unwrap();
        assert_eq!(offline.status(), StatusCode::NOT_FOUND, "{file} was cached");
    }
    let tmp = std::fs::read_dir(node.data_dir.join("blobs/tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 0, "staging files left behind");
}

#[tokio::test]
async fn failing_upstreams_give_404_after_bounded_retries_and_fallback_rules_hold() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let failing = HttpServer::serve(axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { (AxumStatus::SERVICE_UNAVAILABLE, "overloaded").into_response() }
    }));
    let missing = HttpServer::serve(
        axum::Router::new()
            .fallback(|| async { (AxumStatus::GONE, "gone for good").into_response() }),
    );
    let corpus = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let http = client();
    let path = "example.com/hello/@v/v1.0.0.info";

    // "," does not fall through on a 5xx: the answer is a 404 the client can fall back from.
    let comma = format!("{},{}", failing.url, corpus.url);
    let node = Node::start(&dir.path().join("a"), &comma, &[]);
    let response = http.get(node.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert!(response.text().await.unwrap().contains("bad upstream"));
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "default 3 attempts");

    // "|" falls through on any error; "," falls through on 404/410.
    let pipe = format!("{}|{},{}", failing.url, missing.url, corpus.url);
    let node = Node::start(&dir.path().join("b"), &pipe, &[]);
    let response = http.get(node.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // "off" refuses.
    let node = Node::start(&dir.path().join("c"), "off", &[]);
    let response = http.get(node.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("disabled"));
}
