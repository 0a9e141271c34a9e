//! Mutable upstream answers (`list`, `@latest`, version queries, sumdb `supported`):
//! fetched once per TTL per key, and served stale when the upstream fails.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::FrontendConfig;
use crate::routed::Source;
use crate::single_flight::SingleFlight;
use crate::ttl_cache::TtlCache;
use crate::upstream::{Upstream, UpstreamError};

/// Largest mutable answer accepted from upstream (a `list` of thousands of versions fits).
pub const MAX_ANSWER_SIZE: u64 = 8 << 20;
/// Memory for remembered mutable answers (bytes; a `list` is at most [`MAX_ANSWER_SIZE`]).
const CACHE_BYTES: u64 = 128 << 20;

/// What the upstream said last.
#[derive(Debug, Clone)]
enum Fetched {
    Found(Bytes),
    NotFound(String),
    /// The leader's answer assembled while its upstream fails: served as stale, never
    /// remembered as fresh.
    Degraded(Bytes),
}

/// A mutable answer as the front end should serve it.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Upstream content younger than the TTL.
    Fresh(Bytes),
    /// Older content, served because the upstream is failing now.
    Stale(Bytes),
    /// The upstream says it does not exist.
    NotFound(String),
    /// No content: the upstream fails and nothing usable is remembered.
    Failed(UpstreamError),
}

/// Cache and single-flight for mutable answers, keyed by source and path.
pub struct Answers {
    cache: TtlCache<Fetched>,
    flights: SingleFlight<String, Result<Fetched, UpstreamError>>,
    ttl: Duration,
    negative_ttl: Duration,
}

impl Answers {
    /// Mutable-answer cache using the TTLs in `config`.
    pub fn new(config: &FrontendConfig) -> Self {
        let keep = config.list_ttl + config.stale_if_error;
        Self {
            cache: TtlCache::weighted(CACHE_BYTES, keep.max(config.negative_ttl), weigh),
            flights: SingleFlight::default(),
            ttl: config.list_ttl,
            negative_ttl: config.negative_ttl,
        }
    }

    /// Whether the answer for `path` from `source` would come from memory, without asking.
    pub(crate) fn is_fresh(&self, source: &Source, path: &str) -> bool {
        let key = format!("{} {path}", source.key);
        match self.cache.get(&key) {
            Some(aged) => match &aged.value {
                Fetched::Found(_) => aged.age() <= self.ttl,
                Fetched::NotFound(_) => aged.age() <= self.negative_ttl,
                Fetched::Degraded(_) => false,
            },
            None => false,
        }
    }

    /// The answer for upstream `path` (escaped, no leading slash) from `source`, or from the
    /// leader at `leader` (a URL) when given.
    pub(crate) async fn get(
        self: &Arc<Self>,
        source: &Source,
        path: &str,
        leader: Option<Leader>,
    ) -> Answer {
        let key = format!("{} {path}", source.key);
        let remembered = self.cache.get(&key);
        if let Some(aged) = &remembered {
            match &aged.value {
                Fetched::Found(body) if aged.age() <= self.ttl => {
                    return Answer::Fresh(body.clone())
                }
                Fetched::NotFound(reason) if aged.age() <= self.negative_ttl => {
                    return Answer::NotFound(reason.clone())
                }
                _ => {}
            }
        }
        let upstream = source.upstream.clone();
        let owned = path.to_string();
        let work = async move {
            match leader {
                Some(leader) => from_leader(&leader).await,
                None => fetch(&upstream, &owned).await,
            }
        };
        let fetched = self
            .flights
            .run(key.clone(), work, || {
                Err(UpstreamError::Failed {
                    upstream: "internal".into(),
                    detail: "fetch task panicked".into(),
                })
            })
            .await;
        match fetched {
            Ok(Fetched::Degraded(body)) => Answer::Stale(body),
            Ok(fetched) => {
                self.cache.insert(key, fetched.clone());
                match fetched {
                    Fetched::Found(body) => Answer::Fresh(body),
                    Fetched::NotFound(reason) => Answer::NotFound(reason),
                    Fetched::Degraded(body) => Answer::Stale(body),
                }
            }
            Err(error) => match remembered.map(|aged| aged.value) {
                Some(Fetched::Found(body)) => {
                    tracing::warn!(%path, %error, "upstream failing; serving a stale answer");
                    Answer::Stale(body)
                }
                _ => Answer::Failed(error),
            },
        }
    }
}

/// An answer's memory: its bytes plus its key and some overhead.
fn weigh(key: &str, fetched: &Fetched) -> u32 {
    let body = match fetched {
        Fetched::Found(b) | Fetched::Degraded(b) => b.len(),
        Fetched::NotFound(reason) => reason.len(),
    };
    u32::try_from(body + key.len() + 64).unwrap_or(u32::MAX)
}

/// Where a follower asks the leader for a mutable answer, on behalf of whom.
pub(crate) struct Leader {
    /// The forwarding client.
    pub client: reqwest::Client,
    /// The leader's URL for the path.
    pub url: String,
    /// The client's credentials, relayed.
    pub authorization: Option<reqwest::header::HeaderValue>,
    /// This member's key, when the cluster has one.
    pub member_key: Option<Arc<str>>,
}

/// A follower asks the leader, which asks the upstream (for version control: so that one
/// node, not every node, talks to the repository host). A 404 the leader may not cache
/// (`no-store`: it could not find out) is a failure here, not "not found".
async fn from_leader(leader: &Leader) -> Result<Fetched, UpstreamError> {
    let failed = |detail: String| UpstreamError::Failed {
        upstream: "the leader".into(),
        detail,
    };
    let mut request = leader
        .client
        .get(&leader.url)
        .header(crate::forward::FORWARDED, "1");
    if let Some(key) = &leader.member_key {
        request = request.header(crate::access::MEMBER, key.as_ref());
    }
    if let Some(authorization) = &leader.authorization {
        // The leader admits the client again: it trusts no follower's word about who asked.
        request = request.header(reqwest::header::AUTHORIZATION, authorization);
    }
    let response = request.send().await.map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    let cache_control = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let cacheable = !cache_control.is_empty() && !cache_control.contains("no-store");
    let degraded = cache_control.contains("no-cache");
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
        if (body.len() + chunk.len()) as u64 > MAX_ANSWER_SIZE {
            return Err(UpstreamError::TooLarge {
                limit: MAX_ANSWER_SIZE,
            });
        }
        body.extend_from_slice(&chunk);
    }
    let text = || {
        let text = String::from_utf8_lossy(&body);
        let text = text.trim();
        text.strip_prefix("not found: ")
            .unwrap_or(text)
            .chars()
            .take(512)
            .collect::<String>()
    };
    match status.as_u16() {
        200 if degraded => Ok(Fetched::Degraded(Bytes::from(body))),
        200 => Ok(Fetched::Found(Bytes::from(body))),
        404 | 410 if cacheable => Ok(Fetched::NotFound(text())),
        _ => Err(failed(format!("answered {status}: {}", text()))),
    }
}

async fn fetch(upstream: &Upstream, path: &str) -> Result<Fetched, UpstreamError> {
    match upstream.get(path).await {
        Ok(body) => Ok(Fetched::Found(body.bytes(MAX_ANSWER_SIZE).await?)),
        Err(UpstreamError::NotFound { message }) => Ok(Fetched::NotFound(message)),
        Err(e) => Err(e),
    }
}
