//! A running lab: the topology, the upstream, and per node either a clustered goproxy-ha that
//! holds the VIP while it leads, or (for the comparison) a standalone goproxy-ha with keepalived
//! moving the VIP. Faults are applied here by node number.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use goproxy_status::{NodeStatus, ReplicationMode};
use nix::sys::signal::Signal;

use crate::config::{self, RaftTiming, Vrrp, HTTP_PORT, UPSTREAM_PORT};
use crate::netns::Netns;
use crate::procs::{self, Binaries, Process};
use crate::topology::{node_ip, Direction, Topology, UPSTREAM_IP};

/// Number of nodes in the lab.
pub const NODES: usize = 3;

/// Who moves the VIP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// goproxy-ha's Raft leader, fenced by the quorum lease.
    GoproxyHa,
    /// keepalived (VRRP) in front of standalone goproxy-ha nodes.
    Keepalived(Vrrp),
}

/// What one node runs.
pub(crate) struct NodeProcs {
    pub(crate) main: Option<Process>,
    pub(crate) keepalived: Option<Process>,
}

/// The lab and everything running in it.
pub struct Lab {
    pub(crate) topology: Topology,
    pub(crate) binaries: Binaries,
    pub(crate) dir: PathBuf,
    pub(crate) timing: RaftTiming,
    pub(crate) model: Model,
    pub(crate) nodes: Vec<NodeProcs>,
    pub(crate) upstream: Option<Process>,
    pub(crate) corpus: PathBuf,
    /// The node-to-node certificates (CA, nodes, the lab's operator).
    pub(crate) tls: PathBuf,
}

impl Lab {
    /// Builds the network `tag`, starts the upstream on `corpus` and a three-node goproxy-ha
    /// cluster with the VIP. Logs, configs and data go under `dir`.
    pub fn start(
        tag: &str,
        dir: &Path,
        binaries: Binaries,
        corpus: &Path,
        timing: RaftTiming,
    ) -> anyhow::Result<Lab> {
        std::fs::create_dir_all(dir)?;
        let tls = crate::certs::ensure(&binaries.goproxy_ha, &dir.join("tls"), NODES)?;
        let topology = Topology::build(tag, NODES)?;
        let upstream = procs::upstream(
            &binaries,
            topology.switch(),
            corpus,
            &format!("{UPSTREAM_IP}:{UPSTREAM_PORT}"),
            &dir.join("upstream.log"),
        )?;
        let mut lab = Lab {
            topology,
            binaries,
            dir: dir.to_path_buf(),
            timing,
            model: Model::GoproxyHa,
            nodes: (0..NODES)
                .map(|_| NodeProcs {
                    main: None,
                    keepalived: None,
                })
                .collect(),
            upstream: Some(upstream),
            corpus: corpus.to_path_buf(),
            tls,
        };
        for i in 1..=NODES {
            lab.start_node(i)?;
        }
        Ok(lab)
    }

    /// The network.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Who moves the VIP now.
    pub fn model(&self) -> Model {
        self.model
    }

    /// The Raft timing of the cluster model.
    pub fn timing(&self) -> RaftTiming {
        self.timing
    }

    /// Restarts the cluster with another Raft timing (data directories are kept).
    pub fn retime(&mut self, timing: RaftTiming) -> anyhow::Result<()> {
        self.timing = timing;
        self.switch_model(Model::GoproxyHa)
    }

    /// The lab directory (configs, data, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where node `i` of the cluster model keeps its config, data (`data/`) and log under the
    /// lab directory `dir` (the chaos suite mounts a small filesystem there before starting).
    pub fn cluster_node_dir(dir: &Path, i: usize) -> PathBuf {
        dir.join(format!("cluster-n{i}"))
    }

    pub(crate) fn node_dir(&self, i: usize) -> PathBuf {
        match self.model {
            Model::GoproxyHa => Lab::cluster_node_dir(&self.dir, i),
            Model::Keepalived(vrrp) => self.dir.join(format!("keepalived-v{}-n{i}", vrrp.version)),
        }
    }

