//! Routing one request: its environment (`/env/NAME/`), the rule its module matches, and
//! so the upstream its misses are filled from, whether it may fill at all, or a refusal.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use goproxy_protocol::route::Route;
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
}

impl fmt::Display for CacheOnly<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheOnly::Header => f.write_str("Disable-Module-Fetch is set"),
            CacheOnly::Environment(env) => write!(f, "environment {env:?} is cache-only"),
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
    /// The list fetches from version control: only the leader runs it, followers ask the
    /// leader even for mutable answers.
    pub direct: bool,
}

/// One [`Source`] per distinct upstream list of the route table, made on first use.
pub(crate) struct Sources {
    template: Upstream,
    made: Mutex<HashMap<String, Source>>,
}

impl Sources {
    pub fn new(template: Upstream) -> Self {
        Self {
            template,
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
            direct: list.has_direct(),
        });
        Some(source.clone())
    }
}

/// The outcome of routing a request that may proceed.
pub(crate) struct Routed<'t> {
    pub source: Source,
    pub cache_only: Option<CacheOnly<'t>>,
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
        None => table.default_route(environment),
    }
    .map_err(env_error)?;
    if let Action::Deny(reason) = decision.action {
        let module = route.module().unwrap_or_default();
        return Err(ApiError::Forbidden(format!(
            "{module}: {reason} ({} of environment {:?})",
            decision.rule, decision.environment
        )));
    }
    let cache_only =
        (decision.mode == Mode::CacheOnly).then_some(CacheOnly::Environment(decision.environment));
    let source = sources
        .for_decision(&decision)
        .ok_or_else(|| ApiError::internal("a fetching route without an upstream"))?;
    Ok(Routed { source, cache_only })
}

/// Maps a request path's environment error to an answer.
pub(crate) fn env_error(e: EnvError) -> ApiError {
    ApiError::NotFound {
        reason: e.to_string(),
        max_age: std::time::Duration::ZERO,
    }
}
