//! Request routing: a proxy URL path becomes a typed, validated [`Route`].
//!
//! Paths are percent-decoded first (the go command sends `!` as `%21`); after decoding,
//! any `%`, `?`, `#`, `\`, control or non-ASCII character is rejected outright.

use std::borrow::Cow;

use crate::path::{
    escape_path, escape_version, shown, unescape_path_borrowed, unescape_version_borrowed,
    PathError,
};
use crate::semver;
use crate::sumdb::{SumdbError, SumdbPath};
use crate::version::{check_major_suffix, VersionError};

/// Longest request path accepted (module path bound plus room for a version).
pub const MAX_REQUEST_LEN: usize = 2048;

/// A GOPROXY request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `$module/@v/list`.
    List {
        /// Decoded module path.
        module: String,
    },
    /// `$module/@latest`.
    Latest {
        /// Decoded module path.
        module: String,
    },
    /// `$module/@v/$version.info`.
    Info {
        /// Decoded module path.
        module: String,
        /// A canonical version, or a query to forward.
        version: VersionQuery,
    },
    /// `$module/@v/$version.mod` (canonical versions only).
    Mod {
        /// Decoded module path.
        module: String,
        /// Canonical version.
        version: String,
    },
    /// `$module/@v/$version.zip` (canonical versions only).
    Zip {
        /// Decoded module path.
        module: String,
        /// Canonical version.
        version: String,
    },
    /// `sumdb/$name/supported`.
    SumdbSupported {
        /// Checksum database name (a host name).
        name: String,
    },
    /// `sumdb/$name/…` other than `supported`.
    Sumdb {
        /// Checksum database name (a host name).
        name: String,
        /// What is asked of it.
        path: SumdbPath,
    },
}

/// The version part of an `.info` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionQuery {
    /// A canonical version: an immutable, cacheable artifact.
    Canonical(String),
    /// A branch, commit or non-canonical version: forwarded, never cached as immutable.
    Query(String),
}

/// Why a path is not a valid GOPROXY request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// Over [`MAX_REQUEST_LEN`].
    #[error("request path longer than {MAX_REQUEST_LEN} bytes")]
    TooLong,
    /// A character the protocol never uses.
    #[error("invalid character {0:?} in request path")]
    BadChar(char),
    /// `//`: an empty path element, never produced by the go command.
    #[error("empty element ('//') in request path")]
    EmptyElement,
    /// A malformed `%XX` escape.
    #[error("invalid percent-encoding in request path")]
    BadPercent,
    /// Not one of the protocol's path shapes.
    #[error("not a module proxy request: {0:?}")]
    Unknown(String),
    /// A bad module path or escape.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A bad version.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// `.mod`/`.zip` asked with a non-canonical version.
    #[error("{module}@{version}: .{ext} is only served for canonical versions")]
    NotCanonical {
        /// Module path.
        module: String,
        /// Version asked.
        version: String,
        /// `mod` or `zip`.
        ext: &'static str,
    },
    /// A bad checksum-database request.
    #[error(transparent)]
    Sumdb(#[from] SumdbError),
}

/// Parses a request path (with or without its leading `/`).
pub fn parse(path: &str) -> Result<Route, RouteError> {
    if path.len() > MAX_REQUEST_LEN {
        return Err(RouteError::TooLong);
    }
    let decoded = percent_decode(path)?;
    let path: &str = &decoded;
    if let Some(c) = path
        .chars()
        .find(|&c| !c.is_ascii() || c.is_ascii_control() || matches!(c, '%' | '?' | '#' | '\\'))
    {
        return Err(RouteError::BadChar(c));
    }
    if path.contains("//") {
        return Err(RouteError::EmptyElement);
    }
    let path = path.strip_prefix('/').unwrap_or(path);
    if let Some(rest) = path.strip_prefix("sumdb/") {
        let (name, rest) = rest
            .split_once('/')
            .ok_or_else(|| RouteError::Unknown(shown(path)))?;
        let name = crate::sumdb::check_name(name)?;
        if rest == "supported" {
            return Ok(Route::SumdbSupported { name });
        }
        return Ok(Route::Sumdb {
            name,
            path: SumdbPath::parse(rest)?,
        });
    }
    if let Some(escaped) = path.strip_suffix("/@latest") {
        return Ok(Route::Latest {
            module: unescape_path_borrowed(escaped)?.into_owned(),
        });
    }
    let Some((escaped, file)) = path.split_once("/@v/") else {
        return Err(RouteError::Unknown(shown(path)));
    };
    let module = unescape_path_borrowed(escaped)?;
    if file == "list" {
        return Ok(Route::List {
            module: module.into_owned(),
        });
    }
    let (stem, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| RouteError::Unknown(shown(path)))?;
    let version = unescape_version_borrowed(stem)?;
    // `module` passed `check_path` and `version` is canonical where it is checked below:
    // of `check_version`'s rules only the major-suffix one is left.
    let (module, version) = (module.into_owned(), version.into_owned());
    match ext {
        "info" if semver::is_canonical(&version) => {
            check_major_suffix(&module, &version)?;
            Ok(Route::Info {
                module,
                version: VersionQuery::Canonical(version),
            })
        }
        "info" => Ok(Route::Info {
            module,
            version: VersionQuery::Query(version),
        }),
        "mod" | "zip" => {
            if !semver::is_canonical(&version) {
                let ext = if ext == "mod" { "mod" } else { "zip" };
                return Err(RouteError::NotCanonical {
                    module,
                    version: shown(&version),
                    ext,
                });
            }
            check_major_suffix(&module, &version)?;
            Ok(if ext == "mod" {
                Route::Mod { module, version }
            } else {
                Route::Zip { module, version }
            })
        }
        _ => Err(RouteError::Unknown(shown(path))),
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8. Borrows `path` when it has none.
fn percent_decode(path: &str) -> Result<Cow<'_, str>, RouteError> {
    if !path.contains('%') {
        return Ok(Cow::Borrowed(path));
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(RouteError::BadPercent)?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| RouteError::BadPercent)
}

impl Route {
    /// The module the request is about (none for the checksum database endpoints).
    pub fn module(&self) -> Option<&str> {
        match self {
            Route::List { module }
            | Route::Latest { module }
            | Route::Info { module, .. }
            | Route::Mod { module, .. }
            | Route::Zip { module, .. } => Some(module),
            Route::SumdbSupported { .. } | Route::Sumdb { .. } => None,
        }
    }

    /// The escaped path (no leading slash) to request from an upstream proxy.
    pub fn upstream_path(&self) -> String {
        let module = |m: &str| escape_path(m).unwrap_or_else(|_| m.to_string());
        let version = |v: &str| escape_version(v).unwrap_or_else(|_| v.to_string());
        match self {
            Route::List { module: m } => format!("{}/@v/list", module(m)),
            Route::Latest { module: m } => format!("{}/@latest", module(m)),
            Route::Info {
                module: m,
                version: VersionQuery::Canonical(v) | VersionQuery::Query(v),
            } => {
                format!("{}/@v/{}.info", module(m), version(v))
            }
            Route::Mod {
                module: m,
                version: v,
            } => format!("{}/@v/{}.mod", module(m), version(v)),
            Route::Zip {
                module: m,
                version: v,
            } => format!("{}/@v/{}.zip", module(m), version(v)),
            Route::SumdbSupported { name } => format!("sumdb/{name}/supported"),
            Route::Sumdb { name, path } => format!("sumdb/{name}/{}", path.as_str()),
        }
    }
}

#[cfg(test)]
mod tests;
