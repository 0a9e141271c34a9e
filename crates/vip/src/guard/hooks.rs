//! Notification hooks: `<program> holder|released <address> <interface>`.
//!
//! Hooks run one at a time, in transition order, on a task of their own: the guard never waits for
//! them, a hanging one is killed after [`HOOK_TIMEOUT`], and a failing one is only logged. They
//! report what happened; they have no say in it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::config::GuardConfig;

/// Longest a hook may run before it is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// A transition worth telling a hook about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The address was added.
    Holder,
    /// The address was removed.
    Released,
}

impl Transition {
    fn word(self) -> &'static str {
        match self {
            Transition::Holder => "holder",
            Transition::Released => "released",
        }
    }
}

/// The hook runner of one guard.
pub struct Hooks {
    queue: Option<mpsc::UnboundedSender<Transition>>,
    worker: Option<JoinHandle<()>>,
}

impl Hooks {
    /// Starts the runner (no task at all when no hook is configured).
    pub fn start(cfg: &GuardConfig) -> Hooks {
        if cfg.notify_holder.is_none() && cfg.notify_released.is_none() {
            return Hooks {
                queue: None,
                worker: None,
            };
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = tokio::spawn(run(cfg.clone(), rx));
        Hooks {
            queue: Some(tx),
            worker: Some(worker),
        }
    }

    /// Queues the hook for `transition`, if one is configured.
    pub fn notify(&self, transition: Transition) {
        if let Some(queue) = &self.queue {
            // The worker only stops after the queue closes, so this cannot fail.
            let _ = queue.send(transition);
        }
    }

    /// Lets queued hooks finish for at most `grace`; whatever still runs then is left alone.
    pub async fn finish(mut self, grace: Duration) {
        self.queue = None;
        if let Some(worker) = self.worker.take() {
            if tokio::time::timeout(grace, worker).await.is_err() {
                tracing::warn!(?grace, "vip hooks still running at guard exit; not waiting");
            }
        }
    }
}

async fn run(cfg: GuardConfig, mut queue: mpsc::UnboundedReceiver<Transition>) {
    let address = cfg.address.to_string();
    while let Some(transition) = queue.recv().await {
        let program = match transition {
            Transition::Holder => &cfg.notify_holder,
            Transition::Released => &cfg.notify_released,
        };
        if let Some(program) = program {
            run_one(program, transition, &address, &cfg.interface).await;
        }
    }
}

async fn run_one(program: &PathBuf, transition: Transition, address: &str, interface: &str) {
    let state = transition.word();
    let spawned = Command::new(program)
        .args([state, address, interface])
        .stdin(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            tracing::warn!(hook = %program.display(), state, %error, "vip hook could not start");
            return;
        }
    };
    match tokio::time::timeout(HOOK_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) if status.success() => {
            tracing::debug!(hook = %program.display(), state, "vip hook done");
        }
        Ok(Ok(status)) => {
            tracing::warn!(hook = %program.display(), state, %status, "vip hook failed");
        }
        Ok(Err(error)) => {
            tracing::warn!(hook = %program.display(), state, %error, "vip hook wait failed");
        }
        Err(_) => {
            tracing::warn!(hook = %program.display(), state, timeout = ?HOOK_TIMEOUT, "vip hook hung; killing it");
            let _ = child.kill().await;
        }
    }
}
