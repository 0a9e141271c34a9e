//! The front end's shared state and the router: admin endpoints first, then every
//! other path parsed as a GOPROXY request and dispatched by route.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use goproxy_protocol::route::{self, Route};
use goproxy_routing::{RouteTable, DEFAULT_ENVIRONMENT};
use goproxy_store::BlobStore;
use prometheus_client::registry::Registry;

use crate::access::Access;
use crate::answers::Answers;
use crate::audited::Note;
use crate::config::FrontendConfig;
use crate::error::ApiError;
use crate::fill::Filler;
use crate::index::{BlobPeers, CacheIndex};
use crate::listener::ClientAddr;
use crate::metrics::Metrics;
use crate::prepared::{Generation, Memory, PrepareAs};
use crate::routed::{self, CacheOnly, Source, Sources};
use crate::ttl_cache::TtlCache;
use crate::upstream::{DirectSource, Upstream, UpstreamList};
use goproxy_access::Anonymous;

/// Remembered artifact "not found" answers.
const NEGATIVE_CAPACITY: usize = 20_000;
/// How long a member has to answer another's statistics query.
const MEMBER_GET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Committed entries remembered in memory (a few hundred bytes each).
const ENTRY_CACHE_CAPACITY: u64 = 16_384;
/// The request header that asks for a cache-only answer.
pub const DISABLE_MODULE_FETCH: &str = "disable-module-fetch";

/// Everything a request handler needs.
pub struct Frontend {
    pub(crate) index: Arc<dyn CacheIndex>,
    pub(crate) store: BlobStore,
    /// Which upstream serves which module, per environment.
    pub(crate) routes: Arc<RouteTable>,
    /// One upstream client per distinct list in `routes`.
    pub(crate) sources: Sources,
    /// One client per configured checksum database, by name.
    pub(crate) sumdbs: std::collections::HashMap<String, Source>,
    /// The version control fetcher, when a route is `direct`.
    pub(crate) direct: Option<Arc<dyn DirectSource>>,
    pub(crate) filler: Filler,
    /// Verifies versions against the configured checksum databases.
    pub(crate) checker: Arc<crate::checksum::Checker>,
    /// Artifacts proved against a database in this process.
    pub(crate) verified: crate::checksum::VerifiedMemo,
    pub(crate) answers: Arc<Answers>,
    pub(crate) negatives: TtlCache<String>,
    /// Recently served committed entries (immutable, so never stale).
    pub(crate) entries: moka::sync::Cache<
        goproxy_protocol::index::ArtifactKey,
        goproxy_protocol::index::IndexEntry,
    >,
    /// Small artifacts' bytes by sha256 and prepared answers by request path, bounded
    /// together by `memory_cache_bytes` (see [`crate::prepared`]).
    pub(crate) memory: moka::sync::Cache<String, Memory>,
    /// Advanced by purges and evictions: retires the prepared answers kept in `memory`.
    pub(crate) prepared_generation: Generation,
    /// The memory artifacts being read into `memory` may take at once (KiB).
    pub(crate) memory_loads: Arc<tokio::sync::Semaphore>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) config: FrontendConfig,
    /// HTTP client for forwarding misses to the leader.
    pub(crate) forwarder: reqwest::Client,
    /// Who may ask, and how often.
    pub(crate) access: Access,
    /// The last notable requests (the dashboard).
    pub(crate) recent: crate::operate::Recent,
}

