//! The operations a `direct` route needs, each one `go` run in the route's credential
//! workspace: the versions of a module, a version query (`latest`, a branch, a commit), the
//! `.info` and `.mod` of a version, and its zip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::command::{self, RunError};
use crate::config::{CredentialSpec, VcsConfig};
use crate::outcome::{classify, describe, VcsError};
use crate::tree;
use crate::workspace::{Workspace, ANONYMOUS};

/// How long the `.info` and `.mod` of a version are kept after one `go list`, so the three
/// requests of one download (`.info`, `.mod`, `.zip`) run `go list` once.
const FACTS_TTL: Duration = Duration::from_secs(600);
/// Memory for those (bytes of go.mod files).
const FACTS_BYTES: u64 = 64 << 20;
/// Operations that may wait for a slot, per slot; beyond that a request is turned away at
/// once rather than queued behind a slow git host.
const QUEUE_PER_SLOT: usize = 16;

/// A resolved version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Canonical version (a pseudo-version for a branch or commit).
    pub version: String,
    /// Commit time (RFC 3339), when known.
    pub time: Option<String>,
}

impl ModuleInfo {
    /// The `.info` JSON the GOPROXY protocol serves.
    pub fn to_json(&self) -> Bytes {
        let value = match &self.time {
            Some(time) => serde_json::json!({"Version": self.version, "Time": time}),
            None => serde_json::json!({"Version": self.version}),
        };
        Bytes::from(value.to_string())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GoModule {
    #[serde(default)]
    version: String,
    #[serde(default)]
    versions: Vec<String>,
    time: Option<String>,
    go_mod: Option<PathBuf>,
    zip: Option<PathBuf>,
    dir: Option<PathBuf>,
    error: Option<GoError>,
    origin: Option<Origin>,
}

/// `Error` is a string in `go mod download -json`, an object in `go list -m -json`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum GoError {
    Text(String),
    Object {
        #[serde(rename = "Err")]
        err: String,
    },
}

impl GoError {
    fn text(&self) -> &str {
        match self {
            GoError::Text(t) | GoError::Object { err: t } => t,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Origin {
    #[serde(rename = "URL", default)]
    url: String,
    #[serde(default)]
    hash: String,
    subdir: Option<String>,
}

/// Fetches from version control. Cheap to share behind an `Arc`.
pub struct Fetcher {
    config: VcsConfig,
    workspaces: BTreeMap<String, Workspace>,
    permits: Semaphore,
    queue: Semaphore,
    root: String,
    facts: moka::future::Cache<(String, String, String), Arc<(ModuleInfo, Bytes)>>,
    ready: std::sync::Mutex<Result<(), String>>,
}

impl Fetcher {
    /// Prepares one workspace per credential set (and one without credentials) under `root`.
    /// Every problem is reported.
    pub fn new(
        config: VcsConfig,
        sets: &BTreeMap<String, CredentialSpec>,
        root: &Path,
    ) -> Result<Self, Vec<String>> {
        let mut problems = config.problems();
        // The go command refuses relative GOPATH and GOMODCACHE (a relative data_dir).
        let root = &std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let mut workspaces = BTreeMap::new();
        if sets.contains_key(ANONYMOUS) {
            problems.push(format!(
                "credentials.{ANONYMOUS}: the name is reserved for routes without credentials"
            ));
        }
        let anonymous = CredentialSpec::default();
        let anonymous_name = ANONYMOUS.to_string();
        let all = sets
            .iter()
            .filter(|(name, _)| name.as_str() != ANONYMOUS)
            .chain(std::iter::once((&anonymous_name, &anonymous)));
        for (name, spec) in all {
            match Workspace::prepare(root, name, spec, &config) {
                Ok(ws) => {
                    workspaces.insert(name.clone(), ws);
                }
                Err(e) => problems.push(format!("credentials.{name}: {e}")),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            permits: Semaphore::new(config.max_concurrent),
            queue: Semaphore::new(config.max_concurrent.saturating_mul(QUEUE_PER_SLOT)),
            root: root.display().to_string(),
            facts: moka::future::Cache::builder()
                .max_capacity(FACTS_BYTES)
                .weigher(|_, facts: &Arc<(ModuleInfo, Bytes)>| {
                    u32::try_from(facts.1.len() + 256).unwrap_or(u32::MAX)
                })
                .time_to_live(FACTS_TTL)
                .build(),
            ready: std::sync::Mutex::new(Err("not probed yet".into())),
            config,
            workspaces,
        })
    }

    /// Checks that `go` and `git` run; [`Fetcher::readiness`] reports the outcome.
    pub async fn probe(&self) -> Result<(), String> {
        let ws = &self.workspaces[ANONYMOUS];
        let mut result = Ok(());
        for (program, args) in [
            (self.config.go.as_path(), ["version"]),
            (Path::new("git"), ["--version"]),
        ] {
            let out = command::run(program, &args, &ws.tmp, &ws.env, Duration::from_secs(30)).await;
            match out {
                Ok(out) if out.success => {}
                Ok(out) => {
                    result = Err(format!(
                        "{} failed: {}",
                        program.display(),
                        out.stderr.trim()
                    ));
                }
                Err(e) => result = Err(e.to_string()),
            }
        }
        let result = result
            .map_err(|e| format!("direct routes need the go toolchain and git on this node: {e}"));
        *self.ready.lock().unwrap_or_else(|e| e.into_inner()) = result.clone();
        result
    }

    /// `Err(reason)` while this node cannot fetch from version control.
    pub fn readiness(&self) -> Result<(), String> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn workspace(&self, credentials: Option<&str>) -> Result<&Workspace, VcsError> {
        let name = credentials.unwrap_or(ANONYMOUS);
        self.workspaces
            .get(name)
            .ok_or_else(|| VcsError::Unavailable(format!("no credential set named {name:?}")))
    }

    /// A slot to run version control in: at most `max_concurrent` run, a bounded number
    /// wait (each at most `timeout`), the rest are turned away.
    async fn slot(&self) -> Result<(SemaphorePermit<'_>, SemaphorePermit<'_>), VcsError> {
        let queued = self.queue.try_acquire().map_err(|_| {
            VcsError::Failed(
                "too many version control operations are waiting on this node; retry later".into(),
            )
        })?;
        let running = tokio::time::timeout(self.config.timeout, self.permits.acquire())
            .await
            .map_err(|_| {
                VcsError::Failed(format!(
                    "no version control slot freed within {:?}; retry later",
                    self.config.timeout
                ))
            })?
            .map_err(|_| VcsError::Unavailable("shutting down".into()))?;
        Ok((queued, running))
    }

    /// `text` without this node's paths or the workspace's secrets, cut short.
    fn scrub(&self, ws: &Workspace, text: &str) -> String {
        let mut roots: Vec<&str> = ws.hidden.iter().map(String::as_str).collect();
        roots.push(&self.root);
        describe(text, &roots, &ws.redactor)
    }

    /// Runs `go ARGS` in a fresh temporary directory of `ws`, bounded, one of at most
    /// `max_concurrent`; parses its JSON output.
    async fn go(&self, ws: &Workspace, args: &[&str]) -> Result<GoModule, VcsError> {
        if let Err(reason) = self.readiness() {
            return Err(VcsError::Unavailable(reason));
        }
        let _slot = self.slot().await?;
        let tmp = tempfile::tempdir_in(&ws.tmp)
            .map_err(|e| VcsError::Failed(self.scrub(ws, &format!("temporary directory: {e}"))))?;
        let started = std::time::Instant::now();
        let out = command::run(
            &self.config.go,
            args,
            tmp.path(),
            &ws.env,
            self.config.timeout,
        )
        .await;
        tracing::debug!(?args, elapsed = ?started.elapsed(), "go run");
        let out = match out {
            Ok(out) => out,
            Err(RunError::Timeout(limit)) => return Err(VcsError::Timeout(limit)),
            Err(e @ RunError::Spawn { .. }) => return Err(VcsError::Unavailable(e.to_string())),
            Err(e) => return Err(VcsError::Failed(self.scrub(ws, &e.to_string()))),
        };
        let mut roots: Vec<&str> = ws.hidden.iter().map(String::as_str).collect();
        roots.push(&self.root);
        let parsed: Option<GoModule> = serde_json::from_slice(&out.stdout).ok();
        match parsed {
            Some(GoModule { error: Some(e), .. }) => Err(classify(e.text(), &roots, &ws.redactor)),
            Some(module) if out.success => Ok(module),
            _ if !out.success => Err(classify(&out.stderr, &roots, &ws.redactor)),
            _ => Err(VcsError::Failed(format!(
                "the go command printed no module: {}",
                describe(&out.stderr, &roots, &ws.redactor)
            ))),
        }
    }

    /// The module's tagged versions, in the go command's order.
    pub async fn list(
        &self,
        module: &str,
        credentials: Option<&str>,
    ) -> Result<Vec<String>, VcsError> {
        check_arg(module)?;
        let ws = self.workspace(credentials)?;
        let module = self
            .go(ws, &["list", "-m", "-json", "-versions", module])
            .await?;
        Ok(module.versions)
    }

    /// Resolves a query (`latest`, a branch, a tag, a commit) to a canonical version.
    pub async fn query(
        &self,
        module: &str,
        query: &str,
        credentials: Option<&str>,
    ) -> Result<ModuleInfo, VcsError> {
        check_arg(module)?;
        let ws = self.workspace(credentials)?;
        let arg = format!("{module}@{query}");
        let found = self.go(ws, &["list", "-m", "-json", &arg]).await?;
        if found.version.is_empty() {
            return Err(VcsError::NotFound(format!("{arg}: no version")));
        }
        Ok(ModuleInfo {
            version: found.version,
            time: found.time,
        })
    }

    /// The `.info` and `.mod` of a canonical version (one `go list` serves both).
    pub async fn facts(
        &self,
        module: &str,
        version: &str,
        credentials: Option<&str>,
    ) -> Result<Arc<(ModuleInfo, Bytes)>, VcsError> {
        check_arg(module)?;
        let ws = self.workspace(credentials)?;
        let key = (
            credentials.unwrap_or(ANONYMOUS).to_string(),
            module.to_string(),
            version.to_string(),
        );
        self.facts
            .try_get_with(key, async {
                let arg = format!("{module}@{version}");
                let found = self.go(ws, &["list", "-m", "-json", &arg]).await?;
                if found.version != version {
                    return Err(VcsError::NotFound(format!(
                        "{arg} resolves to {:?}, not to itself",
                        found.version
                    )));
                }
                let go_mod = self
                    .read_under(ws, found.go_mod.as_deref(), 16 << 20)
                    .await?;
                let info = ModuleInfo {
                    version: found.version,
                    time: found.time,
                };
                Ok(Arc::new((info, go_mod)))
            })
            .await
            .map_err(|e: Arc<VcsError>| (*e).clone())
    }

    /// The zip of a canonical version, as an open file (its path is already removed, with
    /// the extracted tree: nothing stays in the workspace but the clone).
    pub async fn zip(
        &self,
        module: &str,
        version: &str,
        credentials: Option<&str>,
    ) -> Result<tokio::fs::File, VcsError> {
        check_arg(module)?;
        let ws = self.workspace(credentials)?;
        let arg = format!("{module}@{version}");
        let found = self.go(ws, &["mod", "download", "-json", &arg]).await?;
        if let Some(dir) = &found.dir {
            if dir.starts_with(&ws.modcache) {
                let _ = tokio::fs::remove_dir_all(dir).await;
            }
        }
        let zip = found
            .zip
            .filter(|z| z.starts_with(&ws.modcache))
            .ok_or_else(|| VcsError::Failed(format!("{arg}: the go command named no zip")))?;
        let result = self
            .check_and_open(ws, &arg, &zip, found.origin.as_ref())
            .await;
        let _ = tokio::fs::remove_file(&zip).await;
        let _ = tokio::fs::remove_file(zip.with_extension("ziphash")).await;
        result
    }

    async fn check_and_open(
        &self,
        ws: &Workspace,
        arg: &str,
        zip: &Path,
        origin: Option<&Origin>,
    ) -> Result<tokio::fs::File, VcsError> {
        let file = tokio::fs::File::open(zip)
            .await
            .map_err(|e| VcsError::Failed(format!("{arg}: opening the zip: {e}")))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| VcsError::Failed(format!("{arg}: {e}")))?
            .len();
        if size > self.config.max_zip_bytes {
            return Err(VcsError::Refused(format!(
                "{arg}: the module zip is {size} bytes, more than vcs.max_zip_bytes ({})",
                self.config.max_zip_bytes
            )));
        }
        if let Some(origin) = origin {
            if let Some(clone) = tree::clone_dir(&ws.modcache, &origin.url) {
                let _slot = self.slot().await?;
                let links = tree::escaping_links(
                    &clone,
                    &origin.hash,
                    origin.subdir.as_deref(),
                    &ws.env,
                    self.config.timeout,
                )
                .await
                .map_err(|e| VcsError::Failed(self.scrub(ws, &e)))?;
                if let Some((path, target)) = links.first() {
                    return Err(VcsError::Refused(self.scrub(
                        ws,
                        &format!(
                            "{arg}: the repository has a symbolic link {path:?} pointing outside it ({target:?}); refused"
                        ),
                    )));
                }
            }
        }
        Ok(file)
    }

    /// Reads a file the go command named, only if it lies in the workspace's module cache.
    async fn read_under(
        &self,
        ws: &Workspace,
        path: Option<&Path>,
        limit: u64,
    ) -> Result<Bytes, VcsError> {
        let path = path
            .filter(|p| p.starts_with(&ws.modcache))
            .ok_or_else(|| VcsError::Failed("the go command named no go.mod".into()))?;
        let bytes = tokio::fs::read(path).await.map_err(|e| {
            VcsError::Failed(format!("reading the go.mod the go command wrote: {e}"))
        })?;
        if bytes.len() as u64 > limit {
            return Err(VcsError::Refused(format!(
                "go.mod larger than {limit} bytes"
            )));
        }
        Ok(Bytes::from(bytes))
    }
}

/// A module path is validated by the protocol layer; this only makes sure no argument can
/// be read as a flag or a package pattern.
fn check_arg(module: &str) -> Result<(), VcsError> {
    if module.is_empty()
        || module.starts_with('-')
        || module.contains("...")
        || module.contains(|c: char| c.is_whitespace() || c.is_control())
    {
        return Err(VcsError::NotFound(format!(
            "{module:?} is not a module path"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_never_flags_or_patterns() {
        for bad in [
            "",
            "-x",
            "--help",
            "corp.example/...",
            "corp.example/a b",
            "a\nb",
        ] {
            assert!(check_arg(bad).is_err(), "{bad:?}");
        }
        assert!(check_arg("corp.example/team/lib").is_ok());
    }

    /// Review finding: the default data_dir is relative, and the go command refuses a
    /// relative GOPATH or GOMODCACHE.
    #[test]
    fn a_relative_root_becomes_absolute() {
        let dir = tempfile::tempdir().unwrap();
        // The temporary directory, as a path relative to the current one.
        let cwd = std::env::current_dir().unwrap();
        let up = "../".repeat(cwd.components().count() - 1);
        let tmp = dir.path().display().to_string();
        let relative = format!("{up}{}/data/vcs", tmp.trim_start_matches('/'));
        assert!(Path::new(&relative).is_relative());
        let fetcher =
            Fetcher::new(VcsConfig::default(), &BTreeMap::new(), Path::new(&relative)).unwrap();
        let env: BTreeMap<_, _> = fetcher.workspaces[ANONYMOUS].env.iter().cloned().collect();
        for var in ["GOPATH", "GOMODCACHE", "GOCACHE", "HOME"] {
            assert!(Path::new(&env[var]).is_absolute(), "{var}={}", env[var]);
        }
    }
}
