//! Prepared answers (a repeated hit on a small artifact skips parsing, routing and header
//! building): the same answer and bookkeeping as the normal path, and never an answer the
//! normal path would not give: after a purge, an eviction, a block or a revoked token, or for
//! a request whose headers ask for something else.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use goproxy_access::{Anonymous, Grant, Grants, Role, TokenHash};
use goproxy_http::access::{Access, TokenSource};
use goproxy_http::operate::CachePolicy;
use goproxy_http::{Frontend, FrontendConfig, Metrics};
use goproxy_protocol::index::{ArtifactKey, ArtifactKind};
use goproxy_routing::{RouteSpec, RouteTable};
use goproxy_store::BlobStore;
use goproxy_testkit::memory::{MemoryIndex, NoPeers};
use goproxy_testkit::{corpus, HttpServer};
use http_body_util::BodyExt;
use prometheus_client::registry::Registry;
use tower::ServiceExt;

const MODULE: &str = "example.com/hello";
const VERSION: &str = "v1.0.0";
const ZIP: &str = "/example.com/hello/@v/v1.0.0.zip";
const MOD: &str = "/example.com/hello/@v/v1.0.0.mod";
const INFO: &str = "/example.com/hello/@v/v1.0.0.info";
/// Enough requests of one path for its answer to be prepared and then served prepared.
const TO_PREPARE: usize = 3;

/// Tokens that a test changes while the front end runs (as the cluster's do).
#[derive(Default)]
struct Tokens(Mutex<Arc<Grants>>);

impl Tokens {
    /// Puts `(name, secret, deny)` tokens in force, and only them.
    fn set(&self, tokens: &[(&str, &str, Option<&str>)]) {
        let grants = tokens
            .iter()
            .map(|(name, secret, deny)| Grant {
                name: name.to_string(),
                role: Role::Read,
                allow: None,
                deny: deny.map(str::to_string),
                expires_at_ms: None,
                hash: TokenHash::of(secret),
                created_at_ms: 0,
            })
            .collect();
        *self.0.lock().unwrap() = Arc::new(Grants::new(grants).unwrap());
    }
}

impl TokenSource for Tokens {
    fn grants(&self) -> Arc<Grants> {
        self.0.lock().unwrap().clone()
    }

    fn member_key(&self) -> Option<Arc<str>> {
        None
    }
}

/// Block rules that a test changes: the modules blocked, at every version.
#[derive(Default)]
struct Blocks(Mutex<Vec<String>>);

impl CachePolicy for Blocks {
    fn blocked(&self, module: &str, _version: Option<&str>) -> Option<(String, String)> {
        let blocked = self.0.lock().unwrap();
        blocked
            .iter()
            .any(|m| m == module)
            .then(|| (format!("{module}@all"), "blocked by the test".to_string()))
    }

    fn touched(&self, _: &str, _: &str) {}
}

struct Fixture {
    router: axum::Router,
    frontend: Arc<Frontend>,
    index: Arc<MemoryIndex>,
    metrics: Arc<Metrics>,
    store: BlobStore,
    tokens: Arc<Tokens>,
    blocks: Arc<Blocks>,
    downloads: Arc<goproxy_audit::downloads::Downloads>,
    /// What the upstream serves (a copy of the corpus's `example.com/hello`).
    upstream_dir: tempfile::TempDir,
    _private_dir: tempfile::TempDir,
    _upstreams: [HttpServer; 2],
    _dir: tempfile::TempDir,
}

