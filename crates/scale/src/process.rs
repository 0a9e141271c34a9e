//! `goproxy-ha` processes: spawned from a configuration file, their log in a file, killed
//! when dropped (an error or a panic never leaves one running).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::stats::Memory;

/// How often a stopping node is checked.
const EXIT_POLL: Duration = Duration::from_millis(50);

/// A running `goproxy-ha serve`.
pub struct NodeProcess {
    child: Child,
    /// `http://host:port` of its front end.
    pub url: String,
    /// Its log (stderr).
    pub log: PathBuf,
}

impl NodeProcess {
    /// Starts `binary serve --config CONFIG` and waits (at most `bound`) until it listens.
    pub fn spawn(
        binary: &Path,
        config: &Path,
        log: &Path,
        bound: Duration,
    ) -> anyhow::Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(config)
            // Nothing is filled: every request is a hit (and the upstream does not exist).
            .env("GOPROXY_HA_VERIFY_FILLS", "false")
            .env_remove("GOPROXY_HA_LOG_LEVEL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("the node's stdout")?;
        let mut node = Self {
            child,
            url: String::new(),
            log: log.to_path_buf(),
        };
        let Some(listening) = goproxy_testkit::process::wait(stdout, bound) else {
            bail!(
                "the node did not listen within {bound:?}; log:\n{}",
                node.log_tail()
            );
        };
        node.url = format!("http://{}", listening.http);
        Ok(node)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its memory now.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        Memory::of(self.pid())
    }

    /// The end of its log (for error messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The byte count of the last "built index snapshot" line of its log.
    pub fn logged_snapshot_bytes(&self) -> Option<u64> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        text.lines()
            .filter(|line| line.contains("built index snapshot"))
            .filter_map(|line| {
                let rest = &line[line.find("bytes=")? + "bytes=".len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .next_back()
    }

    /// SIGTERM, and SIGKILL if it has not exited within `grace`.
    pub fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        let _ = kill(Pid::from_raw(self.pid() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(EXIT_POLL);
        }
        bail!("the node did not stop within {grace:?} of SIGTERM (killed)")
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
