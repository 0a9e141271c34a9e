//! The disk bound (`[cache] max_bytes`, `evict_unused_after`): the leader evicts the zips of
//! the least recently used, unpinned versions through the log, so every node drops the same
//! ones; their index entries stay, and a later request fetches the zip again, checked against
//! the recorded sha256.
//!
//! When a version was last used is not written through Raft on every hit: each node notes
//! its own accesses ([`AccessTimes`]), pulls its peers' every `evict_interval` and keeps the
//! later time, and saves them in its data directory. An evicted version requested again is
//! restored (kept again everywhere) by the next pass.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use goproxy_cachepolicy::{plan, AccessEntry, AccessTimes, Candidate, Policy};
use goproxy_consensus::ops::{Evictions, VersionRef};
use goproxy_consensus::{Consensus, IndexCommand};
use goproxy_http::Frontend;
use goproxy_protocol::index::ArtifactKind;
use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;

use crate::config::CacheConfig;

/// What the versions of one eviction or restore entry may add up to, serialized (the entry
/// stays under the log's entry size bound however long the module paths).
const ENTRY_BUDGET: usize = 4 * 1024;
/// Where a node keeps its access times between runs.
pub const ACCESS_FILE: &str = "access-times.json";

/// What the eviction task works with.
pub struct Evictor {
    /// This node's member.
    pub consensus: Consensus,
    /// For asking peers.
    pub frontend: Arc<Frontend>,
    /// This node's (and, merged, its peers') access times.
    pub access: Arc<AccessTimes>,
    /// The bound.
    pub config: CacheConfig,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Versions evicted by this node as leader.
    pub evictions: Counter,
}

impl Evictor {
    /// Runs until `drain`; saves the access times when it ends.
    pub async fn run(self, drain: CancellationToken) {
        let file = self.data_dir.join(ACCESS_FILE);
        match self.access.load(&file) {
            Ok(n) if n > 0 => tracing::info!(versions = n, "access times restored"),
            Ok(_) => {}
            Err(e) => tracing::warn!("access times of the last run not restored: {e}"),
        }
        let started_ms = super::now_ms();
        let mut ticks = tokio::time::interval(self.config.evict_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = drain.cancelled() => break,
                _ = ticks.tick() => {}
            }
            self.merge_peers().await;
            if self.consensus.is_leader() {
                if let Err(e) = self.pass(started_ms).await {
                    tracing::warn!("eviction pass: {e}");
                }
            }
            if let Err(e) = self.access.save(&file) {
                tracing::warn!("saving access times: {e}");
            }
        }
        if let Err(e) = self.access.save(&file) {
            tracing::warn!("saving access times: {e}");
        }
    }

    async fn merge_peers(&self) {
        let me = self.consensus.node_id();
        for (id, peer) in self.consensus.peers() {
            if id == me {
                continue;
            }
            let asked = self
                .frontend
                .member_get(&peer.http_addr, super::api::ACCESS_TIMES_PATH)
                .await;
            match asked.and_then(|body| {
                serde_json::from_slice::<Vec<AccessEntry>>(&body).map_err(|e| e.to_string())
            }) {
                Ok(entries) => self.access.merge(entries),
                Err(e) => tracing::debug!(peer = id, "access times not merged: {e}"),
            }
        }
    }

    /// One decision: evictions to commit, and evicted versions used again to restore.
    async fn pass(&self, started_ms: u64) -> Result<(), String> {
        let reader = self.consensus.reader();
        let evicted: HashMap<(String, String), u64> = reader
            .evicted()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(v, at)| ((v.module, v.version), at))
            .collect();
        let restore: Vec<VersionRef> = evicted
            .iter()
            .filter(|((module, version), at)| {
                self.access
                    .get(module, version)
                    .is_some_and(|used| used > **at)
            })
            .map(|((module, version), _)| VersionRef {
                module: module.clone(),
                version: version.clone(),
            })
            .collect();
        // A failed restore is logged: it must not keep the bound from being enforced.
        for chunk in chunks(&restore) {
            match self
                .consensus
                .operate(IndexCommand::Restore(chunk.to_vec()))
                .await
            {
                Ok(_) => {
                    tracing::info!(
                        versions = chunk.len(),
                        "restored evicted versions in use again"
                    )
                }
                Err(e) => tracing::warn!("restoring evicted versions: {e}"),
            }
        }
        let policy = Policy {
            max_bytes: self.config.max_bytes,
            unused_after_ms: self
                .config
                .evict_unused_after
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        if policy.max_bytes.is_none() && policy.unused_after_ms.is_none() {
            return Ok(());
        }
        let pinned: std::collections::HashSet<(String, String)> = reader
            .pins()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(v, _)| (v.module, v.version))
            .collect();
        // Kept bytes: a count the state machine keeps (O(1)).
        let (total, _) = reader.kept().map_err(|e| e.to_string())?;
        let mut candidates = Vec::new();
        for entry in reader.all_entries().map_err(|e| e.to_string())? {
            let key = entry.key;
            if key.kind != ArtifactKind::Zip
                || evicted.contains_key(&(key.module.clone(), key.version.clone()))
            {
                continue;
            }
            let last_access_ms = self.access.get(&key.module, &key.version);
            candidates.push(Candidate {
                pinned: pinned.contains(&(key.module.clone(), key.version.clone())),
                // Never seen used (restored from a snapshot, or before tracking): as if used
                // when this node started.
                cached_at_ms: if last_access_ms.is_some() {
                    0
                } else {
                    started_ms
                },
                last_access_ms,
                bytes: entry.blob.size,
                module: key.module,
                version: key.version,
            });
        }
        let plan = plan(&candidates, total, &policy, super::now_ms());
        if plan.over_bound_after > 0 {
            tracing::warn!(
                over = plan.over_bound_after,
                "pinned versions and metadata alone exceed cache.max_bytes"
            );
        }
        if plan.evict.is_empty() {
            return Ok(());
        }
        let versions: Vec<VersionRef> = plan
            .evict
            .iter()
            .map(|e| VersionRef {
                module: e.module.clone(),
                version: e.version.clone(),
            })
            .collect();
        for chunk in chunks(&versions) {
            let evictions = Evictions {
                at_ms: super::now_ms(),
                versions: chunk.to_vec(),
            };
            self.consensus
                .operate(IndexCommand::Evict(evictions))
                .await
                .map_err(|e| e.to_string())?;
            self.evictions.inc_by(chunk.len() as u64);
        }
        tracing::info!(
            versions = versions.len(),
            freed = plan.freed_bytes,
            total_after = plan.total_after,
            "evicted least recently used versions"
        );
        Ok(())
    }
}

