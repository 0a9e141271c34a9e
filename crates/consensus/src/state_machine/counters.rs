//! Counts the state machine keeps as it applies, so that status, the storage gauges and the
//! reclaimer never scan the index: the number of entries, and the blobs every node keeps
//! (distinct, by reference count: an entry references its blob unless it is an evicted zip),
//! with their bytes.
//!
//! A data directory written before these counts existed has none: they are computed once
//! when the state machine opens it ([`StateMachine::ensure_counters`]), and again from the
//! data whenever a snapshot is installed.

use std::collections::HashMap;

use goproxy_protocol::index::{ArtifactKind, IndexEntry};

use super::ops::{ops_key, Overlay, EVICTED_PREFIX};
use super::{read_err, write_err, StateMachine, WriteBatch};
use crate::reader::META_PREFIX;
use crate::types::StorageError;

/// Committed entries.
pub(crate) const ENTRIES: &[u8] = b"\xffmeta/entries";
/// Bytes of the distinct blobs kept.
pub(crate) const KEPT_BYTES: &[u8] = b"\xffmeta/kept_bytes";
/// How many distinct blobs are kept.
pub(crate) const KEPT_BLOBS: &[u8] = b"\xffmeta/kept_blobs";
/// Kept references of each blob: `\xffblobref/` + sha256 → count.
pub(crate) const BLOBREF_PREFIX: &[u8] = b"\xffblobref/";
/// Which version of these counts the tree holds (absent: none yet).
const COUNTERS_VERSION: &[u8] = b"\xffmeta/counters_version";
const VERSION: u64 = 1;

pub(crate) fn blobref_key(sha256: &str) -> Vec<u8> {
    ops_key(BLOBREF_PREFIX, &[sha256])
}

impl StateMachine {
    fn count(&self, ops: &Overlay, key: &[u8]) -> Result<u64, StorageError> {
        Ok(ops.get_json::<u64>(&self.index, key)?.unwrap_or(0))
    }

    fn set_count(
        &self,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
        key: &[u8],
        value: u64,
    ) -> Result<(), StorageError> {
        ops.put_json(batch, key.to_vec(), &value)
    }

    fn add_to(
        &self,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
        key: &[u8],
        delta: i64,
    ) -> Result<(), StorageError> {
        let now = self.count(ops, key)?;
        let next = now.saturating_add_signed(delta);
        self.set_count(batch, ops, key, next)
    }

    /// A new committed entry; `kept`: its blob is kept (not an evicted zip).
    pub(super) fn count_added(
        &self,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
        entry: &IndexEntry,
        kept: bool,
    ) -> Result<(), StorageError> {
        self.add_to(batch, ops, ENTRIES, 1)?;
        if kept {
            self.keep_blob(batch, ops, &entry.blob.sha256, entry.blob.size)?;
        }
        Ok(())
    }

    /// A removed entry (purged); `kept` as in [`StateMachine::count_added`].
    pub(super) fn count_removed(
        &self,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
        entry: &IndexEntry,
        kept: bool,
    ) -> Result<(), StorageError> {
        self.add_to(batch, ops, ENTRIES, -1)?;
        if kept {
            self.release_blob(batch, ops, &entry.blob.sha256, entry.blob.size)?;
        }
        Ok(())
    }

    /// One more kept reference to a blob.
    pub(super) fn keep_blob(
        &self,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
        sha256: &str,
        size: u64,
    ) -> Result<(), StorageError> {
        let key = blobref_key(sha256);
        let refs = ops.get_json::<u64>(&self.index, &key)?.unwrap_or(0);
        ops.put_json(batch, key, &(refs + 1))?;
        if refs == 0 {
            self.add_to(batch, ops, KEPT_BLOBS, 1)?;
            self.add_to(
                batch,
                ops,
                KEPT_BYTES,
                i64::try_from(size).unwrap_or(i64::MAX),
            )?;
        }
        Ok(())
    }

