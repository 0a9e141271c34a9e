//! The Raft log on sled (openraft storage-v2 `RaftLogStorage`).
//!
//! Tree `raft_log`: big-endian index → JSON entry. Tree `raft_meta`: vote, committed,
//! last purged log id. Appends and votes are flushed to disk before they are
//! acknowledged, so an acknowledged fill survives a crash of a majority.
//!
//! Group commit: `append` writes its entries and returns at once (they are readable), and
//! hands openraft's completion callback to a flusher task. The flusher takes every callback
//! waiting, runs one flush, then completes them all in order; appends that arrive during a
//! flush wait for the next one. So under load many appends share one fsync, and no append
//! is reported durable before a flush that started after it was written.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, OnceLock};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::storage_err;
use crate::keys::{log_index, parse_log_index};
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The sled-backed Raft log. Cheap to clone (trees are handles).
#[derive(Debug, Clone)]
pub struct LogStore {
    db: sled::Db,
    logs: sled::Tree,
    meta: sled::Tree,
    /// Appends waiting for a flush (the flusher task starts with the first append).
    flusher: Arc<OnceLock<mpsc::UnboundedSender<Flush>>>,
    /// The database's files, synced after every flush (see [`LogStore::durable_in`]).
    files: Option<Arc<DurableFiles>>,
}

impl LogStore {
    /// Opens the log trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(Self {
            db: db.clone(),
            logs: db.open_tree("raft_log")?,
            meta: db.open_tree("raft_meta")?,
            flusher: Arc::default(),
            files: None,
        })
    }

    /// Makes every flush durable on the device: sled's own flush writes the log's pages with
    /// `sync_file_range`, which neither empties the device's write cache nor records the
    /// file's new size, and writes large values to files it never syncs. With the
    /// database's directory `dir`, each flush is followed by `fdatasync` of its data file
    /// and an `fsync` of every new large-value file and of their directory.
    pub fn durable_in(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.files = Some(Arc::new(DurableFiles {
            dir: dir.into(),
            synced: std::sync::Mutex::default(),
        }));
        self
    }

    /// The flusher's queue; the task ends when every clone of this store is gone.
    fn flusher(&self) -> &mpsc::UnboundedSender<Flush> {
        self.flusher.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(flush_in_groups(self.db.clone(), self.files.clone(), rx));
            tx
        })
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let read = |e: &dyn std::fmt::Display| storage_err(ErrorVerb::Read, ErrorSubject::Store, e);
        match self.meta.get(key).map_err(|e| read(&e))? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| read(&e)),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), StorageError> {
        let write =
            |e: &dyn std::fmt::Display| storage_err(ErrorVerb::Write, ErrorSubject::Store, e);
        let bytes = serde_json::to_vec(value).map_err(|e| write(&e))?;
        self.meta.insert(key, bytes).map_err(|e| write(&e))?;
        Ok(())
    }

    async fn flush(&self, subject: ErrorSubject<NodeId>) -> Result<(), StorageError> {
        flush_durably(&self.db, self.files.as_ref())
            .await
            .map_err(|e| storage_err(ErrorVerb::Write, subject, e))
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, StorageError> {
        let read = |e: &dyn std::fmt::Display| storage_err(ErrorVerb::Read, ErrorSubject::Logs, e);
        match self.logs.last().map_err(|e| read(&e))? {
            None => Ok(None),
            Some((_, bytes)) => {
                let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| read(&e))?;
                Ok(Some(entry.log_id))
            }
        }
    }
}

