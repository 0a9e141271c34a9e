//! Immutable artifacts (`.info` for canonical versions, `.mod`, `.zip`): served from the
//! index and local blobs, filled from upstream on a miss.

use axum::response::Response;
use goproxy_protocol::index::{ArtifactKey, ArtifactKind, IndexEntry};
use goproxy_protocol::route::VersionQuery;

use crate::checksum::Verify;
use crate::error::ApiError;
use crate::fill::{kind_label, FillError};
use crate::frontend::Served;
use crate::frontend::{Frontend, Request};
use crate::index::{IndexError, Leadership};
use crate::prepared::Memory;
use crate::serve::BlobSource;
use crate::upstream::UpstreamError;
use goproxy_audit::Outcome;

/// How long a miss waits for a leader to be elected (a few election timeouts).
const LEADER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How often it looks.
const LEADER_POLL: std::time::Duration = std::time::Duration::from_millis(20);
/// What a miss came to.
enum Miss {
    /// This node filled it (or found it committed).
    Filled(IndexEntry),
    /// The leader answered it.
    Forwarded(Response),
    /// This node stopped leading before its fill committed.
    LeaderChanged,
}

/// Why a fill here did not give an entry.
enum Filling {
    /// The commit found another leader (the error, should that be the answer).
    LeaderChanged(ApiError),
    /// Anything else.
    Failed(ApiError),
}

/// Artifacts up to this size are kept in the memory cache (`memory_cache_bytes`) and served
/// from it: most zips are far smaller, and a hit from memory costs no file reads (in
/// `make bench`, zips of 100 KiB and 1 MiB went from 0.5-0.9x nginx streamed from the file to
/// 1.2-1.7x from memory).
pub const SMALL_BLOB: u64 = 2 * 1024 * 1024;
/// Memory that artifacts being read whole into the cache may take at once, in KiB.
pub const MEMORY_LOAD_BUDGET_KIB: usize = 32 * 1024;

impl Frontend {
    /// `.info`: canonical versions are cached artifacts, other queries are forwarded.
    pub(crate) async fn info(
        &self,
        module: String,
        version: VersionQuery,
        request: Request<'_>,
    ) -> Result<Response, ApiError> {
        match version {
            VersionQuery::Canonical(version) => {
                self.artifact(module, version, ArtifactKind::Info, request)
                    .await
            }
            VersionQuery::Query(query) => self.version_query(&module, &query, request).await,
        }
    }

    /// Serves a committed artifact, filling it first on a miss.
    pub(crate) async fn artifact(
        &self,
        module: String,
        version: String,
        kind: ArtifactKind,
        request: Request<'_>,
    ) -> Result<Response, ApiError> {
        let key = ArtifactKey {
            module,
            version,
            kind,
        };
        let cached = match self.entries.get(&key) {
            Some(entry) => Some(entry),
            None => {
                let found = self.index.lookup(&key).map_err(index_error)?;
                if let Some(entry) = &found {
                    // Committed entries never change, so remembering them is always correct.
                    self.entries.insert(key.clone(), entry.clone());
                }
                found
            }
        };
        self.metrics.lookup(kind_label(kind), cached.is_some());
        let outcome = match cached {
            Some(_) => Outcome::Hit,
            None => Outcome::Fill,
        };
        let entry = match cached {
            Some(entry) => entry,
            None => {
                // A fill that loses leadership before its commit is asked once more of
                // whoever leads now (forwarded, or filled here again), not failed.
                let mut lost_leadership = false;
                loop {
                    match self.miss(&key, request, lost_leadership).await? {
                        Miss::Filled(entry) => break entry,
                        Miss::Forwarded(response) => return Ok(response),
                        Miss::LeaderChanged => lost_leadership = true,
                    }
                }
            }
        };
        if let Some(verify) = self.verify_for(request) {
            self.check_served(&entry, &verify).await?;
        }
        let mut response = match self.prepare(&entry, request)? {
            Some(prepared) => self.answer_prepared(&prepared),
            None => self.serve_entry(&entry, request).await?,
        };
        // A download: a whole zip to a client (a member's forwarded request was counted
        // where the client asked).
        let download = !request.head
            && response.status() == axum::http::StatusCode::OK
            && !(request.forwarded && self.access.from_member(request.headers));
        self.served_version(&entry, download);
        response.extensions_mut().insert(Served {
            outcome,
            sha256: Some(entry.blob.sha256.clone()),
        });
        Ok(response)
    }

    /// What this request's fills (and hits) are verified against, if anything.
    fn verify_for(&self, request: Request<'_>) -> Option<Verify> {
        self.verify_source(request.source)
    }

