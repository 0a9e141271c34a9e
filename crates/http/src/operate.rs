//! What operating the cache asks of the front end: block rules checked on every request,
//! served versions noted for eviction, purged versions forgotten, and prefetch fetches
//! through the same fill path as a client's miss.

use goproxy_protocol::index::{ArtifactKey, ArtifactKind};
use goproxy_protocol::route::{Route, VersionQuery};

use crate::checksum::Verify;
use crate::config::Unreachable;
use crate::error::ApiError;
use crate::fill::FillError;
use crate::frontend::Frontend;
use crate::routed::Source;

/// The operators' policy as the front end asks it on the request path (implemented by the
/// node over the replicated state).
pub trait CachePolicy: Send + Sync + 'static {
    /// The block rule refusing `module` at `version` (`None`: a list, `@latest` or a query),
    /// as `(rule, reason)`. Called on every request: must not allocate when nothing matches.
    fn blocked(&self, module: &str, version: Option<&str>) -> Option<(String, String)>;

    /// `module@version` was served or filled (least-recently-used eviction).
    fn touched(&self, module: &str, version: &str);
}

/// No block rules; nothing noted.
pub struct NoPolicy;

impl CachePolicy for NoPolicy {
    fn blocked(&self, _: &str, _: Option<&str>) -> Option<(String, String)> {
        None
    }

    fn touched(&self, _: &str, _: &str) {}
}

/// The 403 for a blocked request, if `route` is blocked.
pub(crate) fn check_blocked(policy: &dyn CachePolicy, route: &Route) -> Result<(), ApiError> {
    let Some(module) = route.module() else {
        return Ok(());
    };
    let version = match route {
        Route::Info {
            version: VersionQuery::Canonical(v),
            ..
        }
        | Route::Mod { version: v, .. }
        | Route::Zip { version: v, .. } => Some(v.as_str()),
        _ => None,
    };
    check_blocked_version(policy, module, version)
}

/// The 403 for `module` at `version` (`None`: no version), if a block rule refuses it.
pub(crate) fn check_blocked_version(
    policy: &dyn CachePolicy,
    module: &str,
    version: Option<&str>,
) -> Result<(), ApiError> {
    match policy.blocked(module, version) {
        Some((rule, reason)) => Err(ApiError::Blocked { rule, reason }),
        None => Ok(()),
    }
}

/// One artifact a prefetch job fetched.
#[derive(Debug, Clone)]
pub struct Warmed {
    /// Its size.
    pub bytes: u64,
    /// Its content, for a `.mod` (the job reads its requirements).
    pub body: Option<Vec<u8>>,
    /// Whether it came from upstream now (false: it was cached).
    pub filled: bool,
}

