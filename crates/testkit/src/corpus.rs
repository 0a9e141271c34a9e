//! The real module tree the tests and benchmarks serve as upstream: gin v1.8.1's graph plus
//! fixtures (`../shared/testdata/README.md`).

use std::path::{Path, PathBuf};

/// Overrides where the corpus is.
pub const ENV: &str = "GOPROXY_HA_CORPUS";

/// The corpus directory: `$GOPROXY_HA_CORPUS`, else `shared/testdata/goproxy-corpus` beside
/// the workspace. Panics with what to set when it is missing.
pub fn dir() -> PathBuf {
    try_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`dir`], as a result.
pub fn try_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os(ENV) {
        Some(dir) => PathBuf::from(dir),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/goproxy-corpus")
        }
    };
    anyhow::ensure!(
        dir.is_dir(),
        "corpus not found at {} (set {ENV})",
        dir.display()
    );
    Ok(dir.canonicalize()?)
}

/// How [`tampered`] alters a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// One byte of a source file in the zip is changed (the zip stays valid, its go.mod too).
    Zip,
    /// A comment is appended to the go.mod (in the `.mod` and inside the zip alike, so both
    /// stay valid and agree).
    GoMod,
}

/// Writes into `out` a copy of the corpus' `module` (its whole `@v` directory) in which
/// `version` is altered as `how` says: an upstream that serves valid but different bytes.
pub fn tampered(out: &Path, module: &str, version: &str, how: Tamper) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let escaped = goproxy_protocol::path::escape_path(module)?;
    let from = dir().join(&escaped).join("@v");
    let to = out.join(&escaped).join("@v");
    std::fs::create_dir_all(&to)?;
    for entry in std::fs::read_dir(&from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    let comment = b"// tampered upstream\n";
    if how == Tamper::GoMod {
        let mut go_mod = std::fs::read(to.join(format!("{version}.mod")))?;
        go_mod.extend_from_slice(comment);
        std::fs::write(to.join(format!("{version}.mod")), go_mod)?;
    }
    let zip_path = to.join(format!("{version}.zip"));
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path)?)?;
    let mut rewritten = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut changed = false;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i)?;
        let name = file.name().to_string();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        if name.ends_with("/go.mod") && how == Tamper::GoMod {
            bytes.extend_from_slice(comment);
            changed = true;
        } else if name.ends_with(".go") && how == Tamper::Zip && !changed {
            // A byte inside the file, not its first (keeps `package` intact).
            let at = bytes.len() - 2;
            bytes[at] = if bytes[at] == b' ' { b'\t' } else { b' ' };
            changed = true;
        }
        rewritten.start_file(name, zip::write::SimpleFileOptions::default())?;
        rewritten.write_all(&bytes)?;
    }
    anyhow::ensure!(changed, "{module}@{version}: nothing to tamper with");
    std::fs::write(&zip_path, rewritten.finish()?.into_inner())?;
    Ok(())
}
