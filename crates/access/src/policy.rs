//! Roles, grants and the decision for one request.
//!
//! A request is allowed, or refused with 401 (no usable credentials: the client should send
//! some) or 403 (these credentials may not do this: the client must not fall back to another
//! proxy, which would leak a private path). Reasons say why without saying what exists.

use goproxy_routing::PathPatterns;
use serde::{Deserialize, Serialize};

use crate::credentials::Credentials;
use crate::token::{find_digest, TokenHash};

/// Longest token name.
pub const MAX_NAME: usize = 64;

/// What a token may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The GOPROXY protocol and the checksum-database endpoints, for its paths (a miss is
    /// filled, as for any client of a proxy).
    Read,
    /// Also submits prefetch (warm) jobs.
    Warm,
    /// Also the cluster, tokens, purges and blocks.
    Admin,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Warm => "warm",
            Role::Admin => "admin",
        })
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A GOPROXY or checksum-database request.
    Read,
    /// A prefetch job.
    Warm,
    /// An administrative action.
    Admin,
}

impl Action {
    fn needs(self) -> Role {
        match self {
            Action::Read => Role::Read,
            Action::Warm => Role::Warm,
            Action::Admin => Role::Admin,
        }
    }
}

/// What a client without credentials may do (`[auth] anonymous`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Anonymous {
    /// Read everything (a trusted network).
    #[default]
    Allow,
    /// Read paths no route marks private.
    PublicOnly,
    /// Nothing.
    Deny,
}

/// One token as the cluster stores it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Unique name (`ci`, `alice-laptop`).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Paths it may read (`go help private` syntax); none: every path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<String>,
    /// Paths it may not read even when allowed (matched as written, and ignoring ASCII case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<String>,
    /// Milliseconds since the Unix epoch after which it is refused; none: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// sha256 of the secret.
    pub hash: TokenHash,
    /// When it was made (milliseconds since the Unix epoch).
    pub created_at_ms: u64,
}

/// Why a grant is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The name is empty, too long or has other characters than `[a-z0-9._-]`.
    #[error("token name {0:?}: 1 to 64 of a-z 0-9 . _ -")]
    Name(String),
    /// A path pattern does not parse.
    #[error("token {name}: {which}: {reason}")]
    Pattern {
        /// Token name.
        name: String,
        /// `allow` or `deny`.
        which: &'static str,
        /// The pattern error.
        reason: String,
    },
    /// The stored hash is not a sha256.
    #[error("token {0}: the stored hash is not a sha256")]
    Hash(String),
    /// Two grants share a name.
    #[error("token name {0:?} is used twice")]
    Duplicate(String),
}

/// Checks a token name.
pub fn check_name(name: &str) -> Result<(), GrantError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(GrantError::Name(name.to_string()))
    }
}

struct Compiled {
    grant: Grant,
    allow: Option<PathPatterns>,
    deny: Option<PathPatterns>,
    /// `deny` lower-cased, matched against the lower-cased path: a case variant of a denied
    /// path is denied too.
    deny_lower: Option<PathPatterns>,
}

/// Every grant, compiled for [`decide`].
#[derive(Default)]
pub struct Grants {
    compiled: Vec<Compiled>,
    /// The stored hashes as bytes (decoded once here, not per request).
    digests: Vec<[u8; 32]>,
}

