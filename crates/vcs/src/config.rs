//! `[vcs]` (how `direct` fetching runs) and `[credentials.NAME]` (how it authenticates).
//!
//! Secrets are never written inline: a credential set names files (a netrc, a token file, an
//! SSH key) or environment variables (a token).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How `direct` routes fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VcsConfig {
    /// The go command (a path, or a name looked up in PATH).
    pub go: PathBuf,
    /// Time one `go` operation (a list, a query, a download) may take before its process
    /// group is killed.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Version control operations running at once on this node; more wait.
    pub max_concurrent: usize,
    /// Largest module zip accepted from a repository (the go command's own limit is 500 MiB).
    pub max_zip_bytes: u64,
    /// Hosts reached over plain HTTP for `?go-get=1` discovery and cloning (GOINSECURE
    /// syntax: comma-free globs). Only for lab or legacy hosts.
    pub insecure_hosts: Vec<String>,
}

impl Default for VcsConfig {
    fn default() -> Self {
        Self {
            go: PathBuf::from("go"),
            timeout: Duration::from_secs(300),
            max_concurrent: 4,
            max_zip_bytes: 500 << 20,
            insecure_hosts: Vec::new(),
        }
    }
}

impl VcsConfig {
    /// Every problem with these settings.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.timeout.is_zero() {
            problems.push("vcs.timeout: must be greater than zero".into());
        }
        if self.max_concurrent == 0 {
            problems.push("vcs.max_concurrent: must be at least 1".into());
        }
        if self.max_zip_bytes == 0 || self.max_zip_bytes > 500 << 20 {
            problems.push("vcs.max_zip_bytes: between 1 and 524288000 (500 MiB)".into());
        }
        if self.go.as_os_str().is_empty() {
            problems.push("vcs.go: must not be empty".into());
        }
        for host in &self.insecure_hosts {
            if host.is_empty() || host.contains([',', ' ', '\n', '/']) {
                problems.push(format!(
                    "vcs.insecure_hosts: {host:?} is not a host glob (no commas, spaces or slashes)"
                ));
            }
        }
        problems
    }
}

/// An HTTPS token for one host, written into the set's netrc (used by the go command for
/// `?go-get=1` discovery and by git for cloning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// The host the token is for (`git.corp.example`).
    pub host: String,
    /// The user name sent with it (GitLab: `oauth2`, GitHub: any, Bitbucket: the user).
    #[serde(default = "default_token_user")]
    pub username: String,
    /// A file holding the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

fn default_token_user() -> String {
    "oauth2".into()
}

/// One named credential set, referenced by routes as `credentials = "NAME"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialSpec {
    /// A netrc file (`machine HOST login USER password SECRET` lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netrc_file: Option<PathBuf>,
    /// HTTPS tokens per host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<TokenSpec>,
    /// Private key for `ssh://` and `git@host:` repositories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_key_file: Option<PathBuf>,
    /// Known host keys; required with `ssh_key_file` (host keys are always checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_hosts_file: Option<PathBuf>,
    /// git URL rewrites: `"https://git.corp.example/" = "ssh://git@git.corp.example/"`
    /// makes every fetch of the first prefix use the second (git's `url.<new>.insteadOf`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub insteadof: BTreeMap<String, String>,
}

impl CredentialSpec {
    /// Every problem with this set (`at` is its place in the configuration). Files are
    /// checked for existence when the node starts, not here.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, token) in self.tokens.iter().enumerate() {
            let at = format!("{at}.tokens[{i}]");
            if !is_host(&token.host) {
                problems.push(format!("{at}.host: {:?} is not a host name", token.host));
            }
            if token.username.is_empty() || token.username.contains(char::is_whitespace) {
                problems.push(format!("{at}.username: must be one word"));
            }
            match (&token.token_file, &token.token_env) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => problems.push(format!(
                    "{at}: give exactly one of token_file and token_env (secrets are never written inline)"
                )),
            }
        }
        match (&self.ssh_key_file, &self.known_hosts_file) {
            (Some(_), None) => problems.push(format!(
                "{at}.known_hosts_file: required with ssh_key_file (host keys are always checked)"
            )),
            (None, Some(_)) => problems.push(format!(
                "{at}.ssh_key_file: known_hosts_file without a key has no use"
            )),
            _ => {}
        }
        for (from, to) in &self.insteadof {
            for url in [from, to] {
                if url.is_empty() || url.contains(['"', '\\', '\n', '\r']) {
                    problems.push(format!(
                        "{at}.insteadof: {url:?} must be a non-empty URL prefix without quotes, backslashes or newlines"
                    ));
                }
            }
        }
        if self.netrc_file.is_none()
            && self.tokens.is_empty()
            && self.ssh_key_file.is_none()
            && self.insteadof.is_empty()
        {
            problems.push(format!(
                "{at}: empty (give netrc_file, tokens, ssh_key_file or insteadof)"
            ));
        }
        problems
    }
}

/// Every problem with the named sets.
pub fn credential_problems(sets: &BTreeMap<String, CredentialSpec>) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, set) in sets {
        let at = format!("credentials.{name}");
        let name_ok = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            problems.push(format!(
                "{at}: a credential set name is 1 to 63 of a-z, A-Z, 0-9, - and _"
            ));
        }
        problems.extend(set.problems(&at));
    }
    problems
}

fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_mistakes_are_all_reported() {
        assert!(VcsConfig::default().problems().is_empty());
        let sets: BTreeMap<String, CredentialSpec> = toml::from_str(
            r#"
[corp]
netrc_file = "/etc/goproxy-ha/netrc"
tokens = [{ host = "git.corp.example", token_env = "GITLAB_TOKEN" }]
ssh_key_file = "/etc/goproxy-ha/id_ed25519"
known_hosts_file = "/etc/goproxy-ha/known_hosts"
insteadof = { "https://git.corp.example/" = "ssh://git@git.corp.example/" }

["bad name"]
tokens = [{ host = "a b", token_file = "/x", token_env = "Y" }]
ssh_key_file = "/k"
insteadof = { "https://x/" = "ssh://\"evil\n" }

[empty]
"#,
        )
        .unwrap();
        let problems = credential_problems(&sets).join("\n");
        for needle in [
            "credentials.bad name: a credential set name",
            "credentials.bad name.tokens[0].host",
            "credentials.bad name.tokens[0]: give exactly one of token_file and token_env",
            "credentials.bad name.known_hosts_file: required",
            "credentials.bad name.insteadof",
            "credentials.empty: empty",
        ] {
            assert!(
                problems.contains(needle),
                "missing {needle:?} in\n{problems}"
            );
        }
        assert!(!problems.contains("credentials.corp"), "{problems}");
        assert_eq!(sets["corp"].tokens[0].username, "oauth2");
    }

    #[test]
    fn inline_secrets_are_not_a_key() {
        let err = toml::from_str::<CredentialSpec>("password = \"hunter2\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
