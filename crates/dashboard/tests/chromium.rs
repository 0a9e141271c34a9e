//! The dashboard in a real browser: `routes()` and a scripted `/ui/data` on 127.0.0.1:0,
//! headless Chromium loading `/ui` for five virtual seconds (three polls), and assertions on
//! the DOM it dumps. Screenshots land in `$CARGO_TARGET_TMPDIR/dashboard-*.png`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use goproxy_dashboard::{sample, Dashboard, DATA_PATH, UI_PATH};
use goproxy_testkit::chromium::{Chromium, View, DESKTOP};
use goproxy_testkit::dom::{self, by_id, with_attr};

/// What `/ui/data` answers, poll by poll (the last step repeats): a document, or `None` for
/// a node that stopped answering.
#[derive(Clone, Default)]
struct Fixture(Arc<Mutex<(Vec<Option<Dashboard>>, usize)>>);

/// Counters grow by this much per poll (every 2 s), so the page shows 120 req/s etc.
const PER_POLL: [u64; 5] = [240, 208, 18, 2, 96 << 20];
const POLL_MS: u64 = 2_000;

impl Fixture {
    /// Starts the page's server with these steps; returns the page's URL.
    async fn serve(steps: Vec<Option<Dashboard>>) -> (Fixture, String) {
        let fixture = Fixture(Arc::new(Mutex::new((steps, 0))));
        let app = goproxy_dashboard::routes()
            .route(DATA_PATH, get(data))
            .with_state(fixture.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{UI_PATH}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fixture, url)
    }

    /// Replaces the steps and starts over from the first.
    fn script(&self, steps: Vec<Option<Dashboard>>) {
        *self.0.lock().unwrap() = (steps, 0);
    }
}

/// `GET /ui/data`: the current step, its clock and counters moved on by one poll per request.
async fn data(State(fixture): State<Fixture>) -> Response {
    let mut script = fixture.0.lock().unwrap();
    let poll = script.1;
    script.1 += 1;
    let Some(mut d) = script.0[poll.min(script.0.len() - 1)].clone() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping").into_response();
    };
    let n = poll as u64;
    d.generated_at_ms += n * POLL_MS;
    let c = &mut d.counters;
    for (counter, step) in [
        &mut c.requests,
        &mut c.hits,
        &mut c.fills,
        &mut c.refusals,
        &mut c.served_bytes,
    ]
    .into_iter()
    .zip(PER_POLL)
    {
        *counter += n * step;
    }
    d.into_response()
}

const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// The sample, with attacker-chosen strings wherever a client or submitter controls one.
fn hostile() -> Dashboard {
    let mut d = sample();
    d.recent[0].path = format!("/example.com/{HOSTILE}/@v/list");
    d.recent[1].token = Some(HOSTILE.into());
    d.jobs[0].description = "<script>alert(2)</script> & more".into();
    d.top_modules[0].module = "example.com/\"quoted\"&<b>bold</b>".into();
    d.blocks[0].reason = "<a href=javascript:alert(3)>why</a>".into();
    d
}

/// Node 2 is gone: node 3 leads, holds the VIP and answers; replication is degraded.
fn failover() -> Dashboard {
    let mut d = sample();
    d.node_id = 3;
    d.cluster.leader = Some(3);
    d.cluster.term = 8;
    d.cluster.vip_holder = Some(3);
    d.cluster.replication_mode = "degraded".into();
    d.cluster.backlog_blobs = 14;
    d.cluster.backlog_bytes = 212 << 20;
    let gone = &mut d.members[1];
    gone.reachable = false;
    gone.role = "follower".into();
    (gone.last_applied, gone.lag_entries, gone.vip_held) = (None, None, None);
    (
        gone.cache_bytes,
        gone.disk_free_bytes,
        gone.disk_total_bytes,
    ) = (None, None, None);
    gone.error = Some("connect 10.0.0.2:7080: connection refused".into());
    d.members[2].role = "leader".into();
    d.members[2].vip_held = Some(true);
    d.members[2].lag_entries = Some(0);
    d.jobs[0].runner = Some(3);
    d
}

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-{name}.png"))
}

async fn screenshot(chromium: &Chromium, url: &str, name: &str, view: View) {
    let png = screenshot_path(name);
    chromium.screenshot(url, &png, view).await;
    println!("screenshot: {}", png.display());
}

