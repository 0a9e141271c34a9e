//! Operating the cache on a three-node cluster: a prefetch job from a go.mod survives the
//! leader being killed halfway and leaves the real go client able to build with the upstream
//! gone; purge then refill; a block rule refuses on every node with its reason; eviction
//! under a small `cache.max_bytes` keeps every node's disk under the bound while pinned
//! versions stay; a refill that differs from the recorded sha256 is refused.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::cluster::{admin_env, goproxy_ha, raft_of, three_nodes_configured, SETTLE};
use support::go::go;
use support::{client, corpus_dir, HttpServer, Node};

/// A job as `/admin/warm/{id}` shows it.
type Job = goproxy_consensus::ops::WarmJob;

/// How long a warm job of the corpus graph may take on a loaded machine.
const JOB_DEADLINE: Duration = Duration::from_secs(180);

/// The corpus served with `delay` before every answer (a slow upstream, so a job is still
/// running when its leader is killed).
fn slow_upstream(dir: &Path, delay: Duration) -> HttpServer {
    let router = axum::Router::new()
        .fallback_service(tower_http::services::ServeDir::new(dir))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                tokio::time::sleep(delay).await;
                next.run(request).await
            },
        ));
    HttpServer::serve(router)
}

async fn leader(nodes: &BTreeMap<u64, Node>) -> u64 {
    support::cluster::agreed_leader(nodes).await
}