/// A front end over a copy of `example.com/hello`, and `corp.example/lib` fetched with
/// credentials (so private); anonymous clients may do `anonymous`.
fn fixture(anonymous: Anonymous) -> Fixture {
    let upstream_dir = tempfile::tempdir().unwrap();
    let from = corpus::dir().join("example.com/hello/@v");
    let to = upstream_dir.path().join("example.com/hello/@v");
    std::fs::create_dir_all(&to).unwrap();
    for file in std::fs::read_dir(&from).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
    }
    let upstream = HttpServer::serve_dir(upstream_dir.path());
    let private_dir = tempfile::tempdir().unwrap();
    write(
        &private_dir.path().join("corp.example/lib/@v/v1.0.0.mod"),
        b"module corp.example/lib\n",
    );
    let private = HttpServer::serve_dir(private_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path().join("blobs")).unwrap();
    let config = FrontendConfig {
        upstream: upstream.url.clone(),
        verify_fills: false,
        ..FrontendConfig::default()
    };
    let rules = vec![RouteSpec {
        pattern: "corp.example".into(),
        upstream: Some(private.url.clone()),
        credentials: Some("corp".into()),
        ..RouteSpec::default()
    }];
    let table = RouteTable::build(&config.upstream, &rules, &BTreeMap::new(), &|_| true).unwrap();
    let index = Arc::new(MemoryIndex::default());
    let mut registry = Registry::with_prefix("goproxy");
    let metrics = Arc::new(Metrics::register(&mut registry));
    let tokens = Arc::new(Tokens::default());
    let blocks = Arc::new(Blocks::default());
    let access = Access {
        anonymous,
        tokens: tokens.clone(),
        policy: blocks.clone(),
        ..Access::open()
    };
    let downloads = access.downloads.clone();
    let frontend = Frontend::new(
        config,
        Arc::new(table),
        None,
        index.clone(),
        Arc::new(NoPeers),
        store.clone(),
        metrics.clone(),
        access,
    )
    .unwrap();
    Fixture {
        router: frontend.router(Arc::new(registry)),
        frontend,
        index,
        metrics,
        store,
        tokens,
        blocks,
        downloads,
        upstream_dir,
        _private_dir: private_dir,
        _upstreams: [upstream, private],
        _dir: dir,
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

impl Fixture {
    /// Sends `method path` with `headers`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (parts.status, parts.headers, bytes)
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        self.send(Method::GET, path, &[]).await
    }

    /// GETs `path` until its answer is served prepared (the last of [`TO_PREPARE`] requests);
    /// returns the answers.
    async fn prepare(&self, path: &str, headers: &[(&str, &str)]) -> Vec<(HeaderMap, Vec<u8>)> {
        let mut answers = Vec::new();
        let mut before = 0;
        for _ in 0..TO_PREPARE {
            before = self.metrics.prepared_hits();
            let (status, headers, body) = self.send(Method::GET, path, headers).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{path}: {}",
                String::from_utf8_lossy(&body)
            );
            answers.push((headers, body));
        }
        assert_eq!(
            self.metrics.prepared_hits(),
            before + 1,
            "{path}: the last request was answered prepared"
        );
        answers
    }

    /// The downloads counted for `module@version`.
    fn downloads(&self, module: &str, version: &str) -> u64 {
        self.downloads
            .snapshot()
            .versions
            .iter()
            .find(|v| v.module == module && v.version == version)
            .map_or(0, |v| v.downloads)
    }
}

fn corpus_file(path: &str) -> Vec<u8> {
    std::fs::read(corpus::dir().join(&path[1..])).unwrap()
}

