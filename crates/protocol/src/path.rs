//! Module paths: validation like `golang.org/x/mod/module.CheckPath`, the `!`-escaping
//! used in proxy URLs, and the major-version suffix (`/v2`, `gopkg.in/x.v2`).

mod escape;
pub use escape::{escape_path, escape_version, unescape_path, unescape_version};
pub(crate) use escape::{unescape_path_borrowed, unescape_version_borrowed};

/// Longest module path accepted, in bytes. The go command sets no explicit bound; real
/// paths are under 200 bytes. 1024 keeps a whole request (path, version, `/@v/`, file
/// name) within [`crate::route::MAX_REQUEST_LEN`] and a cache key far below `PATH_MAX`.
pub const MAX_PATH_LEN: usize = 1024;

/// Windows reserved device names, rejected as path elements (before any dot).
const BAD_WINDOWS_NAMES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Why a path or version is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path breaks a module path rule.
    #[error("malformed module path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path (truncated).
        path: String,
        /// Which rule.
        reason: String,
    },
    /// A version (or version query) has a character or element Go does not allow.
    #[error("invalid version {version:?}: {reason}")]
    InvalidVersion {
        /// The offending version (truncated).
        version: String,
        /// Which rule.
        reason: String,
    },
    /// An escaped path or version is not validly escaped.
    #[error("invalid escaped {what} {text:?}: {reason}")]
    InvalidEscape {
        /// `module path` or `version`.
        what: &'static str,
        /// The offending text (truncated).
        text: String,
        /// Which rule.
        reason: &'static str,
    },
}

/// Truncates hostile input for error messages.
pub(crate) fn shown(text: &str) -> String {
    const SHOWN: usize = 120;
    let mut end = text.len().min(SHOWN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        format!("{}…", &text[..end])
    } else {
        text.to_string()
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> PathError {
    PathError::InvalidPath {
        path: shown(path),
        reason: reason.into(),
    }
}

/// Which character set an element is checked against.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Module path elements: `[A-Za-z0-9._~-]`, no leading dot.
    Module,
    /// File paths inside module zips (and version queries): a wider set.
    File,
}

fn char_ok(c: char, kind: Kind) -> bool {
    if c.is_ascii_alphanumeric() {
        return true;
    }
    match kind {
        Kind::Module => matches!(c, '-' | '.' | '_' | '~'),
        Kind::File => {
            if c.is_ascii() {
                "!#$%&()+,-.=@[]^_{}~ ".contains(c)
            } else {
                // Go uses `unicode.IsLetter` (categories L*). `is_alphabetic` also admits
                // letter numbers and combining vowel signs: slightly more lenient, never
                // stricter, so no module Go accepts is refused.
                c.is_alphabetic()
            }
        }
    }
}

/// `module.checkElem`: one path element.
pub(crate) fn check_elem(elem: &str, kind: Kind) -> Result<(), String> {
    if elem.is_empty() {
        return Err("empty path element".into());
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(format!("invalid path element {elem:?}"));
    }
    if kind == Kind::Module && elem.starts_with('.') {
        return Err(format!("leading dot in path element {elem:?}"));
    }
    if elem.ends_with('.') {
        return Err(format!("trailing dot in path element {elem:?}"));
    }
    if let Some(c) = elem.chars().find(|&c| !char_ok(c, kind)) {
        return Err(format!("invalid char {c:?}"));
    }
    let short = elem.split('.').next().unwrap_or(elem);
    if BAD_WINDOWS_NAMES
        .iter()
        .any(|bad| bad.eq_ignore_ascii_case(short))
    {
        return Err(format!(
            "{elem:?} disallowed as path element component on Windows"
        ));
    }
    // Windows short names (`PROGRA~1`) matter only for import paths, not file names.
    if kind == Kind::File {
        return Ok(());
    }
    if let Some(tilde) = short.rfind('~') {
        let suffix = &short[tilde + 1..];
        if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "trailing tilde and digits in path element {elem:?}"
            ));
        }
    }
    Ok(())
}

/// `module.checkPath`: the rules shared by module and file paths.
pub(crate) fn check_path_elems(path: &str, kind: Kind) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty string".into());
    }
    if kind == Kind::Module && path.starts_with('-') {
        return Err("leading dash".into());
    }
    if path.contains("//") {
        return Err("double slash".into());
    }
    if path.ends_with('/') {
        return Err("trailing slash".into());
    }
    path.split('/').try_for_each(|elem| check_elem(elem, kind))
}

/// `module.CheckPath`: is `path` a valid module path?
pub fn check_path(path: &str) -> Result<(), PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(invalid(path, format!("longer than {MAX_PATH_LEN} bytes")));
    }
    check_path_elems(path, Kind::Module).map_err(|r| invalid(path, r))?;
    let first = path.split('/').next().unwrap_or("");
    if first.is_empty() {
        return Err(invalid(path, "leading slash"));
    }
    if !first.contains('.') {
        return Err(invalid(path, "missing dot in first path element"));
    }
    if first.starts_with('-') {
        return Err(invalid(path, "leading dash in first path element"));
    }
    if let Some(c) = first
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'))
    {
        return Err(invalid(
            path,
            format!("invalid char {c:?} in first path element"),
        ));
    }
    if split_path_version(path).is_none() {
        return Err(invalid(path, "invalid version suffix"));
    }
    Ok(())
}

/// `module.SplitPathVersion`: `(prefix, path_major)`, e.g. `("a.b/c", "/v2")`;
/// `None` when the suffix is malformed (`/v1`, `/v02`, `/v2.0`).
pub fn split_path_version(path: &str) -> Option<(&str, &str)> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let bytes = path.as_bytes();
    let mut i = bytes.len();
    let mut dot = false;
    while i > 0 && (bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.') {
        dot |= bytes[i - 1] == b'.';
        i -= 1;
    }
    if i <= 1 || i == bytes.len() || bytes[i - 1] != b'v' || bytes[i - 2] != b'/' {
        return Some((path, ""));
    }
    let (prefix, major) = path.split_at(i - 2);
    if dot || major.len() <= 2 || major.as_bytes()[2] == b'0' || major == "/v1" {
        return None;
    }
    Some((prefix, major))
}

fn split_gopkg_in(path: &str) -> Option<(&str, &str)> {
    let bytes = path.as_bytes();
    let mut i = bytes.len();
    if path.ends_with("-unstable") {
        i -= "-unstable".len();
    }
    while i > 0 && bytes[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i <= 1 || bytes[i - 1] != b'v' || bytes[i - 2] != b'.' {
        return None;
    }
    let (prefix, major) = path.split_at(i - 2);
    if major.len() <= 2 || (major.as_bytes()[2] == b'0' && major != ".v0") {
        return None;
    }
    Some((prefix, major))
}

#[cfg(test)]
mod tests;