fn member_cards(dom: &str) -> Vec<dom::Element<'_>> {
    dom::elements(dom)
        .into_iter()
        .filter(|e| e.attr("data-member-id").is_some())
        .collect()
}

#[tokio::test]
async fn shows_the_cluster_and_renders_hostile_strings_as_text() {
    let chromium = Chromium::find();
    let (fixture, url) = Fixture::serve(vec![Some(hostile())]).await;
    let page = chromium.load(&url).await;
    // No script error, no CSP violation (which an injected handler would also cause).
    assert!(page.console.is_empty(), "console: {:#?}", page.console);
    let dom = page.dom;

    let cards = member_cards(&dom);
    let ids: Vec<_> = cards
        .iter()
        .map(|c| c.attr("data-member-id").unwrap())
        .collect();
    assert_eq!(ids, ["1", "2", "3"], "{dom}");
    let roles: Vec<_> = cards.iter().map(|c| c.attr("data-role").unwrap()).collect();
    assert_eq!(roles, ["follower", "leader", "follower"]);
    assert!(cards
        .iter()
        .all(|c| c.attr("data-reachable") == Some("true")));
    assert_eq!(cards[1].attr("data-vip"), Some("true"));
    assert!(
        cards[2].text().contains("23 entries"),
        "lag of node 3: {}",
        cards[2].text()
    );

    let leader = by_id(&dom, "leader");
    assert_eq!(
        (leader.text().as_str(), leader.attr("data-leader")),
        ("node 2", Some("2"))
    );
    assert_eq!(by_id(&dom, "health").attr("data-health"), Some("ok"));
    assert_eq!(by_id(&dom, "replication-mode").text(), "sync");
    assert_eq!(by_id(&dom, "vip-holder").text(), "node 2");

    let job = &with_attr(&dom, "data-job-id", Some("job-0142"))[0];
    assert_eq!(job.attr("data-state"), Some("running"));
    assert!(job.text().contains("412 / 1,000 · 41%"), "{}", job.text());
    let progress = dom::elements(job.inner)
        .into_iter()
        .find(|e| e.attr("role") == Some("progressbar"));
    let progress = progress.expect("a progress bar");
    assert_eq!(
        (
            progress.attr("aria-valuenow"),
            progress.attr("aria-valuemax")
        ),
        (Some("412"), Some("1000"))
    );
    assert_eq!(with_attr(&dom, "data-job-id", None).len(), 4);

    let body = dom::elements(&dom)
        .into_iter()
        .find(|e| e.tag == "body")
        .unwrap();
    assert_eq!(
        (body.attr("data-state"), body.attr("data-updates")),
        (Some("live"), Some("3"))
    );
    // Three polls, counters +240 requests, +208 hits, +18 fills each 2 s.
    assert_eq!(by_id(&dom, "rate-requests").text(), "120");
    assert_eq!(by_id(&dom, "rate-hits").text(), "104");
    assert_eq!(by_id(&dom, "hit-ratio").text(), "92.0%");
    assert_eq!(by_id(&dom, "rate-bytes").text(), "48.0 MiB/s");
    assert_eq!(by_id(&dom, "sparkline").attr("data-samples"), Some("2"));
    assert_eq!(
        by_id(&dom, "cache-bar").attr("data-fraction"),
        Some("0.827")
    );
    assert_eq!(with_attr(&dom, "data-rule", None).len(), 2);
    assert_eq!(by_id(&dom, "banner").attr("hidden"), Some(""));
    assert_eq!(by_id(&dom, "issues").attr("hidden"), Some(""));

    // Attacker-chosen strings are text: the only elements are the page's own.
    let tags = dom::elements(&dom);
    for forbidden in ["img", "b", "a"] {
        assert!(
            tags.iter().all(|e| e.tag != forbidden),
            "a <{forbidden}> element in\n{dom}"
        );
    }
    assert_eq!(tags.iter().filter(|e| e.tag == "script").count(), 1);
    assert!(tags
        .iter()
        .all(|e| e.attrs.keys().all(|name| !name.starts_with("on"))));
    let hostile_row = &with_attr(&dom, "data-outcome", Some("fill"))[0];
    assert!(hostile_row
        .text()
        .contains(&format!("/example.com/{HOSTILE}/@v/list")));
    assert!(by_id(&dom, "recent").text().contains(HOSTILE));
    assert!(job.text().contains("<script>alert(2)</script> & more"));
    let top = with_attr(
        &dom,
        "data-module",
        Some("example.com/\"quoted\"&<b>bold</b>"),
    );
    assert_eq!(top.len(), 1, "module name kept whole in data-module");

    let views = [
        ("healthy", DESKTOP),
        (
            "dark",
            View {
                dark: true,
                ..DESKTOP
            },
        ),
        (
            "narrow",
            View {
                size: (420, 1800),
                dark: false,
            },
        ),
        (
            "full",
            View {
                size: (1400, 1900),
                dark: false,
            },
        ),
    ];
    for (name, view) in views {
        fixture.script(vec![Some(sample())]);
        screenshot(&chromium, &url, name, view).await;
    }
}

