//! The guard: owns the VIP for the node, exactly as long as the node's last `hold` allows.
//!
//! State is two facts: whether the address is on the interface (`held`) and until when it may be
//! (`deadline_ns`, `CLOCK_MONOTONIC`). Every loop turn first drops the address if the deadline has
//! passed, then waits for whichever comes first: the deadline, the next re-announcement, a command,
//! or shutdown. The deadline branch is polled first so a flood of commands cannot starve it.

pub mod config;
pub mod hooks;
mod upkeep;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::announce::Announcer;
use crate::command::{monotonic_now_ns, GuardCommand};
use crate::error::VipError;
use crate::netlink::{LinkInfo, Netlink};
pub use config::GuardConfig;
use hooks::{Hooks, Transition};

/// After every attempt failed, try the whole series again this often.
const STUCK_RETRY: Duration = Duration::from_secs(1);
/// How long a stopping guard lets queued hooks finish.
const HOOK_EXIT_GRACE: Duration = Duration::from_secs(1);
const NANOS_PER_MILLI: u64 = 1_000_000;

/// Runs the guard on `input` (one [`GuardCommand`] per line) until it ends, then removes the
/// address. Errors are the ones that make guarding impossible: no such interface, no netlink, a
/// stale address that cannot be removed, or an address that is still there at the end.
pub async fn run_guard<R: AsyncBufRead + Unpin>(
    cfg: &GuardConfig,
    input: R,
) -> Result<(), VipError> {
    run_guard_until(cfg, input, std::future::pending()).await
}

/// [`run_guard`] that also stops (removing the address) when `shutdown` completes.
pub async fn run_guard_until<R, S>(cfg: &GuardConfig, input: R, shutdown: S) -> Result<(), VipError>
where
    R: AsyncBufRead + Unpin,
    S: Future<Output = ()>,
{
    let netlink = Netlink::connect()?;
    let link = netlink.link(&cfg.interface).await?;
    let mut guard = Guard {
        cfg,
        announcer: Arc::new(Announcer::new(&cfg.interface, &link, cfg.address.ip())),
        netlink,
        link,
        hooks: Hooks::start(cfg),
        held: false,
        deadline_ns: None,
        refresh_at: None,
        removal_retry_at: None,
        burst: None,
    };
    let outcome = match guard.remove_stale().await {
        Ok(()) => guard.serve(input, shutdown).await,
        Err(e) => Err(e),
    };
    guard.hooks.finish(HOOK_EXIT_GRACE).await;
    outcome
}

struct Guard<'a> {
    cfg: &'a GuardConfig,
    netlink: Netlink,
    link: LinkInfo,
    announcer: Arc<Announcer>,
    hooks: Hooks,
    /// The address is on the interface (as far as the guard knows).
    held: bool,
    /// Until when it may stay there; `None` while held means a removal failed and is pending.
    deadline_ns: Option<u64>,
    refresh_at: Option<Instant>,
    removal_retry_at: Option<Instant>,
    /// The announcement burst in flight, aborted on release.
    burst: Option<JoinHandle<()>>,
}

impl Guard<'_> {
    async fn serve<R, S>(&mut self, input: R, shutdown: S) -> Result<(), VipError>
    where
        R: AsyncBufRead + Unpin,
        S: Future<Output = ()>,
    {
        let mut lines = input.lines();
        tokio::pin!(shutdown);
        loop {
            self.expire_if_due().await;
            let (wake, refresh) = (self.wake_at(), self.refresh_at);
            tokio::select! {
                biased;
                () = sleep_until(wake) => {}
                () = &mut shutdown => return self.release("shutdown").await,
                () = sleep_until(refresh) => self.refresh().await,
                line = lines.next_line() => match line {
                    Ok(Some(line)) => self.on_line(&line).await,
                    Ok(None) => return self.release("input closed").await,
                    Err(error) => {
                        tracing::warn!(%error, "reading vip guard commands failed");
                        return self.release("input read error").await;
                    }
                },
            }
        }
    }

    async fn on_line(&mut self, line: &str) {
        match GuardCommand::parse(line) {
            Ok(GuardCommand::Hold { until_mono_ns }) => self.hold(until_mono_ns).await,
            Ok(GuardCommand::Release) => {
                let _ = self.release("released by the node").await;
            }
            Err(error) => {
                tracing::warn!(%error, "invalid vip guard command; releasing to be safe");
                let _ = self.release("invalid command").await;
            }
        }
    }

    async fn hold(&mut self, until_mono_ns: u64) {
        let now = monotonic_now_ns();
        if until_mono_ns <= now {
            let late_ms = (now - until_mono_ns) / NANOS_PER_MILLI;
            tracing::debug!(late_ms, "ignoring a vip hold whose deadline already passed");
            return;
        }
        if !self.held {
            if let Err(error) = self.netlink.add(self.link.index, self.cfg.address).await {
                tracing::warn!(%error, address = %self.cfg.address, "could not add the vip; will retry on the next hold");
                return;
            }
            self.held = true;
            tracing::info!(
                address = %self.cfg.address,
                interface = %self.cfg.interface,
                lease_ms = (until_mono_ns - now) / NANOS_PER_MILLI,
                "vip acquired"
            );
            self.announce(self.cfg.garp_count);
            self.hooks.notify(Transition::Holder);
        }
        if self.refresh_at.is_none() && !self.cfg.garp_refresh.is_zero() {
            self.refresh_at = Some(Instant::now() + self.cfg.garp_refresh);
        }
        self.deadline_ns = Some(until_mono_ns);
        self.removal_retry_at = None;
    }

    /// Drops the address if its deadline passed (or retries a removal that failed earlier).
    async fn expire_if_due(&mut self) {
        if !self.held {
            return;
        }
        let due = match self.deadline_ns {
            Some(deadline) => monotonic_now_ns() >= deadline,
            None => self.removal_retry_at.is_none_or(|at| Instant::now() >= at),
        };
        if due {
            let reason = match self.deadline_ns {
                Some(_) => "lease expired",
                None => "retrying a failed removal",
            };
            let _ = self.release(reason).await;
        }
    }

    /// Removes the address now. On failure it stays `held`, and removal is retried later.
    async fn release(&mut self, reason: &'static str) -> Result<(), VipError> {
        self.deadline_ns = None;
        self.refresh_at = None;
        if let Some(burst) = self.burst.take() {
            burst.abort();
        }
        if !self.held {
            return Ok(());
        }
        match self.remove_with_retries().await {
            Ok(_) => {
                self.held = false;
                self.removal_retry_at = None;
                tracing::info!(address = %self.cfg.address, interface = %self.cfg.interface, reason, "vip released");
                self.hooks.notify(Transition::Released);
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, reason, "VIP STILL ON THE INTERFACE: removal failed; retrying");
                self.removal_retry_at = Some(Instant::now() + STUCK_RETRY);
                Err(error)
            }
        }
    }

    /// When the loop must wake up for the deadline (or a pending removal retry).
    fn wake_at(&self) -> Option<Instant> {
        if !self.held {
            return None;
        }
        match self.deadline_ns {
            Some(deadline) => Some(mono_to_instant(deadline)),
            None => self.removal_retry_at,
        }
    }
}

/// A `CLOCK_MONOTONIC` instant as a tokio [`Instant`]; the past maps to now.
fn mono_to_instant(mono_ns: u64) -> Instant {
    let now = Instant::now();
    now + Duration::from_nanos(mono_ns.saturating_sub(monotonic_now_ns()))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