    /// Starts node `i`'s processes for the current model (its data directory is kept).
    pub fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        let dir = self.node_dir(i);
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("node.toml");
        let text = match self.model {
            Model::GoproxyHa => {
                config::cluster_node(i, NODES, &dir.join("data"), self.timing, &self.tls)
            }
            Model::Keepalived(_) => config::standalone_node(&dir.join("data")),
        };
        std::fs::write(&config, text)?;
        let ns = self.topology.node(i).clone();
        let main = procs::goproxy_node(
            &self.binaries,
            &format!("node {i}"),
            &ns,
            &config,
            // Beside the node's directory, not in it: a full data filesystem (the chaos
            // suite mounts one there) must not swallow the log that explains what happened.
            &dir.with_extension("log"),
        )?;
        self.nodes[i - 1].main = Some(main);
        if let Model::Keepalived(vrrp) = self.model {
            // A reboot empties /run: pid files of a killed keepalived must not survive it
            // (their pids may still exist as unreaped zombies: "daemon is already running").
            for pid_file in ["keepalived.pid", "vrrp.pid"] {
                let _ = std::fs::remove_file(dir.join(pid_file));
            }
            let conf = dir.join("keepalived.conf");
            std::fs::write(&conf, config::keepalived(i, vrrp))?;
            let keepalived = procs::keepalived(
                &format!("keepalived {i}"),
                &ns,
                &conf,
                &dir,
                &dir.join("keepalived.log"),
            )?;
            self.nodes[i - 1].keepalived = Some(keepalived);
        }
        Ok(())
    }

    /// Stops everything on every node, removes the VIP, and restarts the nodes under `model`.
    pub fn switch_model(&mut self, model: Model) -> anyhow::Result<()> {
        for i in 1..=NODES {
            self.topology.power_off(i)?;
            self.nodes[i - 1] = NodeProcs {
                main: None,
                keepalived: None,
            };
            self.topology.power_on(i)?;
        }
        self.topology.clear_vip();
        self.model = model;
        for i in 1..=NODES {
            self.start_node(i)?;
        }
        Ok(())
    }

    /// Process crash: SIGKILL of node `i`'s main process only (its VIP guard, if any, lives).
    pub fn crash(&mut self, i: usize) {
        if let Some(mut main) = self.nodes[i - 1].main.take() {
            main.kill9();
        }
        if let Some(mut keepalived) = self.nodes[i - 1].keepalived.take() {
            keepalived.kill9();
        }
    }

    /// Power loss: node `i`'s link goes down and every process in it is SIGKILLed.
    pub fn power_off(&mut self, i: usize) -> anyhow::Result<()> {
        self.topology.power_off(i)?;
        self.nodes[i - 1] = NodeProcs {
            main: None,
            keepalived: None,
        };
        Ok(())
    }

    /// Brings node `i` back as after a reboot and starts its processes.
    pub fn power_on(&mut self, i: usize) -> anyhow::Result<()> {
        self.topology.power_on(i)?;
        self.start_node(i)
    }

    /// SIGSTOP (`frozen`) or SIGCONT of node `i`'s main process; its guard keeps running.
    pub fn freeze(&self, i: usize, frozen: bool) -> anyhow::Result<()> {
        let signal = if frozen {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        match &self.nodes[i - 1].main {
            Some(main) => main.signal(signal),
            None => bail!("node {i} is not running"),
        }
    }

    /// Cuts node `i` off from the other nodes (not from the client or the upstream).
    pub fn isolate(&self, i: usize, direction: Direction) -> anyhow::Result<()> {
        let peers: Vec<_> = (1..=NODES).filter(|&p| p != i).map(node_ip).collect();
        self.topology.isolate(i, &peers, direction)
    }

    /// Removes partition and packet-loss faults from node `i`.
    pub fn heal(&self, i: usize) {
        self.topology.heal(i);
    }

    /// Node `i`'s view of the cluster (`/cluster/status`), asked from the client namespace.
    pub fn member_view(&self, i: usize) -> anyhow::Result<NodeStatus> {
        let url = format!("http://{}:{HTTP_PORT}/cluster/status", node_ip(i));
        Ok(serde_json::from_slice(&self.client_get(url)?)?)
    }

    /// The leader, when every node answers, agrees on it, has applied the leader's whole log,
    /// holds every committed blob, and replication is in sync with no backlog.
    pub fn healthy_leader(&self) -> anyhow::Result<usize> {
        let views = (1..=NODES)
            .map(|i| self.member_view(i).with_context(|| format!("node {i}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let leader = views[0].current_leader.context("no leader")?;
        let leader_view = views
            .get(leader as usize - 1)
            .context("leader out of range")?;
        for (i, view) in views.iter().enumerate() {
            if view.current_leader != Some(leader) {
                bail!(
                    "node {} follows {:?}, node 1 follows {leader}",
                    i + 1,
                    view.current_leader
                );
            }
            if view.last_applied != leader_view.last_log_index {
                bail!(
                    "node {} applied {:?} of {:?}",
                    i + 1,
                    view.last_applied,
                    leader_view.last_log_index
                );
            }
            if view.replication_mode != ReplicationMode::Sync
                || view.backlog_blobs > 0
                || view.missing_blobs > 0
            {
                bail!(
                    "node {} replication {} backlog {} missing blobs {}",
                    i + 1,
                    view.replication_mode,
                    view.backlog_blobs,
                    view.missing_blobs
                );
            }
        }
        Ok(leader as usize)
    }

    /// Whether node `i`'s front end answers `path` with a 200, asked from the client.
    pub fn answers(&self, i: usize, path: &str) -> bool {
        let url = format!("http://{}:{HTTP_PORT}{path}", node_ip(i));
        self.client_get(url).is_ok()
    }

    /// GET `url` from the client namespace; the body of a 2xx answer.
    fn client_get(&self, url: String) -> anyhow::Result<Vec<u8>> {
        self.topology.client().block_on(move || async move {
            let response = client()?.get(&url).send().await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            Ok(response.bytes().await?.to_vec())
        })
    }

    /// Waits until `check` succeeds, up to `bound`; the error names the last failure.
    pub fn wait<T>(
        &self,
        what: &str,
        bound: Duration,
        mut check: impl FnMut(&Lab) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let started = Instant::now();
        loop {
            match check(self) {
                Ok(value) => return Ok(value),
                Err(e) if started.elapsed() > bound => {
                    bail!("{what}: not within {bound:?}: {e:#}\n{}", self.log_tails())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Everything node `i` has logged in this lab, across its restarts.
    pub fn node_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.node_dir(i).with_extension("log")).unwrap_or_default()
    }

    /// The last lines of every node's log.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(main) = &node.main {
                out.push_str(&format!("--- node {} ---\n{}\n", i + 1, main.log_tail(15)));
            }
        }
        out
    }

    /// Leaves every namespace and process running (`make lab-up`); `make lab-down` removes them.
    pub fn keep_running(mut self) {
        for node in self.nodes.drain(..) {
            for process in [node.main, node.keepalived].into_iter().flatten() {
                process.detach();
            }
        }
        if let Some(upstream) = self.upstream.take() {
            upstream.detach();
        }
        let Lab { topology, .. } = self;
        topology.keep();
    }

    /// The node namespaces, node 1 first.
    pub fn node_namespaces(&self) -> Vec<Netns> {
        self.topology.nodes().to_vec()
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()?)
}
