//! Named faults, each a reusable primitive over the lab: inject, hold while the workload runs,
//! and undo what the fault itself did. (The scenario then heals the rest: it restarts any
//! node that is down, as systemd would, and waits for convergence.)
//!
//! Targets are chosen from the cluster's state at injection time (the leader, a follower) and,
//! where there is a choice, by the seeded generator, so a seed replays the same choices.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use goproxy_lab::config::{HTTP_PORT, RAFT_PORT};
use goproxy_lab::lab::{Lab, NODES};
use goproxy_lab::topology::{node_ip, Direction, VIP};
use rand::seq::IndexedRandom;
use rand::Rng;

/// Bound on waiting for a leader between steps of a fault.
const LEADER_BOUND: Duration = Duration::from_secs(30);
/// What a leader logs when a fill failed on its full disk and it starts handing leadership
/// over. (It may not live to log the end: persisting the new leader's vote needs disk too.)
const HANDING_OVER: &str = "disk full: handing leadership";
/// What the drill probes through the VIP (cached by the suite's own probe).
const DRILL_PROBE: &str = "/github.com/gin-gonic/gin/@v/v1.8.1.info";

/// A named fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of the leader's process, restarted once another node leads; `n` times.
    KillLeader(usize),
    /// `kill -9` of a follower, restarted after the hold.
    KillFollower,
    /// The leader's link goes down and every process in its namespace is killed.
    PowerLossLeader,
    /// SIGSTOP of the leader for three election timeouts, then SIGCONT.
    FreezeLeader,
    /// nftables drops all traffic between the leader and the followers (both directions).
    IsolateLeader,
    /// Only the leader's packets to the followers are dropped; it still hears them.
    AsymmetricLeader,
    /// One node loses 20% of everything it sends, and delays it by 50 ms (tc netem; kernels
    /// without netem get a user-space relay that does the same).
    LossyNode,
    /// Every node killed at once (SIGKILL), then all started again.
    FullRestart,
    /// SIGTERM and restart of each node in turn, followers first, waiting for a healthy
    /// cluster in between (a deployment).
    RollingRestart,
    /// One follower's data filesystem filled up for the hold, then freed.
    DiskFull,
    /// The leader's data filesystem filled up for the hold, then freed.
    DiskFullLeader,
    /// The upstream refuses connections during fills.
    UpstreamOutage,
    /// A follower stopped, removed from the group, its data wiped, started empty and joined
    /// again (the runbook's procedure).
    WipeRejoin,
    /// The planned failover: `goproxy-ha drill` from the client, probing through the VIP.
    Drill,
}

/// Every fault, in the order `make chaos` runs them.
pub const ALL: &[Fault] = &[
    Fault::KillLeader(3),
    Fault::KillFollower,
    Fault::PowerLossLeader,
    Fault::FreezeLeader,
    Fault::IsolateLeader,
    Fault::AsymmetricLeader,
    Fault::LossyNode,
    Fault::FullRestart,
    Fault::RollingRestart,
    Fault::DiskFull,
    Fault::DiskFullLeader,
    Fault::UpstreamOutage,
    Fault::WipeRejoin,
    Fault::Drill,
];

impl Fault {
    /// The scenario's name.
    pub fn name(&self) -> String {
        match self {
            Fault::KillLeader(n) => format!("kill-9-leader-x{n}"),
            Fault::KillFollower => "kill-9-follower".into(),
            Fault::PowerLossLeader => "power-loss-leader".into(),
            Fault::FreezeLeader => "sigstop-leader".into(),
            Fault::IsolateLeader => "isolate-leader".into(),
            Fault::AsymmetricLeader => "asymmetric-leader".into(),
            Fault::LossyNode => "lossy-node".into(),
            Fault::FullRestart => "full-restart".into(),
            Fault::RollingRestart => "rolling-restart".into(),
            Fault::DiskFull => "disk-full-follower".into(),
            Fault::DiskFullLeader => "disk-full-leader".into(),
            Fault::UpstreamOutage => "upstream-outage".into(),
            Fault::WipeRejoin => "wipe-rejoin".into(),
            Fault::Drill => "drill".into(),
        }
    }

