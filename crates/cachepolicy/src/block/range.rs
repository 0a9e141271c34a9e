//! Version ranges: one exact version, or comparators joined by commas, all of which must
//! hold. Ordering is Go's (`golang.org/x/mod/semver`): pre-releases (and so pseudo-versions
//! built on a pre-release) sort before their release, build metadata such as
//! `+incompatible` is ignored.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use goproxy_protocol::semver;
use serde::{Deserialize, Serialize};

use super::{shown, BlockError, Comparator, Op};

/// Most comparators in one range. Two bound any interval; the slack admits redundant
/// spellings, the cap keeps the per-request cost of a rule fixed.
pub const MAX_COMPARATORS: usize = 8;

/// Longest range text accepted, in bytes: [`MAX_COMPARATORS`] pseudo-versions fit easily.
pub const MAX_RANGE_LEN: usize = 1024;

/// Comparators that must all hold. Parsed from `v1.2.3`, `=v1.2.3`, `<v1.2.5`,
/// `>=v1.0.0,<v1.2.5`, ...; kept sorted and without duplicates so that two spellings of
/// the same comparators display (and so identify a rule) the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VersionRange {
    comparators: Vec<Comparator>,
}

impl VersionRange {
    /// Whether `version` lies in the range. A version that is not valid semver never
    /// matches, whatever the bounds.
    pub fn matches(&self, version: &str) -> bool {
        semver::is_valid(version) && self.comparators.iter().all(|c| c.accepts(version))
    }

    /// The comparators, in display order.
    pub fn comparators(&self) -> &[Comparator] {
        &self.comparators
    }

    /// Refuses bounds that cross (`>v1.2.0,<v1.0.0`, `v1.0.0,v1.1.0`). Every comparator is
    /// an interval, so the range is empty when the tightest lower bound passes the tightest
    /// upper one. Open intervals with no version between their ends (rare pre-release
    /// spellings) are not detected.
    fn check_satisfiable(&self, text: &str) -> Result<(), BlockError> {
        let mut lower: Option<(&str, bool)> = None; // (bound, exclusive)
        let mut upper: Option<(&str, bool)> = None;
        for c in &self.comparators {
            let exclusive = matches!(c.op, Op::Gt | Op::Lt);
            if matches!(c.op, Op::Gt | Op::Ge | Op::Eq) {
                lower = Some(tighter(lower, (&c.version, exclusive), Ordering::Greater));
            }
            if matches!(c.op, Op::Lt | Op::Le | Op::Eq) {
                upper = Some(tighter(upper, (&c.version, exclusive), Ordering::Less));
            }
        }
        let empty = match (lower, upper) {
            (Some((lo, lo_ex)), Some((hi, hi_ex))) => match semver::compare(lo, hi) {
                Ordering::Greater => true,
                Ordering::Equal => lo_ex || hi_ex,
                Ordering::Less => false,
            },
            _ => false,
        };
        if empty {
            return Err(BlockError::Unsatisfiable { range: shown(text) });
        }
        Ok(())
    }
}

/// The tighter of two bounds: further in direction `toward`, exclusive on a tie.
fn tighter<'a>(
    current: Option<(&'a str, bool)>,
    next: (&'a str, bool),
    toward: Ordering,
) -> (&'a str, bool) {
    let Some(current) = current else {
        return next;
    };
    match semver::compare(next.0, current.0) {
        Ordering::Equal => (current.0, current.1 || next.1),
        order if order == toward => next,
        _ => current,
    }
}

impl FromStr for VersionRange {
    type Err = BlockError;

    fn from_str(text: &str) -> Result<Self, BlockError> {
        if text.trim().is_empty() {
            return Err(BlockError::EmptyRange);
        }
        if text.len() > MAX_RANGE_LEN {
            return Err(BlockError::RangeTooLong {
                len: text.len(),
                max: MAX_RANGE_LEN,
            });
        }
        let count = text.split(',').count();
        if count > MAX_COMPARATORS {
            return Err(BlockError::TooManyComparators {
                count,
                max: MAX_COMPARATORS,
            });
        }
        let mut comparators = text
            .split(',')
            .map(|piece| Comparator::parse(piece, text))
            .collect::<Result<Vec<_>, _>>()?;
        comparators.sort_by(Comparator::display_order);
        comparators.dedup();
        let range = VersionRange { comparators };
        range.check_satisfiable(text)?;
        Ok(range)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.comparators.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for VersionRange {
    type Error = BlockError;

    fn try_from(text: String) -> Result<Self, BlockError> {
        text.parse()
    }
}

impl From<VersionRange> for String {
    fn from(range: VersionRange) -> String {
        range.to_string()
    }
}
