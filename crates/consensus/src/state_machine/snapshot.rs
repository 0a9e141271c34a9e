//! Snapshots as files, streamed from and into the index tree: never the whole state machine
//! in memory.
//!
//! # Format
//! `GPHASNP1`, then one record per key of the `index` tree (except the applied-state keys,
//! which the snapshot's meta carries): `u32` key length, `u32` value length (little endian),
//! key, value; then an end marker (`u32::MAX`), the record count (`u64`) and the SHA-256 of
//! every byte before the digest. A file is checked end to end before an install touches
//! the tree, so a torn or damaged transfer never replaces a good index.
//!
//! # Building: a consistent view without stopping applies
//! openraft asks for a builder between two applies ([`RaftStateMachine::get_snapshot_builder`]
//! runs in the state-machine task) and then builds in another task while applies go on. At
//! that point the builder registers a [`Capture`]; from then on every apply first records, for
//! each key it is about to change, the value the key had before (once per key). The builder
//! walks the tree and writes, for each key, the recorded earlier value if there is one (or
//! skips the key if it did not exist), else the tree's value; at the end it writes the
//! recorded earlier values of keys the walk never met (removed meanwhile). The file is thus
//! exactly the tree at the capture point, and only the keys changed during the build are held
//! in memory.
//!
//! # Installing
//! The received file is written to disk chunk by chunk, checked, then recorded as
//! "installing" before the tree is cleared and refilled in bounded batches. A crash in
//! between leaves the marker: opening the state machine finishes the install from the file
//! before anything reads the tree.
//!
//! [`RaftStateMachine::get_snapshot_builder`]: openraft::storage::RaftStateMachine::get_snapshot_builder

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::IVec;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

const MAGIC: &[u8; 8] = b"GPHASNP1";
const END: u32 = u32::MAX;
/// Largest key or value a record may carry; anything larger is a damaged file.
const MAX_FIELD: u32 = 64 << 20;
/// Records per batch when the tree is cleared or filled during an install. sled's memory
/// while it takes many batches grows with their size, not with its cache: filling a tree
/// with a million 400-byte records took 285 MiB of RSS in batches of 8192 records, 217 MiB
/// in batches of 4096 and 57-116 MiB in batches of 1024, which were no slower.
const INSTALL_BATCH_RECORDS: usize = 1024;
/// Bytes per batch when the tree is filled during an install.
const INSTALL_BATCH_BYTES: usize = 1 << 20;
/// Buffer for reading and writing snapshot files.
const IO_BUFFER: usize = 1 << 20;

/// Writes records, counting them and hashing every byte.
pub(crate) struct RecordWriter<W: Write> {
    out: W,
    hasher: Sha256,
    records: u64,
    bytes: u64,
}

impl<W: Write> RecordWriter<W> {
    pub(crate) fn new(mut out: W) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        let mut hasher = Sha256::new();
        hasher.update(MAGIC);
        Ok(Self {
            out,
            hasher,
            records: 0,
            bytes: MAGIC.len() as u64,
        })
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    pub(crate) fn record(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let len = |n: usize| {
            u32::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_FIELD)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))
        };
        let (k, v) = (len(key.len())?, len(value.len())?);
        self.put(&k.to_le_bytes())?;
        self.put(&v.to_le_bytes())?;
        self.put(key)?;
        self.put(value)?;
        self.records += 1;
        Ok(())
    }

    /// Writes the end marker; returns the output, the record count and the file's size.
    pub(crate) fn finish(mut self) -> io::Result<(W, u64, u64)> {
        self.hasher.update(END.to_le_bytes());
        self.hasher.update(self.records.to_le_bytes());
        let digest = self.hasher.finalize();
        self.out.write_all(&END.to_le_bytes())?;
        self.out.write_all(&self.records.to_le_bytes())?;
        self.out.write_all(&digest)?;
        self.bytes += 4 + 8 + 32;
        Ok((self.out, self.records, self.bytes))
    }
}

/// Reads records back; the last [`RecordReader::next`] checks the count and the hash.
pub(crate) struct RecordReader<R: Read> {
    inp: R,
    hasher: Sha256,
    records: u64,
    done: bool,
}

