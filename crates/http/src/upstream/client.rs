//! Fetching from the upstream chain: per-entry retries with jittered backoff, the go
//! command's fallback rules between entries, and errors that say what went wrong.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;

use futures::StreamExt;
use tokio_util::io::ReaderStream;

use super::direct::{self, DirectBody, DirectSource};
use super::{redact, Fallback, UpstreamEntry, UpstreamList};
use crate::metrics::Metrics;

/// First retry delay; doubled per attempt, plus a random jitter of up to as much again.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest delay between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(1);
/// How much of an upstream "not found" body is relayed (the go command prints 648 bytes).
const MAX_RELAYED_MESSAGE: usize = 512;
/// Redirects followed per request (reqwest's default).
const MAX_REDIRECTS: usize = 10;

/// Why the chain produced no content.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The last consulted upstream answered 404/410.
    #[error("not found upstream: {message}")]
    NotFound {
        /// The upstream's explanation, trimmed.
        message: String,
    },
    /// The chain reached `off`.
    #[error("module fetching is disabled (upstream list reached \"off\")")]
    Disabled,
    /// The upstream kept failing (status, timeout or transport) after all attempts.
    #[error("bad upstream {upstream}: {detail}")]
    Failed {
        /// Which upstream base URL.
        upstream: String,
        /// The last failure.
        detail: String,
    },
    /// The answer exceeded the size allowed for this artifact.
    #[error("upstream answer exceeds {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
}

impl UpstreamError {
    /// True for the answers that mean "does not exist" (and may be cached negatively).
    pub fn is_not_found(&self) -> bool {
        matches!(self, UpstreamError::NotFound { .. })
    }
}

/// A successful upstream answer whose body has not been read yet.
#[derive(Debug)]
pub struct UpstreamBody {
    upstream: String,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Http(reqwest::Response),
    Bytes(Option<Bytes>),
    File(ReaderStream<tokio::fs::File>),
}

impl UpstreamBody {
    /// The next body chunk, `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        let failed = |e: String| UpstreamError::Failed {
            upstream: self.upstream.clone(),
            detail: format!("reading body: {e}"),
        };
        match &mut self.body {
            Body::Http(response) => response.chunk().await.map_err(|e| failed(describe(&e))),
            Body::Bytes(bytes) => Ok(bytes.take()),
            Body::File(stream) => stream
                .next()
                .await
                .transpose()
                .map_err(|e| failed(e.to_string())),
        }
    }

    /// Reads the whole body, failing beyond `limit` bytes.
    pub async fn bytes(mut self, limit: u64) -> Result<Bytes, UpstreamError> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(UpstreamError::TooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// The upstream's `Content-Type`, if any.
    pub fn content_type(&self) -> Option<String> {
        let Body::Http(response) = &self.body else {
            return None;
        };
        let value = response.headers().get(reqwest::header::CONTENT_TYPE)?;
        value.to_str().ok().map(str::to_string)
    }
}

