//! Client access control, as pure functions (the node replicates the grants through Raft
//! and asks [`decide`] for every request).
//!
//! - [`credentials`]: what a client presents in `Authorization`: HTTP Basic (what the go
//!   command sends from `~/.netrc`; the password is the token) or `Bearer` (GOAUTH), bounded
//!   and validated.
//! - [`token`]: tokens: random (192 bits), shown once, stored only as a sha256, found by
//!   comparing hashes in constant time.
//! - [`policy`]: roles (`read` ⊂ `warm` ⊂ `admin`), grants (a token's name, role, allowed
//!   and denied paths in the `go help private` syntax, expiry), the anonymous policy, and
//!   [`decide`]: allowed, 401 (who are you) or 403 (not you, not this), with a reason that
//!   reveals nothing about what exists.
//! - [`limits`]: rate limits per token and per client address (an IPv6 client by its /64),
//!   separately for every request and for those that fetch from upstream, plus a global cap
//!   on concurrent upstream fetches; over a limit, how long the client should wait (429,
//!   `Retry-After`). Reloadable.
#![forbid(unsafe_code)]

pub mod credentials;
pub mod limits;
pub mod policy;
pub mod token;

pub use credentials::{Credentials, CredentialsError};
pub use limits::{FillPermit, Limiter, Limits, LimitsConfig, Rate, RetryAfter};
pub use policy::{
    decide, decide_named, AccessRequest, Action, Anonymous, Decision, Grant, GrantError, Grants,
    Role,
};
pub use token::{NewToken, TokenHash};