fn damaged(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("damaged snapshot: {what}"),
    )
}

impl<R: Read> RecordReader<R> {
    pub(crate) fn new(mut inp: R) -> io::Result<Self> {
        let mut magic = [0u8; 8];
        inp.read_exact(&mut magic)
            .map_err(|_| damaged("shorter than its header"))?;
        if &magic != MAGIC {
            return Err(damaged("not a goproxy-ha snapshot (format 1)"));
        }
        let mut hasher = Sha256::new();
        hasher.update(magic);
        Ok(Self {
            inp,
            hasher,
            records: 0,
            done: false,
        })
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        self.inp
            .read_exact(&mut buf)
            .map_err(|_| damaged("truncated"))?;
        self.hasher.update(&buf);
        Ok(buf)
    }

    fn u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.inp
            .read_exact(&mut b)
            .map_err(|_| damaged("truncated"))?;
        Ok(u32::from_le_bytes(b))
    }

    /// The next record, or `None` after a valid end marker.
    #[allow(clippy::type_complexity)]
    pub(crate) fn next(&mut self) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        let klen = self.u32()?;
        if klen == END {
            let mut count = [0u8; 8];
            self.inp
                .read_exact(&mut count)
                .map_err(|_| damaged("truncated end marker"))?;
            let mut digest = [0u8; 32];
            self.inp
                .read_exact(&mut digest)
                .map_err(|_| damaged("truncated end marker"))?;
            if u64::from_le_bytes(count) != self.records {
                return Err(damaged("record count differs"));
            }
            self.hasher.update(END.to_le_bytes());
            self.hasher.update(count);
            let ours = std::mem::take(&mut self.hasher).finalize();
            if ours.as_slice() != digest {
                return Err(damaged("checksum differs"));
            }
            let mut rest = [0u8; 1];
            if self.inp.read(&mut rest)? != 0 {
                return Err(damaged("bytes after the end marker"));
            }
            self.done = true;
            return Ok(None);
        }
        self.hasher.update(klen.to_le_bytes());
        let vlen = self.u32()?;
        self.hasher.update(vlen.to_le_bytes());
        if klen > MAX_FIELD || vlen > MAX_FIELD {
            return Err(damaged("record larger than any the index holds"));
        }
        let key = self.take(klen as usize)?;
        let value = self.take(vlen as usize)?;
        self.records += 1;
        Ok(Some((key, value)))
    }
}

/// Reads `path` to its end, checking every record, the count and the checksum.
pub(crate) fn verify(path: &Path) -> io::Result<u64> {
    let mut reader = RecordReader::new(BufReader::with_capacity(IO_BUFFER, File::open(path)?))?;
    while reader.next()?.is_some() {}
    Ok(reader.records)
}

/// The snapshot data openraft moves around: a file on disk, read and written in chunks.
#[derive(Debug)]
pub struct SnapshotFile {
    file: tokio::fs::File,
    path: PathBuf,
}

impl SnapshotFile {
    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn open(path: PathBuf) -> io::Result<Self> {
        let file = tokio::fs::File::open(&path).await?;
        Ok(Self { file, path })
    }

    pub(crate) fn from_std(file: File, path: PathBuf) -> Self {
        Self {
            file: tokio::fs::File::from_std(file),
            path,
        }
    }

    pub(crate) async fn create(path: PathBuf) -> io::Result<Self> {
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(Self { file, path })
    }

    /// Flushes and syncs what was written; returns the path.
    pub(crate) async fn finish(mut self) -> io::Result<PathBuf> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await?;
        self.file.sync_all().await?;
        Ok(self.path)
    }
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_read(cx, buf)
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().file).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.get_mut().file).start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.get_mut().file).poll_complete(cx)
    }
}

/// Keys changed since a builder's capture point, with the value each had then (`None`: it
/// did not exist) and whether the builder's walk met the key.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    earlier: Mutex<HashMap<IVec, (Option<IVec>, bool)>>,
}

