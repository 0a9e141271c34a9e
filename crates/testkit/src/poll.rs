//! Waiting for a condition with a generous deadline instead of a fixed sleep: a loaded CI
//! machine loses races, so every wait polls until the state is reached or the bound passes.

use std::time::{Duration, Instant};

/// How often a condition is looked at.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns `Some`, for at most `bound`; panics naming `what` (and the
/// last failure) otherwise.
pub fn eventually<T>(
    what: &str,
    bound: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + bound;
    loop {
        match check() {
            Ok(value) => return value,
            Err(why) if Instant::now() >= deadline => {
                panic!("timed out after {bound:?} waiting for {what}: {why}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Polls `check` until it holds or `bound` passes; whether it held (for callers that assert
/// with their own message).
pub fn wait_for(bound: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The async form of [`eventually`] for a plain condition.
pub async fn until(what: &str, bound: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + bound;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {bound:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}
