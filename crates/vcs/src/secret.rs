//! Secrets read from files or the environment, and the scrubbing of text they may appear in.

use std::fmt;
use std::path::Path;

/// A secret value: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for writing it where it is needed (a 0600 file).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from a file (surrounding whitespace trimmed). The error names the file,
    /// never its contents.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::checked(text.trim(), &format!("{}", path.display()))
    }

    /// Reads a secret from an environment variable.
    pub fn from_env(name: &str) -> Result<Self, String> {
        let value = std::env::var(name)
            .map_err(|_| format!("environment variable {name} is not set (or not UTF-8)"))?;
        Self::checked(value.trim(), &format!("environment variable {name}"))
    }

    fn checked(value: &str, source: &str) -> Result<Self, String> {
        if value.is_empty() {
            return Err(format!("{source} is empty"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{source} holds whitespace or control characters (a token is one word)"
            ));
        }
        Ok(Self(value.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Replaces every known secret, and the password of any `user:password@` in a URL, by `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<Secret>,
}

impl Redactor {
    /// Remembers a secret to hide.
    pub fn add(&mut self, secret: Secret) {
        // Tiny values would redact ordinary words; they are refused as secrets anyway.
        if secret.0.len() >= 4 && !self.secrets.contains(&secret) {
            self.secrets.push(secret);
        }
    }

    /// The passwords of a netrc's `password` (and `account`) fields.
    pub fn add_netrc(&mut self, netrc: &str) {
        let mut words = netrc.split_whitespace();
        while let Some(word) = words.next() {
            if word == "password" || word == "account" {
                if let Some(value) = words.next() {
                    self.add(Secret(value.to_string()));
                }
            }
        }
    }

    /// `text` with every secret and URL password replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = scrub_userinfo(text);
        for secret in &self.secrets {
            out = out.replace(secret.expose(), "***");
        }
        out
    }
}

/// Hides the userinfo of every `scheme://user:password@host` in free text.
fn scrub_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '\'' | '"' | '>'))
            .unwrap_or(after.len());
        match after[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&after[at..end]);
            }
            None => out.push_str(&after[..end]),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_and_are_scrubbed_from_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "glpat-abc123XYZ\n").unwrap();
        let token = Secret::from_file(&file).unwrap();
        assert_eq!(token.expose(), "glpat-abc123XYZ");
        assert_eq!(format!("{token} {token:?}"), "*** ***");

        let mut redactor = Redactor::default();
        redactor.add(token);
        redactor.add_netrc("machine git.corp.example login alice password s3cr3t-pw\n");
        let text = "fatal: could not read from https://alice:s3cr3t-pw@git.corp.example/x.git \
                    (token glpat-abc123XYZ) and http://bob:other@h:80/y";
        let scrubbed = redactor.scrub(text);
        assert!(
            !scrubbed.contains("s3cr3t") && !scrubbed.contains("glpat"),
            "{scrubbed}"
        );
        assert!(!scrubbed.contains("other"), "{scrubbed}");
        assert!(
            scrubbed.contains("https://***@git.corp.example/x.git"),
            "{scrubbed}"
        );
        assert!(scrubbed.contains("http://***@h:80/y"), "{scrubbed}");
    }

    #[test]
    fn bad_secret_sources_are_explained_without_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "two words-secret").unwrap();
        let err = Secret::from_file(&file).unwrap_err();
        assert!(
            err.contains("whitespace") && !err.contains("words-secret"),
            "{err}"
        );
        assert!(Secret::from_file(&dir.path().join("missing")).is_err());
        let err = Secret::from_env("GOPROXY_HA_TEST_UNSET_VARIABLE").unwrap_err();
        assert!(err.contains("not set"), "{err}");
    }
}
