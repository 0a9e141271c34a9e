//! The node → guard protocol: one command per line on the guard's stdin.
//!
//! `hold <deadline>` (nanoseconds of `CLOCK_MONOTONIC`) asks the guard to own the address until that
//! instant; later `hold`s extend it. `release` drops it at once. End of input means the node is gone:
//! the guard drops the address and exits. Deadlines are absolute so that a command delayed in a pipe,
//! or written by a node that was frozen after computing it, can never extend the lease.

use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};

/// One instruction from the node to its guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardCommand {
    /// Own the address until this `CLOCK_MONOTONIC` instant (nanoseconds).
    Hold {
        /// Deadline in nanoseconds of `CLOCK_MONOTONIC`.
        until_mono_ns: u64,
    },
    /// Remove the address now.
    Release,
}

/// A line that is not a valid [`GuardCommand`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid guard command {0:?}: expected `hold <ns>` or `release`")]
pub struct ParseCommandError(pub String);

impl GuardCommand {
    /// The wire form, newline-terminated.
    pub fn to_line(self) -> String {
        match self {
            GuardCommand::Hold { until_mono_ns } => format!("hold {until_mono_ns}\n"),
            GuardCommand::Release => "release\n".to_string(),
        }
    }

    /// Parses one line (with or without its newline).
    pub fn parse(line: &str) -> Result<Self, ParseCommandError> {
        let trimmed = line.trim();
        let mut words = trimmed.split_ascii_whitespace();
        let parsed = match (words.next(), words.next(), words.next()) {
            (Some("release"), None, None) => Some(GuardCommand::Release),
            (Some("hold"), Some(ns), None) => ns
                .parse()
                .ok()
                .map(|until_mono_ns| GuardCommand::Hold { until_mono_ns }),
            _ => None,
        };
        parsed.ok_or_else(|| ParseCommandError(trimmed.chars().take(64).collect()))
    }
}

/// Now, in nanoseconds of `CLOCK_MONOTONIC` (the clock every process on the host shares).
pub fn monotonic_now_ns() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux; a zero would only make deadlines look expired (safe).
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|ts| Duration::from(ts).as_nanos() as u64)
        .unwrap_or(0)
}

/// Converts an [`Instant`] of this process to `CLOCK_MONOTONIC` nanoseconds. Instants in the past
/// map to the past (or 0), never to the future.
pub fn instant_to_mono_ns(at: Instant) -> u64 {
    let now_instant = Instant::now();
    let now_ns = monotonic_now_ns();
    match at.checked_duration_since(now_instant) {
        Some(ahead) => now_ns.saturating_add(ahead.as_nanos() as u64),
        None => now_ns.saturating_sub((now_instant - at).as_nanos() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        for cmd in [
            GuardCommand::Release,
            GuardCommand::Hold { until_mono_ns: 0 },
            GuardCommand::Hold {
                until_mono_ns: u64::MAX,
            },
        ] {
            assert_eq!(GuardCommand::parse(&cmd.to_line()), Ok(cmd));
        }
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "hold",
            "hold -1",
            "hold 1 2",
            "release now",
            "HOLD 5",
            "hold 0x10",
        ] {
            assert!(GuardCommand::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn instants_map_onto_the_monotonic_clock() {
        let now = Instant::now();
        let later = now + Duration::from_millis(500);
        let (a, b) = (instant_to_mono_ns(now), instant_to_mono_ns(later));
        let gap = b - a;
        // Both conversions read the clocks separately; allow scheduling noise but not a sign error.
        assert!(gap > 400_000_000 && gap < 600_000_000, "gap {gap}");
        assert!(instant_to_mono_ns(now) <= monotonic_now_ns());
    }
}
