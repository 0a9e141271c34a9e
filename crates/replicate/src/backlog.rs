//! Blobs acknowledged while fewer than `sync_replicas` peers confirmed them: the window
//! a node loss could lose. Bounded (new fills are refused beyond the bound) and drained
//! in the background by re-pushing until enough peers hold each blob.

use std::collections::HashMap;
use std::sync::Mutex;

use goproxy_protocol::index::IndexEntry;
use prometheus_client::metrics::gauge::Gauge;

/// The under-replicated set and its bound.
#[derive(Debug)]
pub struct Backlog {
    blobs: Mutex<HashMap<String, IndexEntry>>,
    max_count: usize,
    max_bytes: u64,
    count_gauge: Gauge,
    bytes_gauge: Gauge,
}

impl Backlog {
    /// An empty backlog bounded by `max_count` blobs and `max_bytes` bytes, published in
    /// `count_gauge` and `bytes_gauge`.
    pub fn new(max_count: usize, max_bytes: u64, count_gauge: Gauge, bytes_gauge: Gauge) -> Self {
        Self {
            blobs: Mutex::default(),
            max_count,
            max_bytes,
            count_gauge,
            bytes_gauge,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, IndexEntry>> {
        self.blobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, blobs: &HashMap<String, IndexEntry>) {
        self.count_gauge.set(blobs.len() as i64);
        self.bytes_gauge
            .set(blobs.values().map(|e| e.blob.size).sum::<u64>() as i64);
    }

    /// Records the blob of a committed entry that is short of replicas.
    pub fn add(&self, entry: &IndexEntry) {
        let mut blobs = self.lock();
        blobs.insert(entry.blob.sha256.clone(), entry.clone());
        self.publish(&blobs);
    }

    /// Forgets a blob that now has enough replicas.
    pub fn remove(&self, sha256: &str) {
        let mut blobs = self.lock();
        blobs.remove(sha256);
        self.publish(&blobs);
    }

    /// The entries whose blobs are still short of replicas.
    pub fn pending(&self) -> Vec<IndexEntry> {
        self.lock().values().cloned().collect()
    }

    /// `(blobs, bytes)` short of replicas.
    pub fn size(&self) -> (usize, u64) {
        let blobs = self.lock();
        (blobs.len(), blobs.values().map(|e| e.blob.size).sum())
    }

    /// Whether a new fill may start.
    pub fn admit(&self) -> Result<(), String> {
        let (count, bytes) = self.size();
        if count >= self.max_count || bytes >= self.max_bytes {
            return Err(format!(
                "replication backlog full ({count} blobs, {bytes} bytes not yet on enough replicas; \
                 bounds {} blobs / {} bytes): new fills resume when replicas catch up",
                self.max_count, self.max_bytes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: u8, size: u64) -> IndexEntry {
        IndexEntry {
            key: goproxy_protocol::index::ArtifactKey {
                module: "example.com/m".into(),
                version: format!("v1.0.{n}"),
                kind: goproxy_protocol::index::ArtifactKind::Zip,
            },
            blob: goproxy_protocol::index::BlobRef {
                sha256: format!("{n:064x}"),
                size,
            },
            h1: None,
            version_time: None,
            filled_at_ms: 0,
        }
    }

    #[test]
    fn admission_stops_at_either_bound_and_resumes_when_drained() {
        let backlog = Backlog::new(2, 100, Gauge::default(), Gauge::default());
        backlog.add(&blob(1, 10));
        assert!(backlog.admit().is_ok());
        backlog.add(&blob(2, 10));
        assert!(backlog.admit().is_err(), "count bound");
        backlog.remove(&blob(2, 10).blob.sha256);
        backlog.add(&blob(3, 95));
        assert!(backlog.admit().is_err(), "byte bound");
        backlog.remove(&blob(3, 95).blob.sha256);
        assert!(backlog.admit().is_ok());
        assert_eq!(backlog.size(), (1, 10));
    }
}
