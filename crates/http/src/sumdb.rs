//! Checksum-database proxying: `/sumdb/<name>/supported` is 200 for each configured database
//! (`[[proxy.sumdb]]`) and 404 for any other. Lookups and tiles are verified by the checker
//! and kept for the whole cluster (served by every node, also once the database is
//! unreachable); `latest` is fetched from the database's URL with a short cache lifetime.

use std::collections::HashMap;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use goproxy_protocol::route::Route;

use goproxy_checksum::CheckError;
use goproxy_protocol::index::sumdb_key;
use goproxy_protocol::path::{unescape_path, unescape_version};
use goproxy_protocol::sumdb::SumdbPath;

use crate::answers::Answer;
use crate::artifacts::index_error;
use crate::error::ApiError;
use crate::frontend::{Frontend, Request};
use crate::index::Leadership;
use crate::routed::Source;
use crate::upstream::{Upstream, UpstreamList};

/// Lifetime of `supported` and `latest` (they change).
const SUMDB_MUTABLE: &str = "public, max-age=3600";
/// Lifetime of lookups and full tiles (they never change).
const SUMDB_IMMUTABLE: &str = "public, max-age=86400";

impl Frontend {
    pub(crate) async fn sumdb(
        &self,
        route: &Route,
        request: Request<'_>,
    ) -> Result<Response, ApiError> {
        let name = match route {
            Route::SumdbSupported { name } | Route::Sumdb { name, .. } => name,
            _ => return Err(ApiError::internal("not a checksum database route")),
        };
        let Some(source) = self.sumdbs.get(name.as_str()) else {
            let mut served: Vec<&str> = self.sumdbs.keys().map(String::as_str).collect();
            served.sort_unstable();
            return Err(ApiError::NotFound {
                reason: format!(
                    "checksum database {name} is not served here (served: {})",
                    if served.is_empty() {
                        "none".into()
                    } else {
                        served.join(", ")
                    }
                ),
                max_age: std::time::Duration::from_secs(3600),
            });
        };
        let path = match route {
            Route::Sumdb { path, .. } => path,
            _ => {
                return Ok(
                    (StatusCode::OK, [(header::CACHE_CONTROL, SUMDB_MUTABLE)], "").into_response(),
                )
            }
        };
        let (body, cache_control) = match path {
            SumdbPath::Latest => {
                if let Some(why) = request.offline {
                    return Err(ApiError::Unavailable(format!(
                        "the checksum database's latest tree is asked only when fetching is allowed: {why}"
                    )));
                }
                match self.answers.get(source, "latest", None).await {
                    Answer::Fresh(body) | Answer::Stale(body) => (body, SUMDB_MUTABLE),
                    Answer::NotFound(message) => return Err(self.not_found(message)),
                    Answer::Failed(e) => return Err(ApiError::Unavailable(e.to_string())),
                }
            }
            file => {
                let cache_control = if file.is_immutable() {
                    SUMDB_IMMUTABLE
                } else {
                    SUMDB_MUTABLE
                };
                match self.sumdb_file(name, file, request).await? {
                    Fetched::Here(body) => (body.into(), cache_control),
                    Fetched::Forwarded(response) => return Ok(response),
                }
            }
        };
        let content_type = "text/plain; charset=utf-8";
        Ok((
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, cache_control),
            ],
            body,
        )
            .into_response())
    }

    /// A lookup or tile: verified by the checker and kept for the cluster (a follower asks
    /// the leader for what the cluster does not hold yet, so one node talks to the database).
    async fn sumdb_file(
        &self,
        name: &str,
        path: &SumdbPath,
        request: Request<'_>,
    ) -> Result<Fetched, ApiError> {
        let raw = path.as_str();
        let key = sumdb_key(name, &raw);
        let cached = self.index.lookup(&key).map_err(index_error)?.is_some();
        if !cached {
            if let Some(why) = request.offline {
                return Err(ApiError::Unavailable(format!(
                    "sumdb/{name}/{raw} is not cached and {why}"
                )));
            }
            match self.current_leadership().await {
                Leadership::Remote(leader) if !request.forwarded => {
                    let path = format!("sumdb/{name}/{raw}");
                    return self
                        .forward_path(&leader, &path, "sumdb", request)
                        .await
                        .map(Fetched::Forwarded);
                }
                Leadership::Remote(leader) => {
                    return Err(ApiError::Unavailable(format!(
                        "sumdb/{name}/{raw}: forwarded here, but the leader is now {leader}; retry"
                    )))
                }
                // Without a leader nothing can be kept, but the database can still be read
                // through, verified (the go command verifies what it gets too).
                Leadership::Local | Leadership::Unknown => {}
            }
        }
        let fetched = match path {
            SumdbPath::Lookup(query) => {
                let (module, version) = query
                    .rsplit_once('@')
                    .and_then(|(m, v)| Some((unescape_path(m).ok()?, unescape_version(v).ok()?)))
                    .ok_or_else(|| ApiError::InvalidRequest(format!("bad lookup {query:?}")))?;
                let looked_up = self.checker.lookup(name, &module, &version).await;
                self.metrics
                    .sumdb_check(goproxy_checksum::Outcome::of(&looked_up).label());
                looked_up.map(|(_, body)| body)
            }
            _ => self.checker.tile(name, &raw).await,
        };
        match fetched {
            Ok(body) => Ok(Fetched::Here(body)),
            Err(CheckError::NotFound { reason, .. }) => Err(self.not_found(reason)),
            // The cluster cache failed: its reason may name local paths.
            Err(e @ CheckError::Cache(_)) => Err(ApiError::internal(e.to_string())),
            Err(e) => Err(ApiError::Unavailable(e.to_string())),
        }
    }
}

/// A checksum database file, fetched here or relayed from the leader.
enum Fetched {
    Here(Vec<u8>),
    Forwarded(Response),
}

/// One upstream client per configured database (its URL as a one-entry list).
pub(crate) fn sources(
    databases: &[goproxy_sumdb::Database],
    template: &Upstream,
) -> HashMap<String, Source> {
    databases
        .iter()
        .filter_map(|db| {
            let list = UpstreamList::parse(&db.url).ok()?;
            let source = Source {
                upstream: template.with_list(list),
                key: format!("sumdb/{}", db.name).into(),
                verify: None,
                direct: false,
            };
            Some((db.name.clone(), source))
        })
        .collect()
}
