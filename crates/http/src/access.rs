//! The front door: who is asking (a token from `Authorization`, or nobody), whether they may
//! (`goproxy-access`'s decision: 401, 403 or allowed), and whether they are within their
//! rate limits (429 with `Retry-After`).
//!
//! Access is decided before routing answers anything, so a refused client learns nothing
//! about which paths, environments or rules exist. A 403 is never a 404: the go command
//! would take a 404 as "try the next proxy" and send the private path there.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use goproxy_access::limits::{FillPermit, Limits, LimitsConfig, RetryAfter};
use goproxy_access::{decide, AccessRequest, Action, Anonymous, Credentials, Decision, Grants};
use goproxy_protocol::route::Route;

use crate::error::ApiError;

/// The header by which a member proves a request comes from a member (a forwarded miss, a
/// statistics query): the key derived from the members' shared secret.
pub const MEMBER: &str = "x-goproxy-ha-member";

/// Where the front end finds the tokens in force (the node: the replicated state).
pub trait TokenSource: Send + Sync + 'static {
    /// The grants in force now; cheap (a shared, compiled copy renewed when tokens change).
    fn grants(&self) -> Arc<Grants>;
    /// What members send in [`MEMBER`], once the cluster has its shared secret.
    fn member_key(&self) -> Option<Arc<str>>;
}

/// No tokens, no members: every token is unknown.
pub struct NoTokens;

impl TokenSource for NoTokens {
    fn grants(&self) -> Arc<Grants> {
        Arc::new(Grants::default())
    }

    fn member_key(&self) -> Option<Arc<str>> {
        None
    }
}

/// Access control, rate limits and the audit trail of one front end.
pub struct Access {
    /// What clients without credentials may do.
    pub anonymous: Anonymous,
    /// The tokens in force.
    pub tokens: Arc<dyn TokenSource>,
    /// Rate limits (reloadable).
    pub limits: Arc<Limits>,
    /// Zips served to clients, per module version (`/stats`).
    pub downloads: Arc<goproxy_audit::downloads::Downloads>,
    /// The operators' block rules, and where served versions are noted for eviction.
    pub policy: Arc<dyn crate::operate::CachePolicy>,
}

impl Access {
    /// Everything allowed, nothing limited or recorded (a trusted network).
    pub fn open() -> Self {
        Self {
            anonymous: Anonymous::Allow,
            tokens: Arc::new(NoTokens),
            limits: Arc::new(Limits::new(&LimitsConfig::default())),
            downloads: Arc::new(goproxy_audit::downloads::Downloads::new(0)),
            policy: Arc::new(crate::operate::NoPolicy),
        }
    }
}

/// Who one request comes from, once admitted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Who {
    /// The token's name; none: anonymous.
    pub token: Option<String>,
    /// The connection's address (none: not known, e.g. in-process tests).
    pub address: Option<IpAddr>,
    /// Whether per-client limits apply (not to a miss a member forwarded).
    pub limited: bool,
}

/// The module a request names, for access decisions: a checksum lookup names one too.
pub(crate) fn named_module(route: &Route) -> Option<std::borrow::Cow<'_, str>> {
    match route.module() {
        Some(module) => Some(std::borrow::Cow::Borrowed(module)),
        None => crate::routed::looked_up(route).map(std::borrow::Cow::Owned),
    }
}

impl Access {
    /// Whether `headers` carry this cluster's member key.
    pub fn from_member(&self, headers: &HeaderMap) -> bool {
        match (self.tokens.member_key(), headers.get(MEMBER)) {
            (Some(key), Some(sent)) => {
                goproxy_access::token::same_secret(key.as_bytes(), sent.as_bytes())
            }
            _ => false,
        }
    }

    /// Admits an operator's request (`/cluster/status`, `/metrics`, `/stats`): open when
    /// anonymous clients may read and none is presented, otherwise an admin token (or a
    /// member) is needed.
    pub fn admit_operator(
        &self,
        headers: &HeaderMap,
        address: Option<IpAddr>,
    ) -> Result<Option<String>, ApiError> {
        self.admit_action(headers, address, Action::Admin)
    }

