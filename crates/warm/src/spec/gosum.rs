//! A `go.sum`: the exact artifacts a build verified, so no walk is needed.

use super::{check_count, check_size, shown, Artifacts, SpecError, Target};

/// Suffix of a go.sum version field whose hash covers only the `.mod`.
const GO_MOD_SUFFIX: &str = "/go.mod";

/// One go.sum line: `module version[/go.mod] h1:…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumLine {
    /// The module version.
    pub target: Target,
    /// True for a `/go.mod` line: the version is in the module graph but not built, so
    /// only its `.mod` is needed.
    pub go_mod_only: bool,
    /// The recorded hash (`h1:…`), kept so a caller can check what it fetched.
    pub hash: String,
}

impl SumLine {
    /// What to fetch for this line: the `.mod` alone, or `.info`, `.mod` and `.zip`.
    pub fn artifacts(&self) -> Artifacts {
        if self.go_mod_only {
            Artifacts::MOD
        } else {
            Artifacts::ALL
        }
    }
}

/// Parses a go.sum. Blank lines are skipped; anything else must be a well-formed line.
pub fn parse_go_sum(text: &str) -> Result<Vec<SumLine>, SpecError> {
    check_size(text)?;
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let fields: Vec<&str> = raw.split_whitespace().take(4).collect();
        if fields.is_empty() {
            continue;
        }
        let [module, version, hash] = fields[..] else {
            return Err(SpecError::Line {
                line,
                reason: format!(
                    "expected `module version[/go.mod] h1:hash`, found {:?}",
                    shown(raw)
                ),
            });
        };
        check_count(lines.len(), line)?;
        let (version, go_mod_only) = match version.strip_suffix(GO_MOD_SUFFIX) {
            Some(version) => (version, true),
            None => (version, false),
        };
        let target = Target::new(module, version).map_err(|e| e.at(line))?;
        if !is_hash(hash) {
            return Err(SpecError::Line {
                line,
                reason: format!("{:?} is not a hash such as h1:…", shown(hash)),
            });
        }
        lines.push(SumLine {
            target,
            go_mod_only,
            hash: hash.to_string(),
        });
    }
    Ok(lines)
}

/// `algorithm:value`, as the go command writes it (`h1:` + base64).
fn is_hash(text: &str) -> bool {
    text.split_once(':').is_some_and(|(alg, value)| {
        !alg.is_empty() && alg.bytes().all(|b| b.is_ascii_alphanumeric()) && !value.is_empty()
    })
}
