//! `module.Check`: a version must be valid and agree with the path's major suffix.

use crate::path::{check_path, shown, split_path_version, PathError};
use crate::semver;

/// Why a version does not fit a module path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The module path itself is invalid.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Not a semantic version, or not in canonical form.
    #[error("{module}@{version}: invalid version: {reason}")]
    Invalid {
        /// Module path.
        module: String,
        /// Offending version (truncated).
        version: String,
        /// Which rule.
        reason: String,
    },
}

/// Checks that `version` is a canonical semantic version that matches `module`'s major
/// version suffix (`+incompatible` only for v2+ of paths without a suffix).
pub fn check_version(module: &str, version: &str) -> Result<(), VersionError> {
    check_path(module)?;
    let invalid = |reason: String| VersionError::Invalid {
        module: module.to_string(),
        version: shown(version),
        reason,
    };
    if !semver::is_valid(version) {
        return Err(invalid("not a semantic version".into()));
    }
    if !semver::is_canonical(version) {
        let canonical = semver::canonical_version(version).unwrap_or_default();
        return Err(invalid(format!("not canonical (should be {canonical})")));
    }
    check_major_suffix(module, version)
}

/// The last rule of [`check_version`], for a caller that has already checked `module` with
/// `check_path` and `version` with `semver::is_canonical` (route parsing, on every request).
pub(crate) fn check_major_suffix(module: &str, version: &str) -> Result<(), VersionError> {
    let (_, path_major) = split_path_version(module).unwrap_or((module, ""));
    check_path_major(version, path_major).map_err(|reason| VersionError::Invalid {
        module: module.to_string(),
        version: shown(version),
        reason,
    })
}

/// `module.CheckPathMajor`.
fn check_path_major(version: &str, path_major: &str) -> Result<(), String> {
    let path_major = path_major
        .strip_suffix("-unstable")
        .filter(|_| path_major.starts_with(".v"))
        .unwrap_or(path_major);
    if version.starts_with("v0.0.0-") && path_major == ".v1" {
        return Ok(()); // Old pseudo-versions for gopkg.in/x.v1, accepted by the go command.
    }
    let major = semver::major(version);
    let incompatible = semver::build(version) == "+incompatible";
    if path_major.is_empty() {
        return match (major, incompatible) {
            ("v0" | "v1", false) => Ok(()),
            ("v0" | "v1", true) => {
                Err("+incompatible is only valid for major versions 2 and above".into())
            }
            (_, true) => Ok(()),
            (other, false) => Err(format!(
                "should be v0 or v1, not {other} (a v2+ module path ends in /vN)"
            )),
        };
    }
    if incompatible {
        return Err(format!(
            "+incompatible is invalid for a path with suffix {path_major}"
        ));
    }
    if major == &path_major[1..] {
        Ok(())
    } else {
        Err(format!("should be {}, not {major}", &path_major[1..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_must_match_the_major_suffix() {
        let ok = [
            ("example.com/x", "v1.2.3"),
            ("example.com/x", "v0.1.0"),
            ("example.com/x", "v2.0.0+incompatible"),
            ("example.com/x/v2", "v2.1.0"),
            ("gopkg.in/yaml.v3", "v3.0.1"),
            ("gopkg.in/check.v1", "v0.0.0-20161208181325-20d25e280405"),
            ("example.com/x", "v0.0.0-20220101000000-abcdefabcdef"),
        ];
        for (m, v) in ok {
            check_version(m, v).unwrap_or_else(|e| panic!("{m}@{v}: {e}"));
        }
        let bad = [
            ("example.com/x", "v2.0.0"),
            ("example.com/x/v2", "v1.0.0"),
            ("example.com/x/v2", "v2.0.0+incompatible"),
            ("example.com/x", "v1.0.0+incompatible"),
            ("example.com/x", "v1.0"),
            ("example.com/x", "1.0.0"),
            ("example.com/x", "v1.0.0+meta"),
            ("gopkg.in/yaml.v3", "v2.0.0"),
        ];
        for (m, v) in bad {
            assert!(check_version(m, v).is_err(), "{m}@{v} accepted");
        }
    }
}
