//! The front end's router driven directly (`tower::ServiceExt::oneshot`), over an in-memory
//! index and no peers, with the corpus as a real upstream: fills, conditional and range
//! answers, refusals, readiness and metrics, route rules and environments, without a node
//! process.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use goproxy_http::{Frontend, FrontendConfig, Metrics};
use goproxy_routing::{EnvSpec, Mode, RouteSpec, RouteTable};
use goproxy_store::BlobStore;
use goproxy_testkit::memory::{MemoryIndex, NoPeers};
use goproxy_testkit::{corpus, HttpServer};
use http_body_util::BodyExt;
use prometheus_client::registry::Registry;
use tower::ServiceExt;

struct Fixture {
    router: axum::Router,
    frontend: Arc<Frontend>,
    index: Arc<MemoryIndex>,
    _upstream: HttpServer,
    _dir: tempfile::TempDir,
}

/// A front end over the corpus upstream, with route rules made by `routes` from its URL.
fn fixture_with(
    routes: impl FnOnce(&str) -> (Vec<RouteSpec>, BTreeMap<String, EnvSpec>),
) -> Fixture {
    fixture_configured(|_| {}, routes)
}

/// [`fixture_with`] after `configure` adjusts the front end's settings.
fn fixture_configured(
    configure: impl FnOnce(&mut FrontendConfig),
    routes: impl FnOnce(&str) -> (Vec<RouteSpec>, BTreeMap<String, EnvSpec>),
) -> Fixture {
    let upstream = HttpServer::serve_dir(&corpus::dir());
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path().join("blobs")).unwrap();
    let mut config = FrontendConfig {
        upstream: upstream.url.clone(),
        // No checksum database beside the corpus; verification has its own tests.
        verify_fills: false,
        ..FrontendConfig::default()
    };
    configure(&mut config);
    let (rules, environments) = routes(&upstream.url);
    let table = RouteTable::build(&config.upstream, &rules, &environments, &|_| false).unwrap();
    let index = Arc::new(MemoryIndex::default());
    let mut registry = Registry::with_prefix("goproxy");
    let metrics = Arc::new(Metrics::register(&mut registry));
    let frontend = Frontend::new(
        config,
        Arc::new(table),
        None,
        index.clone(),
        Arc::new(NoPeers),
        store,
        metrics,
        goproxy_http::access::Access::open(),
    )
    .unwrap();
    Fixture {
        router: frontend.router(Arc::new(registry)),
        frontend,
        index,
        _upstream: upstream,
        _dir: dir,
    }
}

/// Environments with one cache-only environment, `prod`.
fn cache_only_prod() -> BTreeMap<String, EnvSpec> {
    let prod = EnvSpec {
        mode: Mode::CacheOnly,
        ..EnvSpec::default()
    };
    BTreeMap::from([("prod".to_string(), prod)])
}

fn fixture() -> Fixture {
    fixture_with(|_| (Vec::new(), BTreeMap::new()))
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

/// `path` is answered 404 with `reason` in the body.
async fn refused(router: &axum::Router, path: &str, reason: &str) {
    let (status, _, body) = send(router, get(path)).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {text}");
    assert!(text.contains(reason), "{path}: {text}");
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

/// A second upstream holding one "private" module the corpus does not have.
fn private_upstream() -> (HttpServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("corp.example/lib/@v");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("list"), "v1.0.0\n").unwrap();
    std::fs::write(
        v.join("v1.0.0.info"),
        r#"{"Version":"v1.0.0","Time":"2026-01-02T03:04:05Z"}"#,
    )
    .unwrap();
    std::fs::write(v.join("v1.0.0.mod"), "module corp.example/lib\n").unwrap();
    (HttpServer::serve_dir(dir.path()), dir)
}

#[tokio::test]
async fn route_rules_pick_the_upstream_deny_with_403_and_environments_can_be_cache_only() {
    let (private, _private_dir) = private_upstream();
    let private_url = private.url.clone();
    let f = fixture_with(move |_| {
        let rules = vec![
            RouteSpec {
                pattern: "corp.example".into(),
                upstream: Some(private_url),
                ..RouteSpec::default()
            },
            RouteSpec {
                pattern: "example.com/banned,example.com/hello/internal".into(),
                deny: true,
                reason: Some("banned by the security team".into()),
                ..RouteSpec::default()
            },
        ];
        let envs = cache_only_prod();
        (rules, envs)
    });

    // The private module comes from its own upstream (the corpus does not have it).
    let (status, _, body) = send(&f.router, get("/corp.example/lib/@v/v1.0.0.mod")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"module corp.example/lib\n");
    let (status, _, body) = send(&f.router, get("/corp.example/lib/@v/list")).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, &b"v1.0.0\n"[..])
    );
    // Public paths still come from the default upstream.
    let (status, _, _) = send(&f.router, get("/example.com/hello/@v/list")).await;
    assert_eq!(status, StatusCode::OK);

    // Denied: 403 with the reason and the rule, in every environment, nothing fetched.
    for path in [
        "/example.com/banned/@v/list",
        "/example.com/hello/internal/@v/v1.0.0.info",
        "/env/prod/example.com/banned/@latest",
    ] {
        let (status, headers, body) = send(&f.router, get(path)).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {text}");
        assert!(
            text.contains("banned by the security team") && text.contains("route[1]"),
            "{text}"
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    }

    // The cache-only environment refuses fills with a reason, then serves what the default
    // environment filled.
    let prod = "/env/prod/example.com/hello/@v/v1.1.0.mod";
    let (status, _, body) = send(&f.router, get(prod)).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        text.contains("environment \"prod\" is cache-only"),
        "{text}"
    );
    let entries = f.index.entries().len();
    let (status, _, expected) = send(&f.router, get("/example.com/hello/@v/v1.1.0.mod")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f.index.entries().len(), entries + 1);
    let (status, _, body) = send(&f.router, get(prod)).await;
    assert_eq!((status, body), (StatusCode::OK, expected));
    let (status, _, body) = send(&f.router, get("/env/prod/example.com/hello/@v/list")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(String::from_utf8(body).unwrap().trim(), "v1.1.0");

    // Unknown environments are "not found", with the reason.
    let (status, _, body) = send(&f.router, get("/env/staging/example.com/hello/@v/list")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("unknown environment \"staging\""));
}