    /// Looks a fault up by [`Fault::name`] (`kill-9-leader-xN` takes any N).
    pub fn by_name(name: &str) -> Option<Fault> {
        if let Some(n) = name.strip_prefix("kill-9-leader-x") {
            return n.parse().ok().filter(|n| *n > 0).map(Fault::KillLeader);
        }
        ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Injects the fault, holds it for `hold` while the workload runs, and undoes it. Returns
    /// a line describing what was done.
    pub fn run(&self, lab: &mut Lab, hold: Duration, rng: &mut impl Rng) -> anyhow::Result<String> {
        match *self {
            Fault::KillLeader(n) => {
                let mut killed = Vec::new();
                for _ in 0..n {
                    let leader = leader(lab)?;
                    lab.crash(leader);
                    killed.push(leader);
                    let next = wait_new_leader(lab, leader)?;
                    std::thread::sleep(hold / n as u32);
                    lab.start_node(leader)?;
                    wait_healthy(lab).with_context(|| format!("after node {next} took over"))?;
                }
                Ok(format!("killed leaders {killed:?}"))
            }
            Fault::KillFollower => {
                let victim = follower(lab, rng)?;
                lab.crash(victim);
                std::thread::sleep(hold);
                lab.start_node(victim)?;
                Ok(format!("killed follower {victim}"))
            }
            Fault::PowerLossLeader => {
                let leader = leader(lab)?;
                lab.power_off(leader)?;
                wait_new_leader(lab, leader)?;
                std::thread::sleep(hold);
                lab.power_on(leader)?;
                Ok(format!("power-cut node {leader}"))
            }
            Fault::FreezeLeader => {
                let leader = leader(lab)?;
                let frozen = lab.timing().election_max * 3;
                lab.freeze(leader, true)?;
                std::thread::sleep(frozen.max(hold));
                lab.freeze(leader, false)?;
                Ok(format!("froze node {leader} for {frozen:?} or more"))
            }
            Fault::IsolateLeader | Fault::AsymmetricLeader => {
                let leader = leader(lab)?;
                let direction = if *self == Fault::IsolateLeader {
                    Direction::Both
                } else {
                    Direction::Outbound
                };
                lab.isolate(leader, direction)?;
                std::thread::sleep(hold);
                lab.heal(leader);
                Ok(format!(
                    "cut node {leader} off from its peers ({direction:?})"
                ))
            }
            Fault::LossyNode => {
                let victim = rng.random_range(1..=NODES);
                let applied =
                    lab.topology()
                        .impair(victim, 20, Duration::from_millis(50), rng.random())?;
                std::thread::sleep(hold);
                let measured = lab.topology().impairment_report(victim);
                lab.heal(victim);
                Ok(match measured {
                    Some(measured) => format!("node {victim}: {measured}"),
                    None => format!("{applied} on node {victim}"),
                })
            }
            Fault::FullRestart => {
                for i in 1..=NODES {
                    lab.crash(i);
                }
                std::thread::sleep(hold / 4);
                for i in 1..=NODES {
                    lab.start_node(i)?;
                }
                Ok("killed every node, started them again".into())
            }
            Fault::RollingRestart => {
                let leader = leader(lab)?;
                let order: Vec<usize> = (1..=NODES)
                    .filter(|&i| i != leader)
                    .chain([leader])
                    .collect();
                for &i in &order {
                    let clean = lab.stop_node(i);
                    if !clean {
                        bail!("node {i} did not exit within its grace period after SIGTERM");
                    }
                    lab.start_node(i)?;
                    wait_healthy(lab).with_context(|| format!("after restarting node {i}"))?;
                }
                Ok(format!("restarted nodes {order:?} one by one"))
            }
            Fault::DiskFull => {
                let victim = follower(lab, rng)?;
                let (written, ()) = with_full_disk(lab, victim, |_| std::thread::sleep(hold))?;
                Ok(format!(
                    "filled node {victim}'s filesystem ({} MiB of ballast)",
                    written >> 20
                ))
            }
            Fault::DiskFullLeader => {
                let victim = leader(lab)?;
                let handovers = |lab: &Lab| lab.node_log(victim).matches(HANDING_OVER).count();
                let before = handovers(lab);
                let (written, (moved, took, handing_over)) = with_full_disk(lab, victim, |lab| {
                    let filled = Instant::now();
                    // The workload's next fill fails on the full disk; the leader must hand
                    // over (not merely die of ENOSPC, which would move leadership too).
                    let moved = wait_new_leader(lab, victim);
                    let took = filled.elapsed();
                    let handing_over = handovers(lab) > before;
                    std::thread::sleep(hold.saturating_sub(took));
                    (moved, took, handing_over)
                })?;
                let next = moved.context("the leader kept leading on a full disk")?;
                anyhow::ensure!(
                    handing_over,
                    "node {next} took over, but node {victim} never logged {HANDING_OVER:?}"
                );
                Ok(format!(
                    "filled leader {victim}'s filesystem ({} MiB of ballast); node {next} led \
                     {} ms later",
                    written >> 20,
                    took.as_millis()
                ))
            }
            Fault::UpstreamOutage => {
                lab.upstream_down();
                std::thread::sleep(hold);
                lab.upstream_up()?;
                Ok("upstream down".into())
            }
            Fault::WipeRejoin => {
                let leader = leader(lab)?;
                // The lowest id bootstraps the group on an empty start; wipe another one.
                let victim = (2..=NODES)
                    .filter(|&i| i != leader)
                    .collect::<Vec<_>>()
                    .choose(rng)
                    .copied()
                    .context("no follower to wipe")?;
                lab.stop_node(victim);
                // Leadership may move (even to the victim) between choosing it and asking:
                // each attempt asks whoever leads the members still running.
                let victim_id = victim.to_string();
                cluster_change(
                    lab,
                    victim,
                    &["cluster", "leave", "--id", &victim_id],
                    |members| !members.contains(&(victim as u64)),
                )?;
                let data = lab.data_dir(victim);
                std::fs::remove_dir_all(&data)
                    .with_context(|| format!("wiping {}", data.display()))?;
                std::thread::sleep(hold);
                lab.start_node(victim)?;
                let ip = node_ip(victim);
                let (raft, http) = (format!("{ip}:{RAFT_PORT}"), format!("{ip}:{HTTP_PORT}"));
                cluster_change(
                    lab,
                    victim,
                    &[
                        "cluster", "join", "--id", &victim_id, "--raft", &raft, "--http", &http,
                    ],
                    |members| members.contains(&(victim as u64)),
                )?;
                Ok(format!("wiped node {victim} and joined it again"))
            }
            Fault::Drill => {
                let node = format!("{}:{HTTP_PORT}", node_ip(leader(lab)?));
                let probe = format!("http://{VIP}:{HTTP_PORT}{DRILL_PROBE}");
                let output = lab.goproxy_cli(&["drill", "--node", &node, "--probe", &probe])?;
                let report = String::from_utf8_lossy(&output.stdout);
                Ok(report.lines().skip(1).collect::<Vec<_>>().join("; "))
            }
        }
    }
}

/// Runs a `goproxy-ha cluster` change about node `about` (`args` without `--via`) through
/// the leader the other nodes agree on, asking again (through whoever leads then) while it
/// fails, for at most [`LEADER_BOUND`]. A failed attempt may still have taken effect: `done`
/// tells from the leader's member ids.
fn cluster_change(
    lab: &Lab,
    about: usize,
    args: &[&str],
    done: impl Fn(&[u64]) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + LEADER_BOUND;
    let others: Vec<usize> = (1..=NODES).filter(|&i| i != about).collect();
    loop {
        let leader = leader_among(lab, &others)?;
        let via = format!("{}:{RAFT_PORT}", node_ip(leader));
        let mut full = args.to_vec();
        full.extend(["--via", via.as_str()]);
        match lab.goproxy_cli(&full) {
            Ok(_) => return Ok(()),
            Err(_)
                if lab.member_view(leader).is_ok_and(|view| {
                    done(&view.members.iter().map(|m| m.id).collect::<Vec<_>>())
                }) =>
            {
                return Ok(())
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("chaos: {} via {via} failed, asking again: {e:#}", args[1]);
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The node every member agrees leads.
pub fn leader(lab: &Lab) -> anyhow::Result<usize> {
    leader_among(lab, &(1..=NODES).collect::<Vec<_>>())
}

/// The node every one of `nodes` agrees leads.
fn leader_among(lab: &Lab, nodes: &[usize]) -> anyhow::Result<usize> {
    lab.wait("an agreed leader", LEADER_BOUND, |lab| {
        let views = nodes
            .iter()
            .filter_map(|&i| lab.member_view(i).ok())
            .collect::<Vec<_>>();
        let first = views
            .first()
            .and_then(|v| v.current_leader)
            .context("no leader")?;
        anyhow::ensure!(
            views.len() == nodes.len() && views.iter().all(|v| v.current_leader == Some(first)),
            "members disagree"
        );
        Ok(first as usize)
    })
}

fn follower(lab: &Lab, rng: &mut impl Rng) -> anyhow::Result<usize> {
    let leader = leader(lab)?;
    let followers: Vec<usize> = (1..=NODES).filter(|&i| i != leader).collect();
    followers.choose(rng).copied().context("no follower")
}

fn wait_new_leader(lab: &Lab, old: usize) -> anyhow::Result<usize> {
    lab.wait("a new leader", LEADER_BOUND, |lab| {
        for i in (1..=NODES).filter(|&i| i != old) {
            if let Ok(view) = lab.member_view(i) {
                if view.leads() {
                    return Ok(i);
                }
            }
        }
        bail!("none yet")
    })
}

fn wait_healthy(lab: &Lab) -> anyhow::Result<usize> {
    lab.wait("a healthy cluster", LEADER_BOUND * 2, Lab::healthy_leader)
}

/// Fills node `victim`'s data filesystem with ballast, runs `while_full`, and frees the space
/// again (also when filling fails). Returns the ballast size and what `while_full` returned.
fn with_full_disk<T>(
    lab: &Lab,
    victim: usize,
    while_full: impl FnOnce(&Lab) -> T,
) -> anyhow::Result<(u64, T)> {
    let ballast = lab.data_dir(victim).with_file_name("ballast");
    let filled = fill(&ballast);
    let result = filled.map(|written| (written, while_full(lab)));
    let freed = std::fs::remove_file(&ballast).context("removing the ballast");
    let result = result?;
    freed?;
    Ok(result)
}

/// Writes zeros to `path` until the filesystem is full; returns the bytes written.
fn fill(path: &Path) -> anyhow::Result<u64> {
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let started = Instant::now();
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => return Err(e).context("writing ballast"),
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the filesystem under {} never filled up", path.display());
        }
    }
    let _ = file.sync_all();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_is_found_by_its_name() {
        for fault in ALL {
            assert_eq!(Fault::by_name(&fault.name()), Some(*fault));
        }
        assert_eq!(
            Fault::by_name("kill-9-leader-x7"),
            Some(Fault::KillLeader(7))
        );
        assert_eq!(Fault::by_name("kill-9-leader-x0"), None);
        assert_eq!(Fault::by_name("meteor"), None);
    }
}