    /// A `.mod`/`.zip` served through a verifying route must match the checksum database,
    /// however it was cached (through a route with `sumdb = "off"`, before verification was
    /// turned on, accepted while the database was unreachable): the cache is shared by every
    /// route. Proved once per process and artifact; the lookup is usually kept already, so
    /// this reads the cluster's copy, not the database.
    pub(crate) async fn check_served(
        &self,
        entry: &IndexEntry,
        verify: &Verify,
    ) -> Result<(), ApiError> {
        if !matches!(entry.key.kind, ArtifactKind::Mod | ArtifactKind::Zip) {
            return Ok(());
        }
        let memo = (verify.database.clone(), entry.key.clone());
        if verify.memo.get(&memo).as_deref() == Some(entry.blob.sha256.as_str()) {
            return Ok(());
        }
        let computed = match entry.key.kind {
            ArtifactKind::Zip => match &entry.h1 {
                Some(h1) => h1.clone(),
                None => return Err(ApiError::internal(format!("{} has no h1", entry.key))),
            },
            _ => {
                let bytes = self
                    .filler
                    .read_blob(&entry.blob)
                    .await
                    .map_err(fill_error)?;
                goproxy_protocol::dirhash::go_mod_h1(&bytes)
            }
        };
        match self.filler.verify(&entry.key, verify, &computed).await {
            Ok(Some(settle)) => {
                verify
                    .checker
                    .settle(settle)
                    .await
                    .map_err(|e| fill_error(e.into()))?;
                verify.memo.insert(memo, entry.blob.sha256.clone());
                Ok(())
            }
            // Accepted unverified (database unreachable, `accept`): served.
            Ok(None) => Ok(()),
            Err(e) => Err(fill_error(e)),
        }
    }

    /// A miss: filled here (the leader), forwarded to the leader, or
    /// [`Miss::LeaderChanged`] when this node stopped leading during its fill (only once:
    /// `retried` makes that a failure).
    async fn miss(
        &self,
        key: &ArtifactKey,
        request: Request<'_>,
        retried: bool,
    ) -> Result<Miss, ApiError> {
        let kind = key.kind;
        match (request.offline, self.current_leadership().await) {
            (Some(why), _) => Err(ApiError::Unavailable(format!(
                "{key} is not cached and {why}"
            ))),
            (None, Leadership::Local) => match self.fill(key.clone(), request).await {
                Err(Filling::LeaderChanged(_)) if !retried && !request.forwarded => {
                    tracing::info!(artifact = %key, "leadership moved during the fill; asking the new leader");
                    Ok(Miss::LeaderChanged)
                }
                Err(Filling::LeaderChanged(e)) => Err(e),
                Err(Filling::Failed(e)) => Err(e),
                Ok(entry) => Ok(Miss::Filled(entry)),
            },
            (None, Leadership::Remote(leader)) if !request.forwarded => {
                // The leader fills it: charged to the client here, where it connected.
                let _permit = self.access.admit_fill(request.who)?;
                let (module, version) = (key.module.clone(), key.version.clone());
                let mut response = self.forward(&leader, key, request).await?;
                if kind == ArtifactKind::Zip
                    && !request.head
                    && response.status() == axum::http::StatusCode::OK
                {
                    self.access.downloads.count(&module, &version);
                }
                response.extensions_mut().insert(Served {
                    outcome: Outcome::Forwarded,
                    sha256: None,
                });
                Ok(Miss::Forwarded(response))
            }
            (None, Leadership::Remote(leader)) => Err(ApiError::Unavailable(format!(
                "{key}: forwarded here, but the leader is now {leader}; retry"
            ))),
            (None, Leadership::Unknown) => Err(ApiError::Unavailable(format!(
                "{key} is not cached and the cluster has no leader right now; retry shortly"
            ))),
        }
    }