impl Capture {
    /// The value to write for `key`, which the walk found with `value`.
    pub(crate) fn resolve(&self, key: &IVec, value: IVec) -> Option<IVec> {
        let mut earlier = self.earlier.lock().expect("capture lock");
        match earlier.get_mut(key) {
            Some((before, met)) => {
                *met = true;
                before.clone()
            }
            None => Some(value),
        }
    }

    /// Keys the walk never met that existed at the capture point, with their values then.
    pub(crate) fn unmet(&self) -> Vec<(IVec, IVec)> {
        let earlier = self.earlier.lock().expect("capture lock");
        earlier
            .iter()
            .filter(|(_, (_, met))| !met)
            .filter_map(|(k, (before, _))| before.clone().map(|v| (k.clone(), v)))
            .collect()
    }

    fn record(&self, key: &IVec, before: &Option<IVec>) {
        let mut earlier = self.earlier.lock().expect("capture lock");
        earlier
            .entry(key.clone())
            .or_insert_with(|| (before.clone(), false));
    }
}

/// Figures about this node's snapshots, for `/cluster/status`.
#[derive(Debug, Default)]
pub struct SnapshotStats {
    builds: AtomicU64,
    last_build_ms: AtomicU64,
    bytes: AtomicU64,
    records: AtomicU64,
    installs: AtomicU64,
    last_install_ms: AtomicU64,
    receiving_chunks: AtomicU64,
    last_install_chunks: AtomicU64,
    /// Checksum of the transfer under way, as its chunks arrive.
    check: Mutex<StreamCheck>,
}

/// Checks a snapshot's checksum as its chunks pass by, so a damaged transfer is refused to
/// the sender instead of reaching the install (where an error stops openraft). Only a
/// transfer whose chunks all arrived in order (a chunk sent again is allowed) and whose
/// checksum matches gets through; any other is refused until the sender starts over at
/// offset 0 (openraft does, after a few refusals).
#[derive(Debug, Default)]
struct StreamCheck {
    hasher: Sha256,
    /// The offset the next chunk should have.
    next: u64,
    /// The last bytes seen (the end marker, count and digest are the last 44).
    tail: Vec<u8>,
    /// The state before the last chunk, to take that chunk again.
    before_last: Option<(u64, Sha256, Vec<u8>)>,
    /// Why this transfer is refused.
    refused: Option<String>,
}

/// Bytes at the end outside the rolling window: end marker, record count, digest.
const TRAILER: usize = 4 + 8 + 32;

impl StreamCheck {
    fn chunk(&mut self, offset: u64, data: &[u8], done: bool) -> Result<(), String> {
        if offset == 0 {
            *self = Self::default();
        } else if let Some((last, hasher, tail)) = self
            .before_last
            .as_ref()
            .filter(|(last, _, _)| *last == offset)
        {
            // The last chunk again (its answer was lost, or it was refused).
            (self.next, self.hasher, self.tail) = (*last, hasher.clone(), tail.clone());
        }
        if let Some(reason) = &self.refused {
            return Err(reason.clone());
        }
        if offset != self.next {
            let reason = format!(
                "snapshot transfer out of order (chunk at {offset}, expected {}): start over",
                self.next
            );
            self.refused = Some(reason.clone());
            return Err(reason);
        }
        self.before_last = Some((offset, self.hasher.clone(), self.tail.clone()));
        self.next = offset + data.len() as u64;
        self.tail.extend_from_slice(data);
        if self.tail.len() > TRAILER {
            let hashed = self.tail.len() - TRAILER;
            self.hasher.update(&self.tail[..hashed]);
            self.tail.drain(..hashed);
        }
        if !done {
            return Ok(());
        }
        let mut hasher = self.hasher.clone();
        let sound = self.tail.len() == TRAILER && self.tail[..4] == END.to_le_bytes() && {
            // The digest covers everything before it, the end marker and count included.
            hasher.update(&self.tail[..12]);
            self.tail[12..] == hasher.finalize()[..]
        };
        if sound {
            Ok(())
        } else {
            let reason = "damaged snapshot transfer: checksum differs".to_string();
            self.refused = Some(reason.clone());
            Err(reason)
        }
    }
}

/// A copy of [`SnapshotStats`].
pub type SnapshotReport = goproxy_status::SnapshotStatus;

