//! Keeps the VIP on this node exactly while it leads with a fresh quorum: the I/O around
//! `goproxy_vip::fencing::decide`, which holds the rule.
//!
//! The node never touches the address itself: it runs a guard child (`goproxy-ha vip-guard`)
//! and tells it, on every leadership sample, until when it may hold the VIP (see
//! `goproxy_vip::lease`). The guard drops the address when that deadline passes, when told to,
//! or when this process dies (its stdin closes), so a SIGKILLed or frozen node cannot keep it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use goproxy_consensus::Consensus;
use goproxy_vip::command::{instant_to_mono_ns, GuardCommand};
use goproxy_vip::fencing::{decide, Decision};
use goproxy_vip::lease::{LeadershipSample, LeasePolicy};
use goproxy_vip::GuardConfig;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often expiry is checked between metric updates.
const TICK: Duration = Duration::from_millis(5);
/// Wait before restarting a guard that died or could not start.
const RESPAWN_BACKOFF: Duration = Duration::from_millis(500);
/// How long a guard may take to drop the address and exit at shutdown.
const GUARD_EXIT_WAIT: Duration = Duration::from_secs(2);

/// What the VIP controller needs.
pub struct VipSettings {
    /// The VIP as configured (`ip/prefix`), for status and logs.
    pub address: String,
    /// The fencing rule.
    pub policy: LeasePolicy,
    /// Arguments after `vip-guard` for the guard process.
    pub guard_args: Vec<String>,
    /// Log format and filter handed to the guard, so its lines look like the node's.
    pub log: (crate::config::LogFormat, String),
}

/// Whether this node currently asks its guard to hold the VIP.
pub type HoldingWatch = watch::Receiver<bool>;

/// The running guard child.
struct Guard {
    child: Child,
    stdin: ChildStdin,
}

impl Guard {
    fn start(settings: &VipSettings) -> std::io::Result<Guard> {
        let (format, level) = &settings.log;
        let format = match format {
            crate::config::LogFormat::Json => "json",
            crate::config::LogFormat::Text => "text",
        };
        let mut child = Command::new(std::env::current_exe()?)
            .arg("vip-guard")
            .args(&settings.guard_args)
            .env("GOPROXY_HA_LOG_FORMAT", format)
            .env("GOPROXY_HA_LOG_LEVEL", level)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("guard started without a stdin pipe"))?;
        Ok(Guard { child, stdin })
    }

    async fn send(&mut self, command: GuardCommand) -> std::io::Result<()> {
        self.stdin.write_all(command.to_line().as_bytes()).await?;
        self.stdin.flush().await
    }

    /// Releases, closes the pipe and waits for the guard to remove the address and exit.
    async fn stop(mut self) {
        let _ = self.send(GuardCommand::Release).await;
        drop(self.stdin);
        match tokio::time::timeout(GUARD_EXIT_WAIT, self.child.wait()).await {
            Ok(Ok(status)) => tracing::info!(%status, "vip guard exited"),
            _ => {
                tracing::error!("vip guard did not exit; killing it");
                let _ = self.child.kill().await;
            }
        }
    }
}

/// The controller: runs until `shutdown`, then releases the VIP and stops the guard;
/// `holding` tells whether the guard was asked to hold the VIP.
pub async fn run(
    consensus: Consensus,
    settings: VipSettings,
    shutdown: CancellationToken,
    holding: watch::Sender<bool>,
) {
    let mut leadership = consensus.watch();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut guard: Option<Guard> = None;
    let mut next_spawn = Instant::now();
    // The newest deadline the lease allows, and the one the guard was last given.
    let mut entitled: Option<Instant> = None;
    let mut sent: Option<Instant> = None;
    let stopping = shutdown.cancelled();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            _ = &mut stopping => break,
            changed = leadership.changed() => {
                if !changed {
                    break;
                }
                let view = leadership.view();
                let sample = LeadershipSample {
                    is_leader: view.is_leader,
                    quorum_ack_age: view.quorum_ack_age,
                    observed_at: Instant::now(),
                };
                entitled = settings.policy.deadline(&sample);
            }
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        if guard.is_none() && now >= next_spawn {
            match Guard::start(&settings) {
                Ok(started) => guard = Some(started),
                Err(e) => tracing::error!("starting the vip guard: {e}"),
            }
            next_spawn = now + RESPAWN_BACKOFF;
            sent = None;
        }
        let Some(running) = guard.as_mut() else {
            holding.send_replace(false);
            continue;
        };
        // A new leader waits out any lease a leader it acknowledged may still hold
        // (`goproxy_consensus::foreign_lease`); after a normal failover that is already past.
        let decision = decide(now, entitled, consensus.others_lease_until(), sent);
        if let Some(decision) = decision {
            let (command, now_sent) = match decision {
                Decision::Hold(until) => (
                    GuardCommand::Hold {
                        until_mono_ns: instant_to_mono_ns(until),
                    },
                    Some(until),
                ),
                Decision::Release => (GuardCommand::Release, None),
            };
            match running.send(command).await {
                Ok(()) => sent = now_sent,
                Err(e) => {
                    tracing::error!("vip guard is gone ({e}); restarting it");
                    guard = None;
                    sent = None;
                }
            }
        }
        holding.send_if_modified(|held| {
            let now_held = sent.is_some();
            let changed = *held != now_held;
            *held = now_held;
            changed
        });
        if let Some(running) = guard.as_mut() {
            if let Ok(Some(status)) = running.child.try_wait() {
                tracing::error!(%status, "vip guard exited; restarting it");
                guard = None;
                sent = None;
            }
        }
    }
    if let Some(running) = guard.take() {
        running.stop().await;
    }
    holding.send_replace(false);
    tracing::info!(address = %settings.address, "vip released for shutdown");
}

/// The VIP settings of `config`, or `None` when no VIP is configured.
pub fn settings(config: &crate::config::Config) -> anyhow::Result<Option<VipSettings>> {
    let vip = &config.vip;
    let Some(address) = vip.address.as_deref() else {
        return Ok(None);
    };
    let policy = LeasePolicy::new(config.raft.election_timeout_max, vip.lease_margin)?;
    let guard = GuardConfig {
        address: address.parse()?,
        interface: vip.interface.clone(),
        garp_count: vip.garp_count,
        garp_interval: vip.garp_interval,
        garp_refresh: vip.garp_refresh,
        notify_holder: vip.notify_holder.clone(),
        notify_released: vip.notify_released.clone(),
    };
    Ok(Some(VipSettings {
        address: guard.address.to_string(),
        policy,
        guard_args: guard.to_args(),
        log: (config.log_format, config.log_level.clone()),
    }))
}
