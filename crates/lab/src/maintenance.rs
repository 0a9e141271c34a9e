//! Operations on a running lab beyond sudden faults: graceful stops and restarts (as systemd
//! would do them), the upstream going away and coming back, a node's data directory, and the
//! `goproxy-ha cluster …` commands run from the client namespace.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::Signal;

use crate::config::UPSTREAM_PORT;
use crate::lab::{Lab, NODES};
use crate::procs;
use crate::topology::UPSTREAM_IP;

/// How long a SIGTERMed node may take to hand over and drain before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

impl Lab {
    /// Whether node `i`'s main process runs (a process that exited is reaped).
    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i - 1]
            .main
            .as_mut()
            .is_some_and(|main| main.is_running())
    }

    /// SIGTERM to node `i` (a leader hands over first), waiting up to 15 s for it to exit, then
    /// SIGKILL. Returns whether it exited by itself.
    pub fn stop_node(&mut self, i: usize) -> bool {
        let Some(mut main) = self.nodes[i - 1].main.take() else {
            return true;
        };
        if main.signal(Signal::SIGTERM).is_err() {
            main.kill9();
            return false;
        }
        let started = Instant::now();
        while started.elapsed() < STOP_GRACE {
            if !main.is_running() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        main.kill9();
        false
    }

    /// Starts every node whose process is not running, as a supervisor (systemd
    /// `Restart=always`) would; returns their numbers.
    pub fn restart_stopped(&mut self) -> anyhow::Result<Vec<usize>> {
        let mut restarted = Vec::new();
        for i in 1..=NODES {
            if !self.is_running(i) {
                self.nodes[i - 1].main = None;
                self.start_node(i)?;
                restarted.push(i);
            }
        }
        Ok(restarted)
    }

    /// Node `i`'s data directory (index and blobs).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("data")
    }

    /// Stops the upstream: fills fail with connection refused until [`Lab::upstream_up`].
    pub fn upstream_down(&mut self) {
        if let Some(mut upstream) = self.upstream.take() {
            upstream.kill9();
        }
    }

    /// Starts the upstream again (no-op while it runs).
    pub fn upstream_up(&mut self) -> anyhow::Result<()> {
        if self.upstream.as_mut().is_some_and(|u| u.is_running()) {
            return Ok(());
        }
        self.upstream = Some(procs::upstream(
            &self.binaries,
            self.topology.switch(),
            &self.corpus,
            &format!("{UPSTREAM_IP}:{UPSTREAM_PORT}"),
            &self.dir.join("upstream.log"),
        )?);
        Ok(())
    }

    /// Runs `goproxy-ha ARGS` in the client namespace (e.g. `cluster leave …`), returning its
    /// output; fails with its stderr when it exits non-zero.
    pub fn goproxy_cli(&self, args: &[&str]) -> anyhow::Result<Output> {
        let output = self
            .topology
            .client()
            .command(&self.binaries.goproxy_ha.to_string_lossy())
            .args(args)
            .envs(crate::certs::admin_env(&self.tls))
            .output()
            .with_context(|| format!("goproxy-ha {args:?}"))?;
        if !output.status.success() {
            bail!(
                "goproxy-ha {args:?}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(output)
    }
}
