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