/// Review findings: checksum lookups skipped deny rules and leaked private paths to the
/// public checksum database; cache-only environments still forwarded sumdb requests; an
/// environment could fill a private path from a public upstream (dependency confusion).
#[tokio::test]
async fn checksum_lookups_and_other_environments_respect_private_and_denied_paths() {
    let f = fixture_with(|_| {
        let rules = vec![
            RouteSpec {
                pattern: "private.example".into(),
                upstream: Some("direct".into()),
                ..RouteSpec::default()
            },
            RouteSpec {
                pattern: "example.com/banned".into(),
                deny: true,
                ..RouteSpec::default()
            },
        ];
        let mut envs = cache_only_prod();
        envs.insert(
            "public".to_string(),
            EnvSpec {
                inherit_routes: false,
                ..EnvSpec::default()
            },
        );
        (rules, envs)
    });
    let lookup = |module: &str| format!("/sumdb/sum.golang.org/lookup/{module}@v1.0.0");
    let (status, _, body) = send(&f.router, get(&lookup("example.com/banned/x"))).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, body) = send(&f.router, get(&lookup("private.example/lib"))).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(text.contains("private module"), "{text}");
    // A cache-only environment serves what the cluster verified and kept (so an air-gapped
    // cluster still answers the go command's verification), and asks the database nothing.
    let (status, _, _) = send(&f.router, get("/env/prod/sumdb/sum.golang.org/supported")).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["lookup/example.com/hello@v1.0.0", "tile/8/0/000", "latest"] {
        let (status, _, body) = send(
            &f.router,
            get(&format!("/env/prod/sumdb/sum.golang.org/{path}")),
        )
        .await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(text.contains("cache-only"), "{path}: {text}");
    }

    // "public" does not inherit the private rule: it must not fill the private path from
    // its own upstream (the corpus would serve a look-alike if it had one).
    let (status, _, body) = send(
        &f.router,
        get("/env/public/private.example/lib/@v/v1.0.0.info"),
    )
    .await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(text.contains("fetched privately by route[0]"), "{text}");
    assert!(f.index.entries().is_empty(), "something was filled");
}

