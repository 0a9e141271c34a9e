//! Module zip validation (the rules of `golang.org/x/mod/zip`) and the Go `h1:` hash.
//!
//! Declared sizes in a zip are not trusted: every file is decompressed and counted while
//! it is hashed, so a zip bomb fails at the limit instead of filling memory or disk.

use std::collections::HashMap;
use std::io::{Read, Seek};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::path::{check_path_elems, shown, Kind};

/// Largest module zip, compressed or uncompressed.
pub const MAX_ZIP_SIZE: u64 = 500 << 20;
pub use crate::artifact::MAX_GO_MOD_SIZE;
/// Unix file-type bits in a zip entry's mode, and the symlink type.
const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;

/// Why a module zip is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    /// Not a readable zip archive.
    #[error("not a valid zip archive: {0}")]
    Malformed(String),
    /// An entry's name breaks a rule.
    #[error("zip entry {name:?}: {reason}")]
    BadEntry {
        /// The entry name (truncated).
        name: String,
        /// Which rule.
        reason: String,
    },
    /// Two entries are equal under case folding.
    #[error("zip entries {0:?} and {1:?} collide under case folding")]
    CaseCollision(String, String),
    /// Content over a size limit.
    #[error("zip content exceeds {limit} bytes ({what})")]
    TooLarge {
        /// What is too large.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// The zip's go.mod differs from the `.mod` served for this version.
    #[error("go.mod in the zip differs from the .mod file")]
    GoModMismatch,
}

/// What a valid zip contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// Go `h1:` dirhash (as in go.sum).
    pub h1: String,
    /// Number of files.
    pub files: u64,
    /// Total decompressed bytes.
    pub uncompressed_bytes: u64,
}

/// Validates a module zip for `module@version` against its `.mod` bytes and hashes it.
pub fn check_zip<R: Read + Seek>(
    reader: R,
    module: &str,
    version: &str,
    go_mod: &[u8],
) -> Result<ZipSummary, ZipError> {
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|e| ZipError::Malformed(e.to_string()))?;
    let prefix = format!("{module}@{version}/");
    let mut folded: HashMap<String, String> = HashMap::new();
    let mut lines: Vec<(String, String)> = Vec::with_capacity(archive.len());
    let mut total = 0u64;
    let mut root_go_mod: Option<Vec<u8>> = None;
    for i in 0..archive.len() {
        let mut file = archive
            .by_index(i)
            .map_err(|e| ZipError::Malformed(e.to_string()))?;
        let name = file.name().to_string();
        let bad = |reason: String| ZipError::BadEntry {
            name: shown(&name),
            reason,
        };
        if name.contains('\n') {
            return Err(bad("newline in file name".into()));
        }
        let rel = name
            .strip_prefix(&prefix)
            .ok_or_else(|| bad(format!("not under {prefix:?}")))?;
        let is_dir = rel.ends_with('/') || rel.is_empty();
        let rel_clean = rel.trim_end_matches('/');
        if !rel_clean.is_empty() {
            check_path_elems(rel_clean, Kind::File).map_err(bad)?;
        }
        if file.unix_mode().is_some_and(|m| m & S_IFMT == S_IFLNK) {
            return Err(bad("symbolic links are not allowed".into()));
        }
        if !is_dir {
            let lower = rel_clean.to_lowercase();
            if let Some(previous) = folded.insert(lower, name.clone()) {
                return Err(ZipError::CaseCollision(shown(&previous), shown(&name)));
            }
            if rel_clean.ends_with("/go.mod") && !rel_clean.starts_with("vendor/") {
                return Err(bad("go.mod is only allowed at the module root".into()));
            }
        }
        let keep = (rel_clean == "go.mod").then(Vec::new);
        let (digest, size, kept) = hash_entry(&mut file, MAX_ZIP_SIZE - total, keep, &name)?;
        total += size;
        if let Some(bytes) = kept {
            root_go_mod = Some(bytes);
        }
        lines.push((name, digest));
    }
    check_go_mod(root_go_mod.as_deref(), go_mod, module)?;
    lines.sort();
    let mut summary = Sha256::new();
    for (name, digest) in &lines {
        summary.update(format!("{digest}  {name}\n"));
    }
    let h1 = format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(summary.finalize())
    );
    Ok(ZipSummary {
        h1,
        files: lines.len() as u64,
        uncompressed_bytes: total,
    })
}

/// Decompresses one entry, hashing it, failing beyond `budget` bytes. Keeps the bytes
/// when `keep` is set (the root go.mod), bounded by the go.mod limit.
fn hash_entry(
    file: &mut impl Read,
    budget: u64,
    mut keep: Option<Vec<u8>>,
    name: &str,
) -> Result<(String, u64, Option<Vec<u8>>), ZipError> {
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 32 * 1024];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| ZipError::Malformed(format!("{}: {e}", shown(name))))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > budget {
            return Err(ZipError::TooLarge {
                what: "total uncompressed size".into(),
                limit: MAX_ZIP_SIZE,
            });
        }
        if let Some(kept) = keep.as_mut() {
            if size > MAX_GO_MOD_SIZE {
                return Err(ZipError::TooLarge {
                    what: "go.mod".into(),
                    limit: MAX_GO_MOD_SIZE,
                });
            }
            kept.extend_from_slice(&buf[..n]);
        }
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size, keep))
}

/// The root go.mod must be byte-identical to `.mod`; without one, `.mod` must be the
/// synthesized `module <path>` file.
fn check_go_mod(in_zip: Option<&[u8]>, go_mod: &[u8], module: &str) -> Result<(), ZipError> {
    match in_zip {
        Some(bytes) if bytes == go_mod => Ok(()),
        Some(_) => Err(ZipError::GoModMismatch),
        None => {
            let synthesized = crate::artifact::module_directive(&String::from_utf8_lossy(go_mod));
            if synthesized.as_deref() == Some(module) {
                Ok(())
            } else {
                Err(ZipError::GoModMismatch)
            }
        }
    }
}