impl SnapshotStats {
    /// A copy.
    pub fn report(&self) -> SnapshotReport {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let builds = get(&self.builds);
        let installs = get(&self.installs);
        SnapshotReport {
            builds,
            last_build_ms: (builds > 0).then(|| get(&self.last_build_ms)),
            bytes: get(&self.bytes),
            records: get(&self.records),
            installs,
            last_install_ms: (installs > 0).then(|| get(&self.last_install_ms)),
            last_install_chunks: get(&self.last_install_chunks),
        }
    }

    /// A chunk of a snapshot arrived (`offset` 0: the first of a new transfer); `Err` when
    /// the transfer is refused (damaged, out of order): the sender is told so.
    pub fn chunk_received(&self, offset: u64, data: &[u8], done: bool) -> Result<(), String> {
        if offset == 0 {
            self.receiving_chunks.store(0, Ordering::Relaxed);
        }
        self.receiving_chunks.fetch_add(1, Ordering::Relaxed);
        self.check
            .lock()
            .expect("snapshot check lock")
            .chunk(offset, data, done)
    }

    fn current(&self, bytes: u64, records: u64) {
        self.bytes.store(bytes, Ordering::Relaxed);
        self.records.store(records, Ordering::Relaxed);
    }

    fn built(&self, took: std::time::Duration) {
        self.last_build_ms
            .store(took.as_millis() as u64, Ordering::Relaxed);
        self.builds.fetch_add(1, Ordering::Relaxed);
    }

