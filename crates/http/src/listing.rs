//! Mutable answers: `list` (upstream ∪ cached versions), `@latest`, and `.info` version
//! queries (branches, commits), which are forwarded and never cached as immutable.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use goproxy_protocol::index::{ArtifactKey, ArtifactKind};
use goproxy_protocol::path::{escape_path, escape_version};
use goproxy_protocol::{semver, version};

use crate::answers::Answer;
use crate::artifacts::index_error;
use crate::error::ApiError;
use crate::frontend::{Frontend, Request};
use crate::index::{CachedVersion, Leadership};
use crate::upstream::UpstreamError;

/// `Cache-Control` of fresh mutable answers.
const MUTABLE: &str = "public, max-age=60";
/// `Cache-Control` of answers assembled while the upstream fails.
const DEGRADED: &str = "no-cache";

#[derive(serde::Deserialize)]
struct VersionOnly {
    #[serde(rename = "Version")]
    version: String,
}

impl Frontend {
    /// `$module/@v/list`: the upstream's versions united with every cached version.
    pub(crate) async fn list(
        &self,
        module: &str,
        request: Request<'_>,
    ) -> Result<Response, ApiError> {
        let cached = self.index.cached_versions(module).map_err(index_error)?;
        let answer = if request.offline.is_some() {
            None
        } else {
            let path = format!("{}/@v/list", escape(module)?);
            Some(self.mutable_answer(request, &path).await?)
        };
        let (upstream, cache_control) = match answer {
            None => (None, DEGRADED),
            Some(Answer::Fresh(body)) => (Some(body), MUTABLE),
            Some(Answer::Stale(body)) => (Some(body), DEGRADED),
            Some(Answer::NotFound(reason)) if cached.is_empty() => {
                return Err(self.not_found(reason))
            }
            Some(Answer::NotFound(_)) => (None, MUTABLE),
            Some(Answer::Failed(e)) if cached.is_empty() => {
                return Err(ApiError::Unavailable(e.to_string()))
            }
            Some(Answer::Failed(_)) => (None, DEGRADED),
        };
        if let (None, true, Some(why)) = (&upstream, cached.is_empty(), request.offline) {
            return Err(ApiError::Unavailable(format!(
                "no cached versions of {module} and {why}"
            )));
        }
        let body = merge_list(upstream.as_deref(), &cached);
        Ok(text_response(
            body,
            "text/plain; charset=utf-8",
            cache_control,
        ))
    }

    /// `$module/@latest`: the upstream's answer, else the best cached version.
    pub(crate) async fn latest(
        &self,
        module: &str,
        request: Request<'_>,
    ) -> Result<Response, ApiError> {
        let answer = match request.offline {
            Some(why) => Answer::NotFound(why.to_string()),
            None => {
                let path = format!("{}/@latest", escape(module)?);
                self.mutable_answer(request, &path).await?
            }
        };
        match answer {
            Answer::Fresh(body) => self.checked_version_json(module, body, MUTABLE),
            Answer::Stale(body) => self.checked_version_json(module, body, DEGRADED),
            Answer::NotFound(reason) => match self.cached_latest(module, request).await? {
                Some(response) => Ok(response),
                None => Err(self.not_found(reason)),
            },
            Answer::Failed(e) => match self.cached_latest(module, request).await? {
                Some(response) => Ok(response),
                None => Err(ApiError::Unavailable(e.to_string())),
            },
        }
    }

    /// `.info` for a non-canonical query: forwarded with a short cache lifetime.
    pub(crate) async fn version_query(
        &self,
        module: &str,
        query: &str,
        request: Request<'_>,
    ) -> Result<Response, ApiError> {
        if let Some(why) = request.offline {
            return Err(ApiError::Unavailable(format!(
                "{module}@{query} is a version query and {why}"
            )));
        }
        let version = escape_version(query).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
        let path = format!("{}/@v/{version}.info", escape(module)?);
        match self.mutable_answer(request, &path).await? {
            Answer::Fresh(body) => self.checked_version_json(module, body, MUTABLE),
            Answer::Stale(body) => self.checked_version_json(module, body, DEGRADED),
            Answer::NotFound(reason) => Err(self.not_found(reason)),
            Answer::Failed(e) => Err(ApiError::Unavailable(e.to_string())),
        }
    }

    /// A mutable answer for upstream `path`. Routes that fetch from version control ask the
    /// leader when this node follows one: one node clones for the whole cluster.
    /// A follower never runs version control itself, whatever headers a request carries.
    /// An answer that must be asked for upstream (not fresh here) is charged to the client as a
    /// fill (its fill buckets, a slot of the concurrent-fill cap).
    async fn mutable_answer(&self, request: Request<'_>, path: &str) -> Result<Answer, ApiError> {
        let _permit = match self.answers.is_fresh(request.source, path) {
            true => None,
            false => self.access.admit_fill(request.who)?,
        };
        Ok(self.ask(request, path).await)
    }

