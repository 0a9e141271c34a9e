//! A list of `MODULE@VERSION`, one a line.

use super::{check_count, check_size, shown, SpecError, Target};

/// Starts a comment that runs to the end of the line.
const COMMENT: char = '#';

/// Parses one `MODULE@VERSION` a line; `#` comments and blank lines are ignored.
pub fn parse_list(text: &str) -> Result<Vec<Target>, SpecError> {
    check_size(text)?;
    let mut targets = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split(COMMENT).next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        if content.contains(char::is_whitespace) {
            return Err(SpecError::Line {
                line,
                reason: format!("expected one MODULE@VERSION, found {:?}", shown(content)),
            });
        }
        check_count(targets.len(), line)?;
        targets.push(Target::parse(content).map_err(|e| e.at(line))?);
    }
    Ok(targets)
}