    /// Who fills; during an election, waits up to [`LEADER_WAIT`] for one to emerge
    /// rather than failing a request that a moment later would succeed.
    pub(crate) async fn current_leadership(&self) -> Leadership {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let leadership = self.index.leadership();
            if leadership != Leadership::Unknown || tokio::time::Instant::now() >= deadline {
                return leadership;
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    async fn fill(&self, key: ArtifactKey, request: Request<'_>) -> Result<IndexEntry, Filling> {
        let negative_key = format!("{} {key}", request.source.key);
        if let Some(reason) = self.negatives.get(&negative_key) {
            return Err(Filling::Failed(self.not_found(reason.value)));
        }
        let _permit = self
            .access
            .admit_fill(request.who)
            .map_err(Filling::Failed)?;
        match self
            .filler
            .fill(
                key,
                request.source.upstream.clone(),
                self.verify_for(request),
            )
            .await
        {
            Ok(entry) => Ok(entry),
            Err(FillError::Upstream(UpstreamError::NotFound { message })) => {
                self.negatives.insert(negative_key, message.clone());
                Err(Filling::Failed(self.not_found(message)))
            }
            Err(e @ FillError::Index(IndexError::NotLeader { .. })) => {
                Err(Filling::LeaderChanged(fill_error(e)))
            }
            Err(e) => Err(Filling::Failed(fill_error(e))),
        }
    }

    /// Streams an entry's blob (small ones from memory); a blob missing on this node is
    /// repaired first.
    pub(crate) async fn serve_entry(
        &self,
        entry: &IndexEntry,
        request: Request<'_>,
    ) -> Result<Response, ApiError> {
        let source = match self.memory.get(&entry.blob.sha256) {
            Some(Memory::Blob(bytes)) => BlobSource::Memory(bytes),
            _ => self.blob_source(entry, request).await?,
        };
        let (response, sent) =
            crate::serve::blob_response(entry, source, request.headers, request.head).await?;
        self.metrics.served(sent);
        Ok(response)
    }

    async fn blob_source(
        &self,
        entry: &IndexEntry,
        request: Request<'_>,
    ) -> Result<BlobSource, ApiError> {
        let cached = entry.blob.size <= SMALL_BLOB && self.config.memory_cache_bytes > 0;
        // Reading an artifact whole takes its size in memory while it loads: the loads under
        // way share a budget, and one that does not fit streams from the file instead.
        let load = cached
            .then(|| {
                let kib = u32::try_from(entry.blob.size.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
                self.memory_loads.clone().try_acquire_many_owned(kib).ok()
            })
            .flatten();
        if let Some(_permit) = load {
            if let Some(bytes) = self.store.read_small(&entry.blob).await.map_err(storage)? {
                let bytes = bytes::Bytes::from(bytes);
                self.memory
                    .insert(entry.blob.sha256.clone(), Memory::Blob(bytes.clone()));
                return Ok(BlobSource::Memory(bytes));
            }
        } else if let Some(file) = self.store.open_blob(&entry.blob).await.map_err(storage)? {
            return Ok(BlobSource::File(file));
        }
        if request.offline.is_some() {
            // Cache-only still means the cluster's cache: a peer may hold the bytes.
            if !self
                .filler
                .repair_from_peers(entry)
                .await
                .map_err(fill_error)?
            {
                return Err(ApiError::Unavailable(format!(
                    "{} is committed but its bytes are on no reachable node",
                    entry.key
                )));
            }
        } else {
            self.filler
                .repair(entry, &request.source.upstream)
                .await
                .map_err(fill_error)?;
        }
        let file = self.store.open_blob(&entry.blob).await.map_err(storage)?;
        let file =
            file.ok_or_else(|| ApiError::internal(format!("{} vanished after repair", entry.key)))?;
        Ok(BlobSource::File(file))
    }

    pub(crate) fn not_found(&self, reason: String) -> ApiError {
        ApiError::NotFound {
            reason: format!("not found: {reason}"),
            max_age: self.config.negative_ttl,
        }
    }
}

/// Maps an index failure to an answer.
pub(crate) fn index_error(e: IndexError) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

fn storage(e: goproxy_store::StoreError) -> ApiError {
    if e.is_disk_full() {
        ApiError::disk_full(e.to_string())
    } else {
        ApiError::internal(e.to_string())
    }
}

/// Maps a failed fill (other than "not found") to an answer.
pub(crate) fn fill_error(e: FillError) -> ApiError {
    match e {
        FillError::DiskFull(_) => ApiError::disk_full(e.to_string()),
        FillError::Storage(_) | FillError::Panicked => ApiError::internal(e.to_string()),
        FillError::Upstream(UpstreamError::NotFound { message }) => ApiError::NotFound {
            reason: format!("not found: {message}"),
            max_age: std::time::Duration::ZERO,
        },
        // The cluster cache failed inside the checker: its reason may name local paths.
        FillError::Unverified(goproxy_checksum::CheckError::Cache(_)) => {
            ApiError::internal(e.to_string())
        }
        // Refused for the checksum database: 404, so a client with a fallback (`,direct`)
        // goes on to it, and verifies with its own GOSUMDB there.
        FillError::ChecksumMismatch { .. } | FillError::Unverified(_) => ApiError::NotFound {
            reason: e.to_string(),
            max_age: std::time::Duration::ZERO,
        },
        other => ApiError::Unavailable(other.to_string()),
    }
}
