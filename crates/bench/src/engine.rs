//! goproxy.cn's engine (github.com/goproxy/goproxy) as a second anchor: a disk-caching
//! GOPROXY server built offline by `../shared/anchors/goproxy_build.sh` into
//! [`ANCHOR_BINARY`]. When it is not built, the bench says so and measures without it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use crate::procs::{free_port, wait_for};

/// Where `goproxy_build.sh` puts the binary (`GOPROXY_ANCHOR` overrides it).
pub const ANCHOR_BINARY: &str = "/opt/anchors/goproxy/bin/goproxy-anchor";

/// The engine serving a disk cache in front of an upstream; killed on drop.
pub struct Engine {
    child: Child,
    /// Base URL.
    pub url: String,
}

/// The anchor's binary, if built.
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("GOPROXY_ANCHOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(ANCHOR_BINARY));
    path.is_file().then_some(path)
}

impl Engine {
    /// Starts the engine with `upstream` (a GOPROXY value), caching under `work`.
    pub fn start(binary: &Path, work: &Path, upstream: &str) -> anyhow::Result<Self> {
        Self::start_in(binary, &work.join("engine-cache"), upstream)
    }

    /// Starts the engine caching in `cache` (its temp files go to `cache.work`).
    pub fn start_in(binary: &Path, cache: &Path, upstream: &str) -> anyhow::Result<Self> {
        let port = free_port()?;
        std::fs::create_dir_all(cache)?;
        let child = Command::new(binary)
            .arg("-listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-upstream")
            .arg(upstream)
            .arg("-cache")
            .arg(cache)
            .env("GOSUMDB", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        wait_for(&format!("127.0.0.1:{port}"))?;
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Fetches `path` once, so later requests are cache hits.
    pub fn warm(&self, path: &str) -> anyhow::Result<()> {
        let output = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{}/{path}", self.url))
            .output()?;
        let code = String::from_utf8_lossy(&output.stdout).to_string();
        anyhow::ensure!(code == "200", "engine GET {path}: HTTP {code}");
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
