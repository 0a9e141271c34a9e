//! What a warm job fetches, parsed from operator input: `MODULE@VERSION` arguments or a list
//! of them, a `go.mod`, or a `go.sum`.
//!
//! Every parser bounds its input ([`MAX_INPUT_BYTES`]) and its output ([`MAX_TARGETS`]),
//! reports the first problem with its line number, and never panics: the text may come
//! from anyone who can submit a job. Versions must be exact (canonical semver, including
//! pseudo-versions and `+incompatible`): queries such as `latest` would need the internet
//! that the job is preparing to lose, so they are refused rather than resolved.

mod gomod;
mod gosum;
mod lex;
mod list;
mod target;

pub use gomod::{parse_go_mod, GoMod, Replace, Replacement};
pub use gosum::{parse_go_sum, SumLine};
pub use list::parse_list;
pub use target::{Artifact, Artifacts, Target};

/// Largest input accepted by a parser, in bytes. The biggest real `go.sum` files are a few
/// hundred KiB; 4 MiB leaves room while keeping a hostile job submission cheap to refuse.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;

/// Most targets one job may name or discover. Real build lists have hundreds to a few
/// thousand module versions; the cap bounds memory for a hostile `go.mod` or graph.
pub const MAX_TARGETS: usize = 100_000;

/// Longest piece of input quoted back in an error message, in characters.
const SHOWN_CHARS: usize = 120;

/// Why operator input cannot be turned into targets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The input is larger than [`MAX_INPUT_BYTES`].
    #[error("input is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The input names more than [`MAX_TARGETS`] entries.
    #[error("line {line}: more than {max} entries")]
    TooManyTargets {
        /// Line of the first entry over the limit.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// A `MODULE@VERSION` (or module path and version) is not acceptable.
    #[error("{text:?}: {reason}")]
    Target {
        /// The offending text (truncated).
        text: String,
        /// Which rule.
        reason: String,
    },
    /// A line is malformed; `reason` says how.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl SpecError {
    /// Places a line-less error at `line`.
    fn at(self, line: usize) -> SpecError {
        match self {
            SpecError::Line { .. } | SpecError::TooManyTargets { .. } => self,
            other => SpecError::Line {
                line,
                reason: other.to_string(),
            },
        }
    }
}

/// Refuses input over [`MAX_INPUT_BYTES`] before any work is done on it.
fn check_size(text: &str) -> Result<(), SpecError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(SpecError::TooLarge {
            size: text.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    Ok(())
}

/// Refuses the entry on `line` if it would be entry number `count + 1` over the limit.
fn check_count(count: usize, line: usize) -> Result<(), SpecError> {
    if count >= MAX_TARGETS {
        return Err(SpecError::TooManyTargets {
            line,
            max: MAX_TARGETS,
        });
    }
    Ok(())
}

/// Truncates hostile input for error messages.
fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
