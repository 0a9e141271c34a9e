//! `cluster/monitoring/`: the Prometheus alert rules pass `promtool check rules` and their unit
//! tests (`promtool test rules`), every alert is complete (a `for:`, a severity, what to do, a
//! runbook section that exists), the Grafana dashboard is an importable dashboard whose every
//! panel queries something valid, and every `goproxy_…` metric the rules or the dashboard
//! name is exported by a real node's `/metrics`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{client, corpus_dir, HttpServer, Node};

/// Metrics the rules and the dashboard may name although the single node started here does
/// not export them, because they exist only in configurations it does not have. Keep this
/// list minimal: every entry is a name the test cannot check.
const ONLY_IN_OTHER_CONFIGURATIONS: &[&str] = &[
    // Exported only by a node with a [vip] section, which needs CAP_NET_ADMIN and a real
    // interface (the VIP tests run in network namespaces).
    "goproxy_vip_held",
];

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cluster/monitoring")
}

fn read(name: &str) -> String {
    let path = monitoring_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Runs `promtool ARGS` in `cluster/monitoring/`; returns (success, stdout and stderr).
fn promtool(args: &[&str]) -> (bool, String) {
    let output = match Command::new("promtool")
        .args(args)
        .current_dir(monitoring_dir())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is not installed (not on PATH): run `scripts/bootstrap.sh test` \
             (it installs Debian's prometheus package, which has promtool)"
        ),
        Err(e) => panic!("running promtool: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let (ok, output) = promtool(&args);
        assert!(
            ok,
            "`promtool {}` failed in cluster/monitoring:\n{output}",
            args.join(" ")
        );
    }
}

/// GitHub's anchor for a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The rules of alerts.yml as (alert name, the lines of its rule), split at `- alert:`.
fn alert_blocks(rules: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for line in rules.lines() {
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            blocks.push((name.trim().to_string(), Vec::new()));
        } else if trimmed.starts_with("- name:") {
            // A new group: the lines that follow belong to no alert until the next one.
            blocks.push((String::new(), Vec::new()));
        } else if let Some((_, lines)) = blocks.last_mut() {
            lines.push(trimmed.to_string());
        }
    }
    blocks.retain(|(name, _)| !name.is_empty());
    blocks
}

#[test]
fn every_alert_says_how_long_how_bad_what_to_do_and_where_the_runbook_is() {
    let rules = read("alerts.yml");
    let tests = read("alerts_test.yml");
    let runbook_path = monitoring_dir().join("../RUNBOOK.md");
    let runbook = std::fs::read_to_string(&runbook_path).expect("cluster/RUNBOOK.md");
    let sections: BTreeSet<String> = runbook
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();

    let blocks = alert_blocks(&rules);
    assert!(
        blocks.len() >= 13,
        "only {} alerts in alerts.yml",
        blocks.len()
    );
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, lines) in &blocks {
        if !seen.insert(name.clone()) {
            problems.push(format!("{name}: defined twice"));
        }
        let value = |key: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().trim_matches('"').to_string())
        };
        if value("for:").is_none() {
            problems.push(format!("{name}: no `for:`"));
        }
        match value("severity:").as_deref() {
            Some("critical" | "warning") => {}
            other => problems.push(format!(
                "{name}: severity {other:?}, want critical or warning"
            )),
        }
        for key in ["summary:", "description:"] {
            if value(key).is_none() {
                problems.push(format!("{name}: no {key} annotation"));
            }
        }
        match value("runbook_url:") {
            Some(url) => match url.strip_prefix("cluster/RUNBOOK.md#") {
                Some(section) if sections.contains(section) => {}
                _ => problems.push(format!(
                    "{name}: runbook_url {url} is not cluster/RUNBOOK.md#SECTION with one of {sections:?}"
                )),
            },
            None => problems.push(format!("{name}: no runbook_url annotation")),
        }
        // The healthy test names every alert; each also needs a case in which it fires.
        let cases = tests.matches(&format!("alertname: {name}\n")).count()
            + tests.matches(&format!("alertname: {name},")).count();
        if cases < 2 {
            problems.push(format!(
                "{name}: alerts_test.yml should test it firing and silent ({cases} case(s))"
            ));
        }
    }
    assert!(problems.is_empty(), "alerts.yml:\n{}", problems.join("\n"));
}

