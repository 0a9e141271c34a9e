//! Shared test support: a corpus upstream served over HTTP, and goproxy-ha node
//! processes started on port 0 in temporary directories.
#![allow(dead_code, missing_docs)]

pub mod cluster;
pub mod go;
pub mod https;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// How long a node may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The real module tree used as upstream (`../shared/testdata/goproxy-corpus`).
pub fn corpus_dir() -> PathBuf {
    goproxy_testkit::corpus::dir()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub use goproxy_testkit::HttpServer;

/// A goproxy-ha process.
pub struct Node {
    child: Child,
    pub http: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Node {
    /// Starts `goproxy-ha serve` on port 0 with `data_dir` and `upstream`, and waits
    /// until it is ready.
    pub fn start(data_dir: &Path, upstream: &str, extra: &[&str]) -> Self {
        let mut args: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--raft-listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let node = Self::spawn(data_dir, &args);
        node.wait_ready();
        node
    }

    /// Starts `goproxy-ha serve --data-dir data_dir ARGS` and waits only until it listens.
    pub fn spawn(data_dir: &Path, args: &[String]) -> Self {
        Self::spawn_with(
            Command::new(env!("CARGO_BIN_EXE_goproxy-ha")),
            data_dir,
            args,
        )
    }

    /// [`Node::spawn`] through `ip netns exec NS`, so the node sees the namespace's
    /// `/etc/netns/NS/hosts` (its `go` resolves the test's host names). The calling thread
    /// must be in that namespace to reach it.
    pub fn spawn_in(ns: &goproxy_testkit::netns::Netns, data_dir: &Path, args: &[String]) -> Self {
        Self::spawn_with(ns.command(env!("CARGO_BIN_EXE_goproxy-ha")), data_dir, args)
    }

    fn spawn_with(mut command: Command, data_dir: &Path, args: &[String]) -> Self {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let log = data_dir.with_extension("log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut child = command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("GOPROXY_HA_LOG_LEVEL", "info")
            // The corpus upstream has no checksum database beside it: tests of verification
            // pass `--verify-fills true` (a flag wins over the environment).
            .env("GOPROXY_HA_VERIFY_FILLS", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("spawn goproxy-ha");
        let stdout = child.stdout.take().expect("stdout");
        let Some(listening) = goproxy_testkit::process::wait(stdout, START_TIMEOUT) else {
            let _ = child.kill();
            panic!(
                "node did not start; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Self {
            child,
            http: format!("http://{}", listening.http),
            data_dir: data_dir.to_path_buf(),
            log,
        }
    }

    /// Starts without waiting for readiness (cluster members wait for their peers).
    pub fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        let url = self.url("readyz");
        while std::time::Instant::now() < deadline {
            if let Ok(body) = http_get_status(&url) {
                if body == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("node never became ready; log:\n{}", self.log_text());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.http, path.trim_start_matches('/'))
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (`HUP`, `STOP`, …) to the node.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status of a GET, with a minimal blocking HTTP/1.0 exchange (usable outside a runtime).
fn http_get_status(url: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))
}

/// A cache-only GET (`Disable-Module-Fetch: true`): the node may answer from the
/// cluster's cache but must never ask the upstream.
pub fn cache_only(http: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    http.get(url).header("Disable-Module-Fetch", "true")
}

/// A blocking HTTP client with a bounded timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}
