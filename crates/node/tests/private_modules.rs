//! Private modules end to end: a private git host (`git http-backend`, basic auth,
//! `go-import` meta tags) in the test's own network namespace, whose host name resolves only
//! there (`/etc/netns/NS/hosts`); goproxy-ha nodes with a `direct` route and a credential
//! set; the real go client with GOPROXY = a node only (GOPRIVATE unset).

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use goproxy_testkit::git_host::{fixture_repos, GitHost};
use goproxy_testkit::netns::{is_root, Netns};
use support::cluster::{agreed_leader, free_ports, write_config_with, SEMI_SYNC};
use support::go::{app, go, go_ok};
use support::{corpus_dir, HttpServer, Node};

const HOST: &str = "git.corp.test";
const PASSWORD: &str = "s3cret-pw-4711";

const MAIN_GO: &str = r#"package main

import (
	"fmt"

	"example.com/hello"
	lib "git.corp.test/team/lib"
	libv2 "git.corp.test/team/lib/v2"
)

func main() { fmt.Println(lib.Version(), libv2.Version(), hello.Greeting()) }
"#;

/// The namespace, the git host and the public corpus upstream of one test. The calling
/// thread is moved into the namespace, so everything it starts lives there.
struct Lab {
    ns: Netns,
    dir: tempfile::TempDir,
    git: GitHost,
    public: HttpServer,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.git.stop();
        self.public.stop();
        self.ns.delete();
    }
}