/// A front end that could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    /// The configuration has problems (all of them listed).
    #[error("invalid front-end configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// The HTTP client could not be created.
    #[error("creating the upstream HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl Frontend {
    /// Builds the front end over an index and a blob store; `routes` says where misses are
    /// filled from (`RouteTable::with_upstream(&config.upstream)` without route rules), and
    /// `direct` answers its `direct` entries.
    // Each argument is a separate part the node wires in; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: FrontendConfig,
        routes: Arc<RouteTable>,
        direct: Option<Arc<dyn DirectSource>>,
        index: Arc<dyn CacheIndex>,
        peers: Arc<dyn BlobPeers>,
        store: BlobStore,
        metrics: Arc<Metrics>,
        access: Access,
    ) -> Result<Arc<Self>, FrontendError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(FrontendError::Config(problems));
        }
        // A template: each route's list gets a copy of this client (`Sources`).
        let upstream = Upstream::new(
            UpstreamList::parse("off").expect("\"off\" is a valid list"),
            config.upstream_connect_timeout,
            config.upstream_timeout,
            config.upstream_attempts,
            config.upstream_redirect_hosts.clone(),
            metrics.clone(),
        )?
        .with_direct(direct.clone());
        let filler = Filler::new(
            index.clone(),
            peers,
            store.clone(),
            metrics.clone(),
            config.fill_timeout,
            config.min_free_bytes,
        );
        // The leader answers a forwarded miss only after its fill: allow the fill's time.
        let mut forwarder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.upstream_connect_timeout)
            .read_timeout(config.fill_timeout);
        if let Some(pem) = config.peer_https.as_ref().and_then(|p| p.ca_pem.as_ref()) {
            for cert in reqwest::Certificate::from_pem_bundle(pem)? {
                forwarder = forwarder.add_root_certificate(cert);
            }
        }
        let forwarder = forwarder.build()?;
        let sumdbs = crate::sumdb::sources(&config.sumdb, &upstream);
        let files = crate::checksum::ClusterFiles {
            index: index.clone(),
            store: store.clone(),
            filler: filler.clone(),
            databases: sumdbs.clone(),
        };
        let checker = crate::checksum::Checker::new(&config.sumdb, files)
            .map_err(|e| FrontendError::Config(vec![format!("sumdb: {e}")]))?;
        let default_sumdb = config
            .verify_fills
            .then(|| config.sumdb.first().map(|db| Arc::from(db.name.as_str())))
            .flatten();
        Ok(Arc::new(Self {
            forwarder,
            access,
            recent: Default::default(),
            answers: Arc::new(Answers::new(&config)),
            checker: Arc::new(checker),
            verified: moka::sync::Cache::new(crate::checksum::VERIFIED_MEMO_CAPACITY),
            sumdbs,
            sources: Sources::new(upstream, default_sumdb),
            direct: direct.filter(|_| routes.uses_direct()),
            routes,
            negatives: TtlCache::new(NEGATIVE_CAPACITY, config.negative_ttl),
            entries: moka::sync::Cache::new(ENTRY_CACHE_CAPACITY),
            memory_loads: Arc::new(tokio::sync::Semaphore::new(
                crate::artifacts::MEMORY_LOAD_BUDGET_KIB,
            )),
            memory: moka::sync::Cache::builder()
                .max_capacity(config.memory_cache_bytes)
                .weigher(|key: &String, value: &Memory| Memory::weigh(key, value))
                .build(),
            prepared_generation: Generation::default(),
            index,
            store,
            filler,
            metrics,
            config,
        }))
    }

    /// Each checksum database's verification state (for `/cluster/status`).
    pub fn checksum_status(&self) -> Vec<goproxy_checksum::DatabaseStatus> {
        self.checker.status()
    }

    /// Verifies the fills accepted unverified (this node must lead: it keeps what it
    /// verifies). Returns the reports by database name.
    pub async fn recheck_unverified(&self) -> Vec<(String, goproxy_checksum::Recheck)> {
        let mut reports = Vec::new();
        if self.index.leadership() != crate::index::Leadership::Local {
            return reports;
        }
        for db in &self.config.sumdb {
            match self.checker.recheck(&db.name).await {
                Ok(report) => {
                    for _ in &report.refused {
                        self.metrics.sumdb_mismatch();
                    }
                    reports.push((db.name.clone(), report));
                }
                Err(e) => tracing::warn!(database = %db.name, "rechecking unverified fills: {e}"),
            }
        }
        reports
    }

    /// How often [`Frontend::recheck_unverified`] should run.
    pub fn recheck_interval(&self) -> std::time::Duration {
        self.config.sumdb_recheck_interval
    }

    /// Admits an operator's request (`/metrics`, `/cluster/status`, `/stats`): see
    /// [`Access::admit_operator`]; a refusal is the answer to send.
    pub fn admit_operator(
        &self,
        headers: &HeaderMap,
        client: Option<std::net::IpAddr>,
    ) -> Result<(), ApiError> {
        self.access.admit_operator(headers, client).map(|_| ())
    }

    /// This node's download counts.
    pub fn downloads(&self) -> &goproxy_audit::downloads::Downloads {
        &self.access.downloads
    }

    /// GETs `path` from the member whose client listener is `addr`, as a member (HTTPS when
    /// this node serves it; the member key when the cluster has one); returns the body.
    pub async fn member_get(&self, addr: &str, path: &str) -> Result<bytes::Bytes, String> {
        let mut request = self
            .forwarder
            .get(format!("{}{path}", self.peer_base(addr)))
            .timeout(MEMBER_GET_TIMEOUT);
        if let Some(key) = self.access.tokens.member_key() {
            request = request.header(crate::access::MEMBER, key.as_ref());
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        response.bytes().await.map_err(|e| e.to_string())
    }

    /// The axum router serving the GOPROXY protocol and the admin endpoints; `/metrics`
    /// exposes `registry` (the node's, holding every component's metrics).
    pub fn router(self: &Arc<Self>, registry: Arc<Registry>) -> Router {
        let exposition = Router::new()
            .route("/metrics", get(metrics))
            .with_state((registry, self.clone()));
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .fallback(dispatch)
            .with_state(self.clone())
            .merge(exposition)
    }
}

