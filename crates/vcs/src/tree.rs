//! Symbolic links in a fetched revision that leave the repository (an absolute target, or
//! more `..` than the link is deep). The go command silently leaves every symlink out of a
//! module zip; one that points outside the tree is a hostile repository, refused with the
//! link named so its owners can fix it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command;

/// Symlinks inspected per revision (a tree with more is judged by these).
const MAX_LINKS: usize = 200;

/// Whether a link at `path` (repository-relative) to `target` leaves the repository.
pub fn escapes(path: &str, target: &str) -> bool {
    if target.starts_with('/') || target.contains('\0') {
        return true;
    }
    let mut depth: i64 = path.matches('/').count() as i64;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// The bare clone the go command keeps for `url` in `modcache` (found by its `.info` file,
/// which names the remote).
pub fn clone_dir(modcache: &Path, url: &str) -> Option<PathBuf> {
    let vcs = modcache.join("cache/vcs");
    for entry in std::fs::read_dir(&vcs).ok()?.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "info") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text
                .split_once(':')
                .is_some_and(|(_, remote)| remote.trim() == url)
            {
                let dir = path.with_extension("");
                if dir.is_dir() {
                    return Some(dir);
                }
            }
        }
    }
    None
}

/// Links under `subdir` of revision `hash` in the bare clone `dir` that leave the
/// repository, as `(path, target)`.
pub async fn escaping_links(
    dir: &Path,
    hash: &str,
    subdir: Option<&str>,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Vec<(String, String)>, String> {
    if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("not a commit hash: {hash:?}"));
    }
    let git_dir = format!("--git-dir={}", dir.display());
    let mut args = vec![git_dir.as_str(), "ls-tree", "-r", "-z", "--full-tree", hash];
    if let Some(sub) = subdir.filter(|s| !s.is_empty()) {
        args.extend(["--", sub]);
    }
    let out = command::run(Path::new("git"), &args, dir, env, timeout)
        .await
        .map_err(|e| format!("git ls-tree: {e}"))?;
    if !out.success {
        return Err(format!("git ls-tree: {}", out.stderr.trim()));
    }
    let mut found = Vec::new();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let links = listing
        .split('\0')
        .filter_map(|entry| {
            let (meta, path) = entry.split_once('\t')?;
            let mut meta = meta.split(' ');
            if meta.next()? != "120000" {
                return None;
            }
            Some((meta.nth(1)?.to_string(), path.to_string()))
        })
        .take(MAX_LINKS)
        .collect::<Vec<_>>();
    for (object, path) in links {
        let args = [git_dir.as_str(), "cat-file", "blob", object.as_str()];
        let out = command::run(Path::new("git"), &args, dir, env, timeout)
            .await
            .map_err(|e| format!("git cat-file: {e}"))?;
        let target = String::from_utf8_lossy(&out.stdout).into_owned();
        if escapes(&path, &target) {
            found.push((path, target));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_that_leave_the_tree_are_told_apart() {
        assert!(escapes("passwd", "/etc/passwd"));
        assert!(escapes("a", "../x"));
        assert!(escapes("a/b/c", "../../../x"));
        assert!(escapes("a/b", "./../../etc"));
        assert!(!escapes("a/b/c", "../../x"));
        assert!(!escapes("docs/latest", "v2"));
        assert!(!escapes("a/link", "../b/../a/file"));
    }

    #[tokio::test]
    async fn escaping_links_are_found_in_a_real_repository() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let env: Vec<(String, String)> = vec![
            ("PATH".into(), std::env::var("PATH").unwrap()),
            ("HOME".into(), dir.path().display().to_string()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
        ];
        let git = |args: &[&str]| {
            let status = std::process::Command::new("git")
                .args(args)
                .current_dir(&work)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k, v)))
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        };
        std::fs::create_dir_all(work.join("sub")).unwrap();
        std::fs::write(work.join("go.mod"), "module x.example/m\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", work.join("passwd")).unwrap();
        std::os::unix::fs::symlink("../go.mod", work.join("sub/ok")).unwrap();
        git(&["init", "-q", "-b", "main"]);
        git(&["add", "."]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "c",
        ]);
        let hash = String::from_utf8(
            std::process::Command::new("git")
                .args(["rev-parse", "HEAD"])
                .current_dir(&work)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let found = escaping_links(
            &work.join(".git"),
            hash.trim(),
            None,
            &env,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(found, [("passwd".to_string(), "/etc/passwd".to_string())]);
        let only_sub = escaping_links(
            &work.join(".git"),
            hash.trim(),
            Some("sub"),
            &env,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert!(only_sub.is_empty());
        assert!(escaping_links(
            &work.join(".git"),
            "--help",
            None,
            &env,
            Duration::from_secs(5)
        )
        .await
        .is_err());
    }
}
