//! Writing a blob: stream into a temp file, fsync, then rename into place.
//!
//! The sequence (write → fsync file → rename → fsync directory) means a crash leaves
//! either no blob or a complete one; half-written temp files are removed at start.
//!
//! Many blobs written together (a rejoining node fetching what it missed) can share the
//! syncs instead: each is written unsynced ([`BlobWriter::finish_unsynced`]), and
//! [`BlobStore::commit_all`] syncs the filesystem once, renames them all, and syncs it once
//! more. The order is the same (every file's bytes are durable before its name is visible),
//! so a crash still leaves either no blob or a complete one.

use std::path::{Path, PathBuf};

use goproxy_protocol::index::BlobRef;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::io_at;
use crate::{BlobStore, StoreError};

/// An in-progress blob write. Dropping it removes the temp file.
#[derive(Debug)]
pub struct BlobWriter {
    store: BlobStore,
    file: Option<tokio::fs::File>,
    path: PathBuf,
    hasher: Sha256,
    written: u64,
    limit: u64,
}

impl BlobWriter {
    pub(crate) async fn create(
        store: BlobStore,
        path: PathBuf,
        limit: u64,
    ) -> Result<Self, StoreError> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(io_at(&path))?;
        Ok(Self {
            store,
            file: Some(file),
            path,
            hasher: Sha256::new(),
            written: 0,
            limit,
        })
    }

    /// Appends a chunk, failing once the total exceeds the limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.written += chunk.len() as u64;
        if self.written > self.limit {
            return Err(StoreError::TooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        let file = self.file.as_mut().expect("file is present until finish");
        file.write_all(chunk).await.map_err(io_at(&self.path))
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and fsyncs the temp file and returns it staged, not yet visible.
    pub async fn finish(self) -> Result<StagedBlob, StoreError> {
        self.finish_with(true).await
    }

    /// Flushes the temp file without syncing it: the staged blob is synced when it is
    /// committed ([`StagedBlob::commit`] syncs it alone, [`BlobStore::commit_all`] syncs a
    /// batch at once).
    pub async fn finish_unsynced(self) -> Result<StagedBlob, StoreError> {
        self.finish_with(false).await
    }

    async fn finish_with(mut self, sync: bool) -> Result<StagedBlob, StoreError> {
        let mut file = self.file.take().expect("finish is called once");
        file.flush().await.map_err(io_at(&self.path))?;
        if sync {
            file.sync_all().await.map_err(io_at(&self.path))?;
        }
        drop(file);
        let blob = BlobRef {
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
            size: self.written,
        };
        let path = std::mem::take(&mut self.path);
        Ok(StagedBlob {
            store: self.store.clone(),
            path,
            blob,
            synced: sync,
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A fully written blob in the staging area, awaiting validation: fsynced, or to be
/// synced when committed.
#[derive(Debug)]
pub struct StagedBlob {
    store: BlobStore,
    path: PathBuf,
    blob: BlobRef,
    /// Whether the temp file's bytes are known to be on disk.
    pub(crate) synced: bool,
}

impl StagedBlob {
    /// The content address the bytes will be stored under.
    pub fn blob(&self) -> &BlobRef {
        &self.blob
    }

    /// The staging file, for validators that need to read it back.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the blob visible under its address: rename, then fsync the directory so the
    /// rename survives a crash. Committing bytes that are already present is a no-op.
    pub async fn commit(mut self) -> Result<BlobRef, StoreError> {
        let dir = self.store.fanout_dir(&self.blob.sha256)?;
        let target = self.store.path_of(&self.blob.sha256)?;
        tokio::fs::create_dir_all(&dir).await.map_err(io_at(&dir))?;
        if self.store.contains(&self.blob).await? {
            return Ok(self.blob.clone()); // Drop removes the duplicate temp file.
        }
        if !self.synced {
            let file = tokio::fs::File::open(&self.path)
                .await
                .map_err(io_at(&self.path))?;
            file.sync_all().await.map_err(io_at(&self.path))?;
            self.synced = true;
        }
        tokio::fs::rename(&self.path, &target)
            .await
            .map_err(io_at(&target))?;
        self.path = PathBuf::new();
        let dir_handle = tokio::fs::File::open(&dir).await.map_err(io_at(&dir))?;
        dir_handle.sync_all().await.map_err(io_at(&dir))?;
        Ok(self.blob.clone())
    }
}

impl StagedBlob {
    /// Renames the (synced) temp file to its address unless the blob is already there;
    /// returns the directory that changed, if any. Blocking: for [`BlobStore::commit_all`].
    pub(crate) fn rename_into_place(&mut self) -> Result<Option<PathBuf>, StoreError> {
        let dir = self.store.fanout_dir(&self.blob.sha256)?;
        let target = self.store.path_of(&self.blob.sha256)?;
        std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        match std::fs::metadata(&target) {
            Ok(meta) if meta.len() == self.blob.size => return Ok(None),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&target)(e)),
        }
        std::fs::rename(&self.path, &target).map_err(io_at(&target))?;
        self.path = PathBuf::new();
        Ok(Some(dir))
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
