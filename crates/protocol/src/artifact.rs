//! Validation of upstream `.info` and `.mod` content before it is cached.

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

/// The `.info` fields the go command reads (`modfetch.RevInfo`), found as Go's
/// `encoding/json` finds them: in a JSON object, keys matched case-insensitively.
struct InfoJson {
    version: String,
    time: Option<String>,
}

impl InfoJson {
    fn parse(bytes: &[u8]) -> Result<Self, ArtifactError> {
        let bad = |why: String| ArtifactError::InfoJson(why);
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        let field = |name: &str| -> Result<Option<&serde_json::Value>, ArtifactError> {
            let mut found = object.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
            match (found.next(), found.next()) {
                (Some((_, v)), None) => Ok(Some(v)),
                (None, _) => Ok(None),
                (Some(_), Some(_)) => Err(bad(format!("{name} given more than once"))),
            }
        };
        let version = match field("Version")? {
            Some(serde_json::Value::String(v)) => v.clone(),
            Some(_) => return Err(bad("Version is not a string".into())),
            None => return Err(bad("no Version".into())),
        };
        let time = match field("Time")? {
            Some(serde_json::Value::String(t)) => Some(t.clone()),
            Some(serde_json::Value::Null) | None => None,
            Some(_) => return Err(bad("Time is not a string".into())),
        };
        Ok(InfoJson { version, time })
    }
}

/// Checks an upstream `.info` for `expected_version`.
pub fn validate_info(bytes: &[u8], expected_version: &str) -> Result<InfoMeta, ArtifactError> {
    if bytes.len() as u64 > MAX_INFO_SIZE {
        return Err(ArtifactError::TooLarge {
            what: ".info",
            limit: MAX_INFO_SIZE,
        });
    }
    let info = InfoJson::parse(bytes)?;
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

/// Length of `YYYY-MM-DDTHH:MM:SS`.
const RFC3339_DATE_TIME_LEN: usize = 19;
/// Byte offsets of the numeric fields in `YYYY-MM-DDTHH:MM:SS` with their inclusive ranges
/// (`time.Parse` bounds: day 31 is checked against the month only by Go, not here).
const RFC3339_FIELDS: [(usize, usize, u32, u32); 6] = [
    (0, 4, 0, 9999),
    (5, 7, 1, 12),
    (8, 10, 1, 31),
    (11, 13, 0, 23),
    (14, 16, 0, 59),
    (17, 19, 0, 59),
];

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` with in-range fields.
pub fn is_rfc3339(t: &str) -> bool {
    let b = t.as_bytes();
    let Some(head) = b.get(..RFC3339_DATE_TIME_LEN) else {
        return false;
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if !separators.iter().all(|&(i, c)| head[i] == c) || !matches!(head[10], b'T' | b't') {
        return false;
    }
    let fields_ok = RFC3339_FIELDS
        .iter()
        .all(|&(from, to, lo, hi)| number(&head[from..to]).is_some_and(|n| (lo..=hi).contains(&n)));
    if !fields_ok {
        return false;
    }
    let mut rest = &b[RFC3339_DATE_TIME_LEN..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &frac[digits..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            number(&[*h1, *h2]).is_some_and(|h| h < 24)
                && number(&[*m1, *m2]).is_some_and(|m| m < 60)
        }
        _ => false,
    }
}

/// A run of ASCII digits as a number.
fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
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

/// The module path declared by go.mod text, as `modfile.ModulePath` reads it: the first
/// line `module <path>` (whitespace required after the keyword, `//` comments cut,
/// `"quoted"` or `` `raw` `` paths unquoted). Also accepts the block form
/// `module (\n<path>\n)`, which the full go.mod parser allows.
pub fn module_directive(text: &str) -> Option<String> {
    let mut in_block = false;
    for raw in text.split('\n') {
        let line = raw.split("//").next().unwrap_or("").trim();
        if in_block {
            match line {
                "" => continue,
                ")" => return None,
                arg => return unquote(arg),
            }
        }
        let Some(rest) = line.strip_prefix("module") else {
            continue;
        };
        let arg = rest.trim();
        if arg.len() == rest.len() || arg.is_empty() {
            continue; // `modulex …` or a bare `module`.
        }
        if arg == "(" {
            in_block = true;
            continue;
        }
        return unquote(arg);
    }
    None
}

/// `strconv.Unquote` for the forms a module path can take; `None` when malformed.
fn unquote(arg: &str) -> Option<String> {
    if let Some(inner) = arg.strip_prefix('`') {
        return inner
            .strip_suffix('`')
            .filter(|body| !body.contains('`'))
            .map(str::to_string);
    }
    if arg.starts_with('"') {
        // JSON string escapes are the subset of Go's that paths could ever use.
        return serde_json::from_str::<String>(arg).ok();
    }
    Some(arg.to_string())
}

#[cfg(test)]
mod tests;