/// The upstream chain client. Cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    list: UpstreamList,
    /// Answers `direct` entries (none: this node does not fetch from version control).
    direct: Option<Arc<dyn DirectSource>>,
    /// The credential set `direct` entries fetch with.
    credentials: Option<Arc<str>>,
    http: reqwest::Client,
    attempts: u32,
    answer_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Upstream {
    /// A client for `list`; `timeout` bounds the wait for headers and between chunks.
    /// Redirects are followed only to the same scheme, host and port, or to a host in
    /// `redirect_hosts`: a redirect elsewhere is a failure, never content to cache.
    pub fn new(
        list: UpstreamList,
        connect_timeout: Duration,
        timeout: Duration,
        attempts: u32,
        redirect_hosts: Vec<String>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            let allowed = attempt
                .previous()
                .first()
                .is_some_and(|origin| redirect_allowed(origin, attempt.url(), &redirect_hosts));
            if allowed {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let http = reqwest::Client::builder()
            .user_agent(concat!("goproxy-ha/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connect_timeout)
            .read_timeout(timeout)
            .redirect(policy)
            .build()?;
        Ok(Self {
            list,
            direct: None,
            credentials: None,
            http,
            attempts: attempts.max(1),
            answer_timeout: timeout,
            metrics,
        })
    }

    /// The same client (connections, timeouts, redirect policy) walking another list.
    pub fn with_list(&self, list: UpstreamList) -> Self {
        Self {
            list,
            ..self.clone()
        }
    }

    /// This client with `direct` entries answered by `source`.
    pub fn with_direct(self, source: Option<Arc<dyn DirectSource>>) -> Self {
        Self {
            direct: source,
            ..self
        }
    }

    /// This client fetching `direct` entries with the credential set `name`.
    pub fn with_credentials(self, name: Option<&str>) -> Self {
        Self {
            credentials: name.map(Arc::from),
            ..self
        }
    }

    /// Whether the list has a `direct` entry.
    pub fn is_direct(&self) -> bool {
        self.list.has_direct()
    }

    /// GETs `path` (escaped, no leading slash) from the chain.
    pub async fn get(&self, path: &str) -> Result<UpstreamBody, UpstreamError> {
        let entries = self.list.entries();
        let mut outcome = Err(UpstreamError::Disabled);
        for (i, (entry, fallback)) in entries.iter().enumerate() {
            outcome = match entry {
                UpstreamEntry::Off => Err(UpstreamError::Disabled),
                UpstreamEntry::Direct => self.get_direct(path).await,
                UpstreamEntry::Proxy(base) => self.get_from(base, path).await,
            };
            let falls_through = match (&outcome, fallback) {
                (Ok(_), _) => false,
                (Err(e), Fallback::OnNotFound) => e.is_not_found(),
                (Err(_), Fallback::OnAnyError) => true,
            };
            if !falls_through || i + 1 == entries.len() {
                break;
            }
        }
        outcome
    }

    /// A `direct` entry: the version control fetcher, once (it bounds its own work).
    async fn get_direct(&self, path: &str) -> Result<UpstreamBody, UpstreamError> {
        let Some(source) = &self.direct else {
            return Err(UpstreamError::Failed {
                upstream: "direct".into(),
                detail: "this node does not fetch from version control".into(),
            });
        };
        let route = direct::parse(path)?;
        let request = direct::request_of(&route)?;
        let started = Instant::now();
        let answer = source.fetch(request, self.credentials.as_deref()).await;
        let label = match &answer {
            Ok(_) => "2xx",
            Err(direct::DirectError::NotFound(_)) => "4xx",
            Err(_) => "error",
        };
        self.metrics
            .observe_upstream(label, started.elapsed().as_secs_f64());
        let body = match answer? {
            DirectBody::Bytes(bytes) => Body::Bytes(Some(bytes)),
            DirectBody::File(file) => Body::File(ReaderStream::new(file)),
        };
        Ok(UpstreamBody {
            upstream: "direct".into(),
            body,
        })
    }

    /// One upstream, `attempts` times at most for retryable failures (timeouts, 429, 5xx),
    /// with jittered exponential backoff between them.
    async fn get_from(&self, base: &str, path: &str) -> Result<UpstreamBody, UpstreamError> {
        let url = format!("{base}/{path}");
        let shown = redact(base);
        let attempt = || async {
            let started = Instant::now();
            let sent = tokio::time::timeout(self.answer_timeout, self.http.get(&url).send()).await;
            let (result, label) = classify(&shown, sent).await;
            self.metrics
                .observe_upstream(label, started.elapsed().as_secs_f64());
            match result {
                Attempt::Done(outcome) => Ok(outcome),
                Attempt::Retry(detail) => Err(detail),
            }
        };
        let backoff = ExponentialBuilder::new()
            .with_min_delay(BACKOFF_BASE)
            .with_max_delay(BACKOFF_CAP)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.attempts.saturating_sub(1) as usize);
        let retried = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .notify(|detail: &String, after: Duration| {
                tracing::debug!(upstream = %shown, path, %detail, ?after, "retrying upstream");
            })
            .await;
        match retried {
            Ok(outcome) => outcome,
            Err(detail) => Err(UpstreamError::Failed {
                upstream: shown,
                detail: format!("{detail} (after {} attempts)", self.attempts),
            }),
        }
    }
}

enum Attempt {
    Done(Result<UpstreamBody, UpstreamError>),
    Retry(String),
}

type Sent = Result<Result<reqwest::Response, reqwest::Error>, tokio::time::error::Elapsed>;

/// Whether a redirect from `origin` to `target` may be followed: same scheme, host and port,
/// or a host the operator allowed.
fn redirect_allowed(origin: &reqwest::Url, target: &reqwest::Url, allowed: &[String]) -> bool {
    let same = origin.scheme() == target.scheme()
        && origin.host_str() == target.host_str()
        && origin.port_or_known_default() == target.port_or_known_default();
    same || target.host_str().is_some_and(|host| {
        allowed.iter().any(|a| {
            a.eq_ignore_ascii_case(host)
                || target
                    .port_or_known_default()
                    .is_some_and(|port| a.eq_ignore_ascii_case(&format!("{host}:{port}")))
        })
    })
}

/// `base` is the upstream as shown (credentials redacted).
async fn classify(base: &str, sent: Sent) -> (Attempt, &'static str) {
    let response = match sent {
        Err(_) => {
            return (
                Attempt::Retry("timed out waiting for an answer".into()),
                "timeout",
            )
        }
        Ok(Err(e)) => return (Attempt::Retry(describe(&e)), "error"),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    let upstream = base.to_string();
    if status.is_success() {
        return (
            Attempt::Done(Ok(UpstreamBody {
                upstream,
                body: Body::Http(response),
            })),
            "2xx",
        );
    }
    if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
        let body = response.text().await.unwrap_or_default();
        let message = relayable(&body, status);
        return (
            Attempt::Done(Err(UpstreamError::NotFound { message })),
            "4xx",
        );
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return (Attempt::Retry(format!("answered {status}")), "5xx");
    }
    let detail = if status.is_redirection() {
        // Only where it points: a presigned URL's query is a credential of this proxy.
        let target = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| response.url().join(location).ok())
            .map(|url| {
                format!(
                    "{}://{}",
                    url.scheme(),
                    url.authority().rsplit('@').next().unwrap_or("")
                )
            })
            .unwrap_or_default();
        format!(
            "answered {status} to {target}: redirects are followed only to the same host or to proxy.upstream_redirect_hosts"
        )
    } else {
        format!("answered {status}")
    };
    let failed = UpstreamError::Failed { upstream, detail };
    (Attempt::Done(Err(failed)), "4xx")
}

/// First line(s) of an upstream error body, bounded, for relaying to the go command.
fn relayable(body: &str, status: StatusCode) -> String {
    let text = body.trim();
    if text.is_empty() {
        return status.to_string();
    }
    let mut end = text.len().min(MAX_RELAYED_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_the_upstream_host_unless_allowed() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let origin = url("https://proxy.example/a/@v/v1.0.0.zip");
        let none: Vec<String> = Vec::new();
        assert!(redirect_allowed(
            &origin,
            &url("https://proxy.example/b"),
            &none
        ));
        assert!(redirect_allowed(
            &origin,
            &url("https://proxy.example:443/b"),
            &none
        ));
        assert!(!redirect_allowed(
            &origin,
            &url("http://proxy.example/b"),
            &none
        ));
        assert!(!redirect_allowed(
            &origin,
            &url("https://proxy.example:8443/b"),
            &none
        ));
        assert!(!redirect_allowed(
            &origin,
            &url("https://evil.example/b"),
            &none
        ));
        let cdn = vec!["cdn.example".to_string(), "blobs.example:8443".to_string()];
        assert!(redirect_allowed(
            &origin,
            &url("https://cdn.example/z"),
            &cdn
        ));
        assert!(redirect_allowed(
            &origin,
            &url("https://blobs.example:8443/z"),
            &cdn
        ));
        assert!(!redirect_allowed(
            &origin,
            &url("https://blobs.example/z"),
            &cdn
        ));
    }

    #[test]
    fn relayed_messages_are_bounded_and_never_empty() {
        assert_eq!(relayable("", StatusCode::GONE), "410 Gone");
        let long = "é".repeat(1000);
        assert!(relayable(&long, StatusCode::NOT_FOUND).len() <= MAX_RELAYED_MESSAGE);
    }
}
