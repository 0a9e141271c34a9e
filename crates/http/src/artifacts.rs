//! Immutable artifacts (`.info` for canonical versions, `.mod`, `.zip`): served from the
//! index and local blobs, filled from upstream on a miss.

use axum::response::Response;
use goproxy_protocol::index::{ArtifactKey, ArtifactKind, IndexEntry};
use goproxy_protocol::route::VersionQuery;

use crate::error::ApiError;
use crate::fill::{kind_label, FillError};
use crate::frontend::{Frontend, Request};
use crate::index::IndexError;
use crate::upstream::UpstreamError;

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
        let cached = self.index.lookup(&key).map_err(index_error)?;
        self.metrics.lookup(kind_label(kind), cached.is_some());
        let entry = match cached {
            Some(entry) => entry,
            None if request.offline => {
                return Err(ApiError::Unavailable(format!(
                    "{key} is not cached and Disable-Module-Fetch is set"
                )))
            }
            None => self.fill(key).await?,
        };
        self.serve_entry(&entry, request).await
    }

    async fn fill(&self, key: ArtifactKey) -> Result<IndexEntry, ApiError> {
        let negative_key = key.to_string();
        if let Some(reason) = self.negatives.get(&negative_key) {
            return Err(self.not_found(reason.value));
        }
        match self.filler.fill(key).await {
            Ok(entry) => Ok(entry),
            Err(FillError::Upstream(UpstreamError::NotFound { message })) => {
                self.negatives.insert(negative_key, message.clone());
                Err(self.not_found(message))
            }
            Err(e) => Err(fill_error(e)),
        }
    }

    /// Streams an entry's blob; a blob missing on this node is repaired first.
    pub(crate) async fn serve_entry(
        &self,
        entry: &IndexEntry,
        request: Request<'_>,
    ) -> Result<Response, ApiError> {
        let file = match self.store.open_blob(&entry.blob).await.map_err(storage)? {
            Some(file) => file,
            None if request.offline => {
                return Err(ApiError::Unavailable(format!(
                    "{} is committed but its bytes are missing on this node",
                    entry.key
                )))
            }
            None => {
                self.filler.repair(entry).await.map_err(fill_error)?;
                self.store
                    .open_blob(&entry.blob)
                    .await
                    .map_err(storage)?
                    .ok_or_else(|| {
                        ApiError::Internal(format!("{} vanished after repair", entry.key))
                    })?
            }
        };
        let (response, sent) =
            crate::serve::blob_response(entry, file, request.headers, request.head).await?;
        self.metrics.served(sent);
        Ok(response)
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
    ApiError::Internal(e.to_string())
}

/// Maps a failed fill (other than "not found") to an answer.
pub(crate) fn fill_error(e: FillError) -> ApiError {
    match e {
        FillError::Storage(_) | FillError::Panicked => ApiError::Internal(e.to_string()),
        FillError::Upstream(UpstreamError::NotFound { message }) => ApiError::NotFound {
            reason: format!("not found: {message}"),
            max_age: std::time::Duration::ZERO,
        },
        other => ApiError::Unavailable(other.to_string()),
    }
}