impl Grants {
    /// Compiles `grants`; a malformed one is an error (it never comes from a client).
    pub fn new(grants: Vec<Grant>) -> Result<Self, GrantError> {
        let mut out = Self::default();
        let mut names = std::collections::HashSet::new();
        for grant in grants {
            check_name(&grant.name)?;
            if !names.insert(grant.name.clone()) {
                return Err(GrantError::Duplicate(grant.name));
            }
            if !grant.hash.is_valid() {
                return Err(GrantError::Hash(grant.name));
            }
            let pattern = |which: &'static str, list: &Option<String>, lower: bool| {
                list.as_ref()
                    .map(|l| {
                        let l = if lower {
                            l.to_ascii_lowercase()
                        } else {
                            l.clone()
                        };
                        PathPatterns::parse(&l)
                    })
                    .transpose()
                    .map_err(|e| GrantError::Pattern {
                        name: grant.name.clone(),
                        which,
                        reason: e.to_string(),
                    })
            };
            let allow = pattern("allow", &grant.allow, false)?;
            let deny = pattern("deny", &grant.deny, false)?;
            let deny_lower = pattern("deny", &grant.deny, true)?;
            out.digests.push(
                grant
                    .hash
                    .digest()
                    .ok_or_else(|| GrantError::Hash(grant.name.clone()))?,
            );
            out.compiled.push(Compiled {
                grant,
                allow,
                deny,
                deny_lower,
            });
        }
        Ok(out)
    }

    /// The grant whose token is `secret`.
    pub fn find(&self, secret: &str) -> Option<&Grant> {
        find_digest(secret, &self.digests).map(|i| &self.compiled[i].grant)
    }

    /// The grants, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.compiled.iter().map(|c| &c.grant)
    }
}

/// One request, as access control sees it.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// What it needs.
    pub action: Action,
    /// The module path it names, if any.
    pub module: Option<&'a str>,
    /// Whether a route marks that path private.
    pub private: bool,
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the token's name (none: anonymous).
    Allow(Option<String>),
    /// 401: no usable credentials (with `WWW-Authenticate`).
    Unauthenticated(String),
    /// 403: these credentials may not do this.
    Forbidden(String),
}

/// Decides `request` from `credentials` (none: anonymous) at `now_ms`.
pub fn decide(
    grants: &Grants,
    anonymous: Anonymous,
    credentials: Option<&Credentials>,
    request: &AccessRequest<'_>,
    now_ms: u64,
) -> Decision {
    let Some(credentials) = credentials else {
        return match (anonymous, request.action) {
            (Anonymous::Allow, Action::Read) => Decision::Allow(None),
            (Anonymous::PublicOnly, Action::Read) if !request.private => Decision::Allow(None),
            (Anonymous::PublicOnly, Action::Read) => Decision::Unauthenticated(
                "this path needs a token (send it as the password in ~/.netrc, or as a Bearer token)"
                    .into(),
            ),
            _ => Decision::Unauthenticated(
                "this proxy needs a token (send it as the password in ~/.netrc, or as a Bearer token)"
                    .into(),
            ),
        };
    };
    let Some(index) = find_digest(&credentials.token, &grants.digests) else {
        return Decision::Unauthenticated("the token is not valid".into());
    };
    judge(&grants.compiled[index], request, now_ms)
}

/// Decides `request` for the token named `name`, as if its holder asked now: for work done
/// later on a token holder's behalf (a prefetch job runs on the leader after the request that
/// submitted it). A token revoked meanwhile is refused.
pub fn decide_named(
    grants: &Grants,
    name: &str,
    request: &AccessRequest<'_>,
    now_ms: u64,
) -> Decision {
    match grants.compiled.iter().find(|c| c.grant.name == name) {
        Some(compiled) => judge(compiled, request, now_ms),
        None => Decision::Unauthenticated(format!("token {name} is no longer valid")),
    }
}

