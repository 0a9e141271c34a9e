//! Prepared answers: a cache hit on a small artifact, answered once through the whole
//! request path and kept per request path (environment prefix included), so that a repeated
//! hit skips parsing, routing, building the key and the headers.
//!
//! What a prepared answer may skip, and why it is still the same answer:
//! - Parsing and routing: the raw path names the same artifact through the same route every
//!   time, because the route table is fixed for the front end's life (SIGHUP reloads only the
//!   rate limits). A path is prepared only after routing let it through, so no deny rule
//!   applies to it; private rules only decide where a miss may fill from, and a prepared
//!   path never misses. The routing outcome admission needs (whether a rule marks the module
//!   private) and the checksum database of the route are kept with the answer.
//! - The index lookup and the headers: a committed entry never changes. It is only removed
//!   by a purge, and its bytes by an eviction; [`Frontend::forget_version`] and
//!   [`Frontend::forget_blob`] advance the [`Generation`], which retires every answer
//!   prepared before.
//!
//! What still runs on every hit: admission (tokens, path rules, rate limits), the block
//! rules, `check_served` under a verifying route, and the same metrics, download counts and
//! notes for the dashboard and the audit trail. Requests whose answer depends on their
//! headers ([`reacts_to`]) take the normal path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, Method};
use axum::response::Response;
use bytes::Bytes;
use goproxy_protocol::index::{ArtifactKind, IndexEntry};

use crate::audited::Note;
use crate::checksum::Verify;
use crate::error::ApiError;
use crate::fill::kind_label;
use crate::frontend::{Frontend, Request, DISABLE_MODULE_FETCH};

/// What a prepared answer weighs in the memory cache besides its body and path: the entry's
/// strings, the header block and the checksum route, rounded up.
const PREPARED_OVERHEAD: usize = 1024;

/// Request headers that change the answer or its bookkeeping: a request carrying any of them
/// takes the normal path.
const REACTS_TO: [HeaderName; 5] = [
    header::RANGE,
    header::IF_RANGE,
    header::IF_NONE_MATCH,
    HeaderName::from_static(DISABLE_MODULE_FETCH),
    HeaderName::from_static(crate::forward::FORWARDED),
];

/// What the front end keeps in memory, bounded together by `memory_cache_bytes`.
///
/// Both live in one cache under disjoint keys: blobs under their sha256 (hexadecimal),
/// prepared answers under the request path (which starts with `/`).
#[derive(Clone)]
pub(crate) enum Memory {
    /// A small artifact's bytes.
    Blob(Bytes),
    /// The answer to a request path.
    Prepared(Arc<Prepared>),
}

impl Memory {
    /// What `value` under `key` costs the cache (a prepared answer counts its body again:
    /// it keeps the bytes alive after their blob entry is evicted).
    pub(crate) fn weigh(key: &str, value: &Memory) -> u32 {
        let bytes = match value {
            Memory::Blob(bytes) => bytes.len(),
            Memory::Prepared(prepared) => prepared.body.len() + key.len() + PREPARED_OVERHEAD,
        };
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// A hit answered once, ready to be answered again.
pub(crate) struct Prepared {
    /// The committed entry the path names.
    entry: IndexEntry,
    /// The answer's headers: ETag, Cache-Control, Accept-Ranges, Content-Type and
    /// Content-Length, as [`crate::serve::blob_response`] sends them for the whole artifact.
    headers: HeaderMap,
    /// The artifact's bytes (shared with its blob entry).
    body: Bytes,
    /// Whether a rule of some environment fetches the module privately (admission of
    /// anonymous clients of a public-only proxy).
    private: bool,
    /// What hits through the path's route are checked against (a `.mod`/`.zip` through a
    /// verifying route).
    verify: Option<Verify>,
    /// The [`Generation`] it was prepared in: a later one retires it.
    generation: u64,
}

impl Prepared {
    /// The request's label in the metrics (its route: `info`, `mod` or `zip`).
    pub(crate) fn label(&self) -> &'static str {
        kind_label(self.entry.key.kind)
    }
}

/// Counts purges and evictions: an answer prepared in an earlier generation may name an
/// entry or bytes that are gone, so it is not served.
#[derive(Debug, Default)]
pub(crate) struct Generation(AtomicU64);

impl Generation {
    /// The current generation: read before the lookups whose results an answer keeps.
    pub(crate) fn current(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Retires every answer prepared so far: called after what was forgotten is dropped
    /// from the caches, so an answer prepared in the new generation cannot have seen it.
    pub(crate) fn advance(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Whether a prepared answer would ignore something `headers` ask for.
fn reacts_to(headers: &HeaderMap) -> bool {
    REACTS_TO.iter().any(|name| headers.contains_key(name))
}

/// How the normal path may prepare the answer to one request: the request's path and the
/// generation current when it started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrepareAs<'a> {
    path: &'a str,
    generation: u64,
}

impl Frontend {
    /// How the normal path may prepare the answer to this request, if it may.
    pub(crate) fn prepare_as<'a>(
        &self,
        method: &Method,
        path: &'a str,
        headers: &HeaderMap,
    ) -> Option<PrepareAs<'a>> {
        (method == Method::GET && !reacts_to(headers)).then(|| PrepareAs {
            path,
            generation: self.prepared_generation.current(),
        })
    }

