//! Routing one request: its environment (`/env/NAME/`), the rule its module matches, and
//! so the upstream its misses are filled from, whether it may fill at all, or a refusal.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use goproxy_protocol::path::unescape_path;
use goproxy_protocol::route::Route;
use goproxy_protocol::sumdb::SumdbPath;
use goproxy_routing::{Action, Decision, EnvError, Mode, RouteTable};

use crate::error::ApiError;
use crate::upstream::Upstream;

/// Why a request is answered from the cache only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheOnly<'a> {
    /// The client sent `Disable-Module-Fetch: true`.
    Header,
    /// The request came through a `cache-only` environment.
    Environment(&'a str),
    /// The path belongs to another environment's private rule (the reason says which).
    Private(&'a str),
}

impl fmt::Display for CacheOnly<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheOnly::Header => f.write_str("Disable-Module-Fetch is set"),
            CacheOnly::Environment(env) => write!(f, "environment {env:?} is cache-only"),
            CacheOnly::Private(why) => f.write_str(why),
        }
    }
}

/// Where one request's misses are filled from.
#[derive(Clone)]
pub(crate) struct Source {
    /// The client walking the route's list.
    pub upstream: Upstream,
    /// Identifies the list (and credentials): mutable answers are cached per source.
    pub key: Arc<str>,
    /// The checksum database fills from this source are verified against (none: private,
    /// `sumdb = "off"`, or verification off).
    pub verify: Option<Arc<str>>,
    /// The list fetches from version control: only the leader runs it, followers ask the
    /// leader even for mutable answers.
    pub direct: bool,
}

/// One [`Source`] per distinct upstream list of the route table, made on first use.
pub(crate) struct Sources {
    template: Upstream,
    /// The database public fills are verified against unless a rule names another.
    default_sumdb: Option<Arc<str>>,
    made: Mutex<HashMap<String, Source>>,
}

impl Sources {
    pub fn new(template: Upstream, default_sumdb: Option<Arc<str>>) -> Self {
        Self {
            template,
            default_sumdb,
            made: Mutex::new(HashMap::new()),
        }
    }

    /// The source for a routing decision (which must fetch).
    fn for_decision(&self, decision: &Decision<'_>) -> Option<Source> {
        let Action::Fetch(list) = decision.action else {
            return None;
        };
        let key = decision.source();
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        let source = made.entry(key.clone()).or_insert_with(|| Source {
            upstream: self
                .template
                .with_list(list.clone())
                .with_credentials(decision.credentials),
            key: key.into(),
            verify: match decision.sumdb {
                _ if decision.is_private() => None,
                Some("off") => None,
                Some(name) => self.default_sumdb.as_ref().map(|_| name.into()),
                None => self.default_sumdb.clone(),
            },
            direct: list.has_direct(),
        });
        Some(source.clone())
    }
}

/// The outcome of routing a request that may proceed.
pub(crate) struct Routed<'t> {
    pub source: Source,
    pub cache_only: Option<CacheOnly<'t>>,
    /// Why this path may only be served from the cache (a private rule elsewhere).
    pub private: Option<String>,
}

impl Routed<'_> {
    /// Why the request must be answered from the cache only, if it must.
    pub fn offline(&self) -> Option<CacheOnly<'_>> {
        match &self.private {
            Some(why) => Some(CacheOnly::Private(why)),
            None => self.cache_only,
        }
    }
}

/// Routes `route` in `environment`: a denied module is refused here, before any lookup.
pub(crate) fn route<'t>(
    table: &'t RouteTable,
    sources: &Sources,
    environment: &str,
    route: &Route,
) -> Result<Routed<'t>, ApiError> {
    let decision = match route.module() {
        Some(module) => table.decide(environment, module),
        None => {
            // A checksum lookup names a module: it is denied like the module, and a private
            // path is never sent to a (public) checksum database.
            if let Some(module) = looked_up(route) {
                let about = table.decide(environment, &module).map_err(env_error)?;
                refuse_denied(&about, &module)?;
                if about.is_private() {
                    return Err(ApiError::NotFound {
                        reason: format!(
                            "{module} is a private module of this proxy: it is not looked up in a public checksum database (set GONOSUMDB for it)"
                        ),
                        max_age: std::time::Duration::ZERO,
                    });
                }
            }
            table.default_route(environment)
        }
    }
    .map_err(env_error)?;
    refuse_denied(&decision, route.module().unwrap_or_default())?;
    let cache_only =
        (decision.mode == Mode::CacheOnly).then_some(CacheOnly::Environment(decision.environment));
    let source = sources
        .for_decision(&decision)
        .ok_or_else(|| ApiError::internal("a fetching route without an upstream"))?;
    Ok(Routed {
        source,
        cache_only,
        private: decision.private_elsewhere,
    })
}

fn refuse_denied(decision: &Decision<'_>, module: &str) -> Result<(), ApiError> {
    match decision.action {
        Action::Deny(reason) => Err(ApiError::Forbidden(format!(
            "{module}: {reason} ({} of environment {:?})",
            decision.rule, decision.environment
        ))),
        Action::Fetch(_) => Ok(()),
    }
}

/// The module of a checksum database lookup (`sumdb/NAME/lookup/MODULE@VERSION`).
pub(crate) fn looked_up(route: &Route) -> Option<String> {
    match route {
        Route::Sumdb {
            path: SumdbPath::Lookup(query),
            ..
        } => unescape_path(query.rsplit_once('@')?.0).ok(),
        _ => None,
    }
}

/// Whether a rule of any environment fetches `module` privately (from version control or
/// with credentials): anonymous clients of a `public-only` proxy may not read it.
pub(crate) fn is_private(table: &RouteTable, environment: &str, module: &str) -> bool {
    table
        .decide(environment, module)
        .map_or(true, |d| d.is_private() || d.private_elsewhere.is_some())
}

/// Maps a request path's environment error to an answer.
pub(crate) fn env_error(e: EnvError) -> ApiError {
    ApiError::NotFound {
        reason: e.to_string(),
        max_age: std::time::Duration::ZERO,
    }
}
