//! Routing for goproxy-ha: which upstream (a proxy list, `direct` version control, or a
//! refusal) serves a module path, in which environment.
//!
//! Everything here is pure: the node compiles its configuration into a [`RouteTable`] once,
//! the front end asks it per request, and `goproxy-ha route explain` prints the same
//! [`Decision`] the front end acts on.
//!
//! # Layout
//! - [`glob`]: the `go help private` pattern syntax (GOPRIVATE), as `path.Match` prefixes.
//! - [`list`]: the GOPROXY list syntax (`,` and `|` fallbacks, `direct`, `off`) and the
//!   redaction of credentials in upstream URLs.
//! - [`table`]: ordered `[[route]]` rules, named environments (`/env/NAME/`, `cache-only`),
//!   first match wins, the proxy's upstream as the default route.
#![forbid(unsafe_code)]

pub mod glob;
pub mod list;
pub mod table;

pub use glob::{Glob, PathPatterns, PatternError};
pub use list::{redact, redact_list, Fallback, UpstreamEntry, UpstreamList, UpstreamListError};
pub use table::{
    Action, Decision, EnvError, EnvSpec, Mode, RouteSpec, RouteTable, RuleRef, DEFAULT_ENVIRONMENT,
    ENV_PREFIX,
};
