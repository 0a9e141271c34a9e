//! The `!`-case-encoding of module paths and versions in proxy URLs, exactly as
//! `golang.org/x/mod/module` (`EscapePath`, `UnescapePath`, `EscapeVersion`,
//! `UnescapeVersion`): an upper-case letter becomes `!` + its lower case; in escaped text
//! an upper-case letter, a non-ASCII character or a `!` not followed by a-z is an error.

use std::borrow::Cow;

use super::{check_elem, check_path, shown, Kind, PathError};

/// Escapes a module path for a proxy URL (`BurntSushi` → `!burnt!sushi`); validates first.
pub fn escape_path(path: &str) -> Result<String, PathError> {
    check_path(path)?;
    escape(path, "module path")
}

/// Escapes a version (or version query) for a proxy URL.
pub fn escape_version(version: &str) -> Result<String, PathError> {
    check_version_elem(version)?;
    escape(version, "version")
}

/// `EscapeVersion`'s rule: a version is one file-name element.
fn check_version_elem(version: &str) -> Result<(), PathError> {
    check_elem(version, Kind::File).map_err(|reason| PathError::InvalidVersion {
        version: shown(version),
        reason,
    })
}

fn escape(text: &str, what: &'static str) -> Result<String, PathError> {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '!' || !c.is_ascii() {
            return Err(PathError::InvalidEscape {
                what,
                text: shown(text),
                reason: "cannot escape '!' or non-ASCII",
            });
        }
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Decodes an escaped module path and validates the result.
pub fn unescape_path(escaped: &str) -> Result<String, PathError> {
    unescape_path_borrowed(escaped).map(Cow::into_owned)
}

/// [`unescape_path`] that borrows `escaped` when it has no `!` (nearly every path).
pub(crate) fn unescape_path_borrowed(escaped: &str) -> Result<Cow<'_, str>, PathError> {
    let path = unescape(escaped, "module path")?;
    check_path(&path)?;
    Ok(path)
}

/// Decodes an escaped version and validates its characters.
pub fn unescape_version(escaped: &str) -> Result<String, PathError> {
    unescape_version_borrowed(escaped).map(Cow::into_owned)
}

/// [`unescape_version`] that borrows `escaped` when it has no `!`.
pub(crate) fn unescape_version_borrowed(escaped: &str) -> Result<Cow<'_, str>, PathError> {
    let version = unescape(escaped, "version")?;
    check_version_elem(&version)?;
    Ok(version)
}

/// Decodes `!x` to `X`; text without a `!` is returned as it is (after the same checks).
fn unescape<'a>(escaped: &'a str, what: &'static str) -> Result<Cow<'a, str>, PathError> {
    let bad = |reason| PathError::InvalidEscape {
        what,
        text: shown(escaped),
        reason,
    };
    let mut out: Option<String> = None;
    let mut bang = false;
    for (i, b) in escaped.bytes().enumerate() {
        if !b.is_ascii() {
            return Err(bad("non-ASCII character"));
        }
        if bang {
            if !b.is_ascii_lowercase() {
                return Err(bad("'!' must be followed by a lower-case letter"));
            }
            bang = false;
            if let Some(out) = out.as_mut() {
                out.push(char::from(b.to_ascii_uppercase()));
            }
        } else if b == b'!' {
            bang = true;
            // The first `!`: from here on the text differs from its decoding.
            out.get_or_insert_with(|| {
                let mut out = String::with_capacity(escaped.len());
                out.push_str(&escaped[..i]);
                out
            });
        } else if b.is_ascii_uppercase() {
            return Err(bad(
                "upper-case letters must be escaped as '!' + lower case",
            ));
        } else if let Some(out) = out.as_mut() {
            out.push(char::from(b));
        }
    }
    if bang {
        return Err(bad("trailing '!'"));
    }
    Ok(out.map_or(Cow::Borrowed(escaped), Cow::Owned))
}
