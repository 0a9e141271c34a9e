//! etcd (Debian's etcd-server 3.4) as the anchor for index commit throughput: three
//! members on loopback, loaded by the `etcd-load` helper with the same writer count.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::procs::free_port;

/// A three-member etcd cluster; killed on drop.
pub struct Etcd {
    children: Vec<Child>,
    /// Client endpoints, `host:port`.
    pub endpoints: Vec<String>,
}

impl Etcd {
    /// Starts three members with data under `work`.
    pub fn start(work: &Path) -> anyhow::Result<Self> {
        let ports: Vec<(u16, u16)> = (0..3)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let cluster: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (peer, _))| format!("e{i}=http://127.0.0.1:{peer}"))
            .collect();
        let mut children = Vec::new();
        for (i, (peer, client)) in ports.iter().enumerate() {
            let log = std::fs::File::create(work.join(format!("etcd-{i}.log")))?;
            let child = Command::new("etcd")
                .args(["--name", &format!("e{i}")])
                .arg("--data-dir")
                .arg(work.join(format!("etcd-{i}")))
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                ])
                .args([
                    "--listen-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args([
                    "--advertise-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args(["--initial-cluster", &cluster.join(",")])
                .args([
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    "goproxy-bench",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .context("starting etcd (apt-get install etcd-server)")?;
            children.push(child);
        }
        let endpoints = ports
            .iter()
            .map(|(_, client)| format!("127.0.0.1:{client}"))
            .collect();
        Ok(Self {
            children,
            endpoints,
        })
    }

    /// Runs `etcd-load` (built next to this binary) and returns puts per second.
    pub fn puts_per_sec(&self, duration: Duration, clients: usize) -> anyhow::Result<f64> {
        let load = std::env::current_exe()?.with_file_name("etcd-load");
        let output = Command::new(&load)
            .args([
                self.endpoints.join(","),
                duration.as_secs().to_string(),
                clients.to_string(),
            ])
            .output()
            .with_context(|| format!("running {}", load.display()))?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "etcd-load failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        text.split_whitespace()
            .nth(1)
            .and_then(|rate| rate.parse().ok())
            .with_context(|| format!("unexpected etcd-load output {text:?}"))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