fn judge(compiled: &Compiled, request: &AccessRequest<'_>, now_ms: u64) -> Decision {
    let grant = &compiled.grant;
    if grant.expires_at_ms.is_some_and(|at| now_ms >= at) {
        return Decision::Unauthenticated(format!("token {} has expired", grant.name));
    }
    if grant.role < request.action.needs() {
        return Decision::Forbidden(format!(
            "token {} has role {}; this needs {}",
            grant.name,
            grant.role,
            request.action.needs()
        ));
    }
    if let Some(module) = request.module {
        let allowed = compiled.allow.as_ref().is_none_or(|p| p.matches(module));
        // As written, or ignoring ASCII case: lower-casing only the pattern would change
        // what a character class like `[^A-Z]` means.
        let denied = compiled.deny.as_ref().is_some_and(|p| p.matches(module))
            || compiled
                .deny_lower
                .as_ref()
                .is_some_and(|p| p.matches(&module.to_ascii_lowercase()));
        if !allowed || denied {
            return Decision::Forbidden(format!("token {} may not read this path", grant.name));
        }
    }
    Decision::Allow(Some(grant.name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::generate;

    fn grant(name: &str, role: Role, allow: Option<&str>, deny: Option<&str>) -> (Grant, String) {
        let token = generate();
        (
            Grant {
                name: name.into(),
                role,
                allow: allow.map(String::from),
                deny: deny.map(String::from),
                expires_at_ms: None,
                hash: token.hash,
                created_at_ms: 1,
            },
            token.secret,
        )
    }

    fn creds(secret: &str) -> Credentials {
        Credentials {
            token: secret.to_string(),
        }
    }

    fn read(module: &str, private: bool) -> AccessRequest<'_> {
        AccessRequest {
            action: Action::Read,
            module: Some(module),
            private,
        }
    }

    #[test]
    fn tokens_read_their_paths_roles_nest_and_anonymous_follows_the_policy() {
        let (ci, ci_secret) = grant(
            "ci",
            Role::Read,
            Some("corp.example/*"),
            Some("corp.example/Secret"),
        );
        let (ops, ops_secret) = grant("ops", Role::Admin, None, None);
        let (mut old, old_secret) = grant("old", Role::Warm, None, None);
        old.expires_at_ms = Some(100);
        let grants = Grants::new(vec![ci, ops, old]).unwrap();
        let now = 150;
        let ask =
            |c: Option<&Credentials>, r: &AccessRequest<'_>, anon| decide(&grants, anon, c, r, now);

        let ci = creds(&ci_secret);
        assert_eq!(
            ask(
                Some(&ci),
                &read("corp.example/team/lib", true),
                Anonymous::Deny
            ),
            Decision::Allow(Some("ci".into()))
        );
        // Outside its paths, or denied (ignoring case): 403, saying nothing of the path.
        for path in [
            "other.example/x",
            "corp.example/secret/x",
            "corp.example/SECRET/y",
        ] {
            match ask(Some(&ci), &read(path, true), Anonymous::Deny) {
                Decision::Forbidden(why) => {
                    assert_eq!(why, "token ci may not read this path");
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        let warm = AccessRequest {
            action: Action::Warm,
            module: None,
            private: false,
        };
        assert!(matches!(
            ask(Some(&ci), &warm, Anonymous::Allow),
            Decision::Forbidden(_)
        ));
        let admin = AccessRequest {
            action: Action::Admin,
            ..warm
        };
        assert_eq!(
            ask(Some(&creds(&ops_secret)), &admin, Anonymous::Deny),
            Decision::Allow(Some("ops".into()))
        );
        // Requests naming no module (checksum-database tiles) need only the role.
        let tiles = AccessRequest {
            module: None,
            ..read("", false)
        };
        assert_eq!(
            ask(Some(&ci), &tiles, Anonymous::Deny),
            Decision::Allow(Some("ci".into()))
        );

        // Unknown and expired tokens: 401, whatever the anonymous policy.
        for (secret, why) in [
            ("gpha_wrong", "the token is not valid"),
            (old_secret.as_str(), "token old has expired"),
        ] {
            assert_eq!(
                ask(
                    Some(&creds(secret)),
                    &read("x.example/m", false),
                    Anonymous::Allow
                ),
                Decision::Unauthenticated(why.into())
            );
        }
        let fresh = decide(
            &grants,
            Anonymous::Deny,
            Some(&creds(&old_secret)),
            &warm,
            99,
        );
        assert_eq!(fresh, Decision::Allow(Some("old".into())));

        // Anonymous.
        assert_eq!(
            ask(None, &read("x.example/m", true), Anonymous::Allow),
            Decision::Allow(None)
        );
        assert_eq!(
            ask(None, &read("x.example/m", false), Anonymous::PublicOnly),
            Decision::Allow(None)
        );
        assert!(matches!(
            ask(None, &read("corp.example/m", true), Anonymous::PublicOnly),
            Decision::Unauthenticated(_)
        ));
        assert!(matches!(
            ask(None, &read("x.example/m", false), Anonymous::Deny),
            Decision::Unauthenticated(_)
        ));
        assert!(matches!(
            ask(None, &warm, Anonymous::Allow),
            Decision::Unauthenticated(_)
        ));
    }

    #[test]
    fn malformed_grants_are_refused() {
        let (good, _) = grant("ci", Role::Read, None, None);
        let bad_name = Grant {
            name: "CI!".into(),
            ..good.clone()
        };
        assert!(matches!(
            Grants::new(vec![bad_name]),
            Err(GrantError::Name(_))
        ));
        let twice = vec![good.clone(), good.clone()];
        assert!(matches!(Grants::new(twice), Err(GrantError::Duplicate(_))));
        let bad_glob = Grant {
            allow: Some("[x".into()),
            ..good.clone()
        };
        assert!(matches!(
            Grants::new(vec![bad_glob]),
            Err(GrantError::Pattern { which: "allow", .. })
        ));
        let bad_hash = Grant {
            hash: TokenHash("nope".into()),
            ..good.clone()
        };
        assert!(matches!(
            Grants::new(vec![bad_hash]),
            Err(GrantError::Hash(_))
        ));
        // The stored form round-trips and holds no secret.
        let json = serde_json::to_string(&good).unwrap();
        assert_eq!(serde_json::from_str::<Grant>(&json).unwrap(), good);
        assert!(json.contains("\"role\":\"read\""), "{json}");
        assert_eq!(
            serde_json::from_str::<Anonymous>("\"public-only\"").unwrap(),
            Anonymous::PublicOnly
        );
    }

    /// A deny pattern with a character class keeps its meaning (it was once matched only
    /// lower-cased, turning `[^A-Z]` into `[^a-z]`), and case variants are still denied.
    #[test]
    fn deny_patterns_match_as_written_and_ignoring_case() {
        let (g, secret) = grant(
            "t",
            Role::Read,
            None,
            Some("corp.example/[^A-Z]*,secret.example"),
        );
        let grants = Grants::new(vec![g]).unwrap();
        let creds = creds(&secret);
        let ask = |module: &str| {
            decide(
                &grants,
                Anonymous::Deny,
                Some(&creds),
                &read(module, false),
                0,
            )
        };
        assert!(matches!(ask("corp.example/lower"), Decision::Forbidden(_)));
        assert!(matches!(ask("corp.example/Upper"), Decision::Allow(_)));
        assert!(matches!(ask("SECRET.example/x"), Decision::Forbidden(_)));
        assert!(matches!(ask("public.example/x"), Decision::Allow(_)));
    }

    #[test]
    fn a_named_token_is_judged_like_its_holder_and_a_revoked_one_is_refused() {
        let (warm, _) = grant("ci-warm", Role::Warm, Some("example.com/hello"), None);
        let (reader, _) = grant("reader", Role::Read, None, None);
        let grants = Grants::new(vec![warm, reader]).unwrap();
        let ask = |name: &str, module: &str| decide_named(&grants, name, &read(module, false), 2);
        assert_eq!(
            ask("ci-warm", "example.com/hello"),
            Decision::Allow(Some("ci-warm".into()))
        );
        assert!(matches!(
            ask("ci-warm", "golang.org/x/text"),
            Decision::Forbidden(_)
        ));
        assert!(matches!(
            ask("gone", "example.com/hello"),
            Decision::Unauthenticated(_)
        ));
        let warm_job = AccessRequest {
            action: Action::Warm,
            module: Some("example.com/x"),
            private: false,
        };
        assert!(matches!(
            decide_named(&grants, "reader", &warm_job, 2),
            Decision::Forbidden(_)
        ));
    }
}
