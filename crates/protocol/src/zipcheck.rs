//! Module zip validation (the rules of `golang.org/x/mod/zip.CheckZip` plus the size
//! checks of Go's `archive/zip` reader) and the Go `h1:` hash of the zip.
//!
//! Declared sizes in a zip are not trusted: every entry is decompressed and counted while
//! it is hashed, so a zip bomb fails at the limit instead of filling memory or disk, and
//! an entry whose real size differs from its declared size is refused (as Go refuses it).

use std::io::{Read, Seek};

use sha2::{Digest, Sha256};

use crate::dirhash::{hash1, FileDigest};
use crate::path::shown;
use crate::version::{check_version, VersionError};
use crate::zipentry::{check_entry, Collisions};
use crate::zipraw::{has_unicode_path, more_central_records};

/// Largest module zip, compressed (checked by the caller) or uncompressed.
pub const MAX_ZIP_SIZE: u64 = 500 << 20;
pub use crate::artifact::MAX_GO_MOD_SIZE;
/// Largest root `LICENSE` file (`golang.org/x/mod/zip.MaxLICENSE`).
pub const MAX_LICENSE_SIZE: u64 = 16 << 20;
/// Read buffer for hashing entries.
const CHUNK: usize = 32 << 10;

/// Why a module zip is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    /// The module path or version itself is invalid.
    #[error(transparent)]
    Module(#[from] VersionError),
    /// Not a readable zip archive (truncated, corrupt, bad checksum).
    #[error("not a valid zip archive: {0}")]
    Malformed(String),
    /// An entry's name or type breaks a rule.
    #[error("zip entry {name:?}: {reason}")]
    BadEntry {
        /// The entry name (truncated).
        name: String,
        /// Which rule.
        reason: String,
    },
    /// Two entries are equal under case folding, or one name is both file and directory.
    #[error("zip entries {0:?} and {1:?} collide (case-insensitive file systems)")]
    CaseCollision(String, String),
    /// Several entries share one name (the central directory has more records than names).
    #[error("zip has several entries with the same name")]
    Duplicate,
    /// Content over a size limit.
    #[error("{what} exceeds {limit} bytes")]
    TooLarge {
        /// What is too large.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// The zip's go.mod differs from the `.mod` served for this version.
    #[error("go.mod in the zip differs from the .mod file")]
    GoModMismatch,
    /// The zip has no go.mod and `.mod` is not the synthesized `module <path>`.
    #[error(".mod is not `module {0}`, but the zip has no go.mod to take it from")]
    NotSynthesized(String),
}

/// What a valid zip contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// Go `h1:` hash (as in go.sum).
    pub h1: String,
    /// Number of entries hashed (files and directory entries, as `dirhash.HashZip`).
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
    check_version(module, version)?;
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|e| ZipError::Malformed(e.to_string()))?;
    let prefix = format!("{module}@{version}/");
    let mut collisions = Collisions::default();
    let mut digests = Vec::with_capacity(archive.len());
    let mut total = 0u64;
    let mut root_go_mod: Option<Vec<u8>> = None;
    for i in 0..archive.len() {
        let mut file = archive
            .by_index(i)
            .map_err(|e| ZipError::Malformed(e.to_string()))?;
        // Go reads names as raw bytes; `name()` would decode CP437 or apply extra fields.
        let name = std::str::from_utf8(file.name_raw())
            .map_err(|_| ZipError::BadEntry {
                name: String::from_utf8_lossy(file.name_raw()).into_owned(),
                reason: "name is not valid UTF-8".into(),
            })?
            .to_string();
        let bad = |reason: &str| ZipError::BadEntry {
            name: shown(&name),
            reason: reason.to_string(),
        };
        if file.extra_data().is_some_and(has_unicode_path) {
            return Err(bad(
                "Unicode Path extra field (ignored by Go) is not allowed",
            ));
        }
        let rel = name
            .strip_prefix(&prefix)
            .ok_or_else(|| bad(&format!("path does not have prefix {prefix:?}")))?;
        let limit = check_entry(rel, file.unix_mode(), &mut collisions).map_err(|r| bad(&r))?;
        let declared = file.size();
        let keep = (rel == "go.mod").then(Vec::new);
        let budget = MAX_ZIP_SIZE - total;
        let Hashed { sha256, size, kept } = hash_entry(&mut file, budget, limit, keep, &name)?;
        if size != declared {
            return Err(bad(&format!(
                "decompressed to {size} bytes, but declares {declared}"
            )));
        }
        total += size;
        root_go_mod = root_go_mod.or(kept);
        digests.push(FileDigest { name, sha256 });
    }
    let (start, names) = (archive.central_directory_start(), archive.len());
    let mut reader = archive.into_inner();
    if more_central_records(&mut reader, start, names)
        .map_err(|e| ZipError::Malformed(e.to_string()))?
    {
        return Err(ZipError::Duplicate);
    }
    check_go_mod(root_go_mod.as_deref(), go_mod, module)?;
    let files = digests.len() as u64;
    let h1 = hash1(digests).map_err(|e| ZipError::BadEntry {
        name: e.0,
        reason: "newline in file name".into(),
    })?;
    Ok(ZipSummary {
        h1,
        files,
        uncompressed_bytes: total,
    })
}

/// One decompressed entry.
struct Hashed {
    /// SHA-256 of its bytes.
    sha256: [u8; 32],
    /// Bytes actually decompressed.
    size: u64,
    /// The bytes, when asked to keep them.
    kept: Option<Vec<u8>>,
}

/// Decompresses one entry while hashing it. Fails beyond the remaining total `budget` or
/// the entry's own `limit`; keeps the bytes when `keep` is set (the root go.mod).
fn hash_entry(
    file: &mut impl Read,
    budget: u64,
    limit: Option<(u64, &'static str)>,
    mut keep: Option<Vec<u8>>,
    name: &str,
) -> Result<Hashed, ZipError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
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
                what: "total uncompressed size of module contents".into(),
                limit: MAX_ZIP_SIZE,
            });
        }
        if let Some((limit, what)) = limit.filter(|(limit, _)| size > *limit) {
            return Err(ZipError::TooLarge {
                what: what.into(),
                limit,
            });
        }
        if let Some(kept) = keep.as_mut() {
            kept.extend_from_slice(&buf[..n]);
        }
        hasher.update(&buf[..n]);
    }
    Ok(Hashed {
        sha256: hasher.finalize().into(),
        size,
        kept: keep,
    })
}

/// The root go.mod must be byte-identical to `.mod`; without one, `.mod` must be what
/// the go command synthesizes (`module <path>`, possibly quoted), whitespace aside.
fn check_go_mod(in_zip: Option<&[u8]>, go_mod: &[u8], module: &str) -> Result<(), ZipError> {
    match in_zip {
        Some(bytes) if bytes == go_mod => Ok(()),
        Some(_) => Err(ZipError::GoModMismatch),
        None => {
            let text = std::str::from_utf8(go_mod).unwrap_or("").trim();
            let arg = text
                .strip_prefix("module")
                .filter(|rest| rest.starts_with(char::is_whitespace))
                .map(str::trim);
            let plain = arg == Some(module);
            let quoted = arg
                .and_then(|a| a.strip_prefix('"'))
                .and_then(|a| a.strip_suffix('"'))
                == Some(module);
            if plain || quoted {
                Ok(())
            } else {
                Err(ZipError::NotSynthesized(shown(module)))
            }
        }
    }
}
