//! Download statistics: how often each module version's zip was served, counted in memory
//! on each node (no Raft write per hit), saved to the node's data directory now and then,
//! and summed across the cluster when asked (`/stats`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Most module versions counted on one node; downloads of further versions are counted in
/// [`NodeDownloads::untracked`] only, so memory stays bounded whatever clients ask for.
pub const MAX_TRACKED: usize = 200_000;

/// One module version's downloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionCount {
    /// Module path.
    pub module: String,
    /// Version.
    pub version: String,
    /// Zips served.
    pub downloads: u64,
}

/// What one node counted (what `/stats?scope=node` answers, and what is saved).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDownloads {
    /// The node's id.
    pub node: u64,
    /// Per version.
    pub versions: Vec<VersionCount>,
    /// Downloads of versions beyond [`MAX_TRACKED`].
    pub untracked: u64,
}

/// The counters of this node. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Downloads {
    node: u64,
    counts: Mutex<HashMap<(String, String), u64>>,
    untracked: AtomicU64,
    max: usize,
}

impl Downloads {
    /// Empty counters for node `node`.
    pub fn new(node: u64) -> Self {
        Self::with_limit(node, MAX_TRACKED)
    }

    /// Counters tracking at most `max` versions.
    pub fn with_limit(node: u64, max: usize) -> Self {
        Self {
            node,
            counts: Mutex::new(HashMap::new()),
            untracked: AtomicU64::new(0),
            max,
        }
    }

    /// Counts one download of `module@version`.
    pub fn count(&self, module: &str, version: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let key = (module.to_string(), version.to_string());
        let full = counts.len() >= self.max;
        match counts.get_mut(&key) {
            Some(n) => *n += 1,
            None if !full => {
                counts.insert(key, 1);
            }
            None => {
                self.untracked.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Everything counted so far.
    pub fn snapshot(&self) -> NodeDownloads {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut versions: Vec<VersionCount> = counts
            .iter()
            .map(|((module, version), n)| VersionCount {
                module: module.clone(),
                version: version.clone(),
                downloads: *n,
            })
            .collect();
        versions.sort_by(|a, b| (&a.module, &a.version).cmp(&(&b.module, &b.version)));
        NodeDownloads {
            node: self.node,
            versions,
            untracked: self.untracked.load(Ordering::Relaxed),
        }
    }

    /// Adds what an earlier run saved.
    pub fn restore(&self, saved: &NodeDownloads) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for v in &saved.versions {
            if counts.len() >= self.max
                && !counts.contains_key(&(v.module.clone(), v.version.clone()))
            {
                self.untracked.fetch_add(v.downloads, Ordering::Relaxed);
                continue;
            }
            *counts
                .entry((v.module.clone(), v.version.clone()))
                .or_default() += v.downloads;
        }
        self.untracked.fetch_add(saved.untracked, Ordering::Relaxed);
    }

    /// Loads the counts saved at `path` (none there: nothing; unreadable: the error).
    pub fn load(&self, path: &Path) -> std::io::Result<()> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let saved: NodeDownloads = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
        self.restore(&saved);
        Ok(())
    }

    /// Saves the counts to `path` atomically (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&self.snapshot()).map_err(std::io::Error::other)?;
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(&temporary, path)
    }
}

/// One module's downloads across the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleDownloads {
    /// Module path.
    pub module: String,
    /// All its versions' downloads.
    pub downloads: u64,
    /// Per version, most downloaded first.
    pub versions: Vec<VersionDownloads>,
}

/// One version's downloads across the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionDownloads {
    /// Version.
    pub version: String,
    /// Zips served by every node that answered.
    pub downloads: u64,
}

/// The cluster's download statistics (`/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterDownloads {
    /// Nodes whose counts are included.
    pub nodes: Vec<u64>,
    /// Nodes that could not be asked, with why.
    pub missing: BTreeMap<u64, String>,
    /// Every download counted.
    pub downloads: u64,
    /// Modules, most downloaded first (at most `top`).
    pub modules: Vec<ModuleDownloads>,
}

/// Sums the nodes' counts: the `top` most downloaded modules whose path starts with
/// `prefix` (all when empty).
pub fn sum(parts: &[NodeDownloads], prefix: &str, top: usize) -> ClusterDownloads {
    let mut by_module: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut total = 0u64;
    for part in parts {
        total = total.saturating_add(part.untracked);
        for v in &part.versions {
            total = total.saturating_add(v.downloads);
            if v.module.starts_with(prefix) {
                let n = by_module
                    .entry(&v.module)
                    .or_default()
                    .entry(&v.version)
                    .or_default();
                *n = n.saturating_add(v.downloads);
            }
        }
    }
    let mut modules: Vec<ModuleDownloads> = by_module
        .into_iter()
        .map(|(module, versions)| {
            let mut versions: Vec<VersionDownloads> = versions
                .into_iter()
                .map(|(version, downloads)| VersionDownloads {
                    version: version.to_string(),
                    downloads,
                })
                .collect();
            versions.sort_by(|a, b| {
                b.downloads
                    .cmp(&a.downloads)
                    .then(a.version.cmp(&b.version))
            });
            ModuleDownloads {
                module: module.to_string(),
                downloads: versions.iter().map(|v| v.downloads).sum(),
                versions,
            }
        })
        .collect();
    modules.sort_by(|a, b| b.downloads.cmp(&a.downloads).then(a.module.cmp(&b.module)));
    modules.truncate(top);
    ClusterDownloads {
        nodes: parts.iter().map(|p| p.node).collect(),
        missing: BTreeMap::new(),
        downloads: total,
        modules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_bounded_saved_restored_and_summed_across_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let one = Downloads::with_limit(1, 2);
        for (m, v) in [("a", "v1"), ("a", "v1"), ("b", "v1"), ("c", "v9")] {
            one.count(m, v);
        }
        let snapshot = one.snapshot();
        assert_eq!(snapshot.versions.len(), 2, "bounded");
        assert_eq!(snapshot.untracked, 1);
        let path = dir.path().join("downloads.json");
        one.save(&path).unwrap();
        let again = Downloads::with_limit(1, 10);
        again.load(&path).unwrap();
        again.count("a", "v2");
        assert_eq!(again.snapshot().versions.len(), 3);

        let two = Downloads::new(2);
        two.count("a", "v1");
        let cluster = sum(&[again.snapshot(), two.snapshot()], "", 10);
        assert_eq!(cluster.nodes, vec![1, 2]);
        assert_eq!(cluster.downloads, 6, "{cluster:?}");
        assert_eq!(cluster.modules[0].module, "a");
        assert_eq!(cluster.modules[0].downloads, 4);
        assert_eq!(cluster.modules[0].versions[0].version, "v1");
        assert_eq!(cluster.modules[0].versions[0].downloads, 3);
        let only_b = sum(&[again.snapshot()], "b", 10);
        assert_eq!(only_b.modules.len(), 1);
        assert_eq!(sum(&[again.snapshot()], "", 1).modules.len(), 1, "top");
        assert!(Downloads::new(3)
            .load(&dir.path().join("none.json"))
            .is_ok());
    }
}
