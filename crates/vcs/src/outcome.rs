//! What a failed `go` run means for the client, in words it may see: local paths and
//! secrets removed, the first lines of the go command's explanation kept.

use std::time::Duration;

use crate::secret::Redactor;

/// Longest explanation relayed to a client.
const MAX_MESSAGE: usize = 600;

/// Why a version control operation gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VcsError {
    /// The module, version or revision does not exist (may be remembered as "not found").
    #[error("{0}")]
    NotFound(String),
    /// The host refused our credentials (a configuration problem, not an answer).
    #[error("{0}")]
    Auth(String),
    /// The repository holds something a module must not (reason given); nothing is cached.
    #[error("{0}")]
    Refused(String),
    /// The host could not be reached or failed (transient).
    #[error("{0}")]
    Failed(String),
    /// The operation ran out of time and was killed.
    #[error("version control operation timed out after {0:?}")]
    Timeout(Duration),
    /// This node cannot fetch from version control at all (no go or git).
    #[error("{0}")]
    Unavailable(String),
}

impl VcsError {
    /// True for answers that mean "does not exist".
    pub fn is_not_found(&self) -> bool {
        matches!(self, VcsError::NotFound(_))
    }
}

/// Markers of a host that could not be reached or failed: transient, never "not found".
const UNREACHABLE: &[&str] = &[
    "dial tcp",
    "connection refused",
    "connection reset",
    "i/o timeout",
    "no route to host",
    "network is unreachable",
    "could not resolve host",
    "failed to connect",
    "tls handshake",
    "server misbehaving",
    "temporary failure in name resolution",
    "unexpected disconnect",
    "the remote end hung up unexpectedly",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway",
];

/// Markers of refused credentials.
const AUTH: &[&str] = &[
    "terminal prompts disabled",
    "could not read username",
    "could not read password",
    "authentication failed",
    "permission denied (publickey",
    "host key verification failed",
    "401 unauthorized",
    "403 forbidden",
];

/// Markers of a module, version or revision that does not exist.
const NOT_FOUND: &[&str] = &[
    "not found",
    "unknown revision",
    "invalid version",
    "no matching versions",
    "does not contain package",
    "unrecognized import path",
    "no secure protocol found",
    "disallowed module path",
    "malformed module path",
    "404",
    "410 gone",
];

/// Markers of content the go command refused to package.
const REFUSED: &[&str] = &[
    "case-insensitive file name collision",
    "module source tree too large",
    "file too large",
    "go.mod has non-",
    "but was required as",
    "unexpected module path",
    "invalid file name",
];

/// Classifies the stderr of a failed run, with paths under `roots` and secrets removed.
pub fn classify(stderr: &str, roots: &[&str], redactor: &Redactor) -> VcsError {
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("host key verification failed")
        || lower.contains("remote host identification has changed")
    {
        // ssh's banner would fill the message: say what happened, after what git was doing.
        let first = stderr.lines().next().unwrap_or_default();
        return VcsError::Auth(format!(
            "{}: host key verification failed (the SSH host's key is not the one known_hosts_file names)",
            describe(first, roots, redactor).trim_end_matches(':')
        ));
    }
    let message = describe(stderr, roots, redactor);
    let has = |markers: &[&str]| markers.iter().any(|m| lower.contains(m));
    if has(REFUSED) {
        VcsError::Refused(message)
    } else if has(UNREACHABLE) {
        VcsError::Failed(message)
    } else if has(AUTH) {
        VcsError::Auth(format!(
            "{message} (the version control host refused the route's credentials)"
        ))
    } else if has(NOT_FOUND) {
        VcsError::NotFound(message)
    } else {
        VcsError::Failed(message)
    }
}

/// The go command's explanation, one line, without local paths or secrets.
pub fn describe(stderr: &str, roots: &[&str], redactor: &Redactor) -> String {
    let mut text = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            !l.starts_with("Confirm the import path") && !l.starts_with("If this is a private")
        })
        .collect::<Vec<_>>()
        .join(" ");
    for root in roots.iter().filter(|r| !r.is_empty()) {
        text = strip_paths(&text, root);
    }
    let mut text = redactor.scrub(text.strip_prefix("go: ").unwrap_or(&text));
    if text.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    if text.is_empty() {
        "the go command failed without a message".into()
    } else {
        text
    }
}

/// Removes every path starting with `root` (and a preceding " in ").
fn strip_paths(text: &str, root: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(root) {
        let before = &rest[..i];
        out.push_str(before.strip_suffix(" in ").unwrap_or(before));
        let after = &rest[i..];
        let end = after
            .find(|c: char| c.is_whitespace() || c == ':' || c == '"' || c == '\'')
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/var/lib/goproxy-ha/vcs";

    fn class(stderr: &str) -> VcsError {
        classify(stderr, &[ROOT], &Redactor::default())
    }

    /// Messages as go 1.19 and git 2.47 print them.
    #[test]
    fn real_go_messages_are_classified() {
        let unknown_repo = "go: git.corp.test/team/nope@v1.0.0: invalid version: git ls-remote -q origin in /var/lib/goproxy-ha/vcs/anonymous/modcache/cache/vcs/5226: exit status 128:\n\tfatal: repository 'http://git.corp.test:80/team/nope.git/' not found";
        match class(unknown_repo) {
            VcsError::NotFound(m) => {
                assert!(!m.contains("/var/lib"), "{m}");
                assert_eq!(m, "git.corp.test/team/nope@v1.0.0: invalid version: git ls-remote -q origin: exit status 128: fatal: repository 'http://git.corp.test:80/team/nope.git/' not found");
            }
            other => panic!("{other:?}"),
        }
        assert!(class(
            "go: git.corp.test/team/lib@v9.9.9: invalid version: unknown revision v9.9.9"
        )
        .is_not_found());
        let auth = "go: module git.corp.test/team/lib: git ls-remote -q origin in /var/lib/goproxy-ha/vcs/x: exit status 128:\n\tfatal: could not read Username for 'http://git.corp.test:80': terminal prompts disabled\nConfirm the import path was entered correctly.\nIf this is a private repository, see https://golang.org/doc/faq#git_https for additional information.";
        match class(auth) {
            VcsError::Auth(m) => {
                assert!(
                    m.contains("terminal prompts disabled") && !m.contains("Confirm"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
        let down = "go: git.corp.test/team/lib@v1.0.0: unrecognized import path \"git.corp.test/team/lib\": https fetch: Get \"https://git.corp.test/team/lib?go-get=1\": dial tcp 127.0.0.1:443: connect: connection refused";
        assert!(matches!(class(down), VcsError::Failed(_)));
        let case = "go: git.corp.test/team/case@v1.0.0: create zip: x.go: case-insensitive file name collision: \"X.go\" and \"x.go\"";
        assert!(matches!(class(case), VcsError::Refused(_)));
        assert!(matches!(
            class("go: something odd happened"),
            VcsError::Failed(_)
        ));
    }

    #[test]
    fn messages_lose_secrets_and_stay_short() {
        let mut redactor = Redactor::default();
        redactor.add_netrc("machine h login u password hunter22");
        let m = describe(
            &format!(
                "fatal: unable to access 'https://u:hunter22@h/r.git/': {}",
                "x".repeat(2000)
            ),
            &[ROOT],
            &redactor,
        );
        assert!(!m.contains("hunter22"), "{m}");
        assert!(m.len() <= MAX_MESSAGE + '…'.len_utf8());
        assert_eq!(
            describe("", &[ROOT], &redactor),
            "the go command failed without a message"
        );
    }
}
