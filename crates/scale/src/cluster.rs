//! The three nodes of a run: ports, certificates and configuration files, made with the
//! `goproxy-ha` binary under test as an operator would (`certs init|issue`, `config`).
//!
//! Node 1 holds the generated index; nodes 2 and 3 start empty and join it
//! (`cluster join`), as a wiped node does (cluster/RUNBOOK.md). Every node lists all three
//! as peers: node 1, the lowest id, finds its group already initialised by the generator.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::generate::Target;

/// The members of a run.
pub const IDS: [u64; 3] = [1, 2, 3];
/// The upstream in every configuration: nothing listens there, and nothing is filled.
const UPSTREAM: &str = "http://127.0.0.1:9";

/// Where a run's nodes live and how they are reached.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The `goproxy-ha` binary.
    pub binary: PathBuf,
    /// The run's directory.
    pub dir: PathBuf,
    /// `(http, raft)` port of each node, by position in [`IDS`].
    pub ports: Vec<(u16, u16)>,
    /// Whether the binary accepted `[raft] snapshot_chunk_bytes` (absent before streamed
    /// snapshots landed).
    pub chunk_bytes_applied: bool,
}

impl Cluster {
    /// Chooses ports, makes the certificates and writes the three configurations under
    /// `dir`; `chunk_bytes` is tried as `[raft] snapshot_chunk_bytes` and left out when the
    /// binary does not know it.
    pub fn create(binary: &Path, dir: &Path, chunk_bytes: Option<u64>) -> anyhow::Result<Self> {
        let ports = goproxy_testkit::ports::unused(2 * IDS.len());
        let mut cluster = Self {
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            ports: ports.chunks(2).map(|p| (p[0], p[1])).collect(),
            chunk_bytes_applied: false,
        };
        cluster.certs()?;
        for id in IDS {
            cluster.write_config(id, chunk_bytes)?;
        }
        if chunk_bytes.is_some() {
            let checked =
                cluster.cli(&["config", "--config", &cluster.path_str(&cluster.config(1))])?;
            cluster.chunk_bytes_applied = checked.status.success();
            if !cluster.chunk_bytes_applied {
                let stderr = String::from_utf8_lossy(&checked.stderr);
                if !stderr.contains("snapshot_chunk_bytes") {
                    bail!("goproxy-ha config refused the scale configuration: {stderr}");
                }
                for id in IDS {
                    cluster.write_config(id, None)?;
                }
            }
        }
        Ok(cluster)
    }

    fn path_str(&self, path: &Path) -> String {
        path.to_string_lossy().into_owned()
    }

    fn tls(&self) -> PathBuf {
        self.dir.join("tls")
    }

    /// Node `id`'s configuration file.
    pub fn config(&self, id: u64) -> PathBuf {
        self.dir.join(format!("n{id}.toml"))
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("n{id}"))
    }

    /// Node `id`'s log file.
    pub fn log(&self, id: u64) -> PathBuf {
        self.dir.join(format!("n{id}.log"))
    }

    fn ports_of(&self, id: u64) -> (u16, u16) {
        self.ports[(id - 1) as usize]
    }

    /// Node `id`'s advertised HTTP address.
    pub fn http_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.ports_of(id).0)
    }

    /// Node `id`'s advertised node-to-node address.
    pub fn raft_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.ports_of(id).1)
    }

    /// What the generator makes node `id`'s data directory for.
    pub fn target(&self, id: u64) -> Target {
        Target {
            data_dir: self.data_dir(id),
            node_id: id,
            raft_addr: self.raft_addr(id),
            http_addr: self.http_addr(id),
        }
    }

    fn certs(&self) -> anyhow::Result<()> {
        let tls = self.path_str(&self.tls());
        self.cli_ok(&["certs", "init", "--dir", &tls])?;
        self.cli_ok(&["certs", "issue", "--dir", &tls, "--admin", "ops"])?;
        for id in IDS {
            self.cli_ok(&["certs", "issue", "--dir", &tls, "--node", &id.to_string()])?;
        }
        Ok(())
    }

    fn write_config(&self, id: u64, chunk_bytes: Option<u64>) -> anyhow::Result<()> {
        let tls = self.tls();
        let mut text = format!(
            "node_id = {id}\nlisten = {:?}\nraft_listen = {:?}\ndata_dir = {:?}\n\
             [proxy]\nupstream = {UPSTREAM:?}\nupstream_attempts = 1\n\
             [raft]\n# The log is purged to the snapshot, so a joining node is sent the snapshot.\n\
             max_in_snapshot_log_to_keep = 0\n",
            self.http_addr(id),
            self.raft_addr(id),
            self.data_dir(id),
        );
        if let Some(bytes) = chunk_bytes {
            text.push_str(&format!("snapshot_chunk_bytes = {bytes}\n"));
        }
        for peer in IDS {
            text.push_str(&format!(
                "[[cluster.peers]]\nid = {peer}\nhttp = {:?}\nraft = {:?}\n",
                self.http_addr(peer),
                self.raft_addr(peer)
            ));
        }
        text.push_str(&format!(
            "[cluster.tls]\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
            tls.join("ca.pem"),
            tls.join(format!("node-{id}.pem")),
            tls.join(format!("node-{id}.key")),
        ));
        std::fs::write(self.config(id), text).context("writing a node configuration")
    }

    /// Runs the binary with `args` and the operator certificate.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        let tls = self.tls();
        Command::new(&self.binary)
            .args(args)
            .env("GOPROXY_HA_ADMIN_CA", tls.join("ca.pem"))
            .env("GOPROXY_HA_ADMIN_CERT", tls.join("admin-ops.pem"))
            .env("GOPROXY_HA_ADMIN_KEY", tls.join("admin-ops.key"))
            .output()
            .with_context(|| format!("running {} {args:?}", self.binary.display()))
    }

    /// [`Cluster::cli`], which must succeed.
    pub fn cli_ok(&self, args: &[&str]) -> anyhow::Result<()> {
        let output = self.cli(args)?;
        if !output.status.success() {
            bail!(
                "goproxy-ha {args:?} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}