impl Lab {
    fn new(tag: &str) -> Self {
        let ns = Netns::create(&format!("gpprv-{tag}-{}", std::process::id())).expect("netns");
        ns.set_hosts(&format!("127.0.0.1 localhost {HOST}\n"))
            .unwrap();
        ns.enter().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let repos = dir.path().join("repos");
        fixture_repos(&repos, HOST).unwrap();
        let listener = ns.bind_tcp("127.0.0.1:80").unwrap();
        let git = GitHost::start(listener, HOST, &repos, "alice", PASSWORD).unwrap();
        let public = HttpServer::serve_dir(&corpus_dir());
        Self {
            ns,
            dir,
            git,
            public,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Route rules, credential sets (the right password, and a wrong one for the
    /// `wrongpw` environment) and VCS settings.
    fn routes(&self) -> String {
        for (name, password) in [("netrc", PASSWORD), ("netrc-wrong", "not-the-password")] {
            std::fs::write(
                self.path(name),
                format!("machine {HOST} login alice password {password}\n"),
            )
            .unwrap();
        }
        format!(
            r#"
[[route]]
match = "{HOST}"
upstream = "direct"
credentials = "corp"

[env.wrongpw]
inherit_routes = false
[[env.wrongpw.route]]
match = "{HOST}"
upstream = "direct"
credentials = "wrong"

[credentials.corp]
netrc_file = {:?}

[credentials.wrong]
netrc_file = {:?}

[vcs]
insecure_hosts = ["{HOST}"]
timeout = "2m"
max_zip_bytes = 1048576
"#,
            self.path("netrc"),
            self.path("netrc-wrong"),
        )
    }

    fn node(&self, name: &str) -> Node {
        let config = self.path(&format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[proxy]\nupstream = \"{}\"\nupstream_attempts = 1\nlist_ttl = \"1s\"\n{}",
                self.public.url,
                self.routes()
            ),
        )
        .unwrap();
        let args: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--raft-listen",
            "127.0.0.1:0",
            "--config",
            &config.to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let node = Node::spawn_in(&self.ns, &self.path(name), &args);
        node.wait_ready();
        node
    }
}

fn get(url: &str, cache_only: bool) -> (u16, String) {
    let (status, _, text) = get_with_cache_control(url, cache_only);
    (status, text)
}

fn get_with_cache_control(url: &str, cache_only: bool) -> (u16, String, String) {
    let mut request = support::client().get(url);
    if cache_only {
        request = request.header("Disable-Module-Fetch", "true");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let cache_control = response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (
            status,
            cache_control,
            response.text().await.unwrap_or_default(),
        )
    })
}

/// No secret and no local path of the node in a client-facing answer.
fn clean(text: &str, lab: &Lab) {
    assert!(
        !text.contains(PASSWORD) && !text.contains("not-the-password"),
        "secret in {text:?}"
    );
    assert!(
        !text.contains(&*lab.dir.path().to_string_lossy()),
        "local path in {text:?}"
    );
}

#[test]
fn private_modules_build_next_to_public_ones_and_failures_are_explained() {
    if !is_root() {
        eprintln!("skipped: the private git host runs in a network namespace (needs root)");
        return;
    }
    let mut lab = Lab::new("one");
    let node = lab.node("node");
    let proxy = node.http.clone();
    let home = lab.path("home");
    let work = lab.path("app");
    app(&work, MAIN_GO);

    // Tagged versions, a branch (pseudo-version), the version list, the /v2 subdirectory.
    go_ok(
        &home,
        &work,
        &proxy,
        &["get", "git.corp.test/team/lib@v1.0.0"],
    );
    go_ok(
        &home,
        &work,
        &proxy,
        &["get", "git.corp.test/team/lib@main"],
    );
    let go_mod = std::fs::read_to_string(work.join("go.mod")).unwrap();
    assert!(
        go_mod.contains("git.corp.test/team/lib v1.1.1-0.20260401000000-"),
        "{go_mod}"
    );
    go_ok(
        &home,
        &work,
        &proxy,
        &["get", "git.corp.test/team/lib@v1.1.0"],
    );
    let versions = go_ok(
        &home,
        &work,
        &proxy,
        &["list", "-m", "-versions", "git.corp.test/team/lib"],
    );
    assert_eq!(versions.trim(), "git.corp.test/team/lib v1.0.0 v1.1.0");
    go_ok(
        &home,
        &work,
        &proxy,
        &[
            "get",
            "git.corp.test/team/lib/v2@v2.0.0",
            "example.com/hello@v1.1.0",
        ],
    );
    go_ok(&home, &work, &proxy, &["build", "-o", "app", "."]);
    let out = std::process::Command::new(work.join("app"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "v1.1.0 v2.0.0 hello v1.1.0"
    );

    // Failures: a clear 404 reason, no secret, no local path.
    let (status, text) = get(&node.url("git.corp.test/team/nope/@v/v1.0.0.info"), false);
    assert_eq!(status, 404);
    assert!(text.contains("not found"), "{text}");
    clean(&text, &lab);
    let (status, text) = get(
        &node.url("env/wrongpw/git.corp.test/team/lib/@v/v1.0.1.info"),
        false,
    );
    assert_eq!(status, 404);
    assert!(text.contains("refused the route's credentials"), "{text}");
    clean(&text, &lab);

    // Hostile repositories: refused with a reason, nothing cached.
    for (path, reason) in [
        ("git.corp.test/team/liar/@v/v1.0.0.mod", "someone-else"),
        ("git.corp.test/team/escape/@v/v1.0.0.zip", "symbolic link"),
        ("git.corp.test/team/case/@v/v1.0.0.zip", "case-insensitive"),
        ("git.corp.test/team/big/@v/v1.0.0.zip", "max_zip_bytes"),
    ] {
        let (status, text) = get(&node.url(path), false);
        assert_eq!(status, 404, "{path}: {text}");
        assert!(text.contains(reason), "{path}: {text}");
        clean(&text, &lab);
        let (status, text) = get(&node.url(path), true);
        assert_eq!(status, 404, "{path} was cached: {text}");
        assert!(text.contains("not cached"), "{path}: {text}");
    }

    // The git host goes down: cached versions keep being served, the list from the cache
    // once it is stale, and a new version fails with the reason.
    lab.git.stop();
    let (status, text) = get(&node.url("git.corp.test/team/lib/@v/v1.0.0.info"), false);
    assert_eq!(status, 200, "{text}");
    // list_ttl = 1s: once it has passed, the list is asked again, fails, and is answered from
    // what was fetched before ("no-cache": degraded).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, cache_control, text) =
            get_with_cache_control(&node.url("git.corp.test/team/lib/@v/list"), false);
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("v1.0.0") && text.contains("v1.1.0"), "{text}");
        if cache_control == "no-cache" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the list never went stale"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, text) = get(&node.url("git.corp.test/team/lib/@v/v1.0.1.info"), false);
    assert_eq!(status, 404);
    assert!(text.contains("connection refused"), "{text}");
    clean(&text, &lab);
    go_ok(&home, &work, &proxy, &["clean", "-modcache"]);
    std::fs::remove_file(work.join("app")).unwrap();
    go_ok(&home, &work, &proxy, &["build", "-o", "app", "."]);

    // Nothing secret in the node's log or metrics either.
    let (_, metrics) = get(&node.url("metrics"), false);
    clean(&metrics, &lab);
    let log = node.log_text();
    assert!(
        !log.contains(PASSWORD) && !log.contains("not-the-password"),
        "secret in the log"
    );
}

#[test]
fn a_private_fill_through_a_follower_is_cloned_by_the_leader_alone_and_survives_it() {
    if !is_root() {
        eprintln!("skipped: the private git host runs in a network namespace (needs root)");
        return;
    }
    let mut lab = Lab::new("three");
    let ports = free_ports(6);
    let dir = lab.path("cluster");
    std::fs::create_dir_all(&dir).unwrap();
    let mut nodes: BTreeMap<u64, Node> = BTreeMap::new();
    for id in 1..=3u64 {
        let config = dir.join(format!("n{id}.toml"));
        write_config_with(
            &config,
            id,
            &ports,
            &lab.public.url,
            SEMI_SYNC,
            &lab.routes(),
        );
        let args = vec![
            "--config".to_string(),
            config.to_string_lossy().into_owned(),
        ];
        nodes.insert(
            id,
            Node::spawn_in(&lab.ns, &dir.join(format!("n{id}")), &args),
        );
    }
    for node in nodes.values() {
        node.wait_ready();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let leader = runtime.block_on(agreed_leader(&nodes));
    let followers: Vec<u64> = nodes.keys().copied().filter(|id| *id != leader).collect();
    let home = lab.path("home");
    let work = lab.path("app");
    app(&work, MAIN_GO);

    // Review finding: the follower-to-leader header, sent by a client, made a follower run
    // the go command itself. It never does.
    let spoofed = runtime.block_on(async {
        let response = support::client()
            .get(nodes[&followers[1]].url("git.corp.test/team/lib/@v/list"))
            .header("x-goproxy-ha-forwarded", "1")
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    });
    assert_eq!(spoofed.0, 404, "{}", spoofed.1);
    assert!(
        spoofed.1.contains("only the leader fetches"),
        "{}",
        spoofed.1
    );

    let through = nodes[&followers[0]].http.clone();
    let fetches_before = lab.git.fetches();
    let (ok, _, stderr) = go(
        &home,
        &work,
        &through,
        &[
            "get",
            "git.corp.test/team/lib@v1.1.0",
            "git.corp.test/team/lib/v2@v2.0.0",
            "example.com/hello@v1.1.0",
        ],
    );
    assert!(ok, "{stderr}");
    println!("$ GOPROXY={through} go get git.corp.test/team/lib@v1.1.0 git.corp.test/team/lib/v2@v2.0.0 example.com/hello@v1.1.0\n{stderr}");
    go_ok(&home, &work, &through, &["build", "-o", "app", "."]);
    let run = std::process::Command::new(work.join("app"))
        .output()
        .unwrap();
    println!(
        "$ go build -o app . && ./app\n{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let fetches = lab.git.fetches() - fetches_before;
    let requests = lab.git.requests().len();
    println!("git host after a private build through follower {}: {fetches} fetches (git-upload-pack), {requests} requests in all", followers[0]);
    // Only the leader ran the go command: only it has clones.
    for (id, node) in &nodes {
        let clones = node.data_dir.join("vcs/corp/modcache/cache/vcs");
        let has = std::fs::read_dir(&clones)
            .map(|d| d.count() > 0)
            .unwrap_or(false);
        assert_eq!(
            has,
            *id == leader,
            "node {id} (leader {leader}) clones: {has}"
        );
    }
    // Another follower, a clean module cache: everything comes from the cluster.
    let other = nodes[&followers[1]].http.clone();
    go_ok(&home, &work, &other, &["clean", "-modcache"]);
    go_ok(&home, &work, &other, &["build", "-o", "app", "."]);
    assert_eq!(
        lab.git.requests().len(),
        requests,
        "the second build asked the git host"
    );

    // The leader dies and the git host goes down: every acknowledged private version still
    // builds through the survivors.
    nodes.get_mut(&leader).unwrap().kill9();
    lab.git.stop();
    let survivors: BTreeMap<u64, Node> =
        nodes.into_iter().filter(|(id, _)| *id != leader).collect();
    runtime.block_on(agreed_leader(&survivors));
    for node in survivors.values() {
        go_ok(&home, &work, &node.http, &["clean", "-modcache"]);
        std::fs::remove_file(work.join("app")).ok();
        let (ok, out, err) = go(&home, &work, &node.http, &["build", "-o", "app", "."]);
        assert!(ok, "build through a survivor: {out}\n{err}");
        let run = std::process::Command::new(work.join("app"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&run.stdout).trim(),
            "v1.1.0 v2.0.0 hello v1.1.0"
        );
    }
}