    /// [`Frontend::mutable_answer`] once admitted.
    async fn ask(&self, request: Request<'_>, path: &str) -> Answer {
        if !request.source.direct {
            return self.answers.get(request.source, path, None).await;
        }
        match self.index.leadership() {
            Leadership::Local => self.answers.get(request.source, path, None).await,
            Leadership::Remote(leader) if !request.forwarded => {
                let via = Some(crate::answers::Leader {
                    client: self.forwarder.clone(),
                    url: format!("{}{}/{path}", self.peer_base(&leader), request.env_prefix()),
                    authorization: request
                        .headers
                        .get(axum::http::header::AUTHORIZATION)
                        .cloned(),
                    member_key: self.access.tokens.member_key(),
                });
                self.answers.get(request.source, path, via).await
            }
            Leadership::Remote(_) | Leadership::Unknown => Answer::Failed(UpstreamError::Failed {
                upstream: "direct".into(),
                detail:
                    "only the leader fetches from version control, and this node is not it; retry"
                        .into(),
            }),
        }
    }

    /// The cached `.info` of the highest cached release (else pre-release, else pseudo).
    async fn cached_latest(
        &self,
        module: &str,
        request: Request<'_>,
    ) -> Result<Option<Response>, ApiError> {
        let cached = self.index.cached_versions(module).map_err(index_error)?;
        let Some(best) = best_cached(&cached) else {
            return Ok(None);
        };
        let key = ArtifactKey {
            module: module.to_string(),
            version: best.to_string(),
            kind: ArtifactKind::Info,
        };
        let Some(entry) = self.index.lookup(&key).map_err(index_error)? else {
            return Ok(None);
        };
        let mut response = self.serve_entry(&entry, request).await?;
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(DEGRADED));
        Ok(Some(response))
    }

    /// Relays a `{"Version": …}` answer only if it names a valid version of `module`.
    fn checked_version_json(
        &self,
        module: &str,
        body: Bytes,
        cache_control: &'static str,
    ) -> Result<Response, ApiError> {
        let parsed: Result<VersionOnly, _> = serde_json::from_slice(&body);
        match parsed {
            Ok(info) if version::check_version(module, &info.version).is_ok() => {
                Ok(text_response(body, "application/json", cache_control))
            }
            _ => Err(ApiError::Unavailable(format!(
                "upstream returned an invalid version answer for {module}"
            ))),
        }
    }
}

fn escape(module: &str) -> Result<String, ApiError> {
    escape_path(module).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

fn text_response(
    body: impl Into<Bytes>,
    content_type: &'static str,
    cache_control: &'static str,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache_control),
        ],
        body.into(),
    )
        .into_response()
}

/// Unites an upstream `list` body with cached versions; pseudo-versions never appear.
/// Lines keep the upstream's optional time field; output is in semver order.
pub(crate) fn merge_list(upstream: Option<&[u8]>, cached: &[CachedVersion]) -> String {
    let mut lines: BTreeMap<String, String> = BTreeMap::new();
    let text = upstream.map(String::from_utf8_lossy).unwrap_or_default();
    for line in text.lines() {
        let Some(version) = line.split_whitespace().next() else {
            continue;
        };
        if semver::is_valid(version) && !semver::is_pseudo_version(version) {
            lines.insert(version.to_string(), line.trim().to_string());
        }
    }
    for cached in cached {
        if !semver::is_pseudo_version(&cached.version) {
            lines
                .entry(cached.version.clone())
                .or_insert_with(|| cached.version.clone());
        }
    }
    let mut ordered: Vec<(String, String)> = lines.into_iter().collect();
    ordered.sort_by(|(a, _), (b, _)| semver::compare(a, b));
    ordered.into_iter().map(|(_, line)| line + "\n").collect()
}

/// The go command's notion of "latest" over cached versions that have a cached `.info`.
pub(crate) fn best_cached(cached: &[CachedVersion]) -> Option<&str> {
    let rank = |v: &str| match (semver::is_pseudo_version(v), semver::is_prerelease(v)) {
        (true, _) => 0,
        (false, true) => 1,
        (false, false) => 2,
    };
    cached
        .iter()
        .filter(|c| c.has_info)
        .map(|c| c.version.as_str())
        .max_by(|a, b| match rank(a).cmp(&rank(b)) {
            Ordering::Equal => semver::compare(a, b),
            other => other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(version: &str, has_info: bool) -> CachedVersion {
        CachedVersion {
            version: version.into(),
            time: None,
            has_info,
        }
    }

    #[test]
    fn list_is_a_sorted_union_without_pseudo_versions() {
        let upstream = b"v1.1.0 2022-01-01T00:00:00Z\nv1.0.0\nnot-a-version\n";
        let cached = [
            cached("v1.2.0-beta.1", true),
            cached("v1.0.0", true),
            cached("v0.0.0-20220101000000-abcdefabcdef", true),
        ];
        assert_eq!(
            merge_list(Some(upstream), &cached),
            "v1.0.0\nv1.1.0 2022-01-01T00:00:00Z\nv1.2.0-beta.1\n"
        );
    }

    #[test]
    fn latest_prefers_releases_then_prereleases_then_pseudo() {
        let all = [
            cached("v1.2.0-beta.1", true),
            cached("v1.1.0", true),
            cached("v1.3.0", false),
            cached("v0.0.0-20220101000000-abcdefabcdef", true),
        ];
        assert_eq!(best_cached(&all), Some("v1.1.0"));
        assert_eq!(best_cached(&all[..1]), Some("v1.2.0-beta.1"));
        assert_eq!(
            best_cached(&all[2..]),
            Some("v0.0.0-20220101000000-abcdefabcdef")
        );
        assert_eq!(best_cached(&[]), None);
    }
}