#[tokio::test]
async fn a_prepared_answer_is_the_normal_answer_and_is_counted_the_same() {
    let f = fixture(Anonymous::Allow);
    for path in [INFO, MOD, ZIP] {
        let answers = f.prepare(path, &[]).await;
        let (first, prepared) = (&answers[0], &answers[TO_PREPARE - 1]);
        assert_eq!(first.0, prepared.0, "{path}: the same headers");
        assert_eq!(first.1, corpus_file(path));
        assert_eq!(prepared.1, corpus_file(path), "{path}: the same body");
        for name in [
            header::ETAG,
            header::CACHE_CONTROL,
            header::ACCEPT_RANGES,
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
        ] {
            assert!(prepared.0.contains_key(&name), "{path}: {name}");
        }
    }
    // Every whole zip is a download, prepared or not; every request is counted by route and
    // status, every hit as a hit, on the dashboard and in the served bytes.
    assert_eq!(f.downloads(MODULE, VERSION), TO_PREPARE as u64);
    let (_, _, metrics) = f.get("/metrics").await;
    let metrics = String::from_utf8(metrics).unwrap();
    let hits = TO_PREPARE - 1;
    for kind in ["info", "mod", "zip"] {
        for line in [
            format!("goproxy_http_requests_total{{route=\"{kind}\",status=\"200\"}} {TO_PREPARE}"),
            format!("goproxy_cache_lookups_total{{kind=\"{kind}\",outcome=\"hit\"}} {hits}"),
            format!("goproxy_cache_lookups_total{{kind=\"{kind}\",outcome=\"miss\"}} 1"),
        ] {
            assert!(metrics.contains(&line), "{line} in\n{metrics}");
        }
    }
    let counters = f.frontend.counters();
    assert_eq!(
        (counters.requests, counters.hits, counters.fills),
        (3 * TO_PREPARE as u64, 3 * hits as u64, 3)
    );
    let served: u64 = [INFO, MOD, ZIP]
        .iter()
        .map(|p| corpus_file(p).len() as u64 * TO_PREPARE as u64)
        .sum();
    assert_eq!(f.metrics.served_bytes(), served);
}

#[tokio::test]
async fn requests_a_prepared_answer_would_ignore_take_the_normal_path() {
    let f = fixture(Anonymous::Allow);
    let answers = f.prepare(ZIP, &[]).await;
    let etag = answers[0].0[header::ETAG].to_str().unwrap().to_string();
    let whole = corpus_file(ZIP);
    let prepared_hits = f.metrics.prepared_hits();

    let (status, headers, body) = f.send(Method::GET, ZIP, &[("range", "bytes=0-9")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, whole[..10]);
    assert_eq!(
        headers[header::CONTENT_RANGE],
        format!("bytes 0-9/{}", whole.len()).as_str()
    );
    let (status, _, body) = f.send(Method::GET, ZIP, &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    // If-Range naming another version: the whole artifact (still the normal path).
    let (status, _, body) = f
        .send(
            Method::GET,
            ZIP,
            &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, whole.clone()));
    let (status, headers, body) = f.send(Method::HEAD, ZIP, &[]).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    assert_eq!(
        headers[header::CONTENT_LENGTH],
        whole.len().to_string().as_str()
    );
    let (status, _, body) = f
        .send(Method::GET, ZIP, &[("disable-module-fetch", "true")])
        .await;
    assert_eq!((status, body), (StatusCode::OK, whole.clone()));
    let (status, _, _) = f.send(Method::POST, ZIP, &[]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        f.metrics.prepared_hits(),
        prepared_hits,
        "none of them was answered prepared"
    );
    // Downloads: the whole GETs only (the If-Range one and the cache-only one).
    assert_eq!(f.downloads(MODULE, VERSION), TO_PREPARE as u64 + 2);

    // A plain GET is answered prepared again.
    let (status, _, body) = f.get(ZIP).await;
    assert_eq!((status, body), (StatusCode::OK, whole));
    assert_eq!(f.metrics.prepared_hits(), prepared_hits + 1);
}

#[tokio::test]
async fn a_purged_version_is_filled_again_not_answered_prepared() {
    let f = fixture(Anonymous::Allow);
    let old = f.prepare(MOD, &[]).await.remove(0).1;
    let new = b"module example.com/hello\n\ngo 1.22\n".to_vec();
    write(&f.upstream_dir.path().join(&MOD[1..]), &new);
    let (_, _, body) = f.get(MOD).await;
    assert_eq!(body, old, "without a purge the first content stays");

    // The purge as the node applies it: out of the index, then forgotten by the front end.
    let key = ArtifactKey {
        module: MODULE.into(),
        version: VERSION.into(),
        kind: ArtifactKind::Mod,
    };
    assert!(f.index.remove(&key).is_some());
    f.frontend.forget_version(MODULE, VERSION);
    let (status, _, body) = f.get(MOD).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, new, "filled again from the upstream's new bytes");
    // And the new answer is prepared in turn.
    let answers = f.prepare(MOD, &[]).await;
    assert!(answers.iter().all(|(_, body)| *body == new));
}