#[tokio::test]
async fn follows_a_failover_without_reloading() {
    let chromium = Chromium::find();
    let (fixture, url) = Fixture::serve(vec![Some(sample()), Some(failover())]).await;
    let page = chromium.load(&url).await;
    assert!(page.console.is_empty(), "console: {:#?}", page.console);
    let dom = page.dom;

    let leader = by_id(&dom, "leader");
    assert_eq!(
        (leader.text().as_str(), leader.attr("data-leader")),
        ("node 3", Some("3"))
    );
    let cards = member_cards(&dom);
    assert_eq!(cards.len(), 3, "{dom}");
    let reachable: Vec<_> = cards
        .iter()
        .map(|c| c.attr("data-reachable").unwrap())
        .collect();
    assert_eq!(reachable, ["true", "false", "true"]);
    assert!(
        cards[1].text().contains("Unreachable"),
        "{}",
        cards[1].text()
    );
    assert!(cards[1].text().contains("connection refused"));
    assert_eq!(cards[1].attr("data-role"), Some("follower"));
    assert_eq!(cards[2].attr("data-role"), Some("leader"));
    assert_eq!(cards[2].attr("data-vip"), Some("true"));
    let health = by_id(&dom, "health");
    assert_eq!(
        (health.text().as_str(), health.attr("data-health")),
        ("Degraded", Some("warn"))
    );
    let issues = by_id(&dom, "issues");
    assert_eq!(issues.attr("hidden"), None, "the problems are listed");
    assert!(
        issues.text().contains("node 2 unreachable"),
        "{}",
        issues.text()
    );
    assert_eq!(
        by_id(&dom, "replication-mode").attr("data-mode"),
        Some("degraded")
    );
    assert_eq!(by_id(&dom, "answered-by").text(), "node 3");
    assert_eq!(by_id(&dom, "backlog").text(), "14 blobs · 212 MiB");
    // Another node answered: its counters are its own, so rates started over from it.
    assert_eq!(by_id(&dom, "sparkline").attr("data-samples"), Some("1"));
    assert_eq!(by_id(&dom, "rate-requests").text(), "120");

    fixture.script(vec![Some(sample()), Some(failover())]);
    screenshot(&chromium, &url, "failover", DESKTOP).await;
}

#[tokio::test]
async fn keeps_the_last_data_when_the_node_stops_answering() {
    let chromium = Chromium::find();
    let (fixture, url) = Fixture::serve(vec![Some(sample()), None]).await;
    let dom = chromium.load(&url).await.dom;

    let banner = by_id(&dom, "banner");
    assert_eq!(banner.attr("hidden"), None, "the banner shows");
    let words = banner.text();
    assert!(
        words.starts_with("Node unreachable — last update "),
        "{words}"
    );
    assert!(
        words.ends_with(" s ago. Showing the last data received (HTTP 503)."),
        "{words}"
    );
    let body = &dom::elements(&dom)
        .into_iter()
        .find(|e| e.tag == "body")
        .unwrap();
    assert_eq!(body.attr("data-state"), Some("stale"));
    assert_eq!(member_cards(&dom).len(), 3, "the last data stays");
    assert_eq!(by_id(&dom, "leader").text(), "node 2");

    fixture.script(vec![Some(sample()), None]);
    screenshot(&chromium, &url, "unreachable", DESKTOP).await;
}
