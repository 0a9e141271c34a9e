//! The handle request handlers record through, and the task that writes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;

use crate::stats::Counters;
use crate::{AuditConfig, AuditError, AuditStats, AuditWriter, Record};

/// Waiting bytes that are flushed without waiting for the flush interval (as are `queue`
/// waiting lines).
const FLUSH_BYTES: usize = 64 * 1024;
/// How long the writer lets records gather before it takes them (instead of waking once per
/// record); well under any flush interval.
const GATHER_PAUSE: Duration = Duration::from_millis(5);
/// Attempts to write the last lines at shutdown (one per flush interval) before giving up.
const SHUTDOWN_ATTEMPTS: u32 = 10; // "ten" in the doc of `AuditTask::run`.

/// The handle to the audit log: cheap to clone; the writer task ends once every clone is
/// dropped and every record sent through them is written.
#[derive(Debug, Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Record>,
    counters: Arc<Counters>,
    /// Records waiting for room outside the queue (from [`AuditLog::try_record`]), bounded
    /// by `queue` too: memory stays bounded however long the disk stalls.
    overflow: Arc<AtomicUsize>,
    queue: usize,
}

/// The writer task: [`run`](Self::run) it (spawned) for as long as the log is used.
#[derive(Debug)]
pub struct AuditTask {
    writer: AuditWriter,
    receiver: mpsc::Receiver<Record>,
    flush_interval: Duration,
    queue: usize,
}

/// Validates `config`, opens (or creates) its file for appending (its directory must exist)
/// and returns the handle and the writer task, which the caller spawns.
pub fn open(config: &AuditConfig) -> Result<(AuditLog, AuditTask), AuditError> {
    let writer = AuditWriter::open(config)?;
    let (sender, receiver) = mpsc::channel(config.queue);
    let log = AuditLog {
        sender,
        counters: writer.counters(),
        overflow: Arc::new(AtomicUsize::new(0)),
        queue: config.queue,
    };
    let task = AuditTask {
        writer,
        receiver,
        flush_interval: config.flush_interval,
        queue: config.queue,
    };
    Ok((log, task))
}

impl AuditLog {
    /// Queues `record`, waiting while the queue is full (backpressure when the disk is slower
    /// than the requests: lines are never dropped). False only if the writer task has ended
    /// (the record is then lost).
    pub async fn record(&self, record: Record) -> bool {
        self.sender.send(record).await.is_ok()
    }

    /// Queues `record` without waiting, for synchronous contexts (the drop of a response
    /// body). On a full queue, a spawned task (or, outside a Tokio runtime, this thread)
    /// waits for room, so the record is still not lost, unless as many records already wait
    /// so (the disk has stalled for long): then it is dropped, counted in
    /// [`AuditStats::dropped`] and logged. False if it was not queued.
    pub fn try_record(&self, record: Record) -> bool {
        match self.sender.try_send(record) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => false,
            Err(TrySendError::Full(record)) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    if self.overflow.fetch_add(1, Ordering::AcqRel) >= self.queue {
                        self.overflow.fetch_sub(1, Ordering::AcqRel);
                        if self.counters.dropped() {
                            tracing::error!(
                                "audit records are being dropped: the audit log cannot keep up (a stalled or full disk?)"
                            );
                        }
                        return false;
                    }
                    let (sender, overflow) = (self.sender.clone(), self.overflow.clone());
                    runtime.spawn(async move {
                        let _ = sender.send(record).await;
                        overflow.fetch_sub(1, Ordering::AcqRel);
                    });
                    true
                }
                Err(_) => self.sender.blocking_send(record).is_ok(),
            },
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> AuditStats {
        self.counters.snapshot()
    }

    /// A handle to the counters that does not keep the log open (for metrics).
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.counters.clone())
    }
}

/// Reads the audit log's counters without holding the log open.
#[derive(Debug, Clone)]
pub struct StatsHandle(Arc<Counters>);

impl StatsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> AuditStats {
        self.0.snapshot()
    }
}

impl AuditTask {
    /// Receives records and writes them: a line waits at most the flush interval; after a
    /// write error, lines are kept (up to the queue bound, then senders wait) and retried
    /// every flush interval. Returns once every [`AuditLog`] is dropped and every record is
    /// written and synced (after ten failed attempts, one per flush interval, the lines still
    /// unwritten are given up, with an error logged).
    pub async fn run(self) {
        let Self {
            mut writer,
            mut receiver,
            flush_interval,
            queue,
        } = self;
        let mut deadline = Instant::now();
        // The last flush failed: retry only at the next tick, not on every record.
        let mut failing = false;
        loop {
            let waiting = writer.pending_lines();
            tokio::select! {
                received = receiver.recv(), if waiting < queue => match received {
                    Some(record) => {
                        if waiting == 0 {
                            deadline = Instant::now() + flush_interval;
                        }
                        writer.push(&record);
                        // Take what else is queued without a wake-up for each record.
                        let closed = drain(&mut receiver, &mut writer, queue);
                        if closed {
                            break;
                        }
                        let full = writer.pending_bytes() >= FLUSH_BYTES
                            || writer.pending_lines() >= queue;
                        if !full && Instant::now() < deadline {
                            // Let records gather: under load the task wakes every
                            // GATHER_PAUSE, not once per request.
                            let pause = GATHER_PAUSE.min(deadline - Instant::now());
                            tokio::time::sleep(pause).await;
                            continue;
                        }
                        if failing && Instant::now() < deadline {
                            continue;
                        }
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(deadline), if waiting > 0 => {}
            }
            let Some((flushed, result)) = flush(writer, false).await else {
                return;
            };
            writer = flushed;
            failing = result.is_err();
            deadline = Instant::now() + flush_interval;
        }
        for attempt in 1..=SHUTDOWN_ATTEMPTS {
            let Some((flushed, result)) = flush(writer, true).await else {
                return;
            };
            writer = flushed;
            if result.is_ok() {
                return;
            }
            if attempt < SHUTDOWN_ATTEMPTS {
                tokio::time::sleep(flush_interval).await;
            }
        }
        tracing::error!(
            lost = writer.pending_lines(),
            attempts = SHUTDOWN_ATTEMPTS,
            "audit: giving up on the last lines at shutdown"
        );
    }
}

/// Moves the records already queued into `writer`, up to its bounds, without waiting; true
/// once every sender is gone and the queue is empty.
fn drain(receiver: &mut mpsc::Receiver<Record>, writer: &mut AuditWriter, queue: usize) -> bool {
    while writer.pending_lines() < queue && writer.pending_bytes() < FLUSH_BYTES {
        match receiver.try_recv() {
            Ok(record) => writer.push(&record),
            Err(mpsc::error::TryRecvError::Empty) => return false,
            Err(mpsc::error::TryRecvError::Disconnected) => return true,
        }
    }
    false
}

/// Flushes (and syncs) on a blocking thread. None if that thread failed (not expected:
/// the writer does not panic).
async fn flush(
    mut writer: AuditWriter,
    sync: bool,
) -> Option<(AuditWriter, Result<(), AuditError>)> {
    let done = tokio::task::spawn_blocking(move || {
        let result = if sync {
            writer.flush_and_sync()
        } else {
            writer.flush()
        };
        (writer, result)
    })
    .await;
    match done {
        Ok(done) => Some(done),
        Err(error) => {
            tracing::error!(%error, "audit: the writer thread failed; audit lines are lost");
            None
        }
    }
}
