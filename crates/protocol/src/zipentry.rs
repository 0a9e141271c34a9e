//! Per-entry rules of `golang.org/x/mod/zip.CheckZip`: file path syntax, no symlinks,
//! go.mod only at the root, and no two names equal under case folding.

use std::collections::HashMap;

use crate::path::{check_path_elems, shown, Kind};
use crate::zipcheck::{MAX_GO_MOD_SIZE, MAX_LICENSE_SIZE};

/// Unix file-type bits in a zip entry's mode, and the symlink type.
const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;

/// Checks one entry's path below the prefix; returns its own size limit, if any.
pub(crate) fn check_entry(
    rel: &str,
    mode: Option<u32>,
    collisions: &mut Collisions,
) -> Result<Option<(u64, &'static str)>, String> {
    if rel.contains('\n') {
        return Err("newline in file name".into());
    }
    if mode.is_some_and(|m| m & S_IFMT == S_IFLNK) {
        return Err("symbolic links are not allowed".into());
    }
    if rel.is_empty() {
        return Ok(None); // The `module@version/` directory entry itself.
    }
    let (path, is_dir) = match rel.strip_suffix('/') {
        Some(dir) => (dir, true),
        None => (rel, false),
    };
    check_path_elems(path, Kind::File)?;
    collisions.check(path, is_dir)?;
    if is_dir {
        return Ok(None);
    }
    let base = path.rsplit('/').next().unwrap_or(path);
    if base.eq_ignore_ascii_case("go.mod") {
        if base != path {
            return Err("go.mod file not in module root directory".into());
        }
        if path != "go.mod" {
            return Err("go.mod file name has the wrong case".into());
        }
        return Ok(Some((MAX_GO_MOD_SIZE, "go.mod")));
    }
    Ok((path == "LICENSE").then_some((MAX_LICENSE_SIZE, "LICENSE")))
}

/// `collisionChecker`: names equal under case folding, or a name that is both a file and
/// a directory (parents count as directories), or a file listed twice.
#[derive(Default)]
pub(crate) struct Collisions(HashMap<String, (String, bool)>);

impl Collisions {
    pub(crate) fn check(&mut self, path: &str, is_dir: bool) -> Result<(), String> {
        let mut path = path;
        let mut is_dir = is_dir;
        loop {
            let key = fold(path);
            if let Some((other, other_is_dir)) = self.0.get(&key) {
                if other != path {
                    return Err(format!(
                        "case-insensitive file name collision with {:?}",
                        shown(other)
                    ));
                }
                if *other_is_dir != is_dir {
                    return Err("entry is both a file and a directory".into());
                }
                if !is_dir {
                    return Err("multiple entries for this file".into());
                }
                return Ok(()); // A known directory: its parents are recorded already.
            }
            self.0.insert(key, (path.to_string(), is_dir));
            match path.rsplit_once('/') {
                Some((parent, _)) => (path, is_dir) = (parent, true),
                None => return Ok(()),
            }
        }
    }
}

/// Approximates Go's `strToFold` (minimal rune of each simple case-folding orbit): a
/// character maps through its single-character upper case, then lower case, so `ſ`, `s`
/// and `S` fold together while `ß` does not become `ss`.
fn fold(path: &str) -> String {
    path.chars()
        .map(|c| {
            let upper = single(c.to_uppercase()).unwrap_or(c);
            single(upper.to_lowercase())
                .or_else(|| single(c.to_lowercase()))
                .unwrap_or(c)
        })
        .collect()
}

/// The only character of a case mapping, or `None` when it maps to several (`ß` → `SS`).
fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}