#[tokio::test]
async fn an_evicted_blob_is_fetched_again_not_answered_prepared() {
    let f = fixture(Anonymous::Allow);
    f.prepare(ZIP, &[]).await;
    let key = ArtifactKey {
        module: MODULE.into(),
        version: VERSION.into(),
        kind: ArtifactKind::Zip,
    };
    let entry = f
        .index
        .entries()
        .into_iter()
        .find(|e| e.key == key)
        .unwrap();
    assert!(f.store.contains(&entry.blob).await.unwrap());

    // The eviction as the node runs it: forgotten by the front end, then removed from disk.
    f.frontend.forget_blob(&entry.blob.sha256);
    assert!(f.store.remove(&entry.blob.sha256).await.unwrap());
    let (status, _, body) = f.get(ZIP).await;
    assert_eq!((status, body), (StatusCode::OK, corpus_file(ZIP)));
    assert!(
        f.store.contains(&entry.blob).await.unwrap(),
        "the normal path repaired the blob on disk"
    );
}

#[tokio::test]
async fn a_block_refuses_a_prepared_path_until_it_is_lifted() {
    let f = fixture(Anonymous::Allow);
    for path in [INFO, ZIP] {
        f.prepare(path, &[]).await;
    }
    let downloads = f.downloads(MODULE, VERSION);
    f.blocks.0.lock().unwrap().push(MODULE.to_string());
    for path in [INFO, ZIP] {
        let (status, _, body) = f.get(path).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {text}");
        assert!(text.contains("blocked by the test"), "{text}");
    }
    assert_eq!(f.downloads(MODULE, VERSION), downloads, "no download");
    f.blocks.0.lock().unwrap().clear();
    let prepared_hits = f.metrics.prepared_hits();
    for path in [INFO, ZIP] {
        let (status, _, body) = f.get(path).await;
        assert_eq!((status, body), (StatusCode::OK, corpus_file(path)));
    }
    assert_eq!(f.metrics.prepared_hits(), prepared_hits + 2);
}

#[tokio::test]
async fn tokens_and_path_rules_are_checked_on_every_prepared_hit() {
    let f = fixture(Anonymous::Deny);
    f.tokens.set(&[
        ("ci", "ci-secret", None),
        ("narrow", "narrow-secret", Some("example.com/hello")),
    ]);
    let ci = [("authorization", "Bearer ci-secret")];
    f.prepare(MOD, &ci).await;
    for (headers, refused) in [
        (vec![], StatusCode::UNAUTHORIZED),
        (
            vec![("authorization", "Bearer narrow-secret")],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![("authorization", "Bearer not-a-token")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            vec![("authorization", "Digest x")],
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let (status, _, body) = f.send(Method::GET, MOD, &headers).await;
        assert_eq!(
            status,
            refused,
            "{headers:?}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // Revoked while its answer is prepared: refused from then on.
    f.tokens
        .set(&[("narrow", "narrow-secret", Some("example.com/hello"))]);
    let (status, _, _) = f.send(Method::GET, MOD, &ci).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    f.tokens.set(&[("ci", "ci-secret", None)]);
    let prepared_hits = f.metrics.prepared_hits();
    let (status, _, _) = f.send(Method::GET, MOD, &ci).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f.metrics.prepared_hits(), prepared_hits + 1);
}

#[tokio::test]
async fn an_anonymous_client_of_a_public_only_proxy_is_refused_a_prepared_private_path() {
    let f = fixture(Anonymous::PublicOnly);
    f.tokens.set(&[("ci", "ci-secret", None)]);
    let private = "/corp.example/lib/@v/v1.0.0.mod";
    let answers = f
        .prepare(private, &[("authorization", "Bearer ci-secret")])
        .await;
    assert_eq!(answers[0].1, b"module corp.example/lib\n");
    let (status, _, body) = f.get(private).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("this path needs a token"), "{text}");
    // A public path is prepared for anonymous clients as usual.
    f.prepare(MOD, &[]).await;
}
