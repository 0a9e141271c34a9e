//! [`Target`] (one module version) and the [`Artifact`]s a proxy serves for it.

use std::fmt;
use std::str::FromStr;

use goproxy_protocol::{semver, version::check_version};
use serde::{Deserialize, Serialize};

use super::{shown, SpecError};

/// One module version, validated: a module path and a canonical version that agree (the
/// major-version suffix rule of `module.Check`). Displayed as `module@version`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Target {
    /// Module path, e.g. `golang.org/x/text`.
    pub module: String,
    /// Canonical version, e.g. `v0.7.0`, `v0.0.0-20201130134442-10cb98267c6c`.
    pub version: String,
}

/// Longest version accepted (real ones, pseudo-versions included, are well under 100 bytes;
/// a job's progress records each target, and a log entry is bounded).
pub const MAX_VERSION_BYTES: usize = 128;

impl Target {
    /// Validates a module path and an exact version.
    pub fn new(module: &str, version: &str) -> Result<Target, SpecError> {
        let refuse = |reason: String| SpecError::Target {
            text: shown(&format!("{module}@{version}")),
            reason,
        };
        if version.len() > MAX_VERSION_BYTES {
            return Err(refuse(format!(
                "a version of {} bytes: at most {MAX_VERSION_BYTES}",
                version.len()
            )));
        }
        if !semver::is_valid(version) {
            return Err(refuse(format!(
                "{:?} is not a version: queries such as `latest`, branch names and \
                 commit hashes are not resolved here; give an exact version such as v1.2.3",
                shown(version)
            )));
        }
        if !semver::is_canonical(version) {
            let exact = semver::canonical_version(version).unwrap_or_default();
            return Err(refuse(format!(
                "{version:?} is not an exact version (Go reads a short form as a query); \
                 did you mean {exact}?"
            )));
        }
        check_version(module, version).map_err(|e| refuse(e.to_string()))?;
        Ok(Target {
            module: module.to_string(),
            version: version.to_string(),
        })
    }

    /// Parses `MODULE@VERSION`.
    pub fn parse(text: &str) -> Result<Target, SpecError> {
        match text.split_once('@') {
            Some((module, version)) => Target::new(module, version),
            None => Err(SpecError::Target {
                text: shown(text),
                reason: "expected MODULE@VERSION".into(),
            }),
        }
    }
}

impl FromStr for Target {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Target, SpecError> {
        Target::parse(text)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.module, self.version)
    }
}

/// One file the proxy serves for a module version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Artifact {
    /// `<version>.info`: the version's JSON metadata.
    Info,
    /// `<version>.mod`: its go.mod, read by the graph walk.
    Mod,
    /// `<version>.zip`: its source, needed only to build it.
    Zip,
}

impl Artifact {
    /// All artifacts, in the order a go command would need them.
    pub const ALL: [Artifact; 3] = [Artifact::Info, Artifact::Mod, Artifact::Zip];

    /// The file-name extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Artifact::Info => ".info",
            Artifact::Mod => ".mod",
            Artifact::Zip => ".zip",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// A set of [`Artifact`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Artifacts(u8);

impl Artifacts {
    /// No artifact.
    pub const NONE: Artifacts = Artifacts(0);
    /// Only the `.mod`: a version in the module graph whose source is not built.
    pub const MOD: Artifacts = Artifacts(1 << Artifact::Mod as u8);
    /// `.info`, `.mod` and `.zip`: a version that is built.
    pub const ALL: Artifacts = Artifacts(0b111);

    /// This set plus `artifact`.
    pub fn with(self, artifact: Artifact) -> Artifacts {
        Artifacts(self.0 | artifact.bit())
    }

    /// This set plus all of `other`.
    pub fn union(self, other: Artifacts) -> Artifacts {
        Artifacts(self.0 | other.0)
    }

    /// True if `artifact` is in the set.
    pub fn contains(self, artifact: Artifact) -> bool {
        self.0 & artifact.bit() != 0
    }

    /// The members, in [`Artifact::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Artifact> {
        Artifact::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Artifact> for Artifacts {
    fn from_iter<I: IntoIterator<Item = Artifact>>(iter: I) -> Artifacts {
        iter.into_iter().fold(Artifacts::NONE, Artifacts::with)
    }
}