    fn installed(&self, took: std::time::Duration) {
        self.last_install_ms
            .store(took.as_millis() as u64, Ordering::Relaxed);
        self.last_install_chunks.store(
            self.receiving_chunks.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.installs.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where the current snapshot is, as recorded in the `snapshot` tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Current<M> {
    pub(crate) meta: M,
    /// File name inside the snapshot directory.
    pub(crate) file: String,
}

/// The snapshot directory, the builders' captures and the figures.
#[derive(Debug)]
pub(crate) struct Snapshots {
    dir: PathBuf,
    captures: Mutex<Vec<Arc<Capture>>>,
    /// Held (shared) by a running build; an install takes it exclusively, so it never
    /// rewrites the tree under a builder's walk.
    pub(crate) building: Arc<tokio::sync::RwLock<()>>,
    pub(crate) stats: Arc<SnapshotStats>,
    seq: AtomicU64,
    /// Held while the current file is looked up and opened, and while a new one is recorded
    /// and the others deleted.
    pub(crate) files: Mutex<()>,
}

impl Snapshots {
    pub(crate) fn open(dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        // Builds and transfers a crash interrupted.
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().ends_with(".part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            dir,
            captures: Mutex::default(),
            building: Arc::default(),
            stats: Arc::default(),
            seq: AtomicU64::new(0),
            files: Mutex::default(),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Deletes the files of transfers under way (abandoned when a new one begins).
    pub(crate) fn remove_incoming(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("incoming-") && name.ends_with(".part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// A fresh name in the directory, `<prefix>-<index>-<unique>.<ext>`.
    pub(crate) fn fresh_name(&self, prefix: &str, index: u64, ext: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{index:020}-{nanos}-{n}.{ext}")
    }

    /// Starts recording earlier values for a new builder.
    pub(crate) fn capture(&self) -> Arc<Capture> {
        let capture = Arc::new(Capture::default());
        self.captures
            .lock()
            .expect("captures lock")
            .push(capture.clone());
        capture
    }

    pub(crate) fn release(&self, capture: &Arc<Capture>) {
        self.captures
            .lock()
            .expect("captures lock")
            .retain(|c| !Arc::ptr_eq(c, capture));
    }

    /// Before `keys` change in `tree`: records their current values for every running build.
    pub(crate) fn before_write(&self, tree: &sled::Tree, keys: &[IVec]) -> sled::Result<()> {
        let captures = self.captures.lock().expect("captures lock").clone();
        if captures.is_empty() {
            return Ok(());
        }
        for key in keys {
            let before = tree.get(key)?;
            for capture in &captures {
                capture.record(key, &before);
            }
        }
        Ok(())
    }

    /// Deletes every snapshot file but `keep`.
    pub(crate) fn remove_others(&self, keep: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name != keep && name.ends_with(".snap") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Writes the tree at `capture`'s point into a new file (skipping `skip` keys); returns
    /// the file's name, its record count and its size. Blocking.
    pub(crate) fn write(
        &self,
        tree: &sled::Tree,
        capture: &Capture,
        skip: &[&[u8]],
        index: u64,
    ) -> io::Result<(String, u64, u64)> {
        let started = Instant::now();
        let part = self.path(&self.fresh_name("build", index, "part"));
        let result = (|| {
            let file = File::create(&part)?;
            let mut out = RecordWriter::new(BufWriter::with_capacity(IO_BUFFER, file))?;
            for item in tree.iter() {
                let (key, value) = item.map_err(io::Error::other)?;
                if skip.contains(&key.as_ref()) {
                    continue;
                }
                if let Some(value) = capture.resolve(&key, value) {
                    out.record(&key, &value)?;
                }
            }
            for (key, value) in capture.unmet() {
                if !skip.contains(&key.as_ref()) {
                    out.record(&key, &value)?;
                }
            }
            let (writer, records, bytes) = out.finish()?;
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            let name = self.fresh_name("snap", index, "snap");
            std::fs::rename(&part, self.path(&name))?;
            sync_dir(&self.dir);
            Ok((name, records, bytes))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&part);
        } else {
            self.stats.built(started.elapsed());
        }
        result
    }

    pub(crate) fn set_current(&self, bytes: u64, records: u64) {
        self.stats.current(bytes, records);
    }

    pub(crate) fn installed(&self, took: std::time::Duration) {
        self.stats.installed(took);
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Fills the empty `tree` with the records of the (already checked) file at `path`, in
/// bounded batches; `finish` adds the last writes (applied state) to the final batch.
/// Returns the number of records. Blocking.
pub(crate) fn fill(
    tree: &sled::Tree,
    path: &Path,
    finish: impl FnOnce(&mut sled::Batch),
) -> io::Result<u64> {
    let mut reader = RecordReader::new(BufReader::with_capacity(IO_BUFFER, File::open(path)?))?;
    let mut batch = sled::Batch::default();
    let (mut in_batch, mut batch_bytes) = (0usize, 0usize);
    while let Some((key, value)) = reader.next()? {
        batch_bytes += key.len() + value.len();
        in_batch += 1;
        batch.insert(key, value);
        if in_batch >= INSTALL_BATCH_RECORDS || batch_bytes >= INSTALL_BATCH_BYTES {
            tree.apply_batch(std::mem::take(&mut batch))
                .map_err(io::Error::other)?;
            (in_batch, batch_bytes) = (0, 0);
        }
    }
    finish(&mut batch);
    tree.apply_batch(batch).map_err(io::Error::other)?;
    tree.flush().map_err(io::Error::other)?;
    Ok(reader.records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(records: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = RecordWriter::new(Vec::new()).unwrap();
        for (k, v) in records {
            out.record(k, v).unwrap();
        }
        out.finish().unwrap().0
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut reader = RecordReader::new(bytes)?;
        let mut all = Vec::new();
        while let Some(r) = reader.next()? {
            all.push(r);
        }
        Ok(all)
    }

    #[test]
    fn records_round_trip() {
        let bytes = written(&[(b"a", b"1"), (b"\xffmeta/x", b""), (b"", b"empty key")]);
        let back = read_all(&bytes).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0], (b"a".to_vec(), b"1".to_vec()));
        assert_eq!(back[2], (Vec::new(), b"empty key".to_vec()));
    }

    #[test]
    fn every_damage_is_refused() {
        let bytes = written(&[(b"key", b"value"), (b"k2", b"v2")]);
        // Truncated anywhere.
        for cut in 0..bytes.len() {
            assert!(read_all(&bytes[..cut]).is_err(), "cut at {cut} accepted");
        }
        // One flipped bit anywhere.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(read_all(&bad).is_err(), "flip at {i} accepted");
        }
        // Trailing bytes.
        let mut long = bytes.clone();
        long.push(0);
        assert!(read_all(&long).is_err());
        // The old JSON snapshots.
        assert!(read_all(br#"{"last_applied":null,"entries":[]}"#).is_err());
    }

    #[test]
    fn a_transfer_is_checked_as_its_chunks_pass() {
        let mut out = RecordWriter::new(Vec::new()).unwrap();
        for i in 0..500u32 {
            out.record(&i.to_be_bytes(), b"some value bytes").unwrap();
        }
        let bytes = out.finish().unwrap().0;
        let send = |bytes: &[u8], chunk: usize| {
            let stats = SnapshotStats::default();
            let mut result = Ok(());
            let mut offset = 0;
            for piece in bytes.chunks(chunk) {
                let done = offset + piece.len() == bytes.len();
                result = stats.chunk_received(offset as u64, piece, done);
                offset += piece.len();
            }
            result
        };
        for chunk in [1, 7, 44, 45, 1000, bytes.len()] {
            assert_eq!(send(&bytes, chunk), Ok(()), "chunks of {chunk}");
        }
        for at in [0, bytes.len() / 2, bytes.len() - 40, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 4;
            assert!(send(&bad, 1000).is_err(), "flip at {at} passed");
        }
        assert!(send(&bytes[..bytes.len() - 1], 1000).is_err(), "truncated");

        // A chunk sent again passes; a refused transfer stays refused until it starts over.
        let stats = SnapshotStats::default();
        let (a, b) = bytes.split_at(bytes.len() / 2);
        assert_eq!(stats.chunk_received(0, a, false), Ok(()));
        assert_eq!(stats.chunk_received(0, a, false), Ok(()));
        assert_eq!(stats.chunk_received(a.len() as u64, b, true), Ok(()));
        assert_eq!(stats.chunk_received(a.len() as u64, b, true), Ok(()));
        let mut bad = b.to_vec();
        bad[3] ^= 1;
        assert_eq!(stats.chunk_received(0, a, false), Ok(()));
        assert!(stats.chunk_received(a.len() as u64, &bad, true).is_err());
        assert!(stats.chunk_received(a.len() as u64, &bad, true).is_err());
        assert!(stats.chunk_received(7, b, true).is_err(), "out of order");
        assert_eq!(stats.chunk_received(0, a, false), Ok(()));
        assert_eq!(stats.chunk_received(a.len() as u64, b, true), Ok(()));
    }

    #[test]
    fn a_huge_length_is_refused_without_allocating_it() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(MAX_FIELD + 1).to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        let err = read_all(&bytes).unwrap_err();
        assert!(err.to_string().contains("larger"), "{err}");
    }

    #[test]
    fn a_capture_yields_the_tree_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        for k in ["a", "b", "c", "d"] {
            tree.insert(k, k).unwrap();
        }
        let snaps = Snapshots::open(dir.path().join("snaps")).unwrap();
        let capture = snaps.capture();
        // After the capture point: b changed, c removed, e added, d changed twice.
        let change = |key: &str, value: Option<&str>| {
            snaps.before_write(&tree, &[IVec::from(key)]).unwrap();
            match value {
                Some(v) => tree.insert(key, v).unwrap(),
                None => tree.remove(key).unwrap(),
            };
        };
        change("b", Some("B"));
        change("c", None);
        change("e", Some("E"));
        change("d", Some("D1"));
        change("d", Some("D2"));
        let (name, records, _) = snaps.write(&tree, &capture, &[], 7).unwrap();
        snaps.release(&capture);
        assert_eq!(records, 4);
        let bytes = std::fs::read(snaps.path(&name)).unwrap();
        let mut back = read_all(&bytes).unwrap();
        back.sort();
        let expect: Vec<(Vec<u8>, Vec<u8>)> = ["a", "b", "c", "d"]
            .iter()
            .map(|k| (k.as_bytes().to_vec(), k.as_bytes().to_vec()))
            .collect();
        assert_eq!(back, expect);
        // Released: later writes are not recorded.
        snaps.before_write(&tree, &[IVec::from("a")]).unwrap();
        assert!(capture
            .earlier
            .lock()
            .unwrap()
            .get(&IVec::from("a"))
            .is_none());
    }
}