/// Every panel, including those nested in collapsed rows.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        for inner in panel["panels"].as_array().into_iter().flatten() {
            out.push(inner);
        }
    }
    out
}

fn dashboard() -> Value {
    serde_json::from_str(&read("grafana-dashboard.json"))
        .unwrap_or_else(|e| panic!("grafana-dashboard.json is not valid JSON: {e}"))
}

/// (panel title, refId, expr) of every query of every panel.
fn queries(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for panel in all_panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                title.clone(),
                target["refId"].as_str().unwrap_or_default().to_string(),
                target["expr"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

#[test]
fn the_dashboard_is_importable_and_every_panel_queries_prometheus() {
    let dashboard = dashboard();
    assert!(
        dashboard["title"].as_str().is_some_and(|t| !t.is_empty()),
        "no title"
    );
    assert!(
        dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()),
        "no uid"
    );
    assert!(
        dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion {}",
        dashboard["schemaVersion"]
    );
    let inputs = dashboard["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS"
            && i["type"] == "datasource"
            && i["pluginId"] == "prometheus"),
        "no DS_PROMETHEUS data source input: {inputs:?}"
    );
    let variables: BTreeSet<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for wanted in ["job", "instance"] {
        assert!(
            variables.contains(wanted),
            "no ${wanted} variable: {variables:?}"
        );
    }

    let panels = all_panels(&dashboard);
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    let mut rows = 0;
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or_default();
        if !ids.insert(panel["id"].as_u64().expect("every panel has a numeric id")) {
            problems.push(format!("{title}: duplicate id {}", panel["id"]));
        }
        if panel["gridPos"]["w"].as_u64().is_none() {
            problems.push(format!("{title}: no gridPos"));
        }
        if panel["type"] == "row" {
            rows += 1;
            continue;
        }
        if panel["datasource"]["uid"] != "${DS_PROMETHEUS}" {
            problems.push(format!(
                "{title}: data source {} is not ${{DS_PROMETHEUS}}",
                panel["datasource"]
            ));
        }
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if targets.is_empty() {
            problems.push(format!("{title}: no query"));
        }
        for target in targets {
            if target["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                problems.push(format!("{title}: a query without expr: {target}"));
            }
        }
    }
    assert!(problems.is_empty(), "dashboard:\n{}", problems.join("\n"));
    assert!(
        rows >= 6,
        "{rows} rows; want cluster, traffic, replication, storage, jobs, audit"
    );
    assert!(
        panels.len() - rows >= 20,
        "only {} panels",
        panels.len() - rows
    );
}

#[test]
fn the_dashboard_queries_are_valid_promql() {
    // Every query as a recording rule, Grafana's variables replaced by values, so that
    // `promtool check rules` parses it. (JSON is YAML.)
    let named: Vec<(String, String, String)> = queries(&dashboard())
        .into_iter()
        .enumerate()
        .map(|(i, (title, ref_id, expr))| {
            let expr = expr
                .replace("$__rate_interval", "5m")
                .replace("$__range", "1h")
                .replace("$job", "goproxy-ha")
                .replace("$instance", ".*");
            (format!("dashboard:query_{i}_{ref_id}"), title, expr)
        })
        .collect();
    assert!(!named.is_empty());
    let rules: Vec<Value> = named
        .iter()
        .map(|(record, _, expr)| serde_json::json!({"record": record, "expr": expr}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-queries.json");
    let groups = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&file, serde_json::to_vec_pretty(&groups).unwrap()).unwrap();
    let (ok, output) = promtool(&["check", "rules", file.to_str().unwrap()]);
    let culprits: Vec<String> = named
        .iter()
        .filter(|(record, _, _)| output.contains(&format!("\"{record}\"")))
        .map(|(record, title, expr)| format!("{record}: panel \"{title}\": {expr}"))
        .collect();
    assert!(
        ok,
        "a dashboard query does not parse (promtool check rules):\n{output}\n{}",
        culprits.join("\n")
    );
}

/// The `goproxy_…` metric names in `text`: whole words, leaving out wildcard mentions such
/// as `goproxy_raft_*` or `goproxy_replication_backlog_{blobs,bytes}`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("goproxy_") {
        let start = from + at;
        let mut end = start + "goproxy_".len();
        while end < bytes.len() && word(bytes[end]) {
            end += 1;
        }
        from = end;
        let name = &text[start..end];
        if (start > 0 && word(bytes[start - 1])) || name.ends_with('_') {
            continue;
        }
        names.insert(name.to_string());
    }
    names
}