    /// One kept reference less; the last one takes the blob out of the kept bytes.
    pub(super) fn release_blob(
        &self,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
        sha256: &str,
        size: u64,
    ) -> Result<(), StorageError> {
        let key = blobref_key(sha256);
        let refs = ops.get_json::<u64>(&self.index, &key)?.unwrap_or(0);
        if refs <= 1 {
            ops.remove(batch, key);
            if refs == 1 {
                self.add_to(batch, ops, KEPT_BLOBS, -1)?;
                self.add_to(
                    batch,
                    ops,
                    KEPT_BYTES,
                    -i64::try_from(size).unwrap_or(i64::MAX),
                )?;
            }
        } else {
            ops.put_json(batch, key, &(refs - 1))?;
        }
        Ok(())
    }

    /// Whether `entry` is an evicted zip (its blob is not kept), as the batch left it.
    pub(super) fn is_evicted_zip(
        &self,
        ops: &Overlay,
        entry: &IndexEntry,
    ) -> Result<bool, StorageError> {
        if entry.key.kind != ArtifactKind::Zip {
            return Ok(false);
        }
        let mark = ops_key(EVICTED_PREFIX, &[&entry.key.module, &entry.key.version]);
        Ok(ops.get(&self.index, &mark)?.is_some())
    }

    /// Computes the counts from the whole tree when it has none (a data directory from
    /// before them).
    pub(crate) fn ensure_counters(&self) -> Result<(), StorageError> {
        if self
            .index
            .contains_key(COUNTERS_VERSION)
            .map_err(read_err)?
        {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        self.recount(&mut batch)?;
        self.commit(batch)?;
        tracing::info!("counted the index once (entries and kept blobs)");
        Ok(())
    }

    /// Writes the counts of the tree as it is into `batch`, replacing any.
    pub(super) fn recount(&self, batch: &mut WriteBatch) -> Result<(), StorageError> {
        self.recount_from(
            self.index
                .range(..vec![META_PREFIX])
                .map(|item| -> Result<IndexEntry, StorageError> {
                    let (_, bytes) = item.map_err(read_err)?;
                    serde_json::from_slice(&bytes).map_err(read_err)
                }),
            |module, version| {
                let mark = ops_key(EVICTED_PREFIX, &[module, version]);
                self.index.contains_key(mark).map_err(read_err)
            },
            batch,
        )
    }

    /// Writes the counts of `entries` (with `evicted` saying which zips are evicted) into
    /// `batch`, replacing the tree's.
    pub(super) fn recount_from(
        &self,
        entries: impl Iterator<Item = Result<IndexEntry, StorageError>>,
        evicted: impl Fn(&str, &str) -> Result<bool, StorageError>,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        for key in self.index.scan_prefix(BLOBREF_PREFIX).keys() {
            batch.remove(key.map_err(read_err)?);
        }
        let mut count = 0u64;
        let mut refs: HashMap<String, (u64, u64)> = HashMap::new();
        for entry in entries {
            let entry = entry?;
            count += 1;
            let is_evicted = entry.key.kind == ArtifactKind::Zip
                && evicted(&entry.key.module, &entry.key.version)?;
            if !is_evicted {
                let slot = refs
                    .entry(entry.blob.sha256)
                    .or_insert((0, entry.blob.size));
                slot.0 += 1;
            }
        }
        let mut bytes = 0u64;
        for (sha256, (n, size)) in &refs {
            bytes += size;
            batch.insert(
                blobref_key(sha256),
                serde_json::to_vec(n).map_err(write_err)?,
            );
        }
        let put = |batch: &mut WriteBatch, key: &[u8], value: u64| -> Result<(), StorageError> {
            batch.insert(key, serde_json::to_vec(&value).map_err(write_err)?);
            Ok(())
        };
        put(batch, ENTRIES, count)?;
        put(batch, KEPT_BYTES, bytes)?;
        put(batch, KEPT_BLOBS, refs.len() as u64)?;
        put(batch, COUNTERS_VERSION, VERSION)?;
        Ok(())
    }
}
