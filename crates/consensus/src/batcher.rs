//! Group commit at the proposal level: concurrent [`crate::Consensus::put`]s become one
//! [`IndexCommand::PutAll`] log entry.
//!
//! openraft 0.9 appends, flushes and replicates one client write at a time per log entry;
//! every entry costs a log flush (an `fdatasync`) on each member. Puts that arrive while
//! earlier batches are still being committed wait in a queue, and the next batch takes all
//! of them (up to [`MAX_BATCH_PUTS`] puts and [`crate::node::MAX_LOG_ENTRY_BYTES`] serialized),
//! so one flush covers many puts while nothing waits for a timer: a lone put is proposed at
//! once. At most [`MAX_IN_FLIGHT`] batch is being committed at a time.
//!
//! Each caller gets the result of its own put, exactly as if it had been proposed alone
//! (puts of one batch apply in queue order; a later put of the same path with other content
//! gets [`ApplyResponse::Conflict`]). A batch that fails (not the leader, no quorum) fails
//! every put in it with the same error; none of them is then known to be committed, as for
//! a single put.

use std::sync::Arc;

use goproxy_protocol::index::IndexEntry;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::ConsensusError;
use crate::node::{write_error, MAX_ENTRY_BYTES, MAX_LOG_ENTRY_BYTES};
use crate::types::{ApplyResponse, IndexCommand, Raft};

/// Most puts in one log entry.
pub const MAX_BATCH_PUTS: usize = 256;
/// Batches being committed at once. While one is under way, new puts queue and form the
/// next batch. openraft 0.9 keeps one append in flight per follower anyway; in the commit
/// bench (64 writers, 3 members) one batch at a time gave the largest batches and the most
/// puts per second (1: 3563-3836/s, 2: 3383-3523/s, 3: 3401-3488/s).
pub const MAX_IN_FLIGHT: usize = 1;
/// Puts waiting for a batch before callers wait to enqueue.
const QUEUE: usize = 4096;
/// Bytes of a `PutAll` entry beyond its puts: the variant's name, brackets.
const BATCH_OVERHEAD: usize = 16;

/// One queued put and where its result goes.
struct Queued {
    entry: IndexEntry,
    /// Its serialized size (plus a separator).
    size: usize,
    reply: oneshot::Sender<Result<ApplyResponse, ConsensusError>>,
}

/// The queue in front of Raft for single puts. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Batcher {
    queue: mpsc::Sender<Queued>,
}

impl Batcher {
    /// Starts the batching task for `raft`; it ends when every clone of the batcher is gone.
    pub(crate) fn start(raft: Raft) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(raft, rx));
        Self { queue }
    }

    /// Commits `entry` in the next batch and returns what applying it did.
    pub(crate) async fn put(&self, entry: IndexEntry) -> Result<ApplyResponse, ConsensusError> {
        let size = serde_json::to_vec(&entry).map_or(usize::MAX, |bytes| bytes.len() + 1);
        if size.saturating_add(BATCH_OVERHEAD) > MAX_ENTRY_BYTES {
            return Err(ConsensusError::EntryTooLarge {
                size,
                limit: MAX_ENTRY_BYTES - BATCH_OVERHEAD,
            });
        }
        let (reply, answer) = oneshot::channel();
        let stopped = || ConsensusError::Raft("the proposal queue has stopped".into());
        self.queue
            .send(Queued { entry, size, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Takes batches off the queue while fewer than [`MAX_IN_FLIGHT`] are being committed.
async fn run(raft: Raft, mut rx: mpsc::Receiver<Queued>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut carried: Option<Queued> = None;
    loop {
        // Wait for a slot first: puts arriving meanwhile join the next batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(first) => first,
            None => match rx.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut bytes = BATCH_OVERHEAD + first.size;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_PUTS {
            match rx.try_recv() {
                Ok(next) if bytes + next.size > MAX_LOG_ENTRY_BYTES => {
                    carried = Some(next);
                    break;
                }
                Ok(next) => {
                    bytes += next.size;
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            commit(&raft, batch).await;
            drop(slot);
        });
    }
}

/// Commits one batch and answers each of its callers.
async fn commit(raft: &Raft, batch: Vec<Queued>) {
    let (entries, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|queued| (queued.entry, queued.reply))
        .unzip();
    let count = entries.len();
    let command = if count == 1 {
        IndexCommand::Put(entries.into_iter().next().expect("one entry"))
    } else {
        IndexCommand::PutAll(entries)
    };
    let outcome = raft
        .client_write(command)
        .await
        .map(|response| response.data)
        .map_err(write_error);
    match outcome {
        Ok(ApplyResponse::All(responses)) if responses.len() == count && count > 1 => {
            for (reply, response) in replies.into_iter().zip(responses) {
                let _ = reply.send(Ok(response));
            }
        }
        Ok(response) if count == 1 => {
            let _ = replies
                .into_iter()
                .next()
                .expect("one caller")
                .send(Ok(response));
        }
        Ok(other) => {
            let error =
                ConsensusError::Raft(format!("a batch of {count} puts was applied as {other:?}"));
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