async fn job(node: &Node, id: &str, token: Option<&str>) -> Option<Job> {
    let mut request = client().get(node.url(&format!("admin/warm/{id}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.ok()?;
    if answer.status() != StatusCode::OK {
        return None;
    }
    serde_json::from_slice(&answer.bytes().await.ok()?).ok()
}

/// Polls `node` for job `id` until `pred` holds, within `within`.
async fn job_until(node: &Node, id: &str, within: Duration, pred: impl Fn(&Job) -> bool) -> Job {
    job_until_with(node, id, None, within, pred).await
}

/// [`job_until`] with a token.
async fn job_until_with(
    node: &Node,
    id: &str,
    token: Option<&str>,
    within: Duration,
    pred: impl Fn(&Job) -> bool,
) -> Job {
    let deadline = Instant::now() + within;
    loop {
        if let Some(job) = job(node, id, token).await {
            if pred(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never got there: {job:?}"
            );
        } else {
            assert!(
                Instant::now() < deadline,
                "job {id} not readable at {}",
                node.http
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bytes of the blob files in a node's store.
fn blob_bytes(node_dir: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .map(|e| {
                let path = e.path();
                if path.is_dir() {
                    walk(&path)
                } else {
                    e.metadata().map_or(0, |m| m.len())
                }
            })
            .sum()
    }
    walk(&node_dir.join("blobs").join("sha256"))
}

/// The sha256 of every blob file in a node's store.
fn blob_names(node_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let root = node_dir.join("blobs").join("sha256");
    for fanout in std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        for file in std::fs::read_dir(fanout.path())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
        {
            out.push(file.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

fn app_go_mod(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("go.mod"),
        // As `go get github.com/gin-gonic/gin@v1.8.1` leaves it (gin imports ugorji's codec
        // without requiring its module, so the go command found and added it).
        "module example.com/app\n\ngo 1.19\n\nrequire (\n\tgithub.com/gin-gonic/gin v1.8.1\n\tgithub.com/ugorji/go v1.2.8 // indirect\n)\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("main.go"),
        "package main\n\nimport \"github.com/gin-gonic/gin\"\n\nfunc main() { _ = gin.New() }\n",
    )
    .unwrap();
    dir.join("go.mod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_job_survives_a_leader_kill_and_the_go_client_then_builds_offline() {
    let mut upstream = slow_upstream(&corpus_dir(), Duration::from_millis(60));
    let dir = tempfile::tempdir().unwrap();
    let mut nodes =
        three_nodes_configured(dir.path(), &upstream.url, "[warm]\nconcurrency = 2\n", &[]);
    let first = leader(&nodes).await;
    // Submitted and followed through a member that stays up.
    let through = *nodes.keys().find(|id| **id != first).unwrap();
    let app = dir.path().join("app");
    let go_mod = app_go_mod(&app);
    let follower = nodes[&through].http.clone();
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_goproxy-ha"))
        .args(["warm", "--node", &follower, "--go-mod"])
        .arg(&go_mod)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The job's id: the only one.
    let deadline = Instant::now() + SETTLE;
    let id = loop {
        let jobs: Vec<Job> = match client().get(nodes[&through].url("admin/warm")).send().await {
            Ok(answer) => {
                serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap_or_default()
            }
            Err(_) => Vec::new(),
        };
        if let Some(job) = jobs.first() {
            break job.spec.id.clone();
        }
        assert!(Instant::now() < deadline, "the job was never submitted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Halfway (the graph's .mod files are known, zips remain): kill the leader running it.
    let halfway = job_until(&nodes[&through], &id, JOB_DEADLINE, |job| {
        job.total >= 40 && job.done * 2 >= job.total
    })
    .await;
    assert!(
        !halfway.state.is_final(),
        "the job ended before the kill: {halfway:?}"
    );
    assert_eq!(halfway.runner, Some(first));
    nodes.get_mut(&first).unwrap().kill9();
    eprintln!(
        "killed leader {first} with job {id} at {}/{}",
        halfway.done, halfway.total
    );
    let survivors: BTreeMap<u64, Node> = nodes.into_iter().filter(|(id, _)| *id != first).collect();
    let done = job_until(&survivors[&through], &id, JOB_DEADLINE, |job| {
        job.state.is_final()
    })
    .await;
    let output = tokio::task::spawn_blocking(move || cli.wait_with_output().unwrap())
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    eprintln!("--- goproxy-ha warm (stderr) ---\n{stderr}--- (stdout) ---\n{stdout}");
    assert!(output.status.success(), "warm failed: {stderr}{stdout}");
    assert_eq!(
        done.state,
        goproxy_consensus::ops::JobState::Done,
        "{done:?}"
    );
    assert_eq!(done.failed, 0, "{done:?}");
    assert_eq!(done.done, done.total, "every item counted once: {done:?}");
    assert!(done.runs >= 2, "resumed by a new leader: {done:?}");
    assert_ne!(done.runner, Some(first), "{done:?}");
    assert!(stderr.contains("resumed it"), "{stderr}");
    assert!(stdout.contains(&format!("job {id} done")), "{stdout}");

    // The upstream is gone: the go client builds gin's app through each survivor.
    upstream.stop();
    for (n, node) in &survivors {
        let (home, app, proxy) = (
            dir.path().join(format!("home-{n}")),
            app.clone(),
            node.http.clone(),
        );
        let (ok, _, stderr) = tokio::task::spawn_blocking(move || {
            go(
                &home,
                &app,
                &proxy,
                &["build", "-mod=mod", "-o", "app", "."],
            )
        })
        .await
        .unwrap();
        assert!(ok, "go build through node {n} without upstream: {stderr}");
        eprintln!("go build through node {n} with the upstream stopped: ok");
    }
}

/// Copies the corpus into `to` (a writable upstream the test may change).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().filter_map(Result::ok) {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A valid zip of `module@version` whose go.mod is `go_mod` and whose code differs from
/// the corpus's (what a compromised or rewritten upstream would serve).
fn rewritten_zip(module: &str, version: &str, go_mod: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file(format!("{module}@{version}/go.mod"), options)
            .unwrap();
        zip.write_all(go_mod).unwrap();
        zip.start_file(format!("{module}@{version}/hello.go"), options)
            .unwrap();
        zip.write_all(b"package hello\n\n// Greeting was rewritten upstream.\nfunc Greeting() string { return \"rewritten\" }\n")
            .unwrap();
        zip.finish().unwrap();
    }
    out.into_inner()
}

async fn get(url: &str) -> (StatusCode, Vec<u8>) {
    let answer = client().get(url).send().await.unwrap();
    (answer.status(), answer.bytes().await.unwrap().to_vec())
}

/// Polls until `check` holds for every node, within [`SETTLE`].
async fn on_every_node(nodes: &BTreeMap<u64, Node>, what: &str, check: impl Fn(&Node) -> bool) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let failing: Vec<u64> = nodes
            .iter()
            .filter(|(_, n)| !check(n))
            .map(|(id, _)| *id)
            .collect();
        if failing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not on nodes {failing:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Hits of one path after which a node answers it from a prepared answer.
const PREPARED_AFTER: usize = 3;

fn sha(bytes: &[u8]) -> String {
    support::sha256_hex(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_refills_and_a_block_refuses_on_every_node_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("upstream");
    copy_tree(&corpus_dir().join("example.com"), &tree.join("example.com"));
    let upstream = HttpServer::serve_dir(&tree);
    let nodes = three_nodes_configured(dir.path(), &upstream.url, "", &[]);
    let admin = admin_env(dir.path());
    let via = raft_of(dir.path(), 1);
    let zip_path = "example.com/hello/@v/v1.0.0.zip";
    let ids: Vec<u64> = nodes.keys().copied().collect();

    // Cached once: every node holds the blob, and a changed upstream changes nothing.
    let (status, original) = get(&nodes[&ids[0]].url(zip_path)).await;
    assert_eq!(status, StatusCode::OK);
    let original_sha = sha(&original);
    on_every_node(&nodes, "the zip's blob", |n| {
        blob_names(&n.data_dir).contains(&original_sha)
    })
    .await;
    let go_mod = std::fs::read(tree.join("example.com/hello/@v/v1.0.0.mod")).unwrap();
    let rewritten = rewritten_zip("example.com/hello", "v1.0.0", &go_mod);
    std::fs::write(tree.join(zip_path), &rewritten).unwrap();
    // Hit a few times on every node, so that each keeps a prepared answer for the path.
    for node in nodes.values() {
        for _ in 0..PREPARED_AFTER {
            let (status, again) = get(&node.url(zip_path)).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                sha(&again),
                original_sha,
                "without a purge the first content stays"
            );
        }
    }

    // Purged through a member: every node drops the bytes; the next request fills again.
    let purged = goproxy_ha(
        &admin,
        &["purge", "--via", &via, "example.com/hello@v1.0.0"],
    );
    assert!(
        purged.status.success(),
        "purge: {}",
        String::from_utf8_lossy(&purged.stderr)
    );
    on_every_node(&nodes, "the purged blob dropped", |n| {
        !blob_names(&n.data_dir).contains(&original_sha)
    })
    .await;
    let (status, refilled) = get(&nodes[&ids[2]].url(zip_path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sha(&refilled),
        sha(&rewritten),
        "refilled from the upstream's new bytes"
    );
    for node in nodes.values() {
        let deadline = Instant::now() + SETTLE;
        loop {
            let (status, bytes) = get(&node.url(zip_path)).await;
            if status == StatusCode::OK && sha(&bytes) == sha(&rewritten) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} still serves the purged bytes",
                node.http
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // A hostile purge is refused with a reason, and nothing changes.
    for bad in [
        "example.com/hello@latest",
        "../etc@v1.0.0",
        "example.com/hello",
    ] {
        let refused = goproxy_ha(&admin, &["purge", "--via", &via, bad]);
        assert!(!refused.status.success(), "purge {bad} was accepted");
    }
    let uncached = goproxy_ha(
        &admin,
        &["purge", "--via", &via, "example.com/hello@v1.2.0-beta.1"],
    );
    assert!(!uncached.status.success());
    assert!(
        String::from_utf8_lossy(&uncached.stderr).contains("not cached"),
        "{}",
        String::from_utf8_lossy(&uncached.stderr)
    );

    // Block versions below v1.1.0 everywhere, in one commit (on paths with prepared answers).
    for node in nodes.values() {
        for _ in 0..PREPARED_AFTER {
            let (status, _) = get(&node.url("example.com/hello/@v/v1.0.0.info")).await;
            assert_eq!(status, StatusCode::OK);
        }
    }
    let reason = "CVE-2026-0001: upgrade to v1.1.0";
    let blocked = goproxy_ha(
        &admin,
        &[
            "block",
            "--via",
            &via,
            "example.com/hello@<v1.1.0",
            "--reason",
            reason,
        ],
    );
    assert!(
        blocked.status.success(),
        "block: {}",
        String::from_utf8_lossy(&blocked.stderr)
    );
    for node in nodes.values() {
        let deadline = Instant::now() + SETTLE;
        loop {
            let (status, body) = get(&node.url("example.com/hello/@v/v1.0.0.info")).await;
            if status == StatusCode::FORBIDDEN {
                let body = String::from_utf8_lossy(&body);
                assert!(
                    body.contains(reason) && body.contains("example.com/hello@<v1.1.0"),
                    "{body}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} does not block: {status}",
                node.http
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, _) = get(&node.url("example.com/hello/@v/v1.1.0.info")).await;
        assert_eq!(status, StatusCode::OK, "v1.1.0 is outside the range");
    }
    // The go client stops at the 403 (no fallback to the next proxy) and shows the reason.
    let decoy_hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = decoy_hits.clone();
    let decoy = HttpServer::serve(axum::Router::new().fallback(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { (StatusCode::NOT_FOUND, "decoy") }
    }));
    let app = dir.path().join("app");
    support::go::app(&app, "package main\n\nimport \"example.com/hello\"\n\nfunc main() { println(hello.Greeting()) }\n");
    for node in nodes.values() {
        let (home, app, proxy) = (
            dir.path().join("home"),
            app.clone(),
            format!("{},{}", node.http, decoy.url),
        );
        let (ok, _, stderr) = tokio::task::spawn_blocking(move || {
            go(&home, &app, &proxy, &["get", "example.com/hello@v1.0.0"])
        })
        .await
        .unwrap();
        assert!(
            !ok,
            "go get of a blocked version succeeded through {}",
            node.http
        );
        assert!(
            stderr.contains("403 Forbidden") && stderr.contains(reason),
            "{stderr}"
        );
        eprintln!("go get through {}:\n{stderr}", node.http);
    }
    assert_eq!(
        decoy_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the go command fell back"
    );
    let list = goproxy_ha(&admin, &["block", "--via", &via, "--list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("example.com/hello@<v1.1.0"));
    let lifted = goproxy_ha(
        &admin,
        &["unblock", "--via", &via, "example.com/hello@<v1.1.0"],
    );
    assert!(
        lifted.status.success(),
        "unblock: {}",
        String::from_utf8_lossy(&lifted.stderr)
    );
    for node in nodes.values() {
        let deadline = Instant::now() + SETTLE;
        while get(&node.url("example.com/hello/@v/v1.0.0.info")).await.0 != StatusCode::OK {
            assert!(Instant::now() < deadline, "node {} still blocks", node.http);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Every node's admin trail has the purge, the block and the unblock, with who did them.
    for id in ids {
        let trail = goproxy_ha(
            &admin,
            &[
                "audit",
                "admin",
                "--via",
                &raft_of(dir.path(), id),
                "--json",
            ],
        );
        let text = String::from_utf8_lossy(&trail.stdout);
        for kind in ["\"purge\"", "\"block\"", "\"unblock\""] {
            assert!(
                text.contains(kind),
                "node {id}'s trail lacks {kind}:\n{text}"
            );
        }
        assert!(text.contains("\"actor\":\"ops\""), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_keeps_every_disk_under_the_bound_keeps_pins_and_refuses_a_different_refill() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("upstream");
    copy_tree(&corpus_dir(), &tree);
    let upstream = HttpServer::serve_dir(&tree);
    const MAX_BYTES: u64 = 600_000;
    let nodes = three_nodes_configured(
        dir.path(),
        &upstream.url,
        &format!("[cache]\nmax_bytes = {MAX_BYTES}\nevict_interval = \"1s\"\n"),
        &[],
    );
    let ids: Vec<u64> = nodes.keys().copied().collect();
    // Pinned: a warmed set eviction never drops.
    let pin = std::process::Command::new(env!("CARGO_BIN_EXE_goproxy-ha"))
        .args(["warm", "--node", &nodes[&ids[0]].http, "--pin", "--no-deps"])
        .args(["example.com/hello@v1.1.0", "gopkg.in/yaml.v3@v3.0.1"])
        .output()
        .unwrap();
    assert!(
        pin.status.success(),
        "warm --pin: {}",
        String::from_utf8_lossy(&pin.stderr)
    );
    let pinned_zip = std::fs::read(tree.join("gopkg.in/yaml.v3/@v/v3.0.1.zip")).unwrap();
    // Then more than the bound, in order (the first ones are the least recently used).
    let versions = [
        ("github.com/davecgh/go-spew", "v1.1.1"),
        ("gopkg.in/yaml.v2", "v2.4.0"),
        ("github.com/stretchr/testify", "v1.8.1"),
        ("github.com/google/go-cmp", "v0.5.9"),
        ("golang.org/x/mod", "v0.7.0"),
        ("github.com/gin-gonic/gin", "v1.8.1"),
        ("github.com/go-playground/validator/v10", "v10.4.1"),
        ("github.com/rogpeppe/go-internal", "v1.9.0"),
    ];
    let mut requested = 0u64;
    for (i, (module, version)) in versions.iter().enumerate() {
        let node = &nodes[&ids[i % 3]];
        let (status, bytes) = get(&node.url(&format!("{module}/@v/{version}.zip"))).await;
        assert_eq!(status, StatusCode::OK, "{module}@{version}");
        requested += bytes.len() as u64;
        // Distinct access times, in this order.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        requested > MAX_BYTES * 3 / 2,
        "the test must go over the bound"
    );
    // Every node's disk ends under the bound, with the pinned zip still there.
    on_every_node(&nodes, "blob bytes under cache.max_bytes", |n| {
        blob_bytes(&n.data_dir) <= MAX_BYTES
    })
    .await;
    for (id, node) in &nodes {
        let names = blob_names(&node.data_dir);
        assert!(
            names.contains(&sha(&pinned_zip)),
            "node {id} dropped a pinned zip"
        );
        eprintln!(
            "node {id}: {} blob bytes on disk (bound {MAX_BYTES}; {requested} bytes of zips requested)",
            blob_bytes(&node.data_dir)
        );
    }
    let spew = std::fs::read(tree.join("github.com/davecgh/go-spew/@v/v1.1.1.zip")).unwrap();
    for node in nodes.values() {
        assert!(
            !blob_names(&node.data_dir).contains(&sha(&spew)),
            "the least recently used zip stays on {}",
            node.http
        );
    }
    // Status reports it (measured every few seconds).
    let deadline = Instant::now() + SETTLE;
    loop {
        let status: goproxy_status::NodeStatus =
            serde_json::from_slice(&get(&nodes[&ids[0]].url("cluster/status")).await.1).unwrap();
        let storage = status.storage.expect("status shows storage");
        if storage.evicted_versions >= 1 && storage.cache_bytes <= MAX_BYTES {
            assert_eq!(storage.pinned_versions, 2, "{storage:?}");
            eprintln!("status: {storage:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed the eviction: {storage:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Hits are still served: an evicted zip comes back from the upstream, checked against
    // its recorded sha256.
    let (status, bytes) =
        get(&nodes[&ids[1]].url("github.com/davecgh/go-spew/@v/v1.1.1.zip")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, spew);
    let (status, bytes) = get(&nodes[&ids[2]].url("gopkg.in/yaml.v3/@v/v3.0.1.zip")).await;
    assert_eq!((status, sha(&bytes)), (StatusCode::OK, sha(&pinned_zip)));

    // An evicted version whose upstream bytes changed is refused, not served.
    let evicted = {
        let deadline = Instant::now() + SETTLE;
        loop {
            let gone = versions.iter().find(|(module, version)| {
                let bytes = std::fs::read(tree.join(format!(
                    "{}/@v/{version}.zip",
                    goproxy_protocol::path::escape_path(module).unwrap()
                )))
                .unwrap();
                nodes
                    .values()
                    .all(|n| !blob_names(&n.data_dir).contains(&sha(&bytes)))
                    && *module != "github.com/davecgh/go-spew"
            });
            if let Some(found) = gone {
                break *found;
            }
            assert!(Instant::now() < deadline, "nothing evicted everywhere");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (module, version) = evicted;
    let path = format!(
        "{}/@v/{version}.zip",
        goproxy_protocol::path::escape_path(module).unwrap()
    );
    let mut changed = std::fs::read(tree.join(&path)).unwrap();
    let last = changed.len() - 1;
    changed[last] ^= 0xff;
    std::fs::write(tree.join(&path), &changed).unwrap();
    let (status, body) = get(&nodes[&ids[0]].url(&format!("{module}/@v/{version}.zip"))).await;
    let body = String::from_utf8_lossy(&body);
    assert_ne!(status, StatusCode::OK, "a changed refill was served");
    assert!(
        body.contains("differ from the committed"),
        "{module}@{version}: {status} {body}"
    );
    eprintln!(
        "refill of {module}@{version} with changed bytes: {status} {}",
        body.trim()
    );
}

/// A token made with the admin certificate through `via`.
fn token(
    admin: &[(String, String)],
    via: &str,
    name: &str,
    role: &str,
    allow: Option<&str>,
) -> String {
    let mut args = vec![
        "token", "create", "--via", via, "--name", name, "--role", role,
    ];
    if let Some(allow) = allow {
        args.extend(["--allow", allow]);
    }
    let output = goproxy_ha(admin, &args);
    assert!(
        output.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// The corpus, counting the requests whose path contains `watched`.
fn counting_upstream(
    watched: &'static str,
) -> (HttpServer, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new()
        .fallback_service(tower_http::services::ServeDir::new(corpus_dir()))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                if request.uri().path().contains(watched) {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                next.run(request)
            },
        ));
    (HttpServer::serve(router), hits)
}

async fn submit(node: &Node, token: &str, body: &serde_json::Value) -> (StatusCode, String) {
    let answer = client()
        .post(node.url("admin/warm"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (answer.status(), answer.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_operators_requests_are_refused_and_large_inputs_keep_the_cluster_healthy() {
    let (upstream, text_requests) = counting_upstream("golang.org/x/text");
    let dir = tempfile::tempdir().unwrap();
    let nodes = three_nodes_configured(
        dir.path(),
        &upstream.url,
        "[auth]\nanonymous = \"deny\"\n",
        &[],
    );
    let admin = admin_env(dir.path());
    let via = raft_of(dir.path(), 1);
    let scoped = token(&admin, &via, "scoped", "warm", Some("example.com/hello"));
    let other = token(&admin, &via, "other", "warm", None);
    let operator = token(&admin, &via, "operator", "admin", None);
    let node = &nodes[&1];

    // Cross-site shapes: a form post (text/plain) and a browser saying cross-site.
    let form = client()
        .post(node.url("admin/warm"))
        .bearer_auth(&other)
        .header("content-type", "text/plain")
        .body(r#"{"targets":["example.com/hello@v1.0.0"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::BAD_REQUEST);
    let cross = client()
        .post(node.url("admin/warm"))
        .bearer_auth(&other)
        .header("content-type", "application/json")
        .header("sec-fetch-site", "cross-site")
        .body(r#"{"targets":["example.com/hello@v1.0.0"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let anonymous = client()
        .post(node.url("admin/warm"))
        .header("content-type", "application/json")
        .body(r#"{"targets":["example.com/hello@v1.0.0"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Members-only and operators' reads: a token (even an admin's) or a forged member header
    // gets nothing from the members' endpoints; the dashboard's data wants an admin token.
    for path in ["cluster/access-times", "cluster/recent"] {
        for forged in [None, Some("not-the-member-key")] {
            let mut request = client().get(node.url(path)).bearer_auth(&operator);
            if let Some(key) = forged {
                request = request.header("x-goproxy-ha-member", key);
            }
            let status = request.send().await.unwrap().status();
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} with {forged:?}");
        }
    }
    let data = |token: Option<&str>| {
        let mut request = client().get(node.url("ui/data"));
        if let Some(token) = token {
            request = request.bearer_auth(token.to_string());
        }
        request.send()
    };
    assert_eq!(data(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        data(Some(&other)).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        data(Some(&operator)).await.unwrap().status(),
        StatusCode::OK
    );
    // Purge and block want the admin certificate.
    for args in [
        &["purge", "--via", &via, "example.com/hello@v1.0.0"][..],
        &["block", "--via", &via, "example.com/hello", "--reason", "x"][..],
    ] {
        let refused = goproxy_ha(&[], args);
        assert!(!refused.status.success(), "{args:?} without a certificate");
    }

    // A token's paths bound its jobs: nothing outside them is fetched.
    let body = serde_json::json!({"targets": ["golang.org/x/text@v0.7.0", "example.com/hello@v1.1.0"], "no_deps": true});
    let (status, answer) = submit(&nodes[&2], &scoped, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id: String = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["id"]
        .as_str()
        .unwrap()
        .into();
    let job = job_until_with(&nodes[&3], &id, Some(&scoped), JOB_DEADLINE, |job| {
        job.state.is_final()
    })
    .await;
    assert_eq!((job.done, job.failed), (3, 3), "{job:?}");
    assert!(
        job.failures
            .iter()
            .all(|f| f.contains("may not read this path")),
        "{job:?}"
    );
    assert_eq!(
        text_requests.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "fetched outside the token's paths"
    );
    assert_eq!(job.submitted_by, "token:scoped");

    // Another submitter's job is not a warm token's to cancel.
    let (_, answer) = submit(
        &nodes[&1],
        &scoped,
        &serde_json::json!({"targets": ["example.com/hello@v1.0.0"]}),
    )
    .await;
    let theirs: String = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["id"]
        .as_str()
        .unwrap()
        .into();
    let cancel = client()
        .post(nodes[&3].url(&format!("admin/warm/{theirs}/cancel")))
        .bearer_auth(&other)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::FORBIDDEN);

    // Inputs of 180 KB (newlines: 240 KB once escaped in the log) travel in parts; many of
    // them leave the cluster healthy and agreeing.
    let padding = "//\n".repeat(60_000);
    for round in 0..8 {
        let (token, description) = if round % 2 == 0 {
            (&scoped, "a")
        } else {
            (&other, "b")
        };
        let body = serde_json::json!({
            "go_mod": format!("module example.com/big{round}\n{padding}"),
            "description": description,
        });
        let deadline = Instant::now() + SETTLE;
        loop {
            let (status, answer) = submit(&nodes[&(1 + round % 3)], token, &body).await;
            if status == StatusCode::ACCEPTED {
                break;
            }
            // At most 4 open jobs per submitter: wait for earlier ones.
            assert_eq!(status, StatusCode::CONFLICT, "{answer}");
            assert!(Instant::now() < deadline, "{answer}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut applied = Vec::new();
        for node in nodes.values() {
            let status: goproxy_status::NodeStatus = serde_json::from_slice(
                &client()
                    .get(node.url("cluster/status"))
                    .bearer_auth(&operator)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap(),
            )
            .unwrap_or_else(|_| panic!("status of {}", node.http));
            applied.push((status.current_leader, status.last_applied));
        }
        let jobs: Vec<Job> = serde_json::from_slice(
            &client()
                .get(nodes[&1].url("admin/warm"))
                .bearer_auth(&other)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        let all_done = jobs.iter().all(|job| job.state.is_final());
        if all_done && applied.iter().all(|a| *a == applied[0]) && applied[0].0.is_some() {
            eprintln!(
                "after 8 inputs of 180 KB: every node at {:?}; {} jobs",
                applied[0],
                jobs.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not settle: {applied:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = get(&nodes[&2].url("example.com/hello/@v/v1.2.0-beta.1.info")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "still guarded");
    let fill = client()
        .get(nodes[&2].url("example.com/hello/@v/v1.2.0-beta.1.zip"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(fill.status(), StatusCode::OK, "fills still commit");

    // A block rule also refuses the path's case variants (a case-insensitive host serves them).
    let blocked = goproxy_ha(
        &admin,
        &[
            "block",
            "--via",
            &via,
            "example.com/hello",
            "--reason",
            "retired",
        ],
    );
    assert!(blocked.status.success());
    for path in [
        "example.com/hello/@v/v1.0.0.info",
        "example.com/!hello/@v/v1.0.0.info",
        "example.com/!h!e!l!l!o/@v/list",
    ] {
        let deadline = Instant::now() + SETTLE;
        loop {
            let answer = client()
                .get(nodes[&3].url(path))
                .bearer_auth(&other)
                .send()
                .await
                .unwrap();
            if answer.status() == StatusCode::FORBIDDEN {
                break;
            }
            assert!(Instant::now() < deadline, "{path}: {}", answer.status());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