/// Every string in a JSON value (queries, variable queries, descriptions).
fn strings(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// A Prometheus text exposition: metric families by their `# TYPE`, and sample names.
struct Exposition {
    types: BTreeMap<String, String>,
    samples: BTreeSet<String>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut types = BTreeMap::new();
        let mut samples = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                    types.insert(name.to_string(), kind.to_string());
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                samples.insert(line[..end].to_string());
            }
        }
        Self { types, samples }
    }

    /// Whether `name` can be queried: a sample, or a family without samples yet (a labelled
    /// family nothing has touched), where counters are queried as `_total` and histograms
    /// as `_bucket`, `_sum` and `_count`.
    fn check(&self, name: &str) -> Result<(), String> {
        if self.samples.contains(name) {
            return Ok(());
        }
        match self.types.get(name).map(String::as_str) {
            Some("counter") => return Err(format!("a counter: query {name}_total")),
            Some("histogram") => {
                return Err(format!("a histogram: query {name}_bucket, _sum or _count"))
            }
            Some(_) => return Ok(()),
            None => {}
        }
        let family = |suffix: &str, kind: &str| {
            name.strip_suffix(suffix)
                .is_some_and(|base| self.types.get(base).is_some_and(|t| t == kind))
        };
        if family("_total", "counter")
            || ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| family(s, "histogram"))
        {
            return Ok(());
        }
        Err("not exported".to_string())
    }
}

#[tokio::test]
async fn every_metric_the_rules_and_the_dashboard_name_is_exported_by_a_node() {
    let mut referenced: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut dashboard_text = String::new();
    strings(&dashboard(), &mut dashboard_text);
    for (file, text) in [
        ("alerts.yml", read("alerts.yml")),
        ("grafana-dashboard.json", dashboard_text),
    ] {
        let names = metric_names(&text);
        assert!(names.len() >= 10, "{file} names only {names:?}");
        for name in names {
            referenced.entry(name).or_default().insert(file);
        }
    }

    // A single node with a request audit log (the goproxy_audit_* gauges exist only then),
    // after one fill, so that labelled families have samples too.
    let upstream = HttpServer::serve_dir(&corpus_dir());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    let audit = dir.path().join("audit.log");
    let audit = toml::Value::String(audit.to_str().unwrap().to_string());
    std::fs::write(&config, format!("[audit]\npath = {audit}\n")).unwrap();
    let node = Node::start(
        &dir.path().join("n1"),
        &upstream.url,
        &["--config", config.to_str().unwrap()],
    );
    let fill = client()
        .get(node.url("github.com/gin-gonic/gin/@v/v1.8.1.info"))
        .send()
        .await
        .unwrap();
    assert!(fill.status().is_success(), "fill: {}", fill.status());
    let metrics = client()
        .get(node.url("metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exposition = Exposition::parse(&metrics);

    let mut missing = Vec::new();
    for (name, files) in &referenced {
        let files = files.iter().copied().collect::<Vec<_>>().join(", ");
        let allowed = ONLY_IN_OTHER_CONFIGURATIONS.contains(&name.as_str());
        match (exposition.check(name), allowed) {
            (Ok(()), false) | (Err(_), true) => {}
            (Ok(()), true) => missing.push(format!(
                "{name} is exported by a single node: remove it from ONLY_IN_OTHER_CONFIGURATIONS"
            )),
            (Err(why), false) => missing.push(format!("{name} ({files}): {why}")),
        }
    }
    for name in ONLY_IN_OTHER_CONFIGURATIONS {
        if !referenced.contains_key(*name) {
            missing.push(format!(
                "{name} is in ONLY_IN_OTHER_CONFIGURATIONS but nothing names it: remove it"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "metrics named in cluster/monitoring/ that a node does not export as such:\n{}\n\n\
         the node's /metrics:\n{metrics}",
        missing.join("\n")
    );
}
