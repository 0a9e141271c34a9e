//! The route table: ordered rules per environment, first match wins, the proxy's upstream
//! list as the default route.
//!
//! An environment other than the default one is served under `/env/NAME/`; its own rules are
//! tried first, then (unless `inherit_routes = false`) the default environment's, then its
//! `upstream` (or the proxy's). So a `deny` in the default table also holds in every
//! environment that does not override it with an earlier rule of its own.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::glob::{PathPatterns, PatternError};
use crate::list::{redact_list, UpstreamList, UpstreamListError};

/// Name of the environment served at the root path.
pub const DEFAULT_ENVIRONMENT: &str = "default";
/// Path segment that introduces an environment name: `/env/NAME/...`.
pub const ENV_PREFIX: &str = "/env/";
/// Longest accepted environment name.
pub const MAX_ENV_NAME: usize = 63;

/// What an environment may do on a miss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Misses are filled from the route's upstream.
    #[default]
    Fill,
    /// Only what the cluster already holds is served; misses are "not found".
    CacheOnly,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Fill => "fill",
            Mode::CacheOnly => "cache-only",
        })
    }
}

/// One `[[route]]` as written in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Module path patterns, `go help private` syntax.
    #[serde(rename = "match")]
    pub pattern: String,
    /// GOPROXY-syntax list (`https://a|https://b,direct`, `direct`, `off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Name of a credential set used when fetching for this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Answer matching paths with 403 instead of fetching them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deny: bool,
    /// Why a denied path is denied (shown to the client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The checksum database fills of matching public modules are verified against (a
    /// `[[proxy.sumdb]]` name), or `"off"`: not verified. Default: the first configured
    /// database. Private rules (`direct`, credentials) are never verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sumdb: Option<String>,
}

impl RouteSpec {
    /// This rule with credentials in upstream URLs shown as `***`.
    pub fn redacted(&self) -> Self {
        Self {
            upstream: self.upstream.as_deref().map(redact_list),
            ..self.clone()
        }
    }
}

/// One `[env.NAME]` as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvSpec {
    /// `fill` (default) or `cache-only`.
    pub mode: Mode,
    /// Default route of this environment (the proxy's upstream when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Whether the default environment's rules apply after this environment's own.
    pub inherit_routes: bool,
    /// This environment's own rules, tried first.
    #[serde(rename = "route", skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteSpec>,
}

impl Default for EnvSpec {
    fn default() -> Self {
        Self {
            mode: Mode::Fill,
            upstream: None,
            inherit_routes: true,
            routes: Vec::new(),
        }
    }
}

impl EnvSpec {
    /// This environment with credentials in upstream URLs shown as `***`.
    pub fn redacted(&self) -> Self {
        Self {
            upstream: self.upstream.as_deref().map(redact_list),
            routes: self.routes.iter().map(RouteSpec::redacted).collect(),
            ..self.clone()
        }
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fetch misses from this list.
    Fetch(UpstreamList),
    /// Refuse with 403 and this reason.
    Deny(String),
}

/// A compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    patterns: PathPatterns,
    action: Action,
    credentials: Option<String>,
    sumdb: Option<String>,
}

/// Which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleRef<'t> {
    /// `[[env.NAME.route]]` number `index` (from 0) of the environment.
    Environment(&'t str, usize),
    /// `[[route]]` number `index` (from 0) of the default environment.
    Root(usize),
    /// No rule matched: the environment's (or the proxy's) upstream.
    Default,
}

impl fmt::Display for RuleRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleRef::Environment(env, i) => write!(f, "env.{env}.route[{i}]"),
            RuleRef::Root(i) => write!(f, "route[{i}]"),
            RuleRef::Default => f.write_str("default upstream"),
        }
    }
}

/// Where one module path goes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'t> {
    /// The environment that was asked.
    pub environment: &'t str,
    /// That environment's mode.
    pub mode: Mode,
    /// The rule that decided.
    pub rule: RuleRef<'t>,
    /// The glob of that rule that matched (none for the default route).
    pub glob: Option<&'t str>,
    /// What to do.
    pub action: &'t Action,
    /// The credential set to fetch with.
    pub credentials: Option<&'t str>,
    /// The rule's checksum database setting (`off` or a name; none: the proxy's default).
    pub sumdb: Option<&'t str>,
    /// A private rule (one fetching `direct` or with credentials) of another environment that
    /// also matches this path, while this decision would fetch it publicly: it must not, or a
    /// public look-alike could be cached where the private module is expected (dependency
    /// confusion). What is cached is still served.
    pub private_elsewhere: Option<String>,
}

