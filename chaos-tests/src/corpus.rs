//! The chaos upstream: the real corpus (gin and its dependency graph) plus generated modules,
//! so every scenario has versions nobody has fetched yet (fills) besides cached ones (hits).
//!
//! Generated modules are `example.com/chaos/mNNN` at `v1.0.J`; each zip holds `go.mod` (the
//! same bytes as the `.mod`), a Go file and a seeded pseudo-random payload of 1–192 KiB, so
//! blobs differ in size and content and are valid for the `go` command and the proxy's zip
//! checks.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rand::Rng;

/// The upstream tree and the immutable artifacts it offers.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Root of the tree the upstream serves.
    pub root: PathBuf,
    /// Request paths (`/github.com/gin-gonic/gin/@v/v1.8.1.zip`) of every `.info`, `.mod` and
    /// `.zip`, sorted.
    pub artifacts: Vec<String>,
}

/// Copies `real` to `root` and adds `modules` × `versions` generated module versions.
pub fn build(
    root: &Path,
    real: &Path,
    modules: usize,
    versions: usize,
    rng: &mut impl Rng,
) -> anyhow::Result<Corpus> {
    std::fs::create_dir_all(root)?;
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", real.display()))
        .arg(root)
        .status()
        .context("cp")?;
    if !status.success() {
        bail!("copying {} to {}: {status}", real.display(), root.display());
    }
    for m in 0..modules {
        let module = format!("example.com/chaos/m{m:03}");
        let dir = root.join(&module).join("@v");
        std::fs::create_dir_all(&dir)?;
        let mut list = String::new();
        for v in 0..versions {
            let version = format!("v1.0.{v}");
            write_version(&dir, &module, &version, rng)?;
            list.push_str(&version);
            list.push('\n');
        }
        std::fs::write(dir.join("list"), list)?;
    }
    Ok(Corpus {
        root: root.to_path_buf(),
        artifacts: artifacts(root)?,
    })
}

fn write_version(
    dir: &Path,
    module: &str,
    version: &str,
    rng: &mut impl Rng,
) -> anyhow::Result<()> {
    let go_mod = format!("module {module}\n\ngo 1.19\n");
    let info = format!("{{\"Version\":\"{version}\",\"Time\":\"2026-01-01T00:00:00Z\"}}\n");
    std::fs::write(dir.join(format!("{version}.info")), info)?;
    std::fs::write(dir.join(format!("{version}.mod")), &go_mod)?;
    let size = rng.random_range(1024..192 * 1024);
    let mut payload = vec![0u8; size];
    rng.fill_bytes(&mut payload);
    let file = std::fs::File::create(dir.join(format!("{version}.zip")))?;
    let mut zip = zip::ZipWriter::new(file);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let prefix = format!("{module}@{version}");
    zip.start_file(format!("{prefix}/go.mod"), options)?;
    zip.write_all(go_mod.as_bytes())?;
    zip.start_file(format!("{prefix}/m.go"), options)?;
    let name = module.rsplit('/').next().unwrap_or("m");
    zip.write_all(format!("package {name}\n\n// Version is this module's version.\nconst Version = \"{version}\"\n").as_bytes())?;
    zip.start_file(format!("{prefix}/testdata/payload.bin"), options)?;
    zip.write_all(&payload)?;
    zip.finish()?;
    Ok(())
}

/// Every `.info`, `.mod` and `.zip` under `root`, as request paths.
fn artifacts(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let in_versions = path.parent().and_then(Path::file_name) == Some("@v".as_ref());
            let immutable = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("info" | "mod" | "zip")
            );
            if in_versions && immutable {
                let relative = path.strip_prefix(root)?.to_string_lossy().into_owned();
                found.push(format!("/{relative}"));
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generated_versions_are_listed_and_reproducible() {
        let real = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(real.path().join("example.com/hello/@v")).unwrap();
        std::fs::write(
            real.path().join("example.com/hello/@v/v1.0.0.mod"),
            "module example.com/hello\n",
        )
        .unwrap();
        let build_once = |seed| {
            let root = tempfile::tempdir().unwrap();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let corpus = build(root.path(), real.path(), 2, 3, &mut rng).unwrap();
            let zip =
                std::fs::read(root.path().join("example.com/chaos/m001/@v/v1.0.2.zip")).unwrap();
            (corpus.artifacts, zip, root)
        };
        let (artifacts, zip_a, root) = build_once(7);
        assert_eq!(artifacts.len(), 1 + 2 * 3 * 3);
        assert!(artifacts.contains(&"/example.com/hello/@v/v1.0.0.mod".to_string()));
        assert!(artifacts.contains(&"/example.com/chaos/m001/@v/v1.0.2.zip".to_string()));
        let list =
            std::fs::read_to_string(root.path().join("example.com/chaos/m000/@v/list")).unwrap();
        assert_eq!(list, "v1.0.0\nv1.0.1\nv1.0.2\n");
        assert_eq!(build_once(7).1, zip_a, "same seed, same bytes");
        assert_ne!(build_once(8).1, zip_a, "another seed, other bytes");
    }
}
