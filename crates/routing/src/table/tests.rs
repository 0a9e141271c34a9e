use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Config {
    #[serde(default, rename = "route")]
    routes: Vec<RouteSpec>,
    #[serde(default, rename = "env")]
    environments: BTreeMap<String, EnvSpec>,
}

const PUBLIC: &str = "https://proxy.example,https://mirror.example";

fn table(toml_text: &str) -> Result<RouteTable, Vec<String>> {
    let config: Config = toml::from_str(toml_text).expect("test TOML parses");
    RouteTable::build(PUBLIC, &config.routes, &config.environments, &|name| {
        name == "corp-git"
    })
}

const COMPANY: &str = r#"
[[route]]
match = "git.corp.example,*.corp.example/team"
upstream = "direct"
credentials = "corp-git"

[[route]]
match = "github.com/evil-org"
deny = true
reason = "evil-org is banned by security (TICKET-12)"

[[route]]
match = "golang.org/x/*"
upstream = "https://golang-mirror.example|direct"

[env.prod]
mode = "cache-only"

[env.sandbox]
upstream = "off"
inherit_routes = false

[[env.sandbox.route]]
match = "github.com/evil-org/tool"
upstream = "https://quarantine.example"
"#;

#[test]
fn first_matching_rule_wins_and_the_proxy_upstream_is_the_default() {
    let t = table(COMPANY).unwrap();
    let d = t
        .decide(DEFAULT_ENVIRONMENT, "git.corp.example/lib/v2")
        .unwrap();
    assert_eq!(d.rule, RuleRef::Root(0));
    assert_eq!(d.glob, Some("git.corp.example"));
    assert_eq!(d.credentials, Some("corp-git"));
    assert!(matches!(d.action, Action::Fetch(l) if l.to_string() == "direct"));

    let d = t
        .decide(DEFAULT_ENVIRONMENT, "x.corp.example/team/svc")
        .unwrap();
    assert_eq!(
        (d.rule, d.glob),
        (RuleRef::Root(0), Some("*.corp.example/team"))
    );

    let d = t
        .decide(DEFAULT_ENVIRONMENT, "github.com/evil-org/tool")
        .unwrap();
    assert_eq!(
        d.action,
        &Action::Deny("evil-org is banned by security (TICKET-12)".into())
    );

    let d = t.decide(DEFAULT_ENVIRONMENT, "golang.org/x/net").unwrap();
    assert_eq!(d.rule, RuleRef::Root(2));
    assert_eq!(d.credentials, None);

    let d = t
        .decide(DEFAULT_ENVIRONMENT, "github.com/gin-gonic/gin")
        .unwrap();
    assert_eq!((d.rule, d.glob), (RuleRef::Default, None));
    assert!(matches!(d.action, Action::Fetch(l) if l.to_string() == PUBLIC));
    assert_eq!(d.mode, Mode::Fill);
}

/// Review finding (dependency confusion): an environment routing a private path elsewhere
/// could fill a public look-alike into the one cache every environment serves from.
#[test]
fn a_private_path_is_fetched_only_through_its_private_rule() {
    let t = table(
        r#"
[[route]]
match = "git.corp.example"
upstream = "direct"
credentials = "corp-git"

[env.public]
inherit_routes = false

[env.team]
[[env.team.route]]
match = "team.example"
upstream = "direct"

[env.same]
inherit_routes = false
[[env.same.route]]
match = "git.corp.example/lib"
upstream = "direct"
credentials = "corp-git"
"#,
    )
    .unwrap();
    // The private rule itself, and environments that inherit it: no conflict.
    for env in [DEFAULT_ENVIRONMENT, "team"] {
        let d = t.decide(env, "git.corp.example/lib").unwrap();
        assert_eq!(d.private_elsewhere, None, "{env}");
    }
    // The same source through another rule is no conflict either.
    assert_eq!(
        t.decide("same", "git.corp.example/lib")
            .unwrap()
            .private_elsewhere,
        None
    );
    // An environment that would fetch it from the public default: refused, with the rule.
    let d = t.decide("public", "git.corp.example/lib").unwrap();
    let why = d.private_elsewhere.clone().expect("a conflict");
    assert!(
        why.contains("route[0]") && why.contains("\"public\""),
        "{why}"
    );
    assert!(d.to_string().contains("refused:"), "{d}");
    // And the other way: the root would fetch a path another environment keeps private.
    let d = t.decide(DEFAULT_ENVIRONMENT, "team.example/svc").unwrap();
    assert!(d.private_elsewhere.unwrap().contains("env.team.route[0]"));
    // Denials are never conflicts.
    let d = t.decide("public", "github.com/x/y").unwrap();
    assert_eq!(d.private_elsewhere, None);
}

