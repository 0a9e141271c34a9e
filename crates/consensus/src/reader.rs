//! Local reads of the applied index, without going through Raft.

use std::collections::BTreeMap;

use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef, IndexEntry};

use crate::error::ConsensusError;
use crate::keys;

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
    tree: sled::Tree,
}

impl IndexReader {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    /// The committed entry for `key`, if applied on this node.
    pub fn get(&self, key: &ArtifactKey) -> Result<Option<IndexEntry>, ConsensusError> {
        match self.tree.get(keys::artifact(key))? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ConsensusError::Storage(e.to_string())),
        }
    }

    /// Every version of `module` with at least one artifact, in key order.
    pub fn versions(&self, module: &str) -> Result<Vec<VersionSummary>, ConsensusError> {
        let mut out: Vec<VersionSummary> = Vec::new();
        for item in self.tree.scan_prefix(keys::module_prefix(module)) {
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
            .tree
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
        for item in self.tree.scan_prefix(crate::state_machine::TOKEN_PREFIX) {
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
        match self.tree.get(crate::state_machine::TOKENS_AT)? {
            None => Ok(0),
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| ConsensusError::Storage(e.to_string()))
            }
        }
    }

    /// The members' shared secret, once the first leader set it.
    pub fn member_secret(&self) -> Result<Option<String>, ConsensusError> {
        match self.tree.get(crate::state_machine::MEMBER_SECRET)? {
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
        for item in self.tree.range(start..=end) {
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
        for item in self.tree.range(..vec![META_PREFIX]) {
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

    /// Number of committed entries (a key scan: O(entries)).
    pub fn entry_count(&self) -> usize {
        self.tree.range(..vec![META_PREFIX]).count()
    }
}
