//! Checksum-database request paths (`/sumdb/<name>/…`), validated before forwarding.

use crate::path::{shown, unescape_path, unescape_version};

/// Largest tile height the go command uses is 8; allow a little headroom.
const MAX_TILE_HEIGHT: u32 = 30;
/// Partial tiles have a width between 1 and 255.
const MAX_PARTIAL_WIDTH: u32 = 255;

/// A bad sumdb request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SumdbError {
    /// The database name is not a host name.
    #[error("invalid checksum database name {0:?}")]
    Name(String),
    /// The path is not `latest`, `lookup/M@V` or a tile.
    #[error("invalid checksum database request {0:?}")]
    Path(String),
}

/// What is asked of a checksum database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SumdbPath {
    /// `latest`: the signed tree head (changes).
    Latest,
    /// `lookup/M@V` (immutable once answered).
    Lookup(String),
    /// `tile/H/L/K[.p/W]` or `tile/H/data/K[.p/W]`.
    Tile {
        /// The path after `sumdb/<name>/`, as validated.
        raw: String,
        /// Partial tiles (`.p/W`) grow; full tiles never change.
        partial: bool,
    },
}

/// Longest DNS name (RFC 1035), in bytes.
const MAX_HOST_LEN: usize = 253;
/// Longest DNS label (RFC 1035), in bytes.
const MAX_LABEL_LEN: usize = 63;

/// Validates a database name: a lower-case DNS host name with a dot (`sum.golang.org`).
pub fn check_name(name: &str) -> Result<String, SumdbError> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if name.len() <= MAX_HOST_LEN && name.contains('.') && name.split('.').all(label_ok) {
        Ok(name.to_string())
    } else {
        Err(SumdbError::Name(shown(name)))
    }
}

impl SumdbPath {
    /// Parses the part after `sumdb/<name>/`.
    pub fn parse(rest: &str) -> Result<Self, SumdbError> {
        let bad = || SumdbError::Path(shown(rest));
        if rest == "latest" {
            return Ok(SumdbPath::Latest);
        }
        if let Some(query) = rest.strip_prefix("lookup/") {
            let (module, version) = query.rsplit_once('@').ok_or_else(bad)?;
            unescape_path(module).map_err(|_| bad())?;
            unescape_version(version).map_err(|_| bad())?;
            return Ok(SumdbPath::Lookup(query.to_string()));
        }
        let tile = rest.strip_prefix("tile/").ok_or_else(bad)?;
        let (tile, partial) = match tile.split_once(".p/") {
            Some((tile, width)) => {
                let value: u32 = width.parse().map_err(|_| bad())?;
                if width.starts_with('0') || value > MAX_PARTIAL_WIDTH {
                    return Err(bad());
                }
                (tile, true)
            }
            None => (tile, false),
        };
        let mut parts = tile.split('/');
        let height: u32 = parts.next().and_then(|h| h.parse().ok()).ok_or_else(bad)?;
        let level = parts.next().ok_or_else(bad)?;
        if height == 0
            || height > MAX_TILE_HEIGHT
            || !(level == "data"
                || (!level.is_empty() && level.bytes().all(|b| b.is_ascii_digit())))
        {
            return Err(bad());
        }
        let index: Vec<&str> = parts.collect();
        let Some((last, dirs)) = index.split_last() else {
            return Err(bad());
        };
        let three_digits = |s: &str| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit());
        if !three_digits(last)
            || !dirs
                .iter()
                .all(|d| d.strip_prefix('x').is_some_and(three_digits))
        {
            return Err(bad());
        }
        Ok(SumdbPath::Tile {
            raw: rest.to_string(),
            partial,
        })
    }

    /// True when the answer never changes (lookups and full tiles).
    pub fn is_immutable(&self) -> bool {
        match self {
            SumdbPath::Latest => false,
            SumdbPath::Lookup(_) => true,
            SumdbPath::Tile { partial, .. } => !partial,
        }
    }

    /// The path after `sumdb/<name>/`.
    pub fn as_str(&self) -> String {
        match self {
            SumdbPath::Latest => "latest".into(),
            SumdbPath::Lookup(query) => format!("lookup/{query}"),
            SumdbPath::Tile { raw, .. } => raw.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_lookups_and_latest() {
        assert_eq!(SumdbPath::parse("latest").unwrap(), SumdbPath::Latest);
        assert!(SumdbPath::parse("lookup/golang.org/x/text@v0.7.0")
            .unwrap()
            .is_immutable());
        assert!(SumdbPath::parse("tile/8/0/x001/234")
            .unwrap()
            .is_immutable());
        assert!(SumdbPath::parse("tile/8/data/005").unwrap().is_immutable());
        assert!(!SumdbPath::parse("tile/8/1/123.p/17")
            .unwrap()
            .is_immutable());
        for bad in [
            "",
            "tile/8/0/1234",
            "tile/8/0/x01/234",
            "tile/0/0/123",
            "tile/8/0/123.p/0",
            "tile/8/0/123.p/256",
            "tile/8/0/123.p/017",
            "lookup/noversion",
            "lookup/Example.com/x@v1.0.0",
            "tile/8/../123",
        ] {
            assert!(SumdbPath::parse(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("sum.golang.org").is_ok());
        for bad in [
            "../x",
            "sum..golang.org",
            ".sum.golang.org",
            "sum.golang.org.",
            "-a.b",
            "a-.b",
            "localhost",
            "Sum.golang.org",
            "",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
