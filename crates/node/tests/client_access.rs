//! Client access control on a three-node cluster serving HTTPS with `anonymous = "deny"`:
//! tokens made and revoked through one node are in force on every node once committed; the
//! real go client (trusting the test CA through `SSL_CERT_FILE`) downloads with the token
//! in `~/.netrc` and is refused (401) without it; a token outside its paths gets 403 and the
//! go command does not fall back to the next proxy; malformed credentials never crash a
//! node; every request lands in the node's audit log, and every node holds the same admin
//! trail.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::cluster::{
    admin_env, free_ports, goproxy_ha, raft_of, start, write_config_with, SEMI_SYNC, SETTLE,
};
use support::go::go_env;
use support::https::{https, TestCa};
use support::{client, corpus_dir, HttpServer, Node};

fn ok_stdout(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// An app using the corpus module example.com/hello.
const MAIN_GO: &str = "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/hello\"\n)\n\nfunc main() { fmt.Println(hello.Greeting()) }\n";

/// Polls `url` with `token` until it answers `want`, within [`SETTLE`].
async fn until_status(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    want: StatusCode,
) -> Duration {
    let started = Instant::now();
    loop {
        let status = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status();
        if status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < SETTLE,
            "{url} answered {status}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The audit lines of `node` once `pred` holds for them, within [`SETTLE`].
async fn audit_lines(
    dir: &Path,
    id: u64,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let text = std::fs::read_to_string(dir.join(format!("audit-{id}.log"))).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("every audit line is JSON"))
            .collect();
        if pred(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "node {id}'s audit log never matched; it has:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The id of the member every node names leader, once they agree (over HTTPS).
async fn leader_of(http: &reqwest::Client, urls: &BTreeMap<u64, String>, token: &str) -> u64 {
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut leaders = Vec::new();
        for url in urls.values() {
            let status: Option<goproxy_status::NodeStatus> = async {
                let answer = http
                    .get(format!("{url}/cluster/status"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .ok()?;
                serde_json::from_slice(&answer.bytes().await.ok()?).ok()
            }
            .await;
            leaders.push(status.and_then(|s| s.current_leader));
        }
        if let Some(Some(leader)) = leaders.first() {
            if leaders.iter().all(|l| *l == Some(*leader)) {
                return *leader;
            }
        }
        if Instant::now() >= deadline {
            let url = urls.values().next().unwrap();
            let answer = http
                .get(format!("{url}/cluster/status"))
                .bearer_auth(token)
                .send()
                .await;
            let shown = match answer {
                Ok(a) => format!("{} {}", a.status(), a.text().await.unwrap_or_default()),
                Err(e) => format!("{e:?}"),
            };
            panic!("no agreed leader: {leaders:?}; {url}: {shown}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `url`'s `/readyz` is 200.
async fn ready(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Ok(answer) = http.get(format!("{url}/readyz")).send().await {
            if answer.status() == StatusCode::OK {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_refusals_audit_and_the_admin_trail() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let tls = TestCa::new(&dir.path().join("https"));
    let http = tls.client();
    let ports = free_ports(6);
    for id in 1..=3 {
        let extra = format!(
            "[auth]\nanonymous = \"deny\"\n[audit]\npath = {:?}\nflush_interval = \"100ms\"\n{}",
            dir.path().join(format!("audit-{id}.log")),
            tls.config()
        );
        write_config_with(
            &dir.path().join(format!("n{id}.toml")),
            id,
            &ports,
            &upstream.url,
            SEMI_SYNC,
            &extra,
        );
    }
    let nodes: BTreeMap<u64, Node> = (1..=3).map(|id| (id, start(dir.path(), id))).collect();
    let urls: BTreeMap<u64, String> = nodes.iter().map(|(id, n)| (*id, https(&n.http))).collect();
    for url in urls.values() {
        ready(&http, url).await;
    }
    let admin = admin_env(dir.path());
    // Operators' endpoints want an admin token here: the first is made with the admin
    // certificate through any member.
    let via_1 = raft_of(dir.path(), 1);
    let operator = ok_stdout(
        goproxy_ha(
            &admin,
            &[
                "token",
                "create",
                "--via",
                &via_1,
                "--name",
                "dashboards",
                "--role",
                "admin",
                "--expires",
                "30d",
            ],
        ),
        "token create",
    )
    .trim()
    .to_string();
    let leader = leader_of(&http, &urls, &operator).await;
    let others: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let (b, c) = (others[0], others[1]);

    // Tokens are made through a follower (it redirects to the leader): shown once.
    let via_b = raft_of(dir.path(), b);
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec!["token", "create", "--via", &via_b, "--name", name];
        args.extend_from_slice(extra);
        ok_stdout(goproxy_ha(&admin, &args), "token create")
            .trim()
            .to_string()
    };
    let ci = create("ci", &[]);
    let hello_only = create("hello-only", &["--allow", "example.com/hello"]);
    assert!(ci.starts_with("gpha_") && ci.len() >= 32, "{ci}");
    // Hostile or mistaken requests are refused with a reason and change nothing: a bad
    // name, oversized path rules, a zero lifetime, a name taken, no admin certificate.
    let long_allow = "a.example/".repeat(500);
    let refusals: [(&[&str], &str); 4] = [
        (&["--name", "Bad Name!"], "token name"),
        (
            &["--name", "big", "--allow", &long_allow],
            "at most 4096 bytes",
        ),
        (&["--name", "zero", "--expires", "0s"], "at least 1s"),
        (&["--name", "ci"], "exists"),
    ];
    for (extra, reason) in refusals {
        let mut args = vec!["token", "create", "--via", &via_b];
        args.extend_from_slice(extra);
        let out = goproxy_ha(&admin, &args);
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success() && said.contains(reason),
            "{extra:?}: {said}"
        );
    }
    let anonymous_cli = goproxy_ha(&[], &["token", "create", "--via", &via_b, "--name", "x"]);
    assert!(
        !anonymous_cli.status.success(),
        "a token made without a certificate"
    );

    let listed = ok_stdout(
        goproxy_ha(&admin, &["token", "list", "--via", &via_b, "--json"]),
        "token list",
    );
    assert!(
        listed.contains("\"ci\"") && listed.contains("hello-only"),
        "{listed}"
    );
    assert!(!listed.contains(&ci), "the list never shows a secret");

    // In force on the third node once it applied the entries.
    let list_c = format!("{}/example.com/hello/@v/list", urls[&c]);
    until_status(&http, &list_c, &ci, StatusCode::OK).await;

    // The real go client: with the token in ~/.netrc it builds an app using
    // example.com/hello through node b (a follower: misses go to the leader over HTTPS);
    // without, 401 with the reason.
    let ca = tls.ca.to_str().unwrap().to_string();
    let go = move |home: &Path, proxy: &str, args: &[&str]| {
        let app = home.join("app");
        if !app.join("main.go").exists() {
            support::go::app(&app, MAIN_GO);
        }
        go_env(home, &app, proxy, "off", &[("SSL_CERT_FILE", &ca)], args)
    };
    let netrc = |home: &Path, token: &str| {
        std::fs::create_dir_all(home).unwrap();
        let netrc = format!("machine 127.0.0.1 login any password {token}\n");
        std::fs::write(home.join(".netrc"), netrc).unwrap();
    };
    let home = dir.path().join("home-ci");
    netrc(&home, &ci);
    let (g, p) = (go.clone(), urls[&b].clone());
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let got = g(&home, &p, &["get", "example.com/hello@v1.1.0"]);
        if !got.0 {
            return got;
        }
        let built = g(&home, &p, &["build", "-o", "app", "."]);
        let ran = std::process::Command::new(home.join("app").join("app")).output();
        let said = ran.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        (
            built.0,
            format!("{}{}", built.1, said.unwrap_or_default()),
            built.2,
        )
    })
    .await
    .unwrap();
    assert!(ok, "authenticated build failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("hello v1.1.0"), "{stdout}");
    println!(
        "go build through node {b} with ~/.netrc, the app says: {}",
        stdout.trim()
    );
    let (g, p, anonymous) = (go.clone(), urls[&b].clone(), dir.path().join("home-none"));
    let args = ["mod", "download", "example.com/hello@v1.0.0"];
    let (ok, _, stderr) = tokio::task::spawn_blocking(move || g(&anonymous, &p, &args))
        .await
        .unwrap();
    assert!(!ok, "downloaded without a token");
    assert!(
        stderr.contains("401") && stderr.contains("needs a token"),
        "{stderr}"
    );
    println!("go without a token:\n{}", stderr.trim());

    // Outside its paths: 403, and the go command stops there (no fallback to the decoy).
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let decoy = HttpServer::serve(axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { (axum::http::StatusCode::NOT_FOUND, "decoy") }
    }));
    let restricted_home = dir.path().join("home-hello");
    netrc(&restricted_home, &hello_only);
    let chain = format!("{},{}", urls[&c], decoy.url);
    let (g, args) = (go.clone(), ["mod", "download", "gopkg.in/yaml.v3@v3.0.1"]);
    let (ok, _, stderr) = tokio::task::spawn_blocking(move || g(&restricted_home, &chain, &args))
        .await
        .unwrap();
    assert!(!ok, "a path outside the token's was downloaded");
    assert!(stderr.contains("403"), "{stderr}");
    println!("go with hello-only, GOPROXY=node,decoy:\n{}", stderr.trim());
    assert_eq!(asked.load(Ordering::SeqCst), 0, "the go command fell back");
    let allowed = http
        .get(format!("{}/example.com/hello/@v/v1.1.0.info", urls[&c]))
        .bearer_auth(&hello_only)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);

    // Malformed, oversized and unknown credentials: 400/401 with a reason, never a crash.
    let url = list_c.clone();
    for value in [
        "Basic !!!not-base64".to_string(),
        format!("Bearer {}", "a".repeat(4000)),
        "Digest username=x".to_string(),
        "Bearer gpha_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
        "Bearer".to_string(),
    ] {
        let answer = http
            .get(&url)
            .header("authorization", &value)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST,
            "{value:.40}: {status}"
        );
        let body = answer.text().await.unwrap();
        assert!(
            !body.contains("example.com"),
            "the body reveals a path: {body}"
        );
    }
    let healthy = http
        .get(format!("{}/healthz", urls[&c]))
        .send()
        .await
        .unwrap();
    assert_eq!(healthy.status(), StatusCode::OK);
    let plain = client().get(nodes[&c].url("healthz")).send().await;
    assert!(plain.is_err(), "plain HTTP on the HTTPS port was answered");

    // An unknown environment is refused, not "not found" (no fallback with the path).
    let unknown_env = http
        .get(format!("{}/env/nope/example.com/hello/@v/list", urls[&c]))
        .bearer_auth(&hello_only)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_env.status(), StatusCode::FORBIDDEN);

    // Operators' endpoints want an admin token when anonymous clients are refused.
    let status_url = format!("{}/cluster/status", urls[&c]);
    let anonymous = http.get(&status_url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let reader = http
        .get(&status_url)
        .bearer_auth(&hello_only)
        .send()
        .await
        .unwrap();
    assert_eq!(reader.status(), StatusCode::FORBIDDEN);
    let admin_token = http
        .get(&status_url)
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(admin_token.status(), StatusCode::OK);

    // Download counts: the zip served through b (forwarded to the leader, counted once
    // where the client asked) and once through c, summed by any node.
    let zip = http
        .get(format!("{}/example.com/hello/@v/v1.1.0.zip", urls[&c]))
        .bearer_auth(&hello_only)
        .send()
        .await
        .unwrap();
    assert_eq!(zip.status(), StatusCode::OK);
    let stats = http
        .get(format!("{}/stats", urls[&leader]))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    assert_eq!(stats["nodes"].as_array().unwrap().len(), 3, "{stats}");
    assert_eq!(
        stats["modules"][0]["module"], "example.com/hello",
        "{stats}"
    );
    assert_eq!(
        stats["modules"][0]["versions"][0]["version"], "v1.1.0",
        "{stats}"
    );
    assert_eq!(
        stats["modules"][0]["versions"][0]["downloads"], 2,
        "{stats}"
    );
    println!("/stats: {stats}");

    // Revoked through b: refused by c right after the commit reaches it.
    let via_b_revoke = ["token", "revoke", "ci", "--via", via_b.as_str()];
    ok_stdout(goproxy_ha(&admin, &via_b_revoke), "token revoke");
    let took = until_status(&http, &list_c, &ci, StatusCode::UNAUTHORIZED).await;
    println!("revoked through node {b}: refused by node {c} after {took:?}");

    // Node b's audit log: the go client's requests with the token, and the refusals.
    let lines = audit_lines(dir.path(), b, |lines| {
        lines
            .iter()
            .any(|l| l["token"] == "ci" && l["path"] == "/example.com/hello/@v/v1.1.0.zip")
            && lines
                .iter()
                .any(|l| l["outcome"] == "denied" && l["status"] == 401)
    })
    .await;
    let zip = lines
        .iter()
        .find(|l| l["token"] == "ci" && l["path"] == "/example.com/hello/@v/v1.1.0.zip")
        .unwrap();
    assert_eq!(zip["module"], "example.com/hello");
    assert_eq!(zip["version"], "v1.1.0");
    assert_eq!(zip["artifact"], "zip");
    assert_eq!(zip["status"], 200);
    assert!(zip["bytes"].as_u64().unwrap() > 0, "{zip}");
    assert!(
        ["fill", "forwarded", "hit"].contains(&zip["outcome"].as_str().unwrap()),
        "{zip}"
    );
    for path in [
        "/example.com/hello/@v/v1.1.0.info",
        "/example.com/hello/@v/v1.1.0.mod",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l["token"] == "ci" && l["path"] == path),
            "no audit line for {path}"
        );
    }
    let denied = lines
        .iter()
        .find(|l| l["outcome"] == "denied" && l["status"] == 401)
        .unwrap();
    assert!(denied["token"].is_null(), "{denied}");
    let raw = std::fs::read_to_string(dir.path().join(format!("audit-{b}.log"))).unwrap();
    let excerpt: Vec<&str> = raw
        .lines()
        .filter(|l| l.contains("v1.1.0.zip") || l.contains("\"status\":401"))
        .take(2)
        .collect();
    println!("node {b} audit excerpt:\n{}", excerpt.join("\n"));

    // Every node holds the same admin trail, in log order, naming the operator.
    let mut trails = Vec::new();
    for id in 1..=3 {
        let via = raft_of(dir.path(), id);
        let deadline = Instant::now() + SETTLE;
        let trail = loop {
            let text = ok_stdout(
                goproxy_ha(&admin, &["audit", "admin", "--via", &via, "--json"]),
                "audit admin",
            );
            if text.contains("token-revoke") || Instant::now() > deadline {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let events: Vec<serde_json::Value> = trail
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let shown: Vec<(String, String)> = events
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_string(),
                    e["detail"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("token-create".into(), shown[0].1.clone()),
                ("token-create".into(), "ci role=read".into()),
                (
                    "token-create".into(),
                    "hello-only role=read allow=example.com/hello".into()
                ),
                // The second "ci", refused by the state machine, is in the trail too.
                ("token-create".into(), "ci role=read".into()),
                ("token-revoke".into(), "ci".into()),
            ],
            "node {id}'s trail"
        );
        assert!(events.iter().all(|e| e["actor"] == "ops"));
        let outcomes: Vec<&str> = events
            .iter()
            .map(|e| e["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes[..3], ["ok", "ok", "ok"]);
        assert!(
            outcomes[3].starts_with("refused: a token named"),
            "{outcomes:?}"
        );
        assert_eq!(outcomes[4], "ok");
        trails.push(trail);
    }
    assert!(trails.windows(2).all(|w| w[0] == w[1]), "trails differ");
    println!("admin trail (every node):\n{}", trails[0]);
}

/// Over a rate limit a client gets 429 with `Retry-After`; a request within it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_hit_limit_gets_429_with_retry_after() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("limits.toml");
    std::fs::write(
        &config,
        "[limits]\nhits_per_address = { per_second = 1, burst = 5 }\n",
    )
    .unwrap();
    let node = Node::start(
        &dir.path().join("node"),
        &upstream.url,
        &["--config", config.to_str().unwrap()],
    );
    let url = node.url("example.com/hello/@v/list");
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..30 {
        // Claiming to be a member forwarding a miss does not lift the limits: only the
        // members' key does, and an outsider does not have it.
        let answer = client()
            .get(&url)
            .header("x-goproxy-ha-forwarded", "1")
            .header("x-goproxy-ha-member", "0".repeat(64))
            .send()
            .await
            .unwrap();
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = answer
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        }
        statuses.push(answer.status());
    }
    assert_eq!(statuses[0], StatusCode::OK, "{statuses:?}");
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "30 requests at once stayed within a burst of 5: {statuses:?}"
    );
    assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
    let healthy = client().get(node.url("healthz")).send().await.unwrap();
    assert_eq!(
        healthy.status(),
        StatusCode::OK,
        "health checks are not limited"
    );
}

/// SIGHUP re-reads the rate limits; every request answered before SIGTERM has its audit line
/// (written at shutdown: the flush interval here is longer than the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_limits_and_sigterm_writes_every_audit_line() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let (config, audit) = (dir.path().join("node.toml"), dir.path().join("audit.log"));
    let write = |per_second: u32, burst: u32| {
        let text = format!(
            "[limits]\nhits_per_address = {{ per_second = {per_second}, burst = {burst} }}\n\
             [audit]\npath = {audit:?}\nflush_interval = \"60s\"\n"
        );
        std::fs::write(&config, text).unwrap();
    };
    write(1, 3);
    let mut node = Node::start(
        &dir.path().join("node"),
        &upstream.url,
        &["--config", config.to_str().unwrap()],
    );
    let url = node.url("example.com/hello/@v/v1.1.0.info");
    let mut answered = 0;
    let mut limited = false;
    for _ in 0..20 {
        let status = client().get(&url).send().await.unwrap().status();
        answered += 1;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "a burst of 3 held 20 requests");

    write(100_000, 100_000);
    node.signal("HUP");
    let deadline = Instant::now() + SETTLE;
    let mut ok_in_a_row = 0;
    while ok_in_a_row < 10 {
        let status = client().get(&url).send().await.unwrap().status();
        answered += 1;
        ok_in_a_row = if status == StatusCode::OK {
            ok_in_a_row + 1
        } else {
            0
        };
        assert!(Instant::now() < deadline, "SIGHUP did not lift the limit");
    }

    assert!(node.terminate().success());
    let text = std::fs::read_to_string(&audit).unwrap();
    let lines = text
        .lines()
        .filter(|l| l.contains("\"/example.com/hello/@v/v1.1.0.info\""))
        .count();
    assert_eq!(
        lines, answered,
        "every answered request has its line:\n{text}"
    );
    assert!(text.contains("\"status\":429"), "{text}");
}

/// A `list` the node must ask upstream for is a fill: over the fill limit it gets 429, while
/// one answered from memory is only a hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_lists_are_charged_as_fills() {
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fills.toml");
    std::fs::write(
        &config,
        "[limits]\nfills_per_address = { per_second = 1, burst = 2 }\n",
    )
    .unwrap();
    let node = Node::start(
        &dir.path().join("node"),
        &upstream.url,
        &["--config", config.to_str().unwrap()],
    );
    let first = client()
        .get(node.url("example.com/hello/@v/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let mut refused = None;
    for module in [
        "gopkg.in/yaml.v3",
        "golang.org/x/text",
        "github.com/gin-gonic/gin",
        "github.com/!burnt!sushi/toml",
        "google.golang.org/protobuf",
        "golang.org/x/sys",
    ] {
        let answer = client()
            .get(node.url(&format!("{module}/@v/list")))
            .send()
            .await
            .unwrap();
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(answer.text().await.unwrap());
            break;
        }
    }
    let refused = refused.expect("six upstream lists stayed within a burst of 2 fills");
    assert!(refused.contains("fills per address"), "{refused}");
    // The first list is fresh in memory: a hit, not a fill, so it is still answered.
    for _ in 0..5 {
        let again = client()
            .get(node.url("example.com/hello/@v/list"))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::OK);
    }
}
