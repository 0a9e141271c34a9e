//! The go command as a client: a cold `go mod download all` of the corpus graph (a module
//! that requires gin v1.8.1) through one GOPROXY, with a fresh module cache each time.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The module whose graph is downloaded: gin's, closed over the corpus.
const GO_MOD: &str =
    "module example.com/app\n\ngo 1.19\n\nrequire github.com/gin-gonic/gin v1.8.1\n";

/// Whether the go command is installed (`scripts/bootstrap.sh bench` installs it).
pub fn available() -> bool {
    Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `go mod download all` in a new module under `dir` (which must not exist) with
/// GOPROXY=`proxy` and GOMODCACHE, GOPATH and GOCACHE under `dir`; returns its wall time.
pub fn download_all(dir: &Path, proxy: &str) -> anyhow::Result<Duration> {
    let app = dir.join("app");
    std::fs::create_dir_all(&app)?;
    std::fs::write(app.join("go.mod"), GO_MOD)?;
    let started = Instant::now();
    let output = Command::new("go")
        .args(["mod", "download", "all"])
        .current_dir(&app)
        // No go.env or user settings: only what is set here.
        .env("GOENV", "off")
        .env("GOPROXY", proxy)
        .env("GOSUMDB", "off")
        .env("GONOPROXY", "")
        .env("GOPRIVATE", "")
        // -modcacherw: a module cache the temporary directory's cleanup can delete.
        .env("GOFLAGS", "-mod=mod -modcacherw")
        .env("GOMODCACHE", dir.join("modcache"))
        .env("GOPATH", dir.join("gopath"))
        .env("GOCACHE", dir.join("gocache"))
        .env("GOTOOLCHAIN", "local")
        .output()
        .context("running go (apt-get install golang-go)")?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "go mod download all via {proxy}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(elapsed)
}
