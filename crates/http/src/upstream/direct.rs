//! `direct` entries of an upstream list: answered by a version control fetcher the node
//! plugs in (`goproxy-vcs` behind an adapter), never by HTTP.

use bytes::Bytes;
use goproxy_protocol::route::{self, Route, VersionQuery};

use super::UpstreamError;

/// What a `direct` entry is asked (module paths and versions decoded and validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectRequest<'a> {
    /// `@v/list`: the tagged versions.
    List {
        /// Module path.
        module: &'a str,
    },
    /// `@latest`.
    Latest {
        /// Module path.
        module: &'a str,
    },
    /// `@v/QUERY.info` for a non-canonical query (a branch, a commit).
    Query {
        /// Module path.
        module: &'a str,
        /// The query.
        query: &'a str,
    },
    /// `@v/VERSION.info`.
    Info {
        /// Module path.
        module: &'a str,
        /// Canonical version.
        version: &'a str,
    },
    /// `@v/VERSION.mod`.
    Mod {
        /// Module path.
        module: &'a str,
        /// Canonical version.
        version: &'a str,
    },
    /// `@v/VERSION.zip`.
    Zip {
        /// Module path.
        module: &'a str,
        /// Canonical version.
        version: &'a str,
    },
}

/// A `direct` answer's body.
#[derive(Debug)]
pub enum DirectBody {
    /// Small answers (lists, `.info`, `.mod`).
    Bytes(Bytes),
    /// A zip, already unlinked from the fetcher's workspace.
    File(tokio::fs::File),
}

/// Why a `direct` entry has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectError {
    /// It does not exist (may be remembered).
    #[error("{0}")]
    NotFound(String),
    /// Anything else: authentication, a hostile repository, a timeout, a host down.
    #[error("{0}")]
    Failed(String),
}

/// Fetches from version control.
#[async_trait::async_trait]
pub trait DirectSource: Send + Sync + 'static {
    /// Answers `request` with the named credential set (none: anonymous).
    async fn fetch(
        &self,
        request: DirectRequest<'_>,
        credentials: Option<&str>,
    ) -> Result<DirectBody, DirectError>;

    /// `Err(reason)` while this node cannot fetch from version control (no go or git).
    fn readiness(&self) -> Result<(), String>;
}

/// The request an upstream `path` (escaped, no leading slash) stands for.
pub(crate) fn request_of(route: &Route) -> Result<DirectRequest<'_>, UpstreamError> {
    Ok(match route {
        Route::List { module } => DirectRequest::List { module },
        Route::Latest { module } => DirectRequest::Latest { module },
        Route::Info {
            module,
            version: VersionQuery::Canonical(version),
        } => DirectRequest::Info { module, version },
        Route::Info {
            module,
            version: VersionQuery::Query(query),
        } => DirectRequest::Query { module, query },
        Route::Mod { module, version } => DirectRequest::Mod { module, version },
        Route::Zip { module, version } => DirectRequest::Zip { module, version },
        Route::SumdbSupported { .. } | Route::Sumdb { .. } => {
            return Err(UpstreamError::NotFound {
                message: "direct does not serve checksum databases".into(),
            })
        }
    })
}

/// Parses an upstream path back into its route.
pub(crate) fn parse(path: &str) -> Result<Route, UpstreamError> {
    route::parse(&format!("/{path}")).map_err(|e| UpstreamError::NotFound {
        message: e.to_string(),
    })
}

impl From<DirectError> for UpstreamError {
    fn from(e: DirectError) -> Self {
        match e {
            DirectError::NotFound(message) => UpstreamError::NotFound { message },
            DirectError::Failed(detail) => UpstreamError::Failed {
                upstream: "direct".into(),
                detail,
            },
        }
    }
}