/// `versions` in runs whose serialized size stays within [`ENTRY_BUDGET`]; a version too
/// large for an entry on its own is left out (and logged): it stays cached.
fn chunks(versions: &[VersionRef]) -> Vec<&[VersionRef]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, version) in versions.iter().enumerate() {
        let size = serde_json::to_vec(version).map_or(usize::MAX, |b| b.len() + 1);
        if size > ENTRY_BUDGET {
            if start < i {
                out.push(&versions[start..i]);
            }
            tracing::warn!(%version, "version too long to evict through the log");
            start = i + 1;
            used = 0;
            continue;
        }
        if used + size > ENTRY_BUDGET {
            out.push(&versions[start..i]);
            start = i;
            used = 0;
        }
        used += size;
    }
    if start < versions.len() {
        out.push(&versions[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(module: String) -> VersionRef {
        VersionRef {
            module,
            version: "v1.0.0".into(),
        }
    }

    #[test]
    fn entries_stay_under_the_budget_however_long_the_paths() {
        let long = |i: usize| version(format!("example.com/{}/m{i:02}", "a".repeat(300)));
        let versions: Vec<VersionRef> = (0..30).map(long).collect();
        let runs = chunks(&versions);
        assert!(runs.len() > 1);
        assert_eq!(runs.iter().map(|c| c.len()).sum::<usize>(), 30);
        for chunk in runs {
            assert!(serde_json::to_vec(chunk).unwrap().len() <= ENTRY_BUDGET + chunk.len());
        }
        let huge = vec![version("a".repeat(5000)), long(1)];
        assert_eq!(chunks(&huge), vec![&huge[1..]]);
    }
}
