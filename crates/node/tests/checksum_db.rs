//! The real go client verifies go.sum through the node: GOSUMDB names a checksum database
//! (a real Go one over the corpus) without a URL, so the go command asks the proxy, which
//! serves it from its `[[proxy.sumdb]]` URL.

mod support;

use support::go::{app, go_with};
use support::{corpus_dir, HttpServer, Node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_command_verifies_through_the_node() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let db =
        goproxy_testkit::sumdb_server::SumdbServer::start(&corpus_dir(), "sum.test.example", 7, 0)
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[[proxy.sumdb]]\nname = \"sum.test.example\"\nvkey = \"{}\"\nurl = \"{}\"\n",
            db.vkey, db.url
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let node = Node::start(
        &dir.path().join("node"),
        &upstream.url,
        &["--config", &config],
    );
    let proxy = node.http.clone();
    let home = dir.path().join("home");
    let work = dir.path().join("app");
    app(
        &work,
        "package main\n\nimport \"example.com/hello\"\n\nfunc main() { println(hello.Greeting()) }\n",
    );
    let vkey = db.vkey.clone();
    tokio::task::spawn_blocking(move || {
        let (ok, out, err) = go_with(
            &home,
            &work,
            &proxy,
            &vkey,
            &["get", "example.com/hello@v1.1.0"],
        );
        assert!(ok, "{out}\n{err}");
        let sum = std::fs::read_to_string(work.join("go.sum")).unwrap();
        assert!(sum.contains("example.com/hello v1.1.0 h1:"), "{sum}");
        // The go command kept what it verified through the proxy.
        assert!(home
            .join("gopath/pkg/sumdb/sum.test.example/latest")
            .exists());
        let (ok, out, err) = go_with(&home, &work, &proxy, &vkey, &["build", "-o", "app", "."]);
        assert!(ok, "{out}\n{err}");
        // A key the database does not sign with: the go command refuses what comes through.
        let stranger = goproxy_testkit::sumdb_server::SumdbServer::start(
            &support::corpus_dir(),
            "sum.test.example",
            9,
            0,
        )
        .unwrap();
        let other_home = home.with_file_name("other-home");
        let (ok, _, err) = go_with(
            &other_home,
            &work,
            &proxy,
            &stranger.vkey,
            &["mod", "download", "example.com/hello@v1.0.0"],
        );
        assert!(!ok, "verified with the wrong key");
        assert!(err.contains("sum.test.example"), "{err}");
    })
    .await
    .unwrap();
}