impl Frontend {
    /// Makes sure an artifact is cached and its bytes are on this node (the leader runs
    /// prefetch jobs): a cached one is read, an evicted or missing blob is fetched again
    /// (from a peer, or upstream checked against the recorded sha256), a miss is filled
    /// through the module's route like a client's miss. Errors are the client's reason.
    ///
    /// `on_behalf` names the token that submitted the job: its path rules bound what the job
    /// may fetch, as if its holder asked now (a revoked token fetches nothing).
    pub async fn warm(
        &self,
        module: &str,
        version: &str,
        kind: ArtifactKind,
        on_behalf: Option<&str>,
    ) -> Result<Warmed, String> {
        if let Some(name) = on_behalf {
            let request = goproxy_access::AccessRequest {
                action: goproxy_access::Action::Read,
                module: Some(module),
                private: false,
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            match goproxy_access::decide_named(&self.access.tokens.grants(), name, &request, now) {
                goproxy_access::Decision::Allow(_) => {}
                goproxy_access::Decision::Forbidden(why)
                | goproxy_access::Decision::Unauthenticated(why) => return Err(why),
            }
        }
        let key = ArtifactKey {
            module: module.to_string(),
            version: version.to_string(),
            kind,
        };
        let route = match kind {
            ArtifactKind::Info => Route::Info {
                module: key.module.clone(),
                version: VersionQuery::Canonical(key.version.clone()),
            },
            ArtifactKind::Mod => Route::Mod {
                module: key.module.clone(),
                version: key.version.clone(),
            },
            _ => Route::Zip {
                module: key.module.clone(),
                version: key.version.clone(),
            },
        };
        check_blocked(self.access.policy.as_ref(), &route).map_err(|e| e.to_string())?;
        let routed = crate::routed::route(
            &self.routes,
            &self.sources,
            goproxy_routing::DEFAULT_ENVIRONMENT,
            &route,
        )
        .map_err(|e| e.to_string())?;
        let offline = routed.offline().map(|why| why.to_string());
        let source = routed.source;
        let (entry, filled) = match self.index.lookup(&key).map_err(|e| e.to_string())? {
            Some(entry) => (entry, false),
            None => {
                if let Some(why) = offline {
                    return Err(format!("{key} is not cached and {why}"));
                }
                let verify = self.verify_source(&source);
                let entry = self
                    .filler
                    .fill(key.clone(), source.upstream.clone(), verify)
                    .await
                    .map_err(|e| warm_error(&e))?;
                (entry, true)
            }
        };
        if !self
            .store
            .contains(&entry.blob)
            .await
            .map_err(|e| e.to_string())?
        {
            self.filler
                .repair(&entry, &source.upstream)
                .await
                .map_err(|e| warm_error(&e))?;
        }
        let body = match kind {
            ArtifactKind::Mod => Some(
                self.filler
                    .read_blob(&entry.blob)
                    .await
                    .map_err(|e| warm_error(&e))?,
            ),
            _ => None,
        };
        self.access.policy.touched(module, version);
        Ok(Warmed {
            bytes: entry.blob.size,
            body,
            filled,
        })
    }

    /// What fills from `source` are verified against.
    pub(crate) fn verify_source(&self, source: &Source) -> Option<Verify> {
        source.verify.clone().map(|database| Verify {
            checker: self.checker.clone(),
            database,
            accept_unreachable: self.config.sumdb_unreachable == Unreachable::Accept,
            memo: self.verified.clone(),
        })
    }

    /// Forgets what this node remembers of a purged version (its entries are gone from
    /// the index; the next request fills it again), prepared answers included.
    pub fn forget_version(&self, module: &str, version: &str) {
        for kind in [ArtifactKind::Info, ArtifactKind::Mod, ArtifactKind::Zip] {
            self.entries.invalidate(&ArtifactKey {
                module: module.to_string(),
                version: version.to_string(),
                kind,
            });
        }
        self.prepared_generation.advance();
    }

    /// Drops an evicted blob's bytes from the memory cache, and the prepared answers
    /// (which hold them too).
    pub fn forget_blob(&self, sha256: &str) {
        self.memory.invalidate(sha256);
        self.prepared_generation.advance();
    }
}

fn warm_error(e: &FillError) -> String {
    e.to_string()
}

/// The header a member sends with a request it relays for a client: who the client is (the
/// receiving member trusts it only with the member key).
pub const ACTOR: &str = "x-goproxy-ha-actor";
/// How long a relayed operator's request may take.
const MEMBER_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Frontend {
    /// Admits a request for `action` outside the GOPROXY protocol (prefetch jobs, the
    /// dashboard): the caller's name for the trail (`token:NAME`, a relayed client's name,
    /// `anonymous`), or the refusal to answer with.
    pub fn admit_action(
        &self,
        headers: &axum::http::HeaderMap,
        client: Option<std::net::IpAddr>,
        action: goproxy_access::Action,
    ) -> Result<String, ApiError> {
        if self.is_member(headers) {
            let relayed = headers.get(ACTOR).and_then(|v| v.to_str().ok());
            return Ok(relayed.unwrap_or("member").to_string());
        }
        Ok(match self.access.admit_action(headers, client, action)? {
            Some(token) => format!("token:{token}"),
            None => "anonymous".to_string(),
        })
    }

    /// Whether the request carries the member key.
    pub fn is_member(&self, headers: &axum::http::HeaderMap) -> bool {
        self.access.from_member(headers)
    }

    /// Sends an operator's request on to the member at `addr` (the leader) as a member,
    /// naming the client `actor`; returns the status and body to relay.
    pub async fn member_send(
        &self,
        addr: &str,
        method: axum::http::Method,
        path: &str,
        actor: &str,
        body: bytes::Bytes,
    ) -> Result<(axum::http::StatusCode, bytes::Bytes), String> {
        let mut request = self
            .forwarder
            .request(method, format!("{}{path}", self.peer_base(addr)))
            .timeout(MEMBER_SEND_TIMEOUT)
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .header(ACTOR, actor)
            .body(body);
        match self.access.tokens.member_key() {
            Some(key) => request = request.header(crate::access::MEMBER, key.as_ref()),
            None => return Err("the cluster has no member key yet; retry".into()),
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    }
}

/// Most recent notable requests kept for the dashboard.
pub const RECENT_CAPACITY: usize = 100;
/// Longest path kept for the dashboard (characters).
const RECENT_PATH: usize = 256;

/// One notable request (a fill, a forwarded miss, a refusal, a failure): what the dashboard
/// shows as recent activity. Hits are not kept (they are the common case, and the cheap one).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RecentEvent {
    /// When it was answered (RFC 3339).
    pub time: String,
    /// How it was answered (`fill`, `forwarded`, `denied`, `blocked`, `error`).
    pub outcome: goproxy_audit::Outcome,
    /// Its status.
    pub status: u16,
    /// Its path (cut at [`RECENT_PATH`] characters).
    pub path: String,
    /// The token's name.
    pub token: Option<String>,
    /// The client's address.
    pub client: Option<String>,
}

/// The last [`RECENT_CAPACITY`] notable requests, newest last, and counts of all.
#[derive(Debug, Default)]
pub struct Recent {
    ring: std::sync::Mutex<std::collections::VecDeque<RecentEvent>>,
    tally: Tally,
}

/// Requests by how they were answered (relaxed atomics: one add per request).
#[derive(Debug, Default)]
struct Tally {
    requests: std::sync::atomic::AtomicU64,
    hits: std::sync::atomic::AtomicU64,
    fills: std::sync::atomic::AtomicU64,
    refusals: std::sync::atomic::AtomicU64,
}

/// Cumulative counts of one node's answers since it started.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Every request.
    pub requests: u64,
    /// Artifacts served from the cache.
    pub hits: u64,
    /// Artifacts filled here or forwarded to the leader to fill.
    pub fills: u64,
    /// Requests refused (401, 403, 429, blocked).
    pub refusals: u64,
    /// Body bytes of cached artifacts served.
    pub served_bytes: u64,
}