/// `/sumdb/NAME/` serves each configured checksum database from its URL (a real Go checksum
/// database here) and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_checksum_databases_are_served_and_others_are_not() {
    let db =
        goproxy_testkit::sumdb_server::SumdbServer::start(&corpus::dir(), "sum.test.example", 7, 0)
            .unwrap();
    let database = goproxy_sumdb::Database {
        name: "sum.test.example".into(),
        vkey: db.vkey.clone(),
        url: db.url.clone(),
    };
    let f = fixture_configured(
        move |config| config.sumdb = vec![database],
        |_| (Vec::new(), BTreeMap::new()),
    );
    let (status, _, _) = send(&f.router, get("/sumdb/sum.test.example/supported")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(&f.router, get("/sumdb/sum.golang.org/supported")).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        text.contains("sum.golang.org is not served here (served: sum.test.example)"),
        "{text}"
    );

    let path = "lookup/example.com/hello@v1.1.0";
    let (status, headers, body) =
        send(&f.router, get(&format!("/sumdb/sum.test.example/{path}"))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(headers[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("86400"));
    let (_, direct) =
        goproxy_testkit::sumdb_server::http_get(&format!("{}/{path}", db.url)).unwrap();
    assert_eq!(body, direct);
    // What came through the proxy verifies with the database's key.
    let key = goproxy_sumdb::Verifier::parse(&db.vkey).unwrap();
    let lookup = goproxy_sumdb::record::Lookup::parse(&body).unwrap();
    assert!(
        lookup.text.contains("example.com/hello v1.1.0 h1:"),
        "{}",
        lookup.text
    );
    lookup.tree(&key).unwrap();
    let (status, _, body) = send(&f.router, get("/sumdb/sum.test.example/latest")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(goproxy_sumdb::note::open(&body, &key).is_ok());
}

/// Issue 12: public fills are verified against a checksum database (a real Go one over the
/// corpus) before they are acknowledged; an upstream serving other bytes is refused with the
/// reason and nothing of it is cached; a route with `sumdb = "off"` is not verified; what
/// was verified is kept, so it is served once the database is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_are_verified_and_an_upstream_serving_other_bytes_is_refused() {
    use goproxy_protocol::index::{sumdb_key, ArtifactKey, ArtifactKind};
    use goproxy_testkit::corpus::{tampered, Tamper};
    use goproxy_testkit::sumdb_server::SumdbServer;

    const NAME: &str = "sum.test.example";
    let mut db = SumdbServer::start(&corpus::dir(), NAME, 7, 0).unwrap();
    let bad = tempfile::tempdir().unwrap();
    tampered(
        &bad.path().join("zip"),
        "example.com/hello",
        "v1.1.0",
        Tamper::Zip,
    )
    .unwrap();
    tampered(
        &bad.path().join("mod"),
        "github.com/BurntSushi/toml",
        "v1.2.0",
        Tamper::GoMod,
    )
    .unwrap();
    let bad_zip = HttpServer::serve_dir(&bad.path().join("zip"));
    let bad_mod = HttpServer::serve_dir(&bad.path().join("mod"));
    let database = goproxy_sumdb::Database {
        name: NAME.into(),
        vkey: db.vkey.clone(),
        url: db.url.clone(),
    };
    let (zip_url, mod_url) = (bad_zip.url.clone(), bad_mod.url.clone());
    let f = fixture_configured(
        |config| {
            config.sumdb = vec![database];
            config.verify_fills = true;
        },
        |_| {
            let hello = RouteSpec {
                pattern: "example.com/hello".into(),
                upstream: Some(zip_url),
                ..RouteSpec::default()
            };
            let toml = RouteSpec {
                pattern: "github.com/BurntSushi/toml".into(),
                upstream: Some(mod_url),
                ..RouteSpec::default()
            };
            let unverified = EnvSpec {
                inherit_routes: false,
                routes: vec![RouteSpec {
                    sumdb: Some("off".into()),
                    ..hello.clone()
                }],
                ..EnvSpec::default()
            };
            (
                vec![hello, toml],
                BTreeMap::from([("unverified".to_string(), unverified)]),
            )
        },
    );
    let has = |module: &str, version: &str, kind| {
        f.index.entries().iter().any(|e| {
            e.key
                == ArtifactKey {
                    module: module.into(),
                    version: version.into(),
                    kind,
                }
        })
    };

    // An honest upstream: verified and served.
    for kind in ["mod", "zip"] {
        let path = format!("/github.com/gin-gonic/gin/@v/v1.8.1.{kind}");
        let (status, _, body) = send(&f.router, get(&path)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // The lookup and the tiles that proved it are kept for the cluster.
    let lookup = sumdb_key(NAME, "lookup/github.com/gin-gonic/gin@v1.8.1");
    assert!(f.index.entries().iter().any(|e| e.key == lookup));

    // One altered byte in the zip: refused with the reason, nothing cached.
    const MISMATCH: &str = "checksum mismatch against sum.test.example";
    refused(&f.router, "/example.com/hello/@v/v1.1.0.zip", MISMATCH).await;
    assert!(!has("example.com/hello", "v1.1.0", ArtifactKind::Zip));
    // (Its go.mod was not altered: it verified, and is cached.)
    assert!(has("example.com/hello", "v1.1.0", ArtifactKind::Mod));

    // A different go.mod: refused, and the zip (which needs the go.mod) too.
    for kind in ["mod", "zip"] {
        let path = format!("/github.com/!burnt!sushi/toml/@v/v1.2.0.{kind}");
        refused(&f.router, &path, MISMATCH).await;
    }
    assert!(!has(
        "github.com/BurntSushi/toml",
        "v1.2.0",
        ArtifactKind::Mod
    ));
    assert!(!has(
        "github.com/BurntSushi/toml",
        "v1.2.0",
        ArtifactKind::Zip
    ));

    // The database is gone: what it proved is still served through /sumdb/, a version it
    // never proved is refused (fail closed), and a route with sumdb = "off" is not verified.
    db.stop();
    let (status, _, body) = send(
        &f.router,
        get("/sumdb/sum.test.example/lookup/github.com/gin-gonic/gin@v1.8.1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("github.com/gin-gonic/gin v1.8.1 h1:"));
    refused(
        &f.router,
        "/example.com/hello/@v/v1.0.0.mod",
        "checksum database sum.test.example is unreachable",
    )
    .await;
    assert!(!has("example.com/hello", "v1.0.0", ArtifactKind::Mod));
    let (status, _, body) = send(
        &f.router,
        get("/env/unverified/example.com/hello/@v/v1.1.0.zip"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(has("example.com/hello", "v1.1.0", ArtifactKind::Zip));
    // Review finding: the cache is shared by all routes, so what an unverified route cached
    // was served unverified through the verifying ones. Now a hit through a verifying route
    // is proved too (against the kept lookup: the database is still down) and refused.
    refused(&f.router, "/example.com/hello/@v/v1.1.0.zip", MISMATCH).await;
    // The verified ones are still served, from the cache, without the database.
    let (status, _, _) = send(&f.router, get("/github.com/gin-gonic/gin/@v/v1.8.1.zip")).await;
    assert_eq!(status, StatusCode::OK);
}

/// `sumdb_unreachable = "accept"`: while the database is unreachable, fills are served and
/// marked unverified; once it answers, the leader's recheck verifies them, and one whose
/// bytes the database contradicts is reported (log, metric, status).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_unverified_fills_are_verified_once_the_database_is_back() {
    use goproxy_http::config::Unreachable;
    use goproxy_testkit::corpus::{tampered, Tamper};
    use goproxy_testkit::sumdb_server::SumdbServer;

    const NAME: &str = "sum.test.example";
    // The database's address, with nothing there yet; its key is known in advance (the
    // same seed gives the same key).
    let key = SumdbServer::start(&corpus::dir(), NAME, 7, 0)
        .unwrap()
        .vkey
        .clone();
    let port = goproxy_testkit::ports::unused(1)[0];
    let addr = format!("127.0.0.1:{port}");
    let bad = tempfile::tempdir().unwrap();
    tampered(bad.path(), "example.com/hello", "v1.1.0", Tamper::Zip).unwrap();
    let bad_upstream = HttpServer::serve_dir(bad.path());
    let bad_url = bad_upstream.url.clone();
    let database = goproxy_sumdb::Database {
        name: NAME.into(),
        vkey: key,
        url: format!("http://{addr}"),
    };
    let f = fixture_configured(
        |config| {
            config.sumdb = vec![database];
            config.verify_fills = true;
            config.sumdb_unreachable = Unreachable::Accept;
        },
        |_| {
            let hello = RouteSpec {
                pattern: "example.com/hello".into(),
                upstream: Some(bad_url),
                ..RouteSpec::default()
            };
            (vec![hello], BTreeMap::new())
        },
    );
    for path in [
        "/github.com/gin-gonic/gin/@v/v1.8.1.zip",
        "/example.com/hello/@v/v1.1.0.zip",
    ] {
        let (status, _, body) = send(&f.router, get(path)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // Hits are served unverified too (prepared answers among them: see tests/prepared.rs).
    for _ in 0..3 {
        let (status, _, _) = send(&f.router, get("/example.com/hello/@v/v1.1.0.zip")).await;
        assert_eq!(status, StatusCode::OK);
    }
    // Unreachable: nothing verified, everything waits (.mod and .zip of both).
    let reports = f.frontend.recheck_unverified().await;
    assert_eq!(reports[0].1.pending, 4, "{reports:?}");
    assert_eq!(f.frontend.checksum_status()[0].unverified, 4);

    let _db = SumdbServer::start_on(&corpus::dir(), NAME, 7, 0, &addr).unwrap();
    let reports = f.frontend.recheck_unverified().await;
    let report = &reports[0].1;
    assert_eq!((report.verified, report.pending), (3, 0), "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert!(
        report.refused[0].contains("checksum mismatch against sum.test.example")
            && report.refused[0].contains("example.com/hello@v1.1.0.zip"),
        "{report:?}"
    );
    let status = &f.frontend.checksum_status()[0];
    assert_eq!((status.unverified, status.refused_after_accept), (0, 1));
    // Settled: a later pass reports nothing again.
    let reports = f.frontend.recheck_unverified().await;
    assert_eq!(reports[0].1, goproxy_checksum::Recheck::default());
    // The refused zip is no longer served, though its answer was prepared.
    let (status, _, _) = send(&f.router, get("/example.com/hello/@v/v1.1.0.zip")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
