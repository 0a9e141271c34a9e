//! One audit record per request: the router is wrapped so that every answer (GOPROXY,
//! checksum database, status, metrics, refusals) is recorded once its body has been sent
//! or abandoned, with the bytes actually sent.
//!
//! Handlers describe what they did in a [`Note`] response extension (token, module, version,
//! artifact, hit/fill/forwarded, sha256); this layer adds the client, method, path, status,
//! size and duration.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use goproxy_audit::{AuditLog, Outcome, Record};
use http_body::Frame;

use crate::listener::ClientAddr;

/// Longest request path recorded whole (characters).
const MAX_PATH: usize = 1024;

/// What a handler tells the audit trail about its answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Note {
    pub token: Option<String>,
    pub module: Option<String>,
    pub version: Option<String>,
    pub artifact: Option<&'static str>,
    pub outcome: Option<Outcome>,
    pub sha256: Option<String>,
}

/// The layer's state.
#[derive(Clone)]
struct Auditor {
    /// Shared: a request clones one `Arc`, not the channel's sender.
    log: std::sync::Arc<AuditLog>,
    node: u64,
}

/// Wraps `router` (every route of the node) so that each request is recorded in `log` as
/// answered by node `node`. The router's clones hold the only handles: once the listener
/// has drained and dropped them, the audit task writes what is queued and ends.
pub fn layer(router: axum::Router, log: AuditLog, node: u64) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(
        Auditor {
            log: std::sync::Arc::new(log),
            node,
        },
        record,
    ))
}

/// Records `request`'s answer when its body is done.
async fn record(State(auditor): State<Auditor>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .map_or_else(|| "-".to_string(), |c| c.0.to_string());
    let method = request.method().to_string();
    let path = request.uri().path();
    // Longer paths are never GOPROXY requests; the line stays small whatever a client sends.
    let path = match path.char_indices().nth(MAX_PATH) {
        Some((cut, _)) => format!("{}…", &path[..cut]),
        None => path.to_string(),
    };
    let mut response = next.run(request).await;
    let note = response
        .extensions_mut()
        .remove::<Note>()
        .unwrap_or_default();
    let status = response.status().as_u16();
    let outcome = note.outcome.unwrap_or(if status >= 500 {
        Outcome::Error
    } else {
        Outcome::Other
    });
    let record = Record {
        time: String::new(),
        node: auditor.node,
        client,
        token: note.token,
        method,
        path,
        module: note.module,
        version: note.version,
        artifact: note.artifact.map(str::to_string),
        outcome,
        status,
        bytes: 0,
        duration_ms: 0.0,
        sha256: note.sha256,
    };
    response.map(|body| {
        Body::new(Counted {
            inner: body,
            pending: Some((auditor.log, record, started)),
            bytes: 0,
        })
    })
}

/// A response body that counts what it sends and records the request when it is dropped
/// (fully sent, or abandoned by the client).
struct Counted {
    inner: Body,
    pending: Option<(std::sync::Arc<AuditLog>, Record, Instant)>,
    bytes: u64,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some((log, mut record, started)) = self.pending.take() {
            record.time = goproxy_audit::now_rfc3339();
            record.bytes = self.bytes;
            record.duration_ms = goproxy_audit::record::duration_ms(started.elapsed());
            log.try_record(record);
        }
    }
}
