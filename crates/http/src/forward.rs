//! Forwarding a miss from a follower to the leader. The leader does the one
//! single-flight upstream fill for the whole cluster; the follower relays its answer.

use axum::body::Body;
use axum::http::{header, HeaderName, StatusCode};
use axum::response::Response;
use goproxy_protocol::index::ArtifactKey;

use crate::error::ApiError;
use crate::fill::{kind_label, upstream_path};
use crate::frontend::{Frontend, Request};

/// Marks a request a follower forwarded; the receiver never forwards it again.
pub const FORWARDED: &str = "x-goproxy-ha-forwarded";
/// Request headers relayed to the leader (which authenticates the client again: it trusts
/// no follower's word about who asked).
const RELAYED_REQUEST: [HeaderName; 4] = [
    header::IF_NONE_MATCH,
    header::RANGE,
    header::IF_RANGE,
    header::AUTHORIZATION,
];
/// Response headers not relayed back (hop-by-hop).
const HOP_BY_HOP: [HeaderName; 3] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

impl Frontend {
    /// The base URL of a member's client listener at `addr` (`host:port`): members serve
    /// HTTPS when this node does.
    pub(crate) fn peer_base(&self, addr: &str) -> String {
        match self.config.peer_https {
            Some(_) => format!("https://{addr}"),
            None => format!("http://{addr}"),
        }
    }

    /// Relays the request for `key` to the leader at `leader` (its HTTP `host:port`).
    pub(crate) async fn forward(
        &self,
        leader: &str,
        key: &ArtifactKey,
        request: Request<'_>,
    ) -> Result<Response, ApiError> {
        let path = upstream_path(key).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
        self.forward_path(leader, &path, kind_label(key.kind), request)
            .await
    }

    /// Relays the request for `path` (below the environment's prefix) to the leader;
    /// `kind` labels the metric.
    pub(crate) async fn forward_path(
        &self,
        leader: &str,
        path: &str,
        kind: &'static str,
        request: Request<'_>,
    ) -> Result<Response, ApiError> {
        // The leader routes it again: same environment, so the same rule and upstream.
        let url = format!("{}{}/{path}", self.peer_base(leader), request.env_prefix());
        let method = if request.head {
            reqwest::Method::HEAD
        } else {
            reqwest::Method::GET
        };
        let mut outgoing = self.forwarder.request(method, &url).header(FORWARDED, "1");
        if let Some(key) = self.access.tokens.member_key() {
            outgoing = outgoing.header(crate::access::MEMBER, key.as_ref());
        }
        for name in RELAYED_REQUEST {
            if let Some(value) = request.headers.get(&name) {
                outgoing = outgoing.header(name, value);
            }
        }
        let answer = outgoing.send().await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                self.metrics.forwarded(kind, false);
                return Err(ApiError::Unavailable(format!(
                    "forwarding {path} to the leader at {leader}: {e}"
                )));
            }
        };
        self.metrics.forwarded(kind, answer.status().is_success());
        let status =
            StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut response = Response::builder().status(status);
        for (name, value) in answer.headers() {
            if !HOP_BY_HOP.contains(name) {
                response = response.header(name, value);
            }
        }
        response
            .body(Body::from_stream(answer.bytes_stream()))
            .map_err(|e| ApiError::internal(format!("relaying the leader's answer: {e}")))
    }
}
