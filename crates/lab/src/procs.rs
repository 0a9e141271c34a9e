//! Processes the lab runs inside its namespaces: goproxy-ha nodes, keepalived, the upstream.
//! Each writes its log to a file in the lab directory; each can be signalled and restarted.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::netns::Netns;

/// Where the lab finds the programs it starts.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The goproxy-ha binary.
    pub goproxy_ha: PathBuf,
    /// The goproxy-lab binary (its `serve-dir` subcommand is the upstream).
    pub goproxy_lab: PathBuf,
}

impl Binaries {
    /// Finds both binaries next to the running executable (or one directory up, for test
    /// executables in `target/<profile>/deps`); `GOPROXY_HA_BIN` overrides goproxy-ha's path.
    pub fn beside_current_exe() -> anyhow::Result<Binaries> {
        let exe = std::env::current_exe()?;
        let find = |name: &str| -> anyhow::Result<PathBuf> {
            exe.ancestors()
                .skip(1)
                .take(2)
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
                .with_context(|| format!("{name} not found next to {}", exe.display()))
        };
        let goproxy_ha = match std::env::var_os("GOPROXY_HA_BIN") {
            Some(path) => PathBuf::from(path),
            None => find("goproxy-ha")?,
        };
        Ok(Binaries {
            goproxy_ha,
            goproxy_lab: find("goproxy-lab")?,
        })
    }
}

/// One long-running program inside a namespace.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    detached: bool,
}

impl Process {
    /// Starts `program args…` inside `ns`, appending its output to `log`.
    pub fn spawn(
        name: &str,
        ns: &Netns,
        program: &Path,
        args: &[&str],
        log: &Path,
    ) -> anyhow::Result<Process> {
        let file = OpenOptions::new().create(true).append(true).open(log)?;
        let child = ns
            .command(&program.to_string_lossy())
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Process {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
            detached: false,
        })
    }

    /// The process id (the program itself: `ip netns exec` execs it).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        kill(Pid::from_raw(self.pid()), signal)
            .with_context(|| format!("{signal} to {}", self.name))
    }

    /// Whether it is still running (reaps it if not).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Leaves the process running when this value is dropped (`make lab-up`).
    pub fn detach(mut self) {
        self.detached = true;
    }

    /// The tail of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.detached {
            self.kill9();
        }
    }
}

/// Starts goproxy-ha with `config` inside `ns`.
pub fn goproxy_node(
    binaries: &Binaries,
    name: &str,
    ns: &Netns,
    config: &Path,
    log: &Path,
) -> anyhow::Result<Process> {
    let config = config.to_string_lossy();
    Process::spawn(
        name,
        ns,
        &binaries.goproxy_ha,
        &["serve", "--config", &config],
        log,
    )
}

/// Starts keepalived (VRRP only, in the foreground) with `config` inside `ns`; pid files go
/// to `dir` so several instances never share one.
pub fn keepalived(
    name: &str,
    ns: &Netns,
    config: &Path,
    dir: &Path,
    log: &Path,
) -> anyhow::Result<Process> {
    let path = |file: &str| dir.join(file).to_string_lossy().into_owned();
    let (config, pid, vrrp_pid) = (
        config.to_string_lossy(),
        path("keepalived.pid"),
        path("vrrp.pid"),
    );
    Process::spawn(
        name,
        ns,
        Path::new("keepalived"),
        &[
            "--dont-fork",
            "--log-console",
            "--no-syslog",
            "--vrrp",
            "--use-file",
            &config,
            "--pid",
            &pid,
            "--vrrp_pid",
            &vrrp_pid,
        ],
        log,
    )
}

/// Starts the upstream: the corpus directory served over HTTP on `listen`, inside `ns`.
pub fn upstream(
    binaries: &Binaries,
    ns: &Netns,
    corpus: &Path,
    listen: &str,
    log: &Path,
) -> anyhow::Result<Process> {
    let corpus = corpus.to_string_lossy();
    Process::spawn(
        "upstream",
        ns,
        &binaries.goproxy_lab,
        &["serve-dir", "--listen", listen, "--dir", &corpus],
        log,
    )
}
