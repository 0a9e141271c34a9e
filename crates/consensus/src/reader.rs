//! Local reads of the applied index, without going through Raft.

use std::collections::{BTreeMap, HashSet};

use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef, IndexEntry};

use crate::error::ConsensusError;
use crate::keys;
use crate::state_machine::ops as ops_sm;

/// First byte of state-machine metadata keys; never the first byte of a module path.
pub const META_PREFIX: u8 = 0xff;

/// One version with any committed artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    /// Canonical version.
    pub version: String,
    /// Time from its `.info`, if cached.
    pub time: Option<String>,
    /// Whether the `.info` is cached.
    pub has_info: bool,
}

/// Read handle over the applied index. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IndexReader {
    shared: SharedTree,
}

/// The `index` tree, replaced whole when a snapshot is installed (a fresh tree is filled
/// beside it, then swapped in), so readers never see a half-installed index.
#[derive(Debug, Clone)]
pub(crate) struct SharedTree(std::sync::Arc<std::sync::RwLock<sled::Tree>>);

impl SharedTree {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(tree)))
    }

    /// The tree now (a cheap handle).
    pub(crate) fn get(&self) -> sled::Tree {
        self.0.read().expect("index tree lock").clone()
    }

    pub(crate) fn replace(&self, tree: sled::Tree) {
        *self.0.write().expect("index tree lock") = tree;
    }
}

impl IndexReader {
    pub(crate) fn new(shared: SharedTree) -> Self {
        Self { shared }
    }

    fn tree(&self) -> sled::Tree {
        self.shared.get()
    }