/// Ready only while this node can serve and fill: the index is caught up with a leader that
/// has a quorum, the replication backlog admits fills, and the disk has room for them.
async fn readyz(State(fe): State<Arc<Frontend>>) -> Response {
    let mut reasons: Vec<String> = Vec::new();
    if let Err(reason) = fe.index.readiness() {
        reasons.push(reason);
    }
    if let Err(reason) = fe.filler.admit() {
        reasons.push(reason);
    }
    if let Some(Err(reason)) = fe.direct.as_ref().map(|d| d.readiness()) {
        reasons.push(reason);
    }
    match fe.store.available_bytes() {
        Ok(free) if free < fe.config.min_free_bytes => reasons.push(format!(
            "disk full: {} MiB free for blobs, below proxy.min_free_bytes ({} MiB): fills would fail",
            free >> 20,
            fe.config.min_free_bytes >> 20
        )),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!("reading free disk space: {e}");
            reasons.push("free disk space unknown (see the node's log)".into());
        }
    }
    if reasons.is_empty() {
        return "ready\n".into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CACHE_CONTROL, "no-store")],
        format!("not ready: {}\n", reasons.join("; ")),
    )
        .into_response()
}

async fn metrics(
    State((registry, fe)): State<(Arc<Registry>, Arc<Frontend>)>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> Response {
    if let Err(refused) = fe.admit_operator(&headers, client.map(|c| c.0 .0)) {
        return refused.into_response();
    }
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    let text = crate::metrics::encode(&registry);
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// Admits, parses the path and dispatches (a prepared hit skips the parsing and routing);
/// counts the request by route and status and notes what the audit trail needs.
async fn dispatch(
    State(fe): State<Arc<Frontend>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> Response {
    let client = client.map(|c| c.0 .0);
    let prepare = fe.prepare_as(&method, uri.path(), &headers);
    let mut note = Note::default();
    let (label, result) = match fe.prepared(prepare) {
        Some(prepared) => (
            prepared.label(),
            fe.serve_prepared(&prepared, &headers, client, &mut note)
                .await,
        ),
        None => parse_and_handle(&fe, &method, &uri, &headers, client, prepare, &mut note).await,
    };
    finish(&fe, label, note, result, uri.path(), client)
}

/// The normal path: parses, admits, routes and handles a request; its label for the
/// metrics, and its answer.
async fn parse_and_handle(
    fe: &Frontend,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
    prepare: Option<PrepareAs<'_>>,
    note: &mut Note,
) -> (&'static str, Result<Response, ApiError>) {
    let head = method == Method::HEAD;
    let parsed = fe
        .routes
        .split_path(uri.path())
        .map_err(routed::env_error)
        .and_then(|(env, path)| {
            route::parse(path)
                .map(|route| (env, route))
                .map_err(|e| ApiError::InvalidRequest(e.to_string()))
        });
    let (label, result) = match &parsed {
        Ok((_, route)) => {
            note.module = route.module().map(str::to_string);
            note.version = route_version(route);
            note.artifact = Some(route_label(route));
            (route_label(route), Ok(()))
        }
        Err(e) => ("invalid", Err(e.clone())),
    };
    let forwarded = headers.contains_key(crate::forward::FORWARDED);
    let env = parsed.as_ref().map_or(DEFAULT_ENVIRONMENT, |(env, _)| env);
    let named = parsed
        .as_ref()
        .ok()
        .and_then(|(_, route)| crate::access::named_module(route));
    let admitted = fe
        .access
        .admit(headers, client, forwarded, named.as_deref(), |module| {
            routed::is_private(&fe.routes, env, module)
        });
    let result = match (admitted, result) {
        (Err(refused), _) => Err(refused),
        (Ok(who), _) if method != Method::GET && !head => {
            note.token = who.token;
            Err(ApiError::MethodNotAllowed)
        }
        (Ok(who), Err(e)) => {
            // An unknown environment with access control on: a 404 would send the go command
            // on to the next proxy with the (perhaps private) path, so refuse it.
            let guarded = who.token.is_some() || fe.access.anonymous != Anonymous::Allow;
            note.token = who.token;
            match e {
                ApiError::NotFound { reason, .. } if guarded && uri.path().starts_with("/env/") => {
                    Err(ApiError::Forbidden(reason))
                }
                e => Err(e),
            }
        }
        (Ok(who), Ok(())) => {
            note.token = who.token.clone();
            let Ok((env, route)) = parsed else {
                unreachable!("parsed is Ok when result is")
            };
            let routed = crate::operate::check_blocked(fe.access.policy.as_ref(), &route)
                .and_then(|()| routed::route(&fe.routes, &fe.sources, env, &route));
            match routed {
                Err(e) => Err(e),
                Ok(routed) => {
                    let header = headers
                        .get(DISABLE_MODULE_FETCH)
                        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
                    let request = Request {
                        headers,
                        head,
                        offline: routed.offline().or(header.then_some(CacheOnly::Header)),
                        forwarded,
                        env,
                        source: &routed.source,
                        who: &who,
                        prepare,
                    };
                    fe.handle(route, request).await
                }
            }
        }
    };
    (label, result)
}

/// Turns the answer into the response (errors become their responses here), counts it,
/// and notes it for the dashboard and the audit trail.
fn finish(
    fe: &Frontend,
    label: &'static str,
    mut note: Note,
    result: Result<Response, ApiError>,
    path: &str,
    client: Option<std::net::IpAddr>,
) -> Response {
    let outcome = result.as_ref().err().map(ApiError::outcome);
    if outcome == Some(goproxy_audit::Outcome::Blocked) {
        fe.metrics.blocked();
    }
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    fe.metrics.request(label, response.status().as_u16());
    if let Some(served) = response.extensions_mut().remove::<Served>() {
        note.outcome = Some(served.outcome);
        note.sha256 = served.sha256;
    }
    note.outcome = outcome.or(note.outcome);
    fe.recent.count_request();
    if let Some(outcome) = note.outcome {
        fe.recent.note(
            outcome,
            response.status().as_u16(),
            path,
            note.token.as_deref(),
            client,
        );
    }
    response.extensions_mut().insert(note);
    response
}

/// What an artifact handler did, for the audit trail (a response extension).
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub outcome: goproxy_audit::Outcome,
    pub sha256: Option<String>,
}

/// The version a request names, if any.
fn route_version(route: &Route) -> Option<String> {
    match route {
        Route::Info { version, .. } => Some(match version {
            route::VersionQuery::Canonical(v) => v.clone(),
            route::VersionQuery::Query(q) => q.clone(),
        }),
        Route::Mod { version, .. } | Route::Zip { version, .. } => Some(version.clone()),
        _ => None,
    }
}

/// What a handler needs from the HTTP request besides the route.
#[derive(Clone, Copy)]
pub(crate) struct Request<'a> {
    pub headers: &'a HeaderMap,
    pub head: bool,
    /// Set when the answer must come from the cache only, with the reason.
    pub offline: Option<CacheOnly<'a>>,
    /// Sent by a follower: fill here, never forward again.
    pub forwarded: bool,
    /// The environment the request came through (its path prefix).
    pub env: &'a str,
    /// Where this request's misses are filled from.
    pub source: &'a Source,
    /// Who asked (for rate limits on fills).
    pub who: &'a crate::access::Who,
    /// Set when a hit's answer may be prepared for the next requests of the path.
    pub prepare: Option<PrepareAs<'a>>,
}

impl Request<'_> {
    /// The path prefix of this request's environment (empty for the default one).
    pub fn env_prefix(&self) -> String {
        if self.env == DEFAULT_ENVIRONMENT {
            String::new()
        } else {
            format!("{}{}", goproxy_routing::ENV_PREFIX, self.env)
        }
    }
}

impl Frontend {
    async fn handle(&self, route: Route, request: Request<'_>) -> Result<Response, ApiError> {
        match route {
            Route::List { module } => self.list(&module, request).await,
            Route::Latest { module } => self.latest(&module, request).await,
            Route::Info { module, version } => self.info(module, version, request).await,
            Route::Mod { module, version } => {
                self.artifact(
                    module,
                    version,
                    goproxy_protocol::index::ArtifactKind::Mod,
                    request,
                )
                .await
            }
            Route::Zip { module, version } => {
                self.artifact(
                    module,
                    version,
                    goproxy_protocol::index::ArtifactKind::Zip,
                    request,
                )
                .await
            }
            route @ (Route::SumdbSupported { .. } | Route::Sumdb { .. }) => {
                self.sumdb(&route, request).await
            }
        }
    }
}

fn route_label(route: &Route) -> &'static str {
    match route {
        Route::List { .. } => "list",
        Route::Latest { .. } => "latest",
        Route::Info { .. } => "info",
        Route::Mod { .. } => "mod",
        Route::Zip { .. } => "zip",
        Route::SumdbSupported { .. } | Route::Sumdb { .. } => "sumdb",
    }
}
