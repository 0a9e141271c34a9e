//! Request routing: a proxy URL path becomes a typed, validated [`Route`].
//!
//! Paths are percent-decoded first (the go command sends `!` as `%21`); after decoding,
//! any `%`, `?`, `#`, `\`, control or non-ASCII character is rejected outright.

use crate::path::{escape_path, escape_version, shown, unescape_path, unescape_version, PathError};
use crate::semver;
use crate::sumdb::{SumdbError, SumdbPath};
use crate::version::{check_version, VersionError};

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
    let path = decoded.as_str();
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
            module: unescape_path(escaped)?,
        });
    }
    let Some((escaped, file)) = path.split_once("/@v/") else {
        return Err(RouteError::Unknown(shown(path)));
    };
    let module = unescape_path(escaped)?;
    if file == "list" {
        return Ok(Route::List { module });
    }
    let (stem, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| RouteError::Unknown(shown(path)))?;
    let version = unescape_version(stem)?;
    match ext {
        "info" if semver::is_canonical(&version) => {
            check_version(&module, &version)?;
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
            check_version(&module, &version)?;
            Ok(if ext == "mod" {
                Route::Mod { module, version }
            } else {
                Route::Zip { module, version }
            })
        }
        _ => Err(RouteError::Unknown(shown(path))),
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(path: &str) -> Result<String, RouteError> {
    if !path.contains('%') {
        return Ok(path.to_string());
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
    String::from_utf8(out).map_err(|_| RouteError::BadPercent)
}

impl Route {
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
mod tests {
    use super::*;

    #[test]
    fn parses_every_route_shape() {
        assert_eq!(
            parse("/github.com/!burnt!sushi/toml/@v/list").unwrap(),
            Route::List {
                module: "github.com/BurntSushi/toml".into()
            }
        );
        assert_eq!(
            parse("example.com/hello/@latest").unwrap(),
            Route::Latest {
                module: "example.com/hello".into()
            }
        );
        assert_eq!(
            parse("/example.com/hello/@v/v1.1.0.info").unwrap(),
            Route::Info {
                module: "example.com/hello".into(),
                version: VersionQuery::Canonical("v1.1.0".into())
            }
        );
        assert_eq!(
            parse("/example.com/hello/@v/master.info").unwrap(),
            Route::Info {
                module: "example.com/hello".into(),
                version: VersionQuery::Query("master".into())
            }
        );
        assert_eq!(
            parse("/example.com/hello/v2/@v/v2.0.0.zip").unwrap(),
            Route::Zip {
                module: "example.com/hello/v2".into(),
                version: "v2.0.0".into()
            }
        );
        assert_eq!(
            parse("/example.com/hello/@v/v1.0.0-!r!c1.mod").unwrap(),
            Route::Mod {
                module: "example.com/hello".into(),
                version: "v1.0.0-RC1".into()
            }
        );
        assert_eq!(
            parse("/sumdb/sum.golang.org/supported").unwrap(),
            Route::SumdbSupported {
                name: "sum.golang.org".into()
            }
        );
    }

    #[test]
    fn accepts_the_go_commands_percent_encoded_bang() {
        // Logged from go 1.19.8 `go mod download` against the corpus.
        assert_eq!(
            parse("/github.com/%21burnt%21sushi/toml/@v/v1.2.0.zip").unwrap(),
            Route::Zip {
                module: "github.com/BurntSushi/toml".into(),
                version: "v1.2.0".into()
            }
        );
    }

    #[test]
    fn errors_read_well_as_plain_text_bodies() {
        let message = |p: &str| parse(p).unwrap_err().to_string();
        assert_eq!(
            message("nodot/x/@v/list"),
            "malformed module path \"nodot/x\": missing dot in first path element"
        );
        assert_eq!(
            message("example.com//x/@v/list"),
            "empty element ('//') in request path"
        );
        assert_eq!(
            message("example.com/x/@v/v2.0.0.zip"),
            "example.com/x@v2.0.0: invalid version: should be v0 or v1, not v2 \
             (a v2+ module path ends in /vN)"
        );
        assert!(message("example.com/x/@v/master.mod").contains("canonical"));
    }

    #[test]
    fn upstream_paths_round_trip() {
        for p in [
            "github.com/!burnt!sushi/toml/@v/list",
            "github.com/!burnt!sushi/toml/@v/v1.2.0.zip",
            "example.com/x/@v/v1.0.0-!r!c1.info",
            "example.com/x/@latest",
            "sumdb/sum.golang.org/lookup/github.com/!burnt!sushi/toml@v1.2.0",
            "sumdb/sum.golang.org/tile/8/0/x001/234.p/5",
        ] {
            assert_eq!(parse(p).unwrap().upstream_path(), p);
        }
    }

    #[test]
    fn rejects_hostile_and_malformed_paths() {
        let long = "a".repeat(MAX_REQUEST_LEN + 1);
        for p in [
            "",
            "/",
            "/@v/list",
            "example.com/x",
            "example.com/x/@v/",
            "example.com/x/@v/v1.0.0",
            "example.com/x/@v/v1.0.0.exe",
            "example.com/%2e%2e/@v/list",
            "example.com/x/@v/v1.0.0.info?x=1",
            "example.com/x/@v/v1.0.0.info%3fx",
            "example.com/x/@v/v1.0.0%2",
            "example.com/x/@v/v1.0.0%zz.info",
            "example.com/x/@v/v1.0.0%ff.info",
            "example.com/x/@v/v1.0.0%00.info",
            "example.com/%252e/@v/list",
            "example.com/x/@v/../../../etc/passwd.info",
            "example.com/x\\y/@v/list",
            "example.com//x/@v/list",
            "//example.com/x/@v/list",
            "example.com/x/@v//v1.0.0.info",
            "example.com%2F%2Fx/@v/list",
            "example.com/x/@v/v1.0.0.info#frag",
            "example.com/x/@v/v1.0.0.info\n",
            "example.com/!x!/@v/list",
            "example.com/!!x/@v/list",
            "example.com/X/@v/list",
            "example.com/x/@v/v1.0.0-!R!C1.info",
            "example.com/x/@v/v1.0.0-rc!.info",
            "example.com/x/v2/@v/v1.0.0.mod",
            "example.com/x/@v/v1.mod",
            "example.com/x/@v/1.0.0.zip",
            "example.com/x/@v/v1.0.0-20191109021931-daa7c04131f5+incompatible.zip",
            "sumdb/sum..golang.org/latest",
            "sumdb/sum.golang.org/lookup/x@v1",
            "sumdb/sum.golang.org/tile/8/0/x001/../234",
            "example.com/x/@v/v1.0.zip",
            "example.com/x/@v/master.zip",
            "example.com/x/@v/v1.0.0+meta.mod",
            "example.com/x/@v/v2.0.0.mod",
            "example.com/x/@v/v1.0.0\u{0}.info",
            "example.com/x/@v/.info",
            "example.com/é/@v/list",
            "sumdb/",
            "sumdb/x/supported",
            long.as_str(),
        ] {
            assert!(parse(p).is_err(), "{p:?} accepted");
        }
    }
}
