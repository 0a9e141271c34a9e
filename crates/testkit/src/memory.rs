//! In-memory stand-ins for what the front end needs from the cluster, so its router can be
//! driven directly in a test: an index that commits at once, first content winning as in the
//! real state machine, and a node with no peers.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use goproxy_http::{BlobPeers, CacheIndex, CachedVersion, IndexError, Leadership};
use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef, IndexEntry};

/// A single node's index, in memory.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    entries: Mutex<BTreeMap<ArtifactKey, IndexEntry>>,
}

impl MemoryIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ArtifactKey, IndexEntry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every committed entry.
    pub fn entries(&self) -> Vec<IndexEntry> {
        self.lock().values().cloned().collect()
    }

    /// Removes an entry, as a purge does; returns it.
    pub fn remove(&self, key: &ArtifactKey) -> Option<IndexEntry> {
        self.lock().remove(key)
    }
}

#[async_trait]
impl CacheIndex for MemoryIndex {
    fn lookup(&self, key: &ArtifactKey) -> Result<Option<IndexEntry>, IndexError> {
        Ok(self.lock().get(key).cloned())
    }

    fn cached_versions(&self, module: &str) -> Result<Vec<CachedVersion>, IndexError> {
        let entries = self.lock();
        let mut versions: BTreeMap<String, CachedVersion> = BTreeMap::new();
        for entry in entries.values().filter(|e| e.key.module == module) {
            let version = versions
                .entry(entry.key.version.clone())
                .or_insert_with(|| CachedVersion {
                    version: entry.key.version.clone(),
                    time: None,
                    has_info: false,
                });
            version.has_info |= entry.key.kind == ArtifactKind::Info;
            if version.time.is_none() {
                version.time = entry.version_time.clone();
            }
        }
        Ok(versions.into_values().collect())
    }

    async fn commit(&self, entry: IndexEntry) -> Result<IndexEntry, IndexError> {
        let mut entries = self.lock();
        Ok(entries.entry(entry.key.clone()).or_insert(entry).clone())
    }

    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }

    fn leadership(&self) -> Leadership {
        Leadership::Local
    }

    async fn disk_full(&self, _reason: &str) {}
}

/// A node with no peers: every push is trivially synced, no fetch finds anything.
#[derive(Debug, Default)]
pub struct NoPeers;

#[async_trait]
impl BlobPeers for NoPeers {
    async fn replicate(&self, _entry: &IndexEntry) -> Result<(), String> {
        Ok(())
    }

    fn abandon(&self, _entry: &IndexEntry) {}

    async fn fetch(&self, _blob: &BlobRef) -> Result<bool, String> {
        Ok(false)
    }

    fn admit(&self) -> Result<(), String> {
        Ok(())
    }
}
