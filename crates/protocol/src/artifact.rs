//! Validation of upstream `.info` and `.mod` content before it is cached.

use serde::Deserialize;

use crate::path::shown;

/// Largest `.mod` accepted (`golang.org/x/mod/zip` limit for go.mod files).
pub const MAX_GO_MOD_SIZE: u64 = 16 << 20;
/// Largest `.info` accepted: a version, a time and a small origin object.
pub const MAX_INFO_SIZE: u64 = 64 << 10;

/// Why upstream content is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// Content over its size limit.
    #[error("{what} is larger than {limit} bytes")]
    TooLarge {
        /// `.info` or `.mod`.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// `.info` is not the JSON object the protocol requires.
    #[error("invalid .info JSON: {0}")]
    InfoJson(String),
    /// `.info` names another version.
    #[error(".info names version {found:?}, expected {expected:?}")]
    WrongVersion {
        /// What was asked.
        expected: String,
        /// What the upstream said.
        found: String,
    },
    /// `.info` time is not RFC 3339.
    #[error(".info Time {0:?} is not an RFC 3339 time")]
    BadTime(String),
    /// `.mod` is not UTF-8 text.
    #[error(".mod is not valid UTF-8")]
    NotUtf8,
    /// `.mod` has no module directive.
    #[error(".mod has no module directive")]
    NoModule,
    /// `.mod` declares another module.
    #[error(".mod declares module {found:?}, expected {expected:?}")]
    WrongModule {
        /// The module asked for.
        expected: String,
        /// What go.mod declares.
        found: String,
    },
}

/// What a valid `.info` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoMeta {
    /// The version (equal to the requested one).
    pub version: String,
    /// RFC 3339 commit time, when present.
    pub time: Option<String>,
}

#[derive(Deserialize)]
struct InfoJson {
    #[serde(rename = "Version")]
    version: String,
    #[serde(rename = "Time")]
    time: Option<String>,
}

/// Checks an upstream `.info` for `expected_version`.
pub fn validate_info(bytes: &[u8], expected_version: &str) -> Result<InfoMeta, ArtifactError> {
    if bytes.len() as u64 > MAX_INFO_SIZE {
        return Err(ArtifactError::TooLarge {
            what: ".info",
            limit: MAX_INFO_SIZE,
        });
    }
    let info: InfoJson =
        serde_json::from_slice(bytes).map_err(|e| ArtifactError::InfoJson(e.to_string()))?;
    if info.version != expected_version {
        return Err(ArtifactError::WrongVersion {
            expected: expected_version.to_string(),
            found: shown(&info.version),
        });
    }
    if let Some(time) = &info.time {
        if !is_rfc3339(time) {
            return Err(ArtifactError::BadTime(shown(time)));
        }
    }
    Ok(InfoMeta {
        version: info.version,
        time: info.time,
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn is_rfc3339(t: &str) -> bool {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
    {
        return false;
    }
    if !matches!(b[10], b'T' | b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Checks that an upstream `.mod` declares `module`.
pub fn validate_mod(bytes: &[u8], module: &str) -> Result<(), ArtifactError> {
    if bytes.len() as u64 > MAX_GO_MOD_SIZE {
        return Err(ArtifactError::TooLarge {
            what: ".mod",
            limit: MAX_GO_MOD_SIZE,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ArtifactError::NotUtf8)?;
    let found = module_directive(text).ok_or(ArtifactError::NoModule)?;
    if found != module {
        return Err(ArtifactError::WrongModule {
            expected: module.to_string(),
            found: shown(&found),
        });
    }
    Ok(())
}

/// The module path declared by go.mod text (`module x`, `module "x"`, `module ( x )`).
pub fn module_directive(text: &str) -> Option<String> {
    let mut in_block = false;
    for raw in text.lines() {
        let line = raw.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let arg = if in_block {
            if line == ")" {
                in_block = false;
                continue;
            }
            line
        } else {
            let Some(rest) = line.strip_prefix("module") else {
                continue;
            };
            if !rest.starts_with([' ', '\t', '(', '"']) {
                continue;
            }
            let rest = rest.trim();
            if rest == "(" {
                in_block = true;
                continue;
            }
            rest
        };
        return Some(unquote(arg));
    }
    None
}

fn unquote(arg: &str) -> String {
    if let Some(inner) = arg.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return serde_json::from_str::<String>(&format!("\"{inner}\""))
            .unwrap_or_else(|_| inner.to_string());
    }
    if let Some(inner) = arg.strip_prefix('`').and_then(|s| s.strip_suffix('`')) {
        return inner.to_string();
    }
    arg.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_must_name_the_requested_version_with_a_valid_time() {
        let good = br#"{"Version":"v1.1.0","Time":"2022-06-01T10:00:00Z"}"#;
        assert_eq!(
            validate_info(good, "v1.1.0").unwrap().time.as_deref(),
            Some("2022-06-01T10:00:00Z")
        );
        assert!(validate_info(br#"{"Version":"v1.1.0"}"#, "v1.1.0").is_ok());
        assert!(matches!(
            validate_info(good, "v1.2.0"),
            Err(ArtifactError::WrongVersion { .. })
        ));
        assert!(validate_info(b"[]", "v1.1.0").is_err());
        assert!(validate_info(br#"{"Version":"v1.1.0","Time":"yesterday"}"#, "v1.1.0").is_err());
        assert!(validate_info(&vec![b' '; 70_000], "v1.1.0").is_err());
        assert!(is_rfc3339("2019-10-15T21:35:14.123+02:00"));
        assert!(!is_rfc3339("2019-10-15 21:35:14Z"));
    }

    #[test]
    fn mod_must_declare_the_module() {
        assert!(validate_mod(
            b"// comment\nmodule example.com/x // trailing\n\ngo 1.19\n",
            "example.com/x"
        )
        .is_ok());
        assert!(validate_mod(b"module \"example.com/x\"\n", "example.com/x").is_ok());
        assert!(validate_mod(b"module (\n\texample.com/x\n)\n", "example.com/x").is_ok());
        assert!(matches!(
            validate_mod(b"module example.com/y\n", "example.com/x"),
            Err(ArtifactError::WrongModule { .. })
        ));
        assert!(matches!(
            validate_mod(b"go 1.19\n", "example.com/x"),
            Err(ArtifactError::NoModule)
        ));
        assert!(matches!(
            validate_mod(b"modulex example.com/x\n", "example.com/x"),
            Err(ArtifactError::NoModule)
        ));
        assert!(matches!(
            validate_mod(&[0xff, 0xfe], "example.com/x"),
            Err(ArtifactError::NotUtf8)
        ));
    }
}
