//! The store itself: directory layout, start-up cleanup, lookups and streaming opens.

use std::path::{Path, PathBuf};

use goproxy_protocol::index::BlobRef;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::error::io_at;
use crate::{digest, BlobWriter, StagedBlob, StoreError};

/// Directory holding committed blobs, fanned out by the first two hex digits.
const BLOBS_DIR: &str = "sha256";
/// Directory holding in-progress writes; emptied at every start.
const TMP_DIR: &str = "tmp";
/// Read buffer used when re-hashing a blob to verify it.
const VERIFY_CHUNK: usize = 256 * 1024;

/// A content-addressed blob store rooted at one directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the store under `dir` and removes leftovers of writes
    /// that were interrupted by a crash. Returns how many leftovers were removed.
    pub fn open(dir: impl AsRef<Path>) -> Result<(Self, usize), StoreError> {
        let dir = dir.as_ref();
        let blobs = dir.join(BLOBS_DIR);
        let tmp = dir.join(TMP_DIR);
        std::fs::create_dir_all(&blobs).map_err(io_at(&blobs))?;
        std::fs::create_dir_all(&tmp).map_err(io_at(&tmp))?;
        let mut removed = 0;
        for entry in std::fs::read_dir(&tmp).map_err(io_at(&tmp))? {
            let path = entry.map_err(io_at(&tmp))?.path();
            std::fs::remove_file(&path).map_err(io_at(&path))?;
            removed += 1;
        }
        Ok((Self { blobs, tmp }, removed))
    }

    /// Starts writing a new blob of at most `limit` bytes into a staging file.
    pub async fn writer(&self, limit: u64) -> Result<BlobWriter, StoreError> {
        let name = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        BlobWriter::create(self.clone(), self.tmp.join(name), limit).await
    }

    /// Stages `bytes` in one call (for small artifacts such as `.info` and `.mod`).
    pub async fn stage_bytes(&self, bytes: &[u8], limit: u64) -> Result<StagedBlob, StoreError> {
        let mut writer = self.writer(limit).await?;
        writer.write(bytes).await?;
        writer.finish().await
    }

    /// Makes every blob of `staged` visible under its address, with two filesystem syncs for
    /// the whole batch instead of two fsyncs per blob: the bytes of every temp file are
    /// synced first, then all are renamed, then the renames are synced. A crash at any
    /// point leaves each blob absent or complete. Blobs already present are skipped (their
    /// temp files removed). Returns the committed blobs, in order.
    pub async fn commit_all(&self, staged: Vec<StagedBlob>) -> Result<Vec<BlobRef>, StoreError> {
        if staged.is_empty() {
            return Ok(Vec::new());
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.commit_all_blocking(staged))
            .await
            .map_err(|e| StoreError::Io {
                path: self.tmp.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
    }

    fn commit_all_blocking(&self, mut staged: Vec<StagedBlob>) -> Result<Vec<BlobRef>, StoreError> {
        if staged.iter().any(|s| !s.synced) {
            self.sync_filesystem(&self.tmp)?;
        }
        let mut renamed = 0usize;
        for blob in &mut staged {
            blob.synced = true;
            if blob.rename_into_place()?.is_some() {
                renamed += 1;
            }
        }
        if renamed > 0 {
            self.sync_filesystem(&self.blobs)?;
        }
        Ok(staged.iter().map(|s| s.blob().clone()).collect())
    }

    /// Writes every dirty page and the journal of the filesystem holding `dir` to disk
    /// (`syncfs`; elsewhere, `sync`).
    fn sync_filesystem(&self, dir: &Path) -> Result<(), StoreError> {
        let handle = std::fs::File::open(dir).map_err(io_at(dir))?;
        #[cfg(target_os = "linux")]
        nix::unistd::syncfs(&handle).map_err(|e| io_at(dir)(std::io::Error::from(e)))?;
        #[cfg(not(target_os = "linux"))]
        {
            handle.sync_all().map_err(io_at(dir))?;
            nix::unistd::sync();
        }
        Ok(())
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn path_of(&self, sha256: &str) -> Result<PathBuf, StoreError> {
        let sha256 = digest::parse(sha256)?;
        Ok(self.blobs.join(&sha256[..2]).join(sha256))
    }

    /// The directory a blob with this digest is renamed into.
    pub(crate) fn fanout_dir(&self, sha256: &str) -> Result<PathBuf, StoreError> {
        let sha256 = digest::parse(sha256)?;
        Ok(self.blobs.join(&sha256[..2]))
    }

    /// Bytes an unprivileged writer may still store on the store's filesystem.
    pub fn available_bytes(&self) -> Result<u64, StoreError> {
        let stats = nix::sys::statvfs::statvfs(&self.blobs).map_err(|e| StoreError::Io {
            path: self.blobs.clone(),
            source: std::io::Error::from(e),
        })?;
        Ok(stats
            .blocks_available()
            .saturating_mul(stats.fragment_size()))
    }

    /// True when the blob is present with the expected size.
    pub async fn contains(&self, blob: &BlobRef) -> Result<bool, StoreError> {
        let path = self.path_of(&blob.sha256)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(meta.len() == blob.size),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Opens a committed blob for streaming. `None` when it is absent or has the wrong
    /// size (a truncated file is treated as missing so it gets repaired, never served).
    pub async fn open_blob(&self, blob: &BlobRef) -> Result<Option<tokio::fs::File>, StoreError> {
        let path = self.path_of(&blob.sha256)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let len = file.metadata().await.map_err(io_at(&path))?.len();
        Ok((len == blob.size).then_some(file))
    }

    /// Reads a committed blob whole. Only for small artifacts (`.info`, `.mod`).
    pub async fn read_small(&self, blob: &BlobRef) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(&blob.sha256)?;
        let Some(mut file) = self.open_blob(blob).await? else {
            return Ok(None);
        };
        let mut bytes = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
        file.read_to_end(&mut bytes).await.map_err(io_at(&path))?;
        Ok(Some(bytes))
    }

    /// Deletes a blob (purged, or evicted); `Ok(false)` when it was not here. A reader
    /// that opened it before keeps streaming it (the file lives until it is closed).
    pub async fn remove(&self, sha256: &str) -> Result<bool, StoreError> {
        let path = self.path_of(sha256)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Bytes of the blob files on disk and their count (a walk of the store: for status
    /// and the disk bound's checks, not the request path).
    pub fn disk_usage(&self) -> Result<(u64, u64), StoreError> {
        let mut bytes = 0u64;
        let mut files = 0u64;
        let fanouts = std::fs::read_dir(&self.blobs).map_err(io_at(&self.blobs))?;
        for fanout in fanouts {
            let fanout = fanout.map_err(io_at(&self.blobs))?.path();
            if !fanout.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&fanout).map_err(io_at(&fanout))? {
                let file = file.map_err(io_at(&fanout))?;
                if let Ok(meta) = file.metadata() {
                    if meta.is_file() {
                        bytes += meta.len();
                        files += 1;
                    }
                }
            }
        }
        Ok((bytes, files))
    }

    /// Size and free bytes of the store's filesystem.
    pub fn filesystem(&self) -> Result<(u64, u64), StoreError> {
        let stats = nix::sys::statvfs::statvfs(&self.blobs).map_err(|e| StoreError::Io {
            path: self.blobs.clone(),
            source: std::io::Error::from(e),
        })?;
        Ok((
            stats.blocks().saturating_mul(stats.fragment_size()),
            stats
                .blocks_available()
                .saturating_mul(stats.fragment_size()),
        ))
    }

    /// Re-hashes a committed blob and checks it against its address.
    pub async fn verify(&self, blob: &BlobRef) -> Result<(), StoreError> {
        let path = self.path_of(&blob.sha256)?;
        let mut file = tokio::fs::File::open(&path).await.map_err(io_at(&path))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; VERIFY_CHUNK];
        loop {
            let n = file.read(&mut buf).await.map_err(io_at(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let found = hex::encode(hasher.finalize());
        if found == blob.sha256 {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                expected: blob.sha256.clone(),
                found,
            })
        }
    }
}
