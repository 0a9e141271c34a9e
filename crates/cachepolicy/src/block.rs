//! Block rules: an operator blocks a module, or some of its versions, cluster-wide
//! (`goproxy-ha block MODULE[@RANGE] --reason TEXT`); blocked requests answer 403 with the
//! reason.
//!
//! - `comparator`: [`Comparator`], an [`Op`] and a canonical version bound.
//! - `range`: [`VersionRange`], an exact version or comparators (`>=v1.0.0,<v1.2.5`) in
//!   Go's semver order.
//! - `rule`: [`BlockTarget`] (`MODULE[@RANGE]`, also the identity `unblock` names) and
//!   [`BlockRule`] (a target with its reason), validated on parse and on deserialize.
//! - `list`: [`BlockList`], the rules compiled for the per-request check.

mod comparator;
mod list;
mod range;
mod rule;

pub use comparator::{Comparator, Op};
pub use list::BlockList;
pub use range::{VersionRange, MAX_COMPARATORS, MAX_RANGE_LEN};
pub use rule::{BlockRule, BlockTarget, MAX_REASON_BYTES};

use goproxy_protocol::path::PathError;

/// Why a block rule, target or range is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The module path is not a valid Go module path.
    #[error(transparent)]
    Module(#[from] PathError),
    /// `MODULE@` with nothing after the `@`.
    #[error("empty version range after '@'")]
    EmptyRange,
    /// The range text is longer than [`MAX_RANGE_LEN`].
    #[error("version range is {len} bytes, longer than {max}")]
    RangeTooLong {
        /// Length of the range text in bytes.
        len: usize,
        /// [`MAX_RANGE_LEN`].
        max: usize,
    },
    /// A comma with nothing on one side (`>=v1.0.0,`), or an operator without a version.
    #[error("empty comparator in version range {range:?}")]
    EmptyComparator {
        /// The whole range (truncated).
        range: String,
    },
    /// More comparators than [`MAX_COMPARATORS`].
    #[error("{count} comparators in a version range, at most {max} allowed")]
    TooManyComparators {
        /// How many were given.
        count: usize,
        /// [`MAX_COMPARATORS`].
        max: usize,
    },
    /// A bound is not a semantic version (`1.2.3`, `latest`, `v1.2.3.4`).
    #[error("{version:?} is not a semantic version (want vMAJOR.MINOR.PATCH)")]
    NotSemver {
        /// The offending text (truncated).
        version: String,
    },
    /// A bound is a semantic version but not in the canonical form proxies serve.
    #[error("version {version:?} is not canonical (write {canonical})")]
    NotCanonical {
        /// The offending version (truncated).
        version: String,
        /// Its canonical form.
        canonical: String,
    },
    /// The bounds cross, so the range could never match (`>v1.2.0,<v1.0.0`).
    #[error("version range {range:?} matches no version")]
    Unsatisfiable {
        /// The whole range (truncated).
        range: String,
    },
    /// The reason is empty or only whitespace.
    #[error("a block needs a reason (it is shown to clients in the 403)")]
    EmptyReason,
    /// The reason is longer than [`MAX_REASON_BYTES`].
    #[error("reason is {len} bytes, longer than {max}")]
    ReasonTooLong {
        /// Length of the trimmed reason in bytes.
        len: usize,
        /// [`MAX_REASON_BYTES`].
        max: usize,
    },
    /// The reason contains a control character (newline, tab, escape, ...).
    #[error("reason contains control character {0:?}")]
    ReasonControl(char),
}

/// Truncates operator input for error messages, on a character boundary.
fn shown(text: &str) -> String {
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

#[cfg(test)]
mod tests;