    /// The answer prepared for this request, if it may have one and one is current.
    pub(crate) fn prepared(&self, prepare: Option<PrepareAs<'_>>) -> Option<Arc<Prepared>> {
        let prepare = prepare?;
        match self.memory.get(prepare.path)? {
            Memory::Prepared(prepared) if prepared.generation == prepare.generation => {
                Some(prepared)
            }
            _ => None,
        }
    }

    /// Prepares the answer to `request` for the committed `entry` (routed, admitted and
    /// checked), when the request may have one and the bytes are in memory; keeps it.
    pub(crate) fn prepare(
        &self,
        entry: &IndexEntry,
        request: Request<'_>,
    ) -> Result<Option<Arc<Prepared>>, ApiError> {
        let Some(prepare) = request.prepare else {
            return Ok(None);
        };
        let body = match self.memory.get(&entry.blob.sha256) {
            Some(Memory::Blob(body)) if body.len() as u64 == entry.blob.size => body,
            _ => return Ok(None),
        };
        let prepared = Arc::new(Prepared {
            headers: crate::serve::whole_headers(entry)?,
            body,
            private: crate::routed::is_private(&self.routes, request.env, &entry.key.module),
            verify: self.verify_source(request.source),
            generation: prepare.generation,
            entry: entry.clone(),
        });
        self.memory
            .insert(prepare.path.to_string(), Memory::Prepared(prepared.clone()));
        Ok(Some(prepared))
    }

    /// Answers a request from its prepared answer, with every check and count a hit has on
    /// the normal path, in the same order. Fills in `note` for the audit trail.
    pub(crate) async fn serve_prepared(
        &self,
        prepared: &Prepared,
        headers: &HeaderMap,
        client: Option<std::net::IpAddr>,
        note: &mut Note,
    ) -> Result<Response, ApiError> {
        let key = &prepared.entry.key;
        note.module = Some(key.module.clone());
        note.version = Some(key.version.clone());
        note.artifact = Some(kind_label(key.kind));
        let who = self
            .access
            .admit(headers, client, false, Some(&key.module), |_| {
                prepared.private
            })?;
        note.token = who.token;
        crate::operate::check_blocked_version(
            self.access.policy.as_ref(),
            &key.module,
            Some(&key.version),
        )?;
        self.metrics.lookup(kind_label(key.kind), true);
        if let Some(verify) = &prepared.verify {
            self.check_served(&prepared.entry, verify).await?;
        }
        let response = self.answer_prepared(prepared);
        self.metrics.prepared_hit();
        self.served_version(&prepared.entry, true);
        note.outcome = Some(goproxy_audit::Outcome::Hit);
        note.sha256 = Some(prepared.entry.blob.sha256.clone());
        Ok(response)
    }

    /// The prepared answer as a response (counted as served).
    pub(crate) fn answer_prepared(&self, prepared: &Prepared) -> Response {
        let mut response = Response::new(Body::from(prepared.body.clone()));
        *response.headers_mut() = prepared.headers.clone();
        self.metrics.served(prepared.body.len() as u64);
        response
    }

    /// Notes that `entry` was served: its version was used (least-recently-used eviction),
    /// and a zip sent whole to a client (`download`) counts as a download.
    pub(crate) fn served_version(&self, entry: &IndexEntry, download: bool) {
        if entry.key.kind != ArtifactKind::Zip {
            return;
        }
        self.access
            .policy
            .touched(&entry.key.module, &entry.key.version);
        if download {
            self.access
                .downloads
                .count(&entry.key.module, &entry.key.version);
        }
    }
}
