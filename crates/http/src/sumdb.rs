//! Checksum-database proxying: `/sumdb/<name>/supported` and the sumdb endpoints are
//! forwarded to the upstream chain, so clients behind this proxy can verify `go.sum`.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use goproxy_protocol::route::Route;

use crate::answers::{Answer, MAX_ANSWER_SIZE};
use crate::error::ApiError;
use crate::frontend::{Frontend, Request};
use crate::upstream::UpstreamError;

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
        let path = route.upstream_path();
        let (body, cache_control) = match route {
            Route::Sumdb {
                path: sumdb_path, ..
            } if sumdb_path.is_immutable() => {
                let fetched = request.source.upstream.get(&path).await;
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
            _ => match self.answers.get(request.source, &path, None).await {
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
