//! Counts the state machine keeps as it applies, so that status, the storage gauges and the
//! reclaimer never scan the index: the number of entries, and the blobs every node keeps
//! (distinct, by reference count: an entry references its blob unless it is an evicted zip),
//! with their bytes.
//!
//! Beside them, the blob feed: one record per kept blob, numbered in the order blobs became
//! kept (`\xffblobfeed/` + zero-padded sequence → its [`BlobRef`]), so that the blob catch-up
//! reads only what was kept since its last pass instead of listing the whole index. A blob
//! gets a record when its first kept reference appears (a new entry's blob, or the zip of an
//! evicted version kept again) and loses it with its last one (purge, eviction): the feed
//! holds exactly the kept blobs, the newest last. Sequences only grow, except when the feed is
//! replaced wholesale: rebuilt ([`StateMachine::recount_from`], which renumbers it from 1) or
//! installed with a snapshot (the sender's); either changes [`BLOBFEED_RESET`] so that a
//! reader knows its position means nothing any more.
//!
//! A data directory written before these counts (or before this version of them) lacks
//! them: they are computed once when the state machine opens it
//! ([`StateMachine::ensure_counters`]). A snapshot carries them with the rest of the tree.

use std::collections::BTreeMap;

use goproxy_protocol::index::{ArtifactKind, BlobRef, IndexEntry};
use serde::{Deserialize, Serialize};

use super::ops::{ops_key, Overlay, EVICTED_PREFIX};
use super::{read_err, write_err, StateMachine, WriteBatch, BLOBFEED_RESET};
use crate::reader::META_PREFIX;
use crate::types::StorageError;

/// Committed entries.
pub(crate) const ENTRIES: &[u8] = b"\xffmeta/entries";
/// Bytes of the distinct blobs kept.
pub(crate) const KEPT_BYTES: &[u8] = b"\xffmeta/kept_bytes";
/// How many distinct blobs are kept.
pub(crate) const KEPT_BLOBS: &[u8] = b"\xffmeta/kept_blobs";
/// Kept blobs: `\xffblobref/` + sha256 → [`Kept`].
pub(crate) const BLOBREF_PREFIX: &[u8] = b"\xffblobref/";
/// The blob feed: `\xffblobfeed/` + zero-padded sequence → [`BlobRef`].
pub(crate) const BLOBFEED_PREFIX: &[u8] = b"\xffblobfeed/";
/// The last sequence given to a feed record.
const BLOBFEED_SEQ: &[u8] = b"\xffmeta/blobfeed_seq";
/// Which version of these counts the tree holds (absent: none yet).
const COUNTERS_VERSION: &[u8] = b"\xffmeta/counters_version";
/// 2: the blob feed, and [`Kept`] instead of a bare reference count.
const VERSION: u64 = 2;

/// What the tree holds for a kept blob.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    /// Kept references (at least 1: the last one takes the key away).
    refs: u64,
    /// The sequence of its feed record.
    feed: u64,
}

pub(crate) fn blobref_key(sha256: &str) -> Vec<u8> {
    ops_key(BLOBREF_PREFIX, &[sha256])
}

pub(crate) fn blobfeed_key(seq: u64) -> Vec<u8> {
    ops_key(BLOBFEED_PREFIX, &[&format!("{seq:020}")])
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(value).map_err(write_err)
}

