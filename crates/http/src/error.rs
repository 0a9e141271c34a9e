//! The one place where errors become HTTP responses.
//!
//! The go command treats only 404 and 410 as "not here, try the next proxy"; any other
//! status stops a build that lists us before a fallback. So everything that means "this
//! proxy cannot give you that now" is a 404 with a text/plain reason, and only answers
//! that may be remembered carry a cacheable `Cache-Control`.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The request path is not a valid GOPROXY request.
    #[error("{0}")]
    InvalidRequest(String),
    /// Definitely not found; may be cached by clients for `max_age`.
    #[error("{reason}")]
    NotFound {
        /// Human-readable reason, printed by the go command.
        reason: String,
        /// How long clients may remember the answer.
        max_age: Duration,
    },
    /// Not available right now (upstream trouble, cache-only request, cluster state).
    #[error("{0}")]
    Unavailable(String),
    /// This proxy failed internally (storage); still a 404 so clients fall back. Only
    /// `public` reaches the client: `detail` (which may name local paths) is logged.
    #[error("{public}")]
    Internal {
        /// What the client is told.
        public: &'static str,
        /// What happened, for the log.
        detail: String,
    },
    /// The proxy's routing rules refuse this module (`deny = true`): a 403, so the go
    /// command stops instead of trying the next proxy.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// An operator's block rule refuses this module or version: a 403 on every node, so the
    /// go command stops here instead of fetching it elsewhere.
    #[error("blocked by this proxy's operators ({rule}): {reason}")]
    Blocked {
        /// The rule, `MODULE` or `MODULE@RANGE`.
        rule: String,
        /// Why, as the operator wrote it.
        reason: String,
    },
    /// No usable credentials (missing, malformed, unknown, expired): a 401 with
    /// `WWW-Authenticate`, so the go command says that this proxy wants a token.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A rate limit: a 429 with `Retry-After`.
    #[error("too many requests: {reason}; retry in {retry_after} s")]
    TooManyRequests {
        /// Which limit.
        reason: String,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// An operator's request that cannot be done as asked (a prefetch job's input): 400.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The cluster refused an operator's action (a job that is already finished, a name
    /// taken): 409.
    #[error("refused: {0}")]
    Refused(String),
    /// An operator's request that cannot be done right now (no leader, no quorum): 503.
    #[error("unavailable: {0}")]
    ServiceUnavailable(String),
    /// Only GET and HEAD exist.
    #[error("method not allowed: the GOPROXY protocol uses only GET and HEAD")]
    MethodNotAllowed,
    /// A `Range` outside the artifact.
    #[error("requested range not satisfiable")]
    RangeNotSatisfiable {
        /// Artifact size, for `Content-Range: bytes */size`.
        size: u64,
    },
}

impl ApiError {
    /// An internal failure: the client learns only that this node failed and where to look.
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError::Internal {
            public:
                "internal error on this node (details are in its log); retry, or use another proxy",
            detail: detail.into(),
        }
    }

    /// This node's disk is full.
    pub fn disk_full(detail: impl Into<String>) -> Self {
        ApiError::Internal {
            public: "this node's disk is full: it cannot store new artifacts until space is freed",
            detail: detail.into(),
        }
    }
}

/// What a 401 asks for: the go command sends Basic credentials from `~/.netrc` (the password
/// is the token), GOAUTH helpers a Bearer token.
const CHALLENGES: [&str; 2] = [
    "Basic realm=\"goproxy-ha\", charset=\"UTF-8\"",
    "Bearer realm=\"goproxy-ha\"",
];

impl ApiError {
    /// How the audit trail files this refusal or failure.
    pub fn outcome(&self) -> goproxy_audit::Outcome {
        use goproxy_audit::Outcome;
        match self {
            ApiError::Unauthorized(_)
            | ApiError::Forbidden(_)
            | ApiError::TooManyRequests { .. } => Outcome::Denied,
            ApiError::Blocked { .. } => Outcome::Blocked,
            ApiError::Unavailable(_) | ApiError::Internal { .. } => Outcome::Error,
            _ => Outcome::Other,
        }
    }
}

/// How long an invalid request path may be remembered: it stays invalid.
const INVALID_REQUEST_MAX_AGE: Duration = Duration::from_secs(3600);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, cache_control) = match &self {
            ApiError::InvalidRequest(_) => {
                (StatusCode::NOT_FOUND, max_age(INVALID_REQUEST_MAX_AGE))
            }
            ApiError::NotFound { max_age: age, .. } => (StatusCode::NOT_FOUND, max_age(*age)),
            ApiError::Unavailable(reason) => {
                tracing::warn!(%reason, "answering 404: unavailable");
                (StatusCode::NOT_FOUND, "no-store".to_string())
            }
            ApiError::Internal { detail, .. } => {
                tracing::error!(reason = %detail, "answering 404: internal failure");
                (StatusCode::NOT_FOUND, "no-store".to_string())
            }
            ApiError::Forbidden(_) | ApiError::Blocked { .. } => {
                (StatusCode::FORBIDDEN, "no-store".into())
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "no-store".into()),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "no-store".into()),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "no-store".into()),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "no-store".into()),
            ApiError::Refused(_) => (StatusCode::CONFLICT, "no-store".into()),
            ApiError::ServiceUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "no-store".into()),
            ApiError::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "no-store".into())
            }
        };
        let mut response = (status, format!("{self}\n")).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Ok(value) = HeaderValue::from_str(&cache_control) {
            headers.insert(header::CACHE_CONTROL, value);
        }
        match self {
            ApiError::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            ApiError::Unauthorized(_) => {
                for scheme in CHALLENGES {
                    headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
                }
            }
            ApiError::TooManyRequests { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            ApiError::RangeNotSatisfiable { size } => {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
            }
            _ => {}
        }
        response
    }
}

fn max_age(age: Duration) -> String {
    format!("public, max-age={}", age.as_secs())
}