impl Recent {
    /// Keeps `event` if it is notable.
    pub(crate) fn note(
        &self,
        outcome: goproxy_audit::Outcome,
        status: u16,
        path: &str,
        token: Option<&str>,
        client: Option<std::net::IpAddr>,
    ) {
        use goproxy_audit::Outcome;
        use std::sync::atomic::Ordering::Relaxed;
        let counter = match outcome {
            Outcome::Hit => &self.tally.hits,
            Outcome::Fill | Outcome::Forwarded => &self.tally.fills,
            Outcome::Denied | Outcome::Blocked => &self.tally.refusals,
            Outcome::Error | Outcome::Other => {
                self.push(outcome, status, path, token, client);
                return;
            }
        };
        counter.fetch_add(1, Relaxed);
        if outcome != Outcome::Hit {
            self.push(outcome, status, path, token, client);
        }
    }

    /// Counts a request (whatever its outcome).
    pub(crate) fn count_request(&self) {
        self.tally
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn push(
        &self,
        outcome: goproxy_audit::Outcome,
        status: u16,
        path: &str,
        token: Option<&str>,
        client: Option<std::net::IpAddr>,
    ) {
        if outcome == goproxy_audit::Outcome::Other {
            return;
        }
        let event = RecentEvent {
            time: goproxy_audit::now_rfc3339(),
            outcome,
            status,
            path: path.chars().take(RECENT_PATH).collect(),
            token: token.map(str::to_string),
            client: client.map(|ip| ip.to_string()),
        };
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == RECENT_CAPACITY {
            ring.pop_front();
        }
        ring.push_back(event);
    }

    /// The events kept, newest first.
    pub fn newest_first(&self) -> Vec<RecentEvent> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter().rev().cloned().collect()
    }
}

impl Frontend {
    /// The notable requests this node answered lately.
    pub fn recent(&self) -> Vec<RecentEvent> {
        self.recent.newest_first()
    }

    /// Cumulative counts of this node's answers, for the dashboard's rates.
    pub fn counters(&self) -> Counters {
        let tally = &self.recent.tally;
        let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        Counters {
            requests: load(&tally.requests),
            hits: load(&tally.hits),
            fills: load(&tally.fills),
            refusals: load(&tally.refusals),
            served_bytes: self.metrics.served_bytes(),
        }
    }
}