    /// The committed entry for `key`, if applied on this node.
    pub fn get(&self, key: &ArtifactKey) -> Result<Option<IndexEntry>, ConsensusError> {
        match self.tree().get(keys::artifact(key))? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ConsensusError::Storage(e.to_string())),
        }
    }

    /// Every version of `module` with at least one artifact, in key order.
    pub fn versions(&self, module: &str) -> Result<Vec<VersionSummary>, ConsensusError> {
        let mut out: Vec<VersionSummary> = Vec::new();
        for item in self.tree().scan_prefix(keys::module_prefix(module)) {
            let (_, bytes) = item?;
            let entry: IndexEntry = serde_json::from_slice(&bytes)
                .map_err(|e| ConsensusError::Storage(e.to_string()))?;
            let is_info = entry.key.kind == ArtifactKind::Info;
            match out.last_mut() {
                Some(last) if last.version == entry.key.version => {
                    last.has_info |= is_info;
                    last.time = last.time.take().or(entry.version_time);
                }
                _ => out.push(VersionSummary {
                    version: entry.key.version,
                    time: entry.version_time,
                    has_info: is_info,
                }),
            }
        }
        Ok(out)
    }

    /// The greatest version (in key order) of `module` with any artifact: one reverse step
    /// of a prefix scan, however many versions there are.
    pub fn last_version(&self, module: &str) -> Result<Option<String>, ConsensusError> {
        match self
            .tree()
            .scan_prefix(keys::module_prefix(module))
            .next_back()
        {
            None => Ok(None),
            Some(item) => {
                let (_, bytes) = item?;
                let entry: IndexEntry = serde_json::from_slice(&bytes)
                    .map_err(|e| ConsensusError::Storage(e.to_string()))?;
                Ok(Some(entry.key.version))
            }
        }
    }

    /// The client tokens, by name.
    pub fn tokens(&self) -> Result<Vec<goproxy_access::Grant>, ConsensusError> {
        let mut out = Vec::new();
        for item in self.tree().scan_prefix(crate::state_machine::TOKEN_PREFIX) {
            let (_, bytes) = item?;
            out.push(
                serde_json::from_slice(&bytes)
                    .map_err(|e| ConsensusError::Storage(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// The log index of the last change to the tokens (0: none), to know when
    /// [`IndexReader::tokens`] must be read again.
    pub fn tokens_at(&self) -> Result<u64, ConsensusError> {
        match self.tree().get(crate::state_machine::TOKENS_AT)? {
            None => Ok(0),
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| ConsensusError::Storage(e.to_string()))
            }
        }
    }

    /// The members' shared secret, once the first leader set it.
    pub fn member_secret(&self) -> Result<Option<String>, ConsensusError> {
        match self.tree().get(crate::state_machine::MEMBER_SECRET)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ConsensusError::Storage(e.to_string())),
        }
    }

    /// The admin trail from log index `from` on, in log order.
    pub fn admin_trail(&self, from: u64) -> Result<Vec<crate::AdminEvent>, ConsensusError> {
        let mut out = Vec::new();
        let start = crate::state_machine::admin_key(from);
        let end = crate::state_machine::admin_key(u64::MAX);
        for item in self.tree().range(start..=end) {
            let (_, bytes) = item?;
            out.push(
                serde_json::from_slice(&bytes)
                    .map_err(|e| ConsensusError::Storage(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Every committed entry (for snapshots, repair and status).
    pub fn all_entries(&self) -> Result<Vec<IndexEntry>, ConsensusError> {
        let mut out = Vec::new();
        for item in self.tree().range(..vec![META_PREFIX]) {
            let (_, bytes) = item?;
            out.push(
                serde_json::from_slice(&bytes)
                    .map_err(|e| ConsensusError::Storage(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// The distinct blobs the applied index references, ordered by sha256 (for repair and
    /// garbage collection: a blob not in this list is not served).
    pub fn all_blobs(&self) -> Result<Vec<BlobRef>, ConsensusError> {
        let mut blobs: BTreeMap<String, BlobRef> = BTreeMap::new();
        for entry in self.all_entries()? {
            blobs.entry(entry.blob.sha256.clone()).or_insert(entry.blob);
        }
        Ok(blobs.into_values().collect())
    }

    /// Number of committed entries (a count the state machine keeps: O(1)).
    pub fn entry_count(&self) -> usize {
        let count: u64 = self
            .json_at(crate::state_machine::counters::ENTRIES)
            .unwrap_or_default();
        usize::try_from(count).unwrap_or(usize::MAX)
    }

    /// Bytes and number of the distinct blobs every node keeps (evicted zips not counted):
    /// counts the state machine keeps, O(1).
    pub fn kept(&self) -> Result<(u64, u64), ConsensusError> {
        Ok((
            self.json_at(crate::state_machine::counters::KEPT_BYTES)?,
            self.json_at(crate::state_machine::counters::KEPT_BLOBS)?,
        ))
    }

    /// Whether a kept entry references the blob `sha256` (O(1)).
    pub fn is_blob_kept(&self, sha256: &str) -> Result<bool, ConsensusError> {
        Ok(self
            .tree()
            .contains_key(crate::state_machine::counters::blobref_key(sha256))?)
    }

    /// The blob feed's records with a sequence greater than `after` (`None`: from the
    /// start), in order, at most `limit`: the kept blobs, in the order they became kept (see
    /// `state_machine::counters`). O(limit).
    pub fn blob_feed_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, BlobRef)>, ConsensusError> {
        use crate::state_machine::counters::{blobfeed_key, BLOBFEED_PREFIX};
        let Some(first) = after.map_or(Some(0), |after| after.checked_add(1)) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self
            .tree()
            .range(blobfeed_key(first)..=blobfeed_key(u64::MAX))
            .take(limit)
        {
            let (key, bytes) = item?;
            let seq = std::str::from_utf8(&key[BLOBFEED_PREFIX.len()..])
                .ok()
                .and_then(|digits| digits.parse().ok())
                .ok_or_else(|| ConsensusError::Storage(format!("blob feed key {key:?}")))?;
            out.push((seq, serde_json::from_slice(&bytes).map_err(storage)?));
        }
        Ok(out)
    }

    /// The blob feed's generation (0: never rebuilt): it changes whenever the feed is
    /// rebuilt wholesale (a recount, a snapshot installed), and a position in the feed read
    /// under another generation is void.
    pub fn blob_feed_generation(&self) -> Result<u64, ConsensusError> {
        self.json_at(crate::state_machine::BLOBFEED_RESET)
    }
}

/// Operating state: warm jobs, block rules, pins, evictions ([`crate::ops`]).
impl IndexReader {
    fn json_at<T: serde::de::DeserializeOwned + Default>(
        &self,
        key: &[u8],
    ) -> Result<T, ConsensusError> {
        match self.tree().get(key)? {
            None => Ok(T::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(storage),
        }
    }

    fn json_under<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, ConsensusError> {
        let mut out = Vec::new();
        for item in self.tree().scan_prefix(prefix) {
            let (key, bytes) = item?;
            out.push((
                key[prefix.len()..].to_vec(),
                serde_json::from_slice(&bytes).map_err(storage)?,
            ));
        }
        Ok(out)
    }

    /// The block rules in force.
    pub fn blocks(&self) -> Result<Vec<crate::ops::BlockRecord>, ConsensusError> {
        Ok(self
            .json_under(ops_sm::BLOCK_PREFIX)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Log index of the last change to the block rules (0: none), to know when
    /// [`IndexReader::blocks`] must be read again.
    pub fn blocks_at(&self) -> Result<u64, ConsensusError> {
        self.json_at(ops_sm::BLOCKS_AT)
    }

    /// Log index of the last purge, eviction or restore (0: none).
    pub fn ops_at(&self) -> Result<u64, ConsensusError> {
        self.json_at(ops_sm::OPS_AT)
    }

    /// Every warm job, by id.
    pub fn warm_jobs(&self) -> Result<Vec<crate::ops::WarmJob>, ConsensusError> {
        Ok(self
            .json_under(ops_sm::WARM_PREFIX)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// One warm job.
    pub fn warm_job(&self, id: &str) -> Result<Option<crate::ops::WarmJob>, ConsensusError> {
        match self
            .tree()
            .get(ops_sm::ops_key(ops_sm::WARM_PREFIX, &[id]))?
        {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(storage),
        }
    }

    /// A job's input, once every part of it is committed.
    pub fn warm_source(&self, id: &str) -> Result<Option<String>, ConsensusError> {
        let Some(job) = self.warm_job(id)? else {
            return Ok(None);
        };
        if job.parts_received < job.spec.parts {
            return Ok(None);
        }
        let mut text = String::new();
        for value in self.tree().scan_prefix(ops_sm::source_prefix(id)).values() {
            text.push_str(&String::from_utf8_lossy(&value?));
        }
        Ok(Some(text))
    }

    /// The items a job has done (across every leader that ran it).
    pub fn warm_done(&self, id: &str) -> Result<HashSet<String>, ConsensusError> {
        let prefix = ops_sm::key_done(id, "");
        let mut out = HashSet::new();
        for key in self.tree().scan_prefix(&prefix).keys() {
            let key = key?;
            out.insert(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
        }
        Ok(out)
    }

    fn versions_under(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(crate::ops::VersionRef, Vec<u8>)>, ConsensusError> {
        let mut out = Vec::new();
        for item in self.tree().scan_prefix(prefix) {
            let (key, value) = item?;
            let rest = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            if let Some((module, version)) = rest.split_once('\0') {
                out.push((
                    crate::ops::VersionRef {
                        module: module.into(),
                        version: version.into(),
                    },
                    value.to_vec(),
                ));
            }
        }
        Ok(out)
    }

    /// Pinned versions, with the job that pinned each.
    pub fn pins(&self) -> Result<Vec<(crate::ops::VersionRef, String)>, ConsensusError> {
        self.versions_under(ops_sm::PIN_PREFIX)?
            .into_iter()
            .map(|(v, job)| Ok((v, serde_json::from_slice(&job).map_err(storage)?)))
            .collect()
    }

    /// Evicted versions, with when (ms since the epoch).
    pub fn evicted(&self) -> Result<Vec<(crate::ops::VersionRef, u64)>, ConsensusError> {
        self.versions_under(ops_sm::EVICTED_PREFIX)?
            .into_iter()
            .map(|(v, at)| Ok((v, serde_json::from_slice(&at).map_err(storage)?)))
            .collect()
    }

    /// Whether `module@version`'s zip is evicted (no node keeps it).
    pub fn is_evicted(&self, module: &str, version: &str) -> Result<bool, ConsensusError> {
        Ok(self
            .tree()
            .contains_key(ops_sm::ops_key(ops_sm::EVICTED_PREFIX, &[module, version]))?)
    }

    /// Reclaim records after log index `after`, in log order.
    pub fn reclaims_after(&self, after: u64) -> Result<Vec<crate::ops::Reclaim>, ConsensusError> {
        let start = ops_sm::reclaim_key(after.saturating_add(1));
        let end = ops_sm::reclaim_key(u64::MAX);
        let mut out = Vec::new();
        for item in self.tree().range(start..=end) {
            let (_, bytes) = item?;
            out.push(serde_json::from_slice(&bytes).map_err(storage)?);
        }
        Ok(out)
    }

    /// The distinct blobs every node keeps: those of [`IndexReader::all_blobs`] without the
    /// zips of evicted versions.
    pub fn kept_blobs(&self) -> Result<Vec<BlobRef>, ConsensusError> {
        let evicted: HashSet<(String, String)> = self
            .evicted()?
            .into_iter()
            .map(|(v, _)| (v.module, v.version))
            .collect();
        let mut blobs: BTreeMap<String, BlobRef> = BTreeMap::new();
        for entry in self.all_entries()? {
            let key = &entry.key;
            if key.kind == ArtifactKind::Zip
                && evicted.contains(&(key.module.clone(), key.version.clone()))
            {
                continue;
            }
            blobs.entry(entry.blob.sha256.clone()).or_insert(entry.blob);
        }
        Ok(blobs.into_values().collect())
    }
}

fn storage(e: serde_json::Error) -> ConsensusError {
    ConsensusError::Storage(e.to_string())
}
