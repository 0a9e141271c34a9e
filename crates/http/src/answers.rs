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
/// Distinct mutable answers remembered.
const CAPACITY: usize = 20_000;

/// What the upstream said last.
#[derive(Debug, Clone)]
enum Fetched {
    Found(Bytes),
    NotFound(String),
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
            cache: TtlCache::new(CAPACITY, keep.max(config.negative_ttl)),
            flights: SingleFlight::default(),
            ttl: config.list_ttl,
            negative_ttl: config.negative_ttl,
        }
    }

    /// The answer for upstream `path` (escaped, no leading slash) from `source`.
    pub(crate) async fn get(self: &Arc<Self>, source: &Source, path: &str) -> Answer {
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
        let work = async move { fetch(&upstream, &owned).await };
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
            Ok(fetched) => {
                self.cache.insert(key, fetched.clone());
                match fetched {
                    Fetched::Found(body) => Answer::Fresh(body),
                    Fetched::NotFound(reason) => Answer::NotFound(reason),
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

async fn fetch(upstream: &Upstream, path: &str) -> Result<Fetched, UpstreamError> {
    match upstream.get(path).await {
        Ok(body) => Ok(Fetched::Found(body.bytes(MAX_ANSWER_SIZE).await?)),
        Err(UpstreamError::NotFound { message }) => Ok(Fetched::NotFound(message)),
        Err(e) => Err(e),
    }
}