impl Decision<'_> {
    /// Whether this decision fetches privately: from version control, or with a credential
    /// set.
    pub fn is_private(&self) -> bool {
        match self.action {
            Action::Fetch(list) => list.has_direct() || self.credentials.is_some(),
            Action::Deny(_) => false,
        }
    }

    /// Identifies where answers for this decision come from: two decisions with the same
    /// source (the same list, credentials in URLs included, and the same credential set) get
    /// the same answers, so they may share an upstream client and cache entries. An opaque
    /// key: it never shows a secret, and is never shown.
    pub fn source(&self) -> String {
        match self.action {
            Action::Fetch(list) => format!(
                "{:016x}/{}/{}",
                list.fingerprint(),
                self.credentials.unwrap_or(""),
                self.sumdb.unwrap_or("")
            ),
            Action::Deny(_) => "denied".to_string(),
        }
    }
}

impl fmt::Display for Decision<'_> {
    /// The multi-line report of `goproxy-ha route explain`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "environment: {} ({})", self.environment, self.mode)?;
        match self.glob {
            Some(glob) => writeln!(f, "rule:        {} (matched {glob:?})", self.rule)?,
            None => writeln!(f, "rule:        {} (no rule matched)", self.rule)?,
        }
        match self.action {
            Action::Fetch(list) if self.mode == Mode::CacheOnly => writeln!(
                f,
                "action:      serve from the cache only (would fetch from {list})"
            )?,
            Action::Fetch(list) => writeln!(f, "action:      fetch from {list}")?,
            Action::Deny(reason) => writeln!(f, "action:      deny (403): {reason}")?,
        }
        write!(f, "credentials: {}", self.credentials.unwrap_or("none"))?;
        if let Some(sumdb) = self.sumdb {
            write!(f, "\nsumdb:       {sumdb}")?;
        }
        if let Some(conflict) = &self.private_elsewhere {
            write!(f, "\nrefused:     {conflict}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Environment {
    mode: Mode,
    rules: Vec<Rule>,
    inherit: bool,
    default: Action,
}

/// Why a request path names no usable environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// `/env/NAME/` for a name the table does not have.
    #[error("unknown environment {0:?}")]
    Unknown(String),
    /// `/env/` without a name and a path after it.
    #[error("an environment path is /env/NAME/MODULE/...")]
    Malformed,
}

/// The compiled routing configuration of every environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    root: Environment,
    environments: BTreeMap<String, Environment>,
}

