//! The guard as a process of its own: `goproxy-ha vip-guard <args>` calls [`guard_process_main`].
//!
//! The guard lives in a separate process so that the node's fate (SIGKILL, SIGSTOP, a hung
//! runtime) cannot keep the address on the interface: the guard only holds it until the last
//! deadline it was given, and drops it as soon as its stdin closes. It also asks the kernel for
//! SIGTERM when its parent dies, and answers SIGTERM / SIGINT by removing the address and exiting.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::BufReader;
use tokio::signal::unix::{signal, SignalKind};

use crate::error::VipError;
use crate::guard::{run_guard_until, GuardConfig};

/// How long runtime shutdown waits for background work (the blocking stdin reader cannot be
/// interrupted; it must not hold the exit up).
const RUNTIME_SHUTDOWN_WAIT: Duration = Duration::from_millis(100);

/// Runs a guard on this process's stdin until EOF, a signal, or a fatal error. Installs no
/// tracing subscriber (the binary does).
pub fn guard_process_main(cfg: GuardConfig) -> Result<(), VipError> {
    // Belt and braces next to stdin EOF. The signal follows the death of the *thread* that forked
    // us, so the node must spawn the guard from a long-lived thread (a tokio worker, not a
    // spawn_blocking thread); a spurious SIGTERM only costs a release and a respawn.
    if let Err(error) = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM) {
        tracing::warn!(%error, "could not set the vip guard's parent-death signal");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(VipError::Runtime)?;
    let outcome = runtime.block_on(async {
        let mut terminate = signal(SignalKind::terminate()).map_err(VipError::Runtime)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(VipError::Runtime)?;
        let shutdown = async {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("vip guard got SIGTERM"),
                _ = interrupt.recv() => tracing::info!("vip guard got SIGINT"),
            }
        };
        run_guard_until(&cfg, BufReader::new(tokio::io::stdin()), shutdown).await
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_WAIT);
    outcome
}