impl StateMachine {
    fn count(&self, ops: &Overlay, key: &[u8]) -> Result<u64, StorageError> {
        Ok(ops.get_json::<u64>(&self.index(), key)?.unwrap_or(0))
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

    /// One more kept reference to a blob; the first one gives it a feed record.
    pub(super) fn keep_blob(
        &self,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
        sha256: &str,
        size: u64,
    ) -> Result<(), StorageError> {
        let key = blobref_key(sha256);
        if let Some(mut kept) = ops.get_json::<Kept>(&self.index(), &key)? {
            kept.refs += 1;
            return ops.put_json(batch, key, &kept);
        }
        let seq = self.count(ops, BLOBFEED_SEQ)? + 1;
        self.set_count(batch, ops, BLOBFEED_SEQ, seq)?;
        let blob = BlobRef {
            sha256: sha256.to_string(),
            size,
        };
        ops.put_json(batch, blobfeed_key(seq), &blob)?;
        ops.put_json(batch, key, &Kept { refs: 1, feed: seq })?;
        self.add_to(batch, ops, KEPT_BLOBS, 1)?;
        self.add_to(
            batch,
            ops,
            KEPT_BYTES,
            i64::try_from(size).unwrap_or(i64::MAX),
        )
    }

    /// One kept reference less; the last one takes the blob out of the kept bytes and its
    /// record out of the feed.
    pub(super) fn release_blob(
        &self,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
        sha256: &str,
        size: u64,
    ) -> Result<(), StorageError> {
        let key = blobref_key(sha256);
        let Some(mut kept) = ops.get_json::<Kept>(&self.index(), &key)? else {
            return Ok(());
        };
        if kept.refs > 1 {
            kept.refs -= 1;
            return ops.put_json(batch, key, &kept);
        }
        ops.remove(batch, key);
        ops.remove(batch, blobfeed_key(kept.feed));
        self.add_to(batch, ops, KEPT_BLOBS, -1)?;
        self.add_to(
            batch,
            ops,
            KEPT_BYTES,
            -i64::try_from(size).unwrap_or(i64::MAX),
        )
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
        Ok(ops.get(&self.index(), &mark)?.is_some())
    }

    /// Computes the counts from the whole tree when it has none, or an older version of
    /// them (a data directory from before them).
    pub(crate) fn ensure_counters(&self) -> Result<(), StorageError> {
        let version = match self.index().get(COUNTERS_VERSION).map_err(read_err)? {
            None => None,
            Some(bytes) => Some(serde_json::from_slice::<u64>(&bytes).map_err(read_err)?),
        };
        if version == Some(VERSION) {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        self.recount(&mut batch)?;
        self.commit(batch)?;
        tracing::info!(
            from = ?version,
            "counted the index once (entries, kept blobs, blob feed)"
        );
        Ok(())
    }

    /// Writes the counts of the tree as it is into `batch`, replacing any.
    pub(super) fn recount(&self, batch: &mut WriteBatch) -> Result<(), StorageError> {
        self.recount_from(
            self.index().range(..vec![META_PREFIX]).map(
                |item| -> Result<IndexEntry, StorageError> {
                    let (_, bytes) = item.map_err(read_err)?;
                    serde_json::from_slice(&bytes).map_err(read_err)
                },
            ),
            |module, version| {
                let mark = ops_key(EVICTED_PREFIX, &[module, version]);
                self.index().contains_key(mark).map_err(read_err)
            },
            batch,
        )
    }

    /// Writes the counts of `entries` (with `evicted` saying which zips are evicted) into
    /// `batch`, replacing the tree's; rebuilds the blob feed (one record per kept blob, by
    /// sha256, numbered from 1) and moves [`BLOBFEED_RESET`] on.
    pub(super) fn recount_from(
        &self,
        entries: impl Iterator<Item = Result<IndexEntry, StorageError>>,
        evicted: impl Fn(&str, &str) -> Result<bool, StorageError>,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        for prefix in [BLOBREF_PREFIX, BLOBFEED_PREFIX] {
            for key in self.index().scan_prefix(prefix).keys() {
                batch.remove(key.map_err(read_err)?);
            }
        }
        let mut count = 0u64;
        // By sha256, so that the same data always makes the same feed.
        let mut refs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
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
        for (seq, (sha256, (n, size))) in (1u64..).zip(&refs) {
            bytes += size;
            let kept = Kept {
                refs: *n,
                feed: seq,
            };
            batch.insert(blobref_key(sha256), to_json(&kept)?);
            let blob = BlobRef {
                sha256: sha256.clone(),
                size: *size,
            };
            batch.insert(blobfeed_key(seq), to_json(&blob)?);
        }
        let reset: u64 = match self.index().get(BLOBFEED_RESET).map_err(read_err)? {
            None => 0,
            Some(bytes) => serde_json::from_slice(&bytes).map_err(read_err)?,
        };
        for (key, value) in [
            (ENTRIES, count),
            (KEPT_BYTES, bytes),
            (KEPT_BLOBS, refs.len() as u64),
            (BLOBFEED_SEQ, refs.len() as u64),
            (BLOBFEED_RESET, reset + 1),
            (COUNTERS_VERSION, VERSION),
        ] {
            batch.insert(key, to_json(&value)?);
        }
        Ok(())
    }
}
