//! One comparator of a version range: an operator and a canonical version bound.

use std::cmp::Ordering;
use std::fmt;

use goproxy_protocol::semver;

use super::{shown, BlockError};

/// A comparison operator. The declaration order is the display order within a range:
/// lower bounds, exact versions, upper bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `>v`: strictly after.
    Gt,
    /// `>=v`: at or after.
    Ge,
    /// `v` or `=v`: the same version (build metadata aside).
    Eq,
    /// `<=v`: at or before.
    Le,
    /// `<v`: strictly before.
    Lt,
}

impl Op {
    /// The prefix written before the version; an exact version is written bare.
    fn symbol(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "",
            Op::Le => "<=",
            Op::Lt => "<",
        }
    }

    /// Whether a version ordered `order` relative to the bound satisfies this operator.
    fn accepts(self, order: Ordering) -> bool {
        match self {
            Op::Gt => order == Ordering::Greater,
            Op::Ge => order != Ordering::Less,
            Op::Eq => order == Ordering::Equal,
            Op::Le => order != Ordering::Greater,
            Op::Lt => order == Ordering::Less,
        }
    }

    /// Splits a leading operator off `text`; none means `=`.
    fn split(text: &str) -> (Op, &str) {
        // Two-character operators first, so `>=` is not read as `>` then `=v…`.
        const PREFIXES: [(&str, Op); 5] = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ];
        PREFIXES
            .iter()
            .find_map(|&(prefix, op)| text.strip_prefix(prefix).map(|rest| (op, rest)))
            .unwrap_or((Op::Eq, text))
    }
}

/// One operator and a canonical version bound.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Comparator {
    pub(super) op: Op,
    /// Canonical (checked on parse): the only form proxies serve, so the displayed rule
    /// reads like the versions it blocks.
    pub(super) version: String,
}

impl Comparator {
    /// The operator.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The bound, a canonical semantic version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether `version` (assumed valid semver) satisfies this comparator.
    pub(super) fn accepts(&self, version: &str) -> bool {
        self.op.accepts(semver::compare(version, &self.version))
    }

    /// Parses one comma-separated piece of `range`.
    pub(super) fn parse(piece: &str, range: &str) -> Result<Self, BlockError> {
        let (op, version) = Op::split(piece.trim());
        let version = version.trim_start();
        if version.is_empty() {
            return Err(BlockError::EmptyComparator {
                range: shown(range),
            });
        }
        if !semver::is_valid(version) {
            return Err(BlockError::NotSemver {
                version: shown(version),
            });
        }
        if !semver::is_canonical(version) {
            return Err(BlockError::NotCanonical {
                version: shown(version),
                canonical: semver::canonical_version(version).unwrap_or_default(),
            });
        }
        Ok(Comparator {
            op,
            version: version.to_string(),
        })
    }

    /// Display order: by version, then operator (lower bounds before upper ones).
    pub(super) fn display_order(&self, other: &Self) -> Ordering {
        semver::compare(&self.version, &other.version)
            .then_with(|| self.version.cmp(&other.version))
            .then_with(|| self.op.cmp(&other.op))
    }
}

impl fmt::Display for Comparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.op.symbol(), self.version)
    }
}
