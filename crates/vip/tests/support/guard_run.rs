#![allow(dead_code)] // shared by several test crates, each using a part
//! A guard running inside a lab namespace, on a thread of its own, fed through an in-memory pipe.
//!
//! The thread enters the namespace before building its runtime, so the guard's netlink and packet
//! sockets belong to that namespace. Dropping the run closes the pipe (EOF) and joins the thread.

use std::thread::JoinHandle;

use goproxy_vip::command::{monotonic_now_ns, GuardCommand};
use goproxy_vip::{run_guard, GuardConfig, VipError};
use tokio::io::{AsyncWriteExt, BufReader, DuplexStream};

use super::lab::{enter_netns, Netns};

/// Capacity of the in-memory command pipe.
const PIPE_BYTES: usize = 4096;

/// A running guard and the write end of its command pipe.
pub struct GuardRun {
    writer: Option<DuplexStream>,
    thread: Option<JoinHandle<Result<(), VipError>>>,
    /// Drives the writes from the (synchronous) test thread.
    runtime: tokio::runtime::Runtime,
}

impl GuardRun {
    /// Starts `run_guard(cfg)` inside `ns`.
    pub fn start(ns: &Netns, cfg: GuardConfig) -> GuardRun {
        let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
        let ns_name = ns.name.clone();
        let thread = std::thread::spawn(move || {
            enter_netns(&ns_name);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("guard runtime");
            runtime.block_on(run_guard(&cfg, BufReader::new(reader)))
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("writer runtime");
        GuardRun {
            writer: Some(writer),
            thread: Some(thread),
            runtime,
        }
    }

    /// Writes one raw line (a newline is appended).
    pub fn send_line(&mut self, line: &str) {
        let writer = self.writer.as_mut().expect("pipe open");
        let bytes = format!("{line}\n");
        self.runtime
            .block_on(writer.write_all(bytes.as_bytes()))
            .expect("guard pipe write");
    }

    /// `hold` until `ms_from_now` milliseconds from now; returns the deadline (ns, monotonic).
    pub fn hold_for_ms(&mut self, ms_from_now: i64) -> u64 {
        let now = monotonic_now_ns() as i64;
        let until = (now + ms_from_now * 1_000_000) as u64;
        let line = GuardCommand::Hold {
            until_mono_ns: until,
        }
        .to_line();
        self.send_line(line.trim_end());
        until
    }

    /// Sends `release`.
    pub fn release(&mut self) {
        self.send_line(GuardCommand::Release.to_line().trim_end());
    }

    /// Closes the pipe and returns what the guard returned.
    pub fn close(mut self) -> Result<(), VipError> {
        self.writer = None;
        let thread = self.thread.take().expect("guard thread");
        thread.join().expect("guard thread panicked")
    }

    /// Whether the guard already returned (without closing the pipe).
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for GuardRun {
    fn drop(&mut self) {
        self.writer = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