/// Review finding: `github.com/BadOrg/x` (requested as `github.com/!bad!org/x`) passed a
/// deny of `github.com/badorg`, and GitHub serves both spellings.
#[test]
fn deny_rules_ignore_case() {
    let t = table(
        "[[route]]\nmatch = \"github.com/BadOrg\"\ndeny = true\n\
         [[route]]\nmatch = \"Corp.Example\"\nupstream = \"https://corp-proxy.example\"\n",
    )
    .unwrap();
    for module in [
        "github.com/badorg/x",
        "github.com/BadOrg/x",
        "GitHub.com/BADORG/x",
    ] {
        let d = t.decide(DEFAULT_ENVIRONMENT, module).unwrap();
        assert!(matches!(d.action, Action::Deny(_)), "{module}: {d:?}");
    }
    // Fetching rules keep Go's exact matching.
    let d = t.decide(DEFAULT_ENVIRONMENT, "corp.example/lib").unwrap();
    assert_eq!(d.rule, RuleRef::Default);
}

#[test]
fn environments_try_their_own_rules_then_inherit_the_default_ones() {
    let t = table(COMPANY).unwrap();
    assert_eq!(t.environments().collect::<Vec<_>>(), ["prod", "sandbox"]);

    let d = t.decide("prod", "github.com/evil-org/tool").unwrap();
    assert_eq!((d.mode, d.rule), (Mode::CacheOnly, RuleRef::Root(1)));
    assert!(matches!(d.action, Action::Deny(_)));
    let d = t.decide("prod", "github.com/gin-gonic/gin").unwrap();
    assert_eq!((d.environment, d.rule), ("prod", RuleRef::Default));

    // sandbox overrides the deny with its own earlier rule, inherits nothing, and its
    // default route is off.
    let d = t.decide("sandbox", "github.com/evil-org/tool").unwrap();
    assert_eq!(d.rule, RuleRef::Environment("sandbox", 0));
    let d = t.decide("sandbox", "git.corp.example/lib").unwrap();
    assert_eq!(d.rule, RuleRef::Default);
    assert!(matches!(d.action, Action::Fetch(l) if l.to_string() == "off"));

    assert_eq!(
        t.decide("staging", "x.example/m"),
        Err(EnvError::Unknown("staging".into()))
    );
}

