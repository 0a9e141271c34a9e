//! `MODULE[@RANGE]` targets and the rules that block them.

use std::fmt;
use std::str::FromStr;

use goproxy_protocol::path::check_path;
use serde::{Deserialize, Serialize};

use super::{BlockError, VersionRange};

/// Longest reason accepted, in bytes (after trimming). It is sent in every 403 for the
/// blocked module, so a sentence or two, not a document.
pub const MAX_REASON_BYTES: usize = 500;

/// What a block applies to: a module, and optionally some of its versions. Written
/// `MODULE` or `MODULE@RANGE`; the displayed form is also the identity that `unblock`
/// names, so two rules with the same target are the same rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlockTarget {
    /// The module path, exactly as Go spells it (paths are case-sensitive).
    pub module: String,
    /// `None` blocks every version and every list or `@latest` query of the module.
    pub range: Option<VersionRange>,
}

impl FromStr for BlockTarget {
    type Err = BlockError;

    fn from_str(text: &str) -> Result<Self, BlockError> {
        // `@` is not a module path character, so the first one ends the path.
        let (module, range) = match text.split_once('@') {
            Some((module, range)) => (module, Some(range.parse::<VersionRange>()?)),
            None => (text, None),
        };
        check_path(module)?;
        Ok(BlockTarget {
            module: module.to_string(),
            range,
        })
    }
}

impl fmt::Display for BlockTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_target(f, &self.module, self.range.as_ref())
    }
}

/// An operator's block: a module (and optionally a version range) with the reason shown
/// to clients. Deserializing validates like parsing, so a rule read back from the log or
/// a snapshot is as well-formed as one typed on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct BlockRule {
    /// The module path, exactly as Go spells it.
    pub module: String,
    /// `None` blocks the whole module, lists and `@latest` included.
    pub range: Option<VersionRange>,
    /// Why, for the 403 body: trimmed, non-empty, at most [`MAX_REASON_BYTES`], one line.
    pub reason: String,
}

impl BlockRule {
    /// Parses the command-line form: `target` is `MODULE` or `MODULE@RANGE`.
    pub fn parse(target: &str, reason: &str) -> Result<Self, BlockError> {
        Self::new(target.parse()?, reason)
    }

    /// A rule for an already parsed target; checks the reason.
    pub fn new(target: BlockTarget, reason: &str) -> Result<Self, BlockError> {
        Ok(BlockRule {
            module: target.module,
            range: target.range,
            reason: check_reason(reason)?,
        })
    }

    /// Re-checks a rule built field by field.
    pub fn validate(&self) -> Result<(), BlockError> {
        check_path(&self.module)?;
        check_reason(&self.reason).map(drop)
    }

    /// The target this rule blocks (its identity).
    pub fn target(&self) -> BlockTarget {
        BlockTarget {
            module: self.module.clone(),
            range: self.range.clone(),
        }
    }

    /// Whether this rule has `target` as its identity.
    pub fn is_target(&self, target: &BlockTarget) -> bool {
        self.module == target.module && self.range == target.range
    }

    /// Whether this rule blocks a request for `module` at `version` (`None`: a list or
    /// `@latest`, blocked only by a rule without a range).
    pub fn blocks(&self, module: &str, version: Option<&str>) -> bool {
        self.module == module && self.blocks_version(version)
    }

    /// [`Self::blocks`] for a request already known to be for this rule's module.
    pub(super) fn blocks_version(&self, version: Option<&str>) -> bool {
        match (&self.range, version) {
            (None, _) => true,
            (Some(range), Some(version)) => range.matches(version),
            (Some(_), None) => false,
        }
    }
}

/// Displays the target, `MODULE[@RANGE]`, as typed on the command line; the reason is
/// the separate `--reason`.
impl fmt::Display for BlockRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_target(f, &self.module, self.range.as_ref())
    }
}

/// `MODULE[@RANGE]`, shared by targets and rules so both display alike.
fn write_target(
    f: &mut fmt::Formatter<'_>,
    module: &str,
    range: Option<&VersionRange>,
) -> fmt::Result {
    f.write_str(module)?;
    match range {
        Some(range) => write!(f, "@{range}"),
        None => Ok(()),
    }
}

/// The serialized shape of [`BlockRule`], checked on the way in.
#[derive(Deserialize)]
struct RawRule {
    module: String,
    range: Option<VersionRange>,
    reason: String,
}

impl TryFrom<RawRule> for BlockRule {
    type Error = BlockError;

    fn try_from(raw: RawRule) -> Result<Self, BlockError> {
        check_path(&raw.module)?;
        let target = BlockTarget {
            module: raw.module,
            range: raw.range,
        };
        BlockRule::new(target, &raw.reason)
    }
}

/// Trims `reason` and checks it fits a one-line 403 body.
fn check_reason(reason: &str) -> Result<String, BlockError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(BlockError::EmptyReason);
    }
    if reason.len() > MAX_REASON_BYTES {
        return Err(BlockError::ReasonTooLong {
            len: reason.len(),
            max: MAX_REASON_BYTES,
        });
    }
    if let Some(c) = reason.chars().find(|c| c.is_control()) {
        return Err(BlockError::ReasonControl(c));
    }
    Ok(reason.to_string())
}