fn bound_key(bound: Bound<&u64>) -> Bound<[u8; 8]> {
    match bound {
        Bound::Included(i) => Bound::Included(log_index(*i)),
        Bound::Excluded(i) => Bound::Excluded(log_index(*i)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let read = |e: &dyn std::fmt::Display| storage_err(ErrorVerb::Read, ErrorSubject::Logs, e);
        let range = (bound_key(range.start_bound()), bound_key(range.end_bound()));
        let mut entries = Vec::new();
        for item in self.logs.range(range) {
            let (key, bytes) = item.map_err(|e| read(&e))?;
            let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| read(&e))?;
            debug_assert_eq!(parse_log_index(&key), Some(entry.log_id.index));
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.get_meta(LAST_PURGED)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.drain_appends().await;
        self.put_meta(VOTE, vote)?;
        self.flush(ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed on purpose: a lower committed index after a crash is safe.
        self.put_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry)
                .map_err(|e| storage_err(ErrorVerb::Write, ErrorSubject::Logs, e))?;
            batch.insert(&log_index(entry.log_id.index), bytes);
        }
        self.logs
            .apply_batch(batch)
            .map_err(|e| storage_err(ErrorVerb::Write, ErrorSubject::Logs, e))?;
        // Written (readable); durable once the flusher's next flush completes.
        if let Err(mpsc::error::SendError(Flush::Append(callback))) =
            self.flusher().send(Flush::Append(callback))
        {
            callback.log_io_completed(Err(std::io::Error::other("the log flusher stopped")));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.drain_appends().await;
        let write =
            |e: &dyn std::fmt::Display| storage_err(ErrorVerb::Delete, ErrorSubject::Logs, e);
        let mut batch = sled::Batch::default();
        for key in self.logs.range(log_index(log_id.index)..).keys() {
            batch.remove(key.map_err(|e| write(&e))?);
        }
        self.logs.apply_batch(batch).map_err(|e| write(&e))?;
        self.flush(ErrorSubject::Logs).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.drain_appends().await;
        // Record the purge point first: a crash mid-purge then only leaves extra entries.
        self.put_meta(LAST_PURGED, &log_id)?;
        self.flush(ErrorSubject::Logs).await?;
        let write =
            |e: &dyn std::fmt::Display| storage_err(ErrorVerb::Delete, ErrorSubject::Logs, e);
        let mut batch = sled::Batch::default();
        for key in self.logs.range(..=log_index(log_id.index)).keys() {
            batch.remove(key.map_err(|e| write(&e))?);
        }
        self.logs.apply_batch(batch).map_err(|e| write(&e))?;
        Ok(())
    }
}

/// What the flusher is asked.
enum Flush {
    /// Complete this append once a flush that started after it finished.
    Append(LogFlushed<TypeConfig>),
    /// Answer once every append queued before has been completed.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

impl std::fmt::Debug for Flush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flush::Append(_) => "Append",
            Flush::Barrier(_) => "Barrier",
        })
    }
}

impl LogStore {
    /// Waits until every append so far is flushed and reported, so a truncation, a purge or
    /// a vote is seen by openraft after them, as when appends flushed one by one.
    async fn drain_appends(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.flusher().send(Flush::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Group commit: one flush for every append waiting, then their callbacks, in order.
async fn flush_in_groups(
    db: sled::Db,
    files: Option<Arc<DurableFiles>>,
    mut queue: mpsc::UnboundedReceiver<Flush>,
) {
    let mut group = Vec::new();
    while queue.recv_many(&mut group, usize::MAX).await > 0 {
        let flushed = if group.iter().any(|f| matches!(f, Flush::Append(_))) {
            flush_durably(&db, files.as_ref()).await
        } else {
            Ok(())
        };
        for item in group.drain(..) {
            match item {
                Flush::Append(callback) => callback.log_io_completed(
                    flushed
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| std::io::Error::other(e.to_string())),
                ),
                Flush::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// A sled database's files, to sync after its flushes.
#[derive(Debug)]
struct DurableFiles {
    dir: std::path::PathBuf,
    /// Large-value files already synced.
    synced: std::sync::Mutex<std::collections::HashSet<std::ffi::OsString>>,
}

impl DurableFiles {
    /// `fdatasync` of the data file, `fsync` of new large-value files and their directory.
    fn sync(&self) -> std::io::Result<()> {
        std::fs::File::open(self.dir.join("db"))?.sync_data()?;
        let blobs = self.dir.join("blobs");
        let Ok(entries) = std::fs::read_dir(&blobs) else {
            return Ok(());
        };
        let mut synced = self.synced.lock().expect("synced lock");
        let mut present = std::collections::HashSet::new();
        let mut new = false;
        for entry in entries {
            let name = entry?.file_name();
            if !synced.contains(&name) {
                std::fs::File::open(blobs.join(&name))?.sync_all()?;
                new = true;
            }
            present.insert(name);
        }
        if new {
            std::fs::File::open(&blobs)?.sync_all()?;
        }
        *synced = present;
        Ok(())
    }
}

/// sled's flush, then (with `files`) the syncs that make it durable on the device.
async fn flush_durably(
    db: &sled::Db,
    files: Option<&Arc<DurableFiles>>,
) -> Result<(), std::io::Error> {
    db.flush_async().await.map_err(std::io::Error::other)?;
    if let Some(files) = files {
        let files = files.clone();
        tokio::task::spawn_blocking(move || files.sync())
            .await
            .map_err(std::io::Error::other)??;
    }
    Ok(())
}
