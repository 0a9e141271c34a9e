//! A real Go checksum database for tests (`sumdb-server/main.go`: golang.org/x/mod/sumdb's
//! server over a GOPROXY tree), built once per source version and run as a child process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

/// A running checksum database; killed on drop.
pub struct SumdbServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its verifier key, `NAME+HASH+KEY` (what GOSUMDB names).
    pub vkey: String,
    child: Child,
}

impl SumdbServer {
    /// Serves checksums of the modules in `tree` as database `name`, signing with the key
    /// made from `seed`; `fork > 0` logs that many unrelated records first (another history
    /// under the same key).
    pub fn start(tree: &Path, name: &str, seed: u8, fork: u32) -> anyhow::Result<Self> {
        Self::start_on(tree, name, seed, fork, "127.0.0.1:0")
    }

    /// [`SumdbServer::start`] on a given address (to restart a database where it was).
    pub fn start_on(
        tree: &Path,
        name: &str,
        seed: u8,
        fork: u32,
        listen: &str,
    ) -> anyhow::Result<Self> {
        let binary = build()?;
        let mut child = Command::new(&binary)
            .arg("-corpus")
            .arg(tree)
            .args([
                "-name",
                name,
                "-seed",
                &seed.to_string(),
                "-fork",
                &fork.to_string(),
            ])
            .args(["-listen", listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let mut words = line.split_whitespace();
        let (Some("listening"), Some(url), Some(vkey)) = (words.next(), words.next(), words.next())
        else {
            let _ = child.kill();
            bail!("sumdb-server printed {line:?}");
        };
        Ok(Self {
            url: url.to_string(),
            vkey: vkey.trim_start_matches("vkey=").to_string(),
            child,
        })
    }

    /// `NAME+HASH+KEY URL`, the value of GOSUMDB for the go command.
    pub fn gosumdb(&self) -> String {
        format!("{} {}", self.vkey, self.url)
    }

    /// Stops serving (the database is unreachable from now on).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SumdbServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Builds the helper (Debian's golang-go and golang-golang-x-mod-dev), once per source.
fn build() -> anyhow::Result<PathBuf> {
    // Tests of one binary start databases concurrently: one build at a time.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sumdb-server");
    let source = std::fs::read(dir.join("main.go"))?;
    let stamp = source.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let binary = std::env::temp_dir().join(format!("goproxy-ha-sumdb-server-{stamp:016x}"));
    if binary.exists() {
        return Ok(binary);
    }
    let partial = binary.with_extension(format!("{}.partial", std::process::id()));
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&partial)
        .arg(".")
        .current_dir(&dir)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOFLAGS", "")
        .env(
            "GOCACHE",
            std::env::temp_dir().join("goproxy-ha-sumdb-gocache"),
        )
        .output()
        .context("running go (apt-get install golang-go golang-golang-x-mod-dev)")?;
    if !out.status.success() {
        bail!(
            "building sumdb-server (apt-get install golang-golang-x-mod-dev): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::rename(&partial, &binary)?;
    Ok(binary)
}

/// A blocking `GET url`: status and body (test helper; HTTP/1.0, no TLS).
pub fn http_get(url: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").context("an http:// URL")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header end")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    Ok((status, answer[split + 4..].to_vec()))
}
