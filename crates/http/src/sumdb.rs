//! Checksum-database proxying: `/sumdb/<name>/supported` is 200 for each configured database
//! (`[[proxy.sumdb]]`) and 404 for any other, and its endpoints are fetched from that
//! database's URL, so clients behind this proxy can verify `go.sum` through it.

use std::collections::HashMap;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use goproxy_protocol::route::Route;

use crate::answers::{Answer, MAX_ANSWER_SIZE};
use crate::error::ApiError;
use crate::frontend::{Frontend, Request};
use crate::routed::Source;
use crate::upstream::UpstreamError;
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
        if let Some(why) = request.offline {
            return Err(ApiError::Unavailable(format!(
                "checksum database requests are forwarded only when fetching is allowed: {why}"
            )));
        }
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
        if let Route::SumdbSupported { .. } = route {
            return Ok(
                (StatusCode::OK, [(header::CACHE_CONTROL, SUMDB_MUTABLE)], "").into_response(),
            );
        }
        // The path below the database's URL (`lookup/…`, `latest`, `tile/…`).
        let path = route.upstream_path();
        let path = path
            .strip_prefix(&format!("sumdb/{name}/"))
            .unwrap_or(&path)
            .to_string();
        let (body, cache_control) = match route {
            Route::Sumdb {
                path: sumdb_path, ..
            } if sumdb_path.is_immutable() => {
                let fetched = source.upstream.get(&path).await;
                let body = match fetched {
                    Ok(body) => body.bytes(MAX_ANSWER_SIZE).await,
                    Err(e) => Err(e),
                };
                match body {
                    Ok(body) => (body, SUMDB_IMMUTABLE),
                    Err(UpstreamError::NotFound { message }) => return Err(self.not_found(message)),
                    Err(e) => return Err(ApiError::Unavailable(e.to_string())),
                }
            }
            _ => match self.answers.get(source, &path, None).await {
                Answer::Fresh(body) | Answer::Stale(body) => (body, SUMDB_MUTABLE),
                Answer::NotFound(message) => return Err(self.not_found(message)),
                Answer::Failed(e) => return Err(ApiError::Unavailable(e.to_string())),
            },
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
                direct: false,
            };
            Some((db.name.clone(), source))
        })
        .collect()
}
