//! GOPROXY list syntax: entries separated by `,` (fall through only on "not found")
//! or `|` (fall through on any error); `direct` fetches from version control; `off` refuses
//! every lookup.

use std::fmt;

/// When the chain moves on from an entry to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// `,`: only after a 404/410 answer.
    OnNotFound,
    /// `|`: after any error.
    OnAnyError,
}

/// One element of the list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpstreamEntry {
    /// A proxy base URL, without trailing slash.
    Proxy(String),
    /// `direct`: the module's version control repository.
    Direct,
    /// `off`: lookups are refused when the chain reaches this entry.
    Off,
}

impl fmt::Display for UpstreamEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamEntry::Proxy(url) => f.write_str(&redact(url)),
            UpstreamEntry::Direct => f.write_str("direct"),
            UpstreamEntry::Off => f.write_str("off"),
        }
    }
}

/// `url` with any credentials (`user:password@`) replaced by `***@`: the form every log
/// line, error body and configuration dump shows.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // Not a URL (a fragment of one cut at a `,` or `|` inside a password, say): hide
        // everything up to its last `@`.
        return match url.rfind('@') {
            Some(at) => format!("***{}", &url[at..]),
            None => url.to_string(),
        };
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &url[..authority_start],
            &url[authority_start + at..]
        ),
        None => url.to_string(),
    }
}

/// A GOPROXY-syntax list with every URL's credentials redacted ([`redact`]).
pub fn redact_list(list: &str) -> String {
    let mut out = String::with_capacity(list.len());
    let mut rest = list;
    loop {
        match rest.find([',', '|']) {
            Some(i) => {
                out.push_str(&redact(&rest[..i]));
                out.push_str(&rest[i..=i]);
                rest = &rest[i + 1..];
            }
            None => {
                out.push_str(&redact(rest));
                return out;
            }
        }
    }
}

/// A parsed upstream list: each entry with the rule for moving past it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamList {
    entries: Vec<(UpstreamEntry, Fallback)>,
    /// Of `entries`, computed once: requests ask for it on every routing decision.
    fingerprint: u64,
}

/// A malformed upstream list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamListError {
    /// The list has no entries.
    #[error("the upstream list is empty (use \"off\" to disable fetching)")]
    Empty,
    /// Two separators in a row, or one at either end.
    #[error("empty element in upstream list {0:?}")]
    EmptyElement(String),
    /// An element is not an http(s) URL.
    #[error("upstream {0:?} is not an http:// or https:// URL")]
    NotUrl(String),
}

impl UpstreamList {
    /// Parses GOPROXY syntax, e.g. `https://a.example,https://b.example|off`.
    pub fn parse(list: &str) -> Result<Self, UpstreamListError> {
        let list = list.trim();
        if list.is_empty() {
            return Err(UpstreamListError::Empty);
        }
        let mut entries = Vec::new();
        let mut rest = list;
        loop {
            let cut = rest.find([',', '|']);
            let (item, sep) = match cut {
                Some(i) => (&rest[..i], rest.as_bytes()[i]),
                None => (rest, b','),
            };
            let entry = parse_entry(item.trim(), list)?;
            let fallback = if sep == b'|' {
                Fallback::OnAnyError
            } else {
                Fallback::OnNotFound
            };
            entries.push((entry, fallback));
            match cut {
                Some(i) => rest = &rest[i + 1..],
                None => break,
            }
        }
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            entries.hash(&mut hasher);
            hasher.finish()
        };
        Ok(Self {
            entries,
            fingerprint,
        })
    }

    /// The entries in order, each with the rule for falling through to the next.
    pub fn entries(&self) -> &[(UpstreamEntry, Fallback)] {
        &self.entries
    }

    /// A fingerprint of the list as configured, credentials included (two lists that differ
    /// only in a URL's password differ here, though they print the same).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether some entry fetches from version control.
    pub fn has_direct(&self) -> bool {
        self.entries
            .iter()
            .any(|(e, _)| *e == UpstreamEntry::Direct)
    }
}

impl fmt::Display for UpstreamList {
    /// The list in GOPROXY syntax, credentials redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (entry, fallback)) in self.entries.iter().enumerate() {
            write!(f, "{entry}")?;
            if i + 1 < self.entries.len() {
                f.write_str(match fallback {
                    Fallback::OnNotFound => ",",
                    Fallback::OnAnyError => "|",
                })?;
            }
        }
        Ok(())
    }
}

fn parse_entry(item: &str, list: &str) -> Result<UpstreamEntry, UpstreamListError> {
    match item {
        "" => Err(UpstreamListError::EmptyElement(redact_list(list))),
        "off" => Ok(UpstreamEntry::Off),
        "direct" => Ok(UpstreamEntry::Direct),
        url if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(UpstreamEntry::Proxy(url.trim_end_matches('/').to_string()))
        }
        other => Err(UpstreamListError::NotUrl(redact(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_set_the_fallback_of_the_entry_before_them() {
        let list = UpstreamList::parse("https://a/,http://b|https://c").unwrap();
        assert_eq!(
            list.entries(),
            &[
                (
                    UpstreamEntry::Proxy("https://a".into()),
                    Fallback::OnNotFound
                ),
                (
                    UpstreamEntry::Proxy("http://b".into()),
                    Fallback::OnAnyError
                ),
                (
                    UpstreamEntry::Proxy("https://c".into()),
                    Fallback::OnNotFound
                ),
            ]
        );
    }

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            redact("https://user:s3cret@host:8443/p?q"),
            "https://***@host:8443/p?q"
        );
        assert_eq!(redact("http://token@host"), "http://***@host");
        assert_eq!(redact("http://host/a@b"), "http://host/a@b");
        assert_eq!(redact("http://host"), "http://host");
        // A password with a list separator in it splits the list; no piece may show it.
        assert_eq!(redact("pw,4@h"), "***@h");
        let err = UpstreamList::parse("https://u:pw,4@h")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pw") && !err.contains('4'), "{err}");
        assert_eq!(
            redact_list("https://u:p@a,https://b|http://x:y@c"),
            "https://***@a,https://b|http://***@c"
        );
        let list = UpstreamList::parse("https://u:p@a").unwrap();
        assert_eq!(list.entries()[0].0.to_string(), "https://***@a");
    }

    #[test]
    fn off_direct_and_malformed_lists() {
        assert_eq!(
            UpstreamList::parse("off").unwrap().entries(),
            &[(UpstreamEntry::Off, Fallback::OnNotFound)]
        );
        let list = UpstreamList::parse("https://u:p@a,direct|off").unwrap();
        assert_eq!(
            list.entries()[1],
            (UpstreamEntry::Direct, Fallback::OnAnyError)
        );
        assert!(list.has_direct());
        assert_eq!(list.to_string(), "https://***@a,direct|off");
        assert!(matches!(
            UpstreamList::parse("https://a,,https://b"),
            Err(UpstreamListError::EmptyElement(_))
        ));
        assert!(matches!(
            UpstreamList::parse("https://a|"),
            Err(UpstreamListError::EmptyElement(_))
        ));
        assert_eq!(UpstreamList::parse("  "), Err(UpstreamListError::Empty));
        assert!(matches!(
            UpstreamList::parse("ftp://x"),
            Err(UpstreamListError::NotUrl(_))
        ));
    }
}