    /// Admits a request for `action` outside the GOPROXY protocol (operators' endpoints,
    /// prefetch jobs): `Ok(token name)`, `Ok(None)` for a member or an open proxy.
    pub fn admit_action(
        &self,
        headers: &HeaderMap,
        address: Option<IpAddr>,
        action: Action,
    ) -> Result<Option<String>, ApiError> {
        if self.from_member(headers) {
            return Ok(None);
        }
        if let Some(ip) = address {
            self.limits.check_hit_address(ip).map_err(too_many)?;
        }
        let credentials = match headers.get(header::AUTHORIZATION) {
            None if self.anonymous == Anonymous::Allow => return Ok(None),
            None => None,
            Some(value) => Some(
                Credentials::parse(value.as_bytes())
                    .map_err(|e| ApiError::Unauthorized(e.to_string()))?,
            ),
        };
        let request = AccessRequest {
            action,
            module: None,
            private: false,
        };
        match decide(
            &self.tokens.grants(),
            self.anonymous,
            credentials.as_ref(),
            &request,
            now_ms(),
        ) {
            Decision::Allow(token) => Ok(token),
            Decision::Unauthenticated(why) => Err(ApiError::Unauthorized(why)),
            Decision::Forbidden(why) => Err(ApiError::Forbidden(why)),
        }
    }

    /// Admits a request naming `module` ([`named_module`] of its route; none: a path that
    /// is not a GOPROXY request, or names no module); `private` says whether a route marks
    /// the module private.
    pub(crate) fn admit(
        &self,
        headers: &HeaderMap,
        address: Option<IpAddr>,
        forwarded: bool,
        module: Option<&str>,
        private: impl FnOnce(&str) -> bool,
    ) -> Result<Who, ApiError> {
        // A miss a member forwards was limited where the client connected.
        let limited = !(forwarded && self.from_member(headers));
        // The address pays before anything is checked: refused requests (bad tokens,
        // probing for paths) are limited like any other.
        if let (true, Some(ip)) = (limited, address) {
            self.limits.check_hit_address(ip).map_err(too_many)?;
        }
        let credentials = match headers.get(header::AUTHORIZATION) {
            None => None,
            Some(value) => Some(
                Credentials::parse(value.as_bytes())
                    .map_err(|e| ApiError::Unauthorized(e.to_string()))?,
            ),
        };
        let request = AccessRequest {
            action: Action::Read,
            module,
            // Only an anonymous client of a public-only proxy needs to know (one more route
            // decision per request otherwise).
            private: credentials.is_none()
                && self.anonymous == Anonymous::PublicOnly
                && module.is_some_and(private),
        };
        let grants = self.tokens.grants();
        let token = match decide(
            &grants,
            self.anonymous,
            credentials.as_ref(),
            &request,
            now_ms(),
        ) {
            Decision::Allow(token) => token,
            Decision::Unauthenticated(why) => return Err(ApiError::Unauthorized(why)),
            Decision::Forbidden(why) => return Err(ApiError::Forbidden(why)),
        };
        if let (true, Some(name)) = (limited, &token) {
            self.limits.check_hit_token(name).map_err(too_many)?;
        }
        Ok(Who {
            token,
            address,
            limited,
        })
    }

    /// Admits a fill (work upstream) for `who`: its fill buckets and a slot of the global
    /// cap on concurrent fills, held by the permit until the fill is done.
    pub(crate) fn admit_fill(&self, who: &Who) -> Result<Option<FillPermit>, ApiError> {
        match (who.limited, who.address) {
            (true, Some(ip)) => self
                .limits
                .check_fill(who.token.as_deref(), ip)
                .map(Some)
                .map_err(too_many),
            // A forwarded miss was charged where it entered; it still takes a slot here.
            _ => self.limits.fill_slot().map(Some).map_err(too_many),
        }
    }
}

fn too_many(limit: RetryAfter) -> ApiError {
    ApiError::TooManyRequests {
        reason: format!("over this proxy's limit of {}", limit.limit),
        retry_after: limit.seconds(),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