impl RouteTable {
    /// Compiles the configuration. `upstream` is the proxy's list (the default route);
    /// `has_credentials` says whether a credential set of that name is configured. Every
    /// problem is reported, each prefixed with where it is (`route[2].match: ...`).
    pub fn build(
        upstream: &str,
        routes: &[RouteSpec],
        environments: &BTreeMap<String, EnvSpec>,
        has_credentials: &dyn Fn(&str) -> bool,
    ) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let default = match UpstreamList::parse(upstream) {
            Ok(list) => Action::Fetch(list),
            Err(e) => {
                problems.push(format!("proxy.upstream: {e}"));
                Action::Deny(String::new())
            }
        };
        let root = Environment {
            mode: Mode::Fill,
            rules: compile_rules("route", routes, has_credentials, &mut problems),
            inherit: false,
            default: default.clone(),
        };
        let mut compiled = BTreeMap::new();
        for (name, spec) in environments {
            if let Err(why) = check_env_name(name) {
                problems.push(format!("env.{name}: {why}"));
                continue;
            }
            let at = format!("env.{name}");
            let default = match &spec.upstream {
                None => default.clone(),
                Some(list) => match UpstreamList::parse(list) {
                    Ok(list) => Action::Fetch(list),
                    Err(e) => {
                        problems.push(format!("{at}.upstream: {e}"));
                        continue;
                    }
                },
            };
            let rules = compile_rules(
                &format!("{at}.route"),
                &spec.routes,
                has_credentials,
                &mut problems,
            );
            compiled.insert(
                name.clone(),
                Environment {
                    mode: spec.mode,
                    rules,
                    inherit: spec.inherit_routes,
                    default,
                },
            );
        }
        if problems.is_empty() {
            Ok(Self {
                root,
                environments: compiled,
            })
        } else {
            Err(problems)
        }
    }

    /// A table with only a default route (no rules, no environments).
    pub fn with_upstream(upstream: &str) -> Result<Self, UpstreamListError> {
        let list = UpstreamList::parse(upstream)?;
        Ok(Self {
            root: Environment {
                mode: Mode::Fill,
                rules: Vec::new(),
                inherit: false,
                default: Action::Fetch(list),
            },
            environments: BTreeMap::new(),
        })
    }

    /// Names of the configured environments besides the default one.
    pub fn environments(&self) -> impl Iterator<Item = &str> {
        self.environments.keys().map(String::as_str)
    }

    /// Whether any rule or default route of any environment fetches from version control.
    pub fn uses_direct(&self) -> bool {
        std::iter::once(&self.root)
            .chain(self.environments.values())
            .flat_map(|env| {
                env.rules
                    .iter()
                    .map(|r| &r.action)
                    .chain(std::iter::once(&env.default))
            })
            .any(|a| matches!(a, Action::Fetch(list) if list.has_direct()))
    }

    /// Splits a request path into its environment and the GOPROXY path below it:
    /// `/env/prod/golang.org/x/net/@v/list` is `("prod", "/golang.org/x/net/@v/list")`;
    /// any path not under `/env/` belongs to the default environment. (No module path
    /// starts with `env/`: a module path's first element has a dot.)
    pub fn split_path<'p>(&self, path: &'p str) -> Result<(&str, &'p str), EnvError> {
        let Some(rest) = path.strip_prefix(ENV_PREFIX) else {
            return Ok((DEFAULT_ENVIRONMENT, path));
        };
        let Some(slash) = rest.find('/') else {
            return Err(EnvError::Malformed);
        };
        let (name, below) = rest.split_at(slash);
        match self.environments.get_key_value(name) {
            Some((name, _)) => Ok((name.as_str(), below)),
            None if name.is_empty() => Err(EnvError::Malformed),
            None => Err(EnvError::Unknown(shorten(name))),
        }
    }

    /// The environment called `environment`, with its name as the table holds it.
    fn environment(&self, environment: &str) -> Result<(&str, &Environment), EnvError> {
        if environment == DEFAULT_ENVIRONMENT {
            return Ok((DEFAULT_ENVIRONMENT, &self.root));
        }
        self.environments
            .get_key_value(environment)
            .map(|(name, env)| (name.as_str(), env))
            .ok_or_else(|| EnvError::Unknown(shorten(environment)))
    }

    /// The default route of `environment`, for requests that name no module (the checksum
    /// database endpoints).
    pub fn default_route<'t>(&'t self, environment: &str) -> Result<Decision<'t>, EnvError> {
        let (name, env) = self.environment(environment)?;
        Ok(Decision {
            environment: name,
            mode: env.mode,
            rule: RuleRef::Default,
            glob: None,
            action: &env.default,
            credentials: None,
            sumdb: None,
            private_elsewhere: None,
        })
    }

    /// Every rule of every environment that fetches privately and matches `module`.
    /// The first rule of any environment that fetches `module` privately (checked on every
    /// public request: it stops at the first match and allocates nothing).
    fn private_rule<'t>(&'t self, module: &str) -> Option<RuleRef<'t>> {
        let root = self
            .root
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (RuleRef::Root(i), r));
        let envs = self.environments.iter().flat_map(|(name, env)| {
            env.rules
                .iter()
                .enumerate()
                .map(move |(i, r)| (RuleRef::Environment(name, i), r))
        });
        root.chain(envs)
            .find(|(_, rule)| {
                let private = match &rule.action {
                    Action::Fetch(list) => list.has_direct() || rule.credentials.is_some(),
                    Action::Deny(_) => false,
                };
                private && rule.patterns.matches(module)
            })
            .map(|(at, _)| at)
    }

    /// Marks a public `decision` when a private rule elsewhere claims the same path.
    fn checked<'t>(&'t self, mut decision: Decision<'t>, module: &str) -> Decision<'t> {
        if decision.is_private() || matches!(decision.action, Action::Deny(_)) {
            return decision;
        }
        if let Some(at) = self.private_rule(module) {
            decision.private_elsewhere = Some(format!(
                "{module} is fetched privately by {at}; environment {:?} would fetch it from a public upstream, so it serves only what is cached (give both the same rule)",
                decision.environment
            ));
        }
        decision
    }

    /// Where `module` goes in `environment` (a name from [`RouteTable::split_path`]).
    pub fn decide<'t>(&'t self, environment: &str, module: &str) -> Result<Decision<'t>, EnvError> {
        let decision = self.decide_here(environment, module)?;
        Ok(self.checked(decision, module))
    }

    /// The first matching rule of `environment` (its own, then inherited), else its default.
    fn decide_here<'t>(
        &'t self,
        environment: &str,
        module: &str,
    ) -> Result<Decision<'t>, EnvError> {
        let (name, env) = self.environment(environment)?;
        let is_root = name == DEFAULT_ENVIRONMENT;
        let own = env.rules.iter().enumerate().map(|(i, r)| {
            let at = if is_root {
                RuleRef::Root(i)
            } else {
                RuleRef::Environment(name, i)
            };
            (at, r)
        });
        // The root environment has `inherit = false`: its rules are its own.
        let inherited = self
            .root
            .rules
            .iter()
            .enumerate()
            .filter(|_| env.inherit)
            .map(|(i, r)| (RuleRef::Root(i), r));
        let lower = module.to_ascii_lowercase();
        for (rule_ref, rule) in own.chain(inherited) {
            let target = match rule.action {
                Action::Deny(_) => lower.as_str(),
                Action::Fetch(_) => module,
            };
            if let Some(glob) = rule.patterns.first_match(target) {
                return Ok(Decision {
                    environment: name,
                    mode: env.mode,
                    rule: rule_ref,
                    glob: Some(glob.as_str()),
                    action: &rule.action,
                    credentials: rule.credentials.as_deref(),
                    sumdb: rule.sumdb.as_deref(),
                    private_elsewhere: None,
                });
            }
        }
        self.default_route(name)
    }
}