#[test]
fn request_paths_name_their_environment() {
    let t = table(COMPANY).unwrap();
    assert_eq!(
        t.split_path("/golang.org/x/net/@v/list"),
        Ok((DEFAULT_ENVIRONMENT, "/golang.org/x/net/@v/list"))
    );
    assert_eq!(
        t.split_path("/env/prod/golang.org/x/net/@v/list"),
        Ok(("prod", "/golang.org/x/net/@v/list"))
    );
    assert_eq!(
        t.split_path("/env/prod/sumdb/sum.golang.org/supported"),
        Ok(("prod", "/sumdb/sum.golang.org/supported"))
    );
    assert_eq!(t.split_path("/env/prod"), Err(EnvError::Malformed));
    assert_eq!(
        t.split_path("/env//x.example/@v/list"),
        Err(EnvError::Malformed)
    );
    let long = format!("/env/{}/m/@v/list", "n".repeat(5000));
    match t.split_path(&long) {
        Err(EnvError::Unknown(name)) => assert!(name.len() <= MAX_ENV_NAME + 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_mistake_is_reported_with_where_it_is() {
    let problems = table(
        r#"
[[route]]
match = "[bad"
upstream = "direct"

[[route]]
match = "a.example"

[[route]]
match = "b.example"
deny = true
upstream = "https://x.example"

[[route]]
match = "c.example"
upstream = "ftp://c.example"
credentials = "nobody"

[[route]]
match = "d.example"
upstream = "direct"
reason = "not denied"

[env.Prod]
mode = "cache-only"

[env.default]

[env.qa]
upstream = "https://,"
"#,
    )
    .unwrap_err();
    let joined = problems.join("\n");
    for needle in [
        "route[0].match: \"[bad\" is not a valid glob",
        "route[1]: needs an upstream",
        "route[2]: a rule either denies or names an upstream",
        "route[3].upstream: upstream \"ftp://c.example\" is not",
        "route[3].credentials: no credential set named \"nobody\"",
        "route[4].reason: only a rule with deny = true",
        "env.Prod: an environment name is",
        "env.default: \"default\" is the environment at the root path",
        "env.qa.upstream:",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert_eq!(problems.len(), 9, "{joined}");
}

#[test]
fn unknown_keys_are_refused() {
    let err = toml::from_str::<Config>("[[route]]\nmatch = \"a.example\"\nupstrem = \"direct\"\n")
        .err()
        .expect("a misspelt key is an error");
    assert!(err.to_string().contains("upstrem"), "{err}");
}

#[test]
fn explain_says_which_rule_and_upstream_without_secrets() {
    let config: Config = toml::from_str(
        r#"
[[route]]
match = "private.example"
upstream = "https://user:s3cret@athens.example,direct"
credentials = "corp-git"

[env.prod]
mode = "cache-only"
"#,
    )
    .unwrap();
    let t = RouteTable::build(PUBLIC, &config.routes, &config.environments, &|_| true).unwrap();
    let text = t.decide("prod", "private.example/lib").unwrap().to_string();
    assert_eq!(
        text,
        "environment: prod (cache-only)\n\
         rule:        route[0] (matched \"private.example\")\n\
         action:      serve from the cache only (would fetch from https://***@athens.example,direct)\n\
         credentials: corp-git"
    );
    assert!(!format!("{:?}", config.routes[0].redacted()).contains("s3cret"));
    let default = t
        .decide(DEFAULT_ENVIRONMENT, "github.com/x/y")
        .unwrap()
        .to_string();
    assert!(
        default.contains("default upstream (no rule matched)"),
        "{default}"
    );
    assert!(t.uses_direct());
    assert!(!RouteTable::with_upstream(PUBLIC).unwrap().uses_direct());
}

#[test]
fn sources_separate_list_answers_of_different_upstreams() {
    let t = table(COMPANY).unwrap();
    let a = t
        .decide(DEFAULT_ENVIRONMENT, "golang.org/x/net")
        .unwrap()
        .source();
    let b = t
        .decide(DEFAULT_ENVIRONMENT, "github.com/a/b")
        .unwrap()
        .source();
    let c = t.decide("prod", "github.com/a/b").unwrap().source();
    assert_ne!(a, b);
    assert_eq!(b, c);
}

/// Review finding: the source was the redacted list, so two environments whose upstreams
/// differ only in their credentials shared one client (and the first one's password).
#[test]
fn lists_that_differ_only_in_credentials_are_different_sources() {
    let envs: BTreeMap<String, EnvSpec> = toml::from_str(
        r#"
[a]
upstream = "https://alice:PW_A@art.example/go"
[b]
upstream = "https://bob:PW_B@art.example/go"
"#,
    )
    .unwrap();
    let t = RouteTable::build(PUBLIC, &[], &envs, &|_| false).unwrap();
    let a = t.decide("a", "x.example/m").unwrap().source();
    let b = t.decide("b", "x.example/m").unwrap().source();
    assert_ne!(a, b);
    assert!(!a.contains("PW_A") && !a.contains("alice"), "{a}");
}
