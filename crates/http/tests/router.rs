//! The front end's router driven directly (`tower::ServiceExt::oneshot`), over an in-memory
//! index and no peers, with the corpus as a real upstream: fills, conditional and range
//! answers, refusals, readiness and metrics, without a node process.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use goproxy_http::{Frontend, FrontendConfig, Metrics};
use goproxy_store::BlobStore;
use goproxy_testkit::memory::{MemoryIndex, NoPeers};
use goproxy_testkit::{corpus, HttpServer};
use http_body_util::BodyExt;
use prometheus_client::registry::Registry;
use tower::ServiceExt;

struct Fixture {
    router: axum::Router,
    index: Arc<MemoryIndex>,
    _upstream: HttpServer,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let upstream = HttpServer::serve_dir(&corpus::dir());
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path().join("blobs")).unwrap();
    let config = FrontendConfig {
        upstream: upstream.url.clone(),
        ..FrontendConfig::default()
    };
    let index = Arc::new(MemoryIndex::default());
    let mut registry = Registry::with_prefix("goproxy");
    let metrics = Arc::new(Metrics::register(&mut registry));
    let frontend = Frontend::new(config, index.clone(), Arc::new(NoPeers), store, metrics).unwrap();
    Fixture {
        router: frontend.router(Arc::new(registry)),
        index,
        _upstream: upstream,
        _dir: dir,
    }
}

async fn send(
    router: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_miss_fills_once_and_hits_answer_conditionally_and_by_range() {
    let f = fixture();
    let path = "/example.com/hello/@v/v1.0.0.mod";
    let expected = std::fs::read(corpus::dir().join(&path[1..])).unwrap();
    let (status, headers, body) = send(&f.router, get(path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, expected);
    assert_eq!(f.index.entries().len(), 1, "one committed entry");
    let etag = headers[header::ETAG].to_str().unwrap().to_string();

    let conditional = Request::get(path)
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(&f.router, conditional).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));

    let ranged = Request::get(path)
        .header(header::RANGE, "bytes=0-5")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(&f.router, ranged).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, expected[..6]);
    assert_eq!(
        headers[header::CONTENT_RANGE],
        format!("bytes 0-5/{}", expected.len()).as_str()
    );
    assert_eq!(f.index.entries().len(), 1, "hits commit nothing");
}

#[tokio::test]
async fn bad_requests_are_refused_with_reasons_and_the_node_reports_itself() {
    let f = fixture();
    let (status, headers, body) = send(&f.router, get("/example.com/../etc/passwd/@v/list")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(!body.is_empty());
    let post = Request::builder()
        .method(Method::POST)
        .uri("/example.com/hello/@v/list")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(&f.router, post).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "GET, HEAD");

    let (status, _, body) = send(&f.router, get("/readyz")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = send(&f.router, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("goproxy_http_requests_total"), "{text}");
}