fn compile_rules(
    at: &str,
    specs: &[RouteSpec],
    has_credentials: &dyn Fn(&str) -> bool,
    problems: &mut Vec<String>,
) -> Vec<Rule> {
    let mut rules = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let before = problems.len();
        // Deny rules ignore ASCII case: hosts like GitHub serve `BadOrg` and `badorg` alike,
        // and denying too much is safe where denying too little is not.
        let pattern = if spec.deny {
            spec.pattern.to_ascii_lowercase()
        } else {
            spec.pattern.clone()
        };
        let patterns = PathPatterns::parse(&pattern)
            .map_err(|e: PatternError| problems.push(format!("{at}.match: {e}")))
            .ok();
        let action = match (spec.deny, &spec.upstream) {
            (true, Some(_)) => {
                problems.push(format!(
                    "{at}: a rule either denies or names an upstream, not both"
                ));
                None
            }
            (true, None) => {
                Some(Action::Deny(spec.reason.clone().unwrap_or_else(|| {
                    "denied by the proxy's routing rules".into()
                })))
            }
            (false, None) => {
                problems.push(format!(
                    "{at}: needs an upstream (a GOPROXY list or \"direct\") or deny = true"
                ));
                None
            }
            (false, Some(list)) => UpstreamList::parse(list)
                .map(Action::Fetch)
                .map_err(|e| problems.push(format!("{at}.upstream: {e}")))
                .ok(),
        };
        if spec.reason.is_some() && !spec.deny {
            problems.push(format!(
                "{at}.reason: only a rule with deny = true has a reason"
            ));
        }
        if let Some(reason) = &spec.reason {
            if reason.len() > 200 || reason.chars().any(char::is_control) {
                problems.push(format!(
                    "{at}.reason: at most 200 characters, no control characters"
                ));
            }
        }
        if let Some(name) = &spec.credentials {
            if spec.deny {
                problems.push(format!("{at}.credentials: a denying rule fetches nothing"));
            } else if !has_credentials(name) {
                problems.push(format!(
                    "{at}.credentials: no credential set named {name:?} is configured"
                ));
            }
        }
        if let Some(sumdb) = &spec.sumdb {
            let private = spec.credentials.is_some()
                || matches!(&action, Some(Action::Fetch(list)) if list.has_direct());
            if spec.deny {
                problems.push(format!("{at}.sumdb: a denying rule fetches nothing"));
            } else if private {
                problems.push(format!(
                    "{at}.sumdb: a private rule (direct or with credentials) is never checked against a public checksum database"
                ));
            } else if sumdb.is_empty() {
                problems.push(format!(
                    "{at}.sumdb: \"off\" or the name of a [[proxy.sumdb]]"
                ));
            }
        }
        if let (Some(patterns), Some(action), true) = (patterns, action, problems.len() == before) {
            rules.push(Rule {
                patterns,
                action,
                credentials: spec.credentials.clone(),
                sumdb: spec.sumdb.clone(),
            });
        }
    }
    rules
}

fn check_env_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ENV_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        return Err(format!(
            "an environment name is 1 to {MAX_ENV_NAME} of a-z, 0-9, - and _, starting with a letter or digit"
        ));
    }
    if name == DEFAULT_ENVIRONMENT {
        return Err(format!(
            "{DEFAULT_ENVIRONMENT:?} is the environment at the root path; configure it with [proxy] upstream and [[route]]"
        ));
    }
    Ok(())
}

/// A client-supplied name, cut short for an error message.
fn shorten(name: &str) -> String {
    name.chars().take(MAX_ENV_NAME + 1).collect()
}

#[cfg(test)]
mod tests;
