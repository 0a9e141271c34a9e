//! Last access per module version, recorded on the hit path and merged across nodes.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

/// Default bound on tracked versions. An entry costs roughly its module path and version
/// plus ~100 bytes of map overhead, so about 150 MB at the bound.
pub const MAX_TRACKED: usize = 1_000_000;

/// Share of the bound (percent) dropped at once when it is exceeded, so the cost of
/// finding the oldest entries is paid once per that many new versions, not on every one.
const PRUNE_PERCENT: usize = 10;

/// Divisor turning [`PRUNE_PERCENT`] into a fraction.
const PERCENT: usize = 100;

/// Entries applied per lock acquisition by [`AccessTimes::merge`], so merging a peer's
/// whole snapshot never stalls the hit path for long.
const MERGE_BATCH: usize = 4096;

/// One version's last access, as exchanged between nodes and saved to disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// Module path.
    pub module: String,
    /// Version.
    pub version: String,
    /// Last access, in ms since the Unix epoch.
    pub at_ms: u64,
}

/// When each module version was last served, by this node or (after [`Self::merge`]) any
/// peer. Nodes pull each other's [`Self::snapshot`] periodically and keep the maximum
/// per version, so a hit costs a map update here instead of a Raft write.
///
/// Costs: [`Self::touch`] takes one mutex and two hash lookups, and allocates only the
/// first time a version is seen. Past the bound the oldest 10% are dropped
/// in one O(n) pass, amortized over as many new versions.
#[derive(Debug)]
pub struct AccessTimes {
    /// Most versions tracked; past it the oldest are dropped.
    limit: usize,
    table: Mutex<Table>,
}

/// module → version → last access (ms). Nested so a lookup borrows the request's `&str`s
/// instead of building a key.
#[derive(Debug, Default)]
struct Table {
    modules: HashMap<String, HashMap<String, u64>>,
    /// Versions across all modules.
    len: usize,
}

impl AccessTimes {
    /// An empty record bounded by [`MAX_TRACKED`].
    pub fn new() -> Self {
        Self::with_limit(MAX_TRACKED)
    }

    /// An empty record tracking at most `limit` versions (at least one).
    pub fn with_limit(limit: usize) -> Self {
        AccessTimes {
            limit: limit.max(1),
            table: Mutex::default(),
        }
    }

    /// Records an access to `module`@`version` at `now_ms`. A time earlier than the one
    /// recorded (a clock step back) is ignored.
    pub fn touch(&self, module: &str, version: &str, now_ms: u64) {
        let mut table = self.table();
        if let Some(at) = table
            .modules
            .get_mut(module)
            .and_then(|versions| versions.get_mut(version))
        {
            *at = (*at).max(now_ms);
            return;
        }
        table
            .modules
            .entry(module.to_string())
            .or_default()
            .insert(version.to_string(), now_ms);
        table.len += 1;
        table.prune(self.limit);
    }

    /// The last recorded access to `module`@`version`.
    pub fn get(&self, module: &str, version: &str) -> Option<u64> {
        self.table().modules.get(module)?.get(version).copied()
    }

    /// How many versions are tracked.
    pub fn len(&self) -> usize {
        self.table().len
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tracked version, sorted by module then version, to send to peers or save.
    pub fn snapshot(&self) -> Vec<AccessEntry> {
        let mut entries: Vec<AccessEntry> = {
            let table = self.table();
            table
                .modules
                .iter()
                .flat_map(|(module, versions)| {
                    versions.iter().map(|(version, &at_ms)| AccessEntry {
                        module: module.clone(),
                        version: version.clone(),
                        at_ms,
                    })
                })
                .collect()
        };
        entries.sort_unstable_by(|a, b| (&a.module, &a.version).cmp(&(&b.module, &b.version)));
        entries
    }

    /// Merges a peer's (or a saved) snapshot, keeping the later time per version.
    pub fn merge<I: IntoIterator<Item = AccessEntry>>(&self, entries: I) {
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let batch: Vec<AccessEntry> = entries.by_ref().take(MERGE_BATCH).collect();
            let mut table = self.table();
            for entry in batch {
                table.record(entry);
            }
            table.prune(self.limit);
        }
    }

    /// The table, even if a thread panicked holding it: the times stay consistent.
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for AccessTimes {
    fn default() -> Self {
        Self::new()
    }
}

impl Table {
    /// Inserts or raises one entry, moving its strings in when new.
    fn record(&mut self, entry: AccessEntry) {
        match self
            .modules
            .entry(entry.module)
            .or_default()
            .entry(entry.version)
        {
            Entry::Occupied(mut at) => *at.get_mut() = (*at.get()).max(entry.at_ms),
            Entry::Vacant(slot) => {
                slot.insert(entry.at_ms);
                self.len += 1;
            }
        }
    }

    /// Past `limit`, drops the oldest entries down to `limit` less [`PRUNE_PERCENT`]% (less
    /// nothing for a bound under 10, where the share rounds to zero).
    fn prune(&mut self, limit: usize) {
        if self.len <= limit {
            return;
        }
        let keep = limit - limit * PRUNE_PERCENT / PERCENT;
        let excess = self.len - keep;
        let mut times: Vec<u64> = self
            .modules
            .values()
            .flat_map(|v| v.values().copied())
            .collect();
        let (_, &mut cutoff, _) = times.select_nth_unstable(excess - 1);
        // Everything older than the cutoff goes, then as many at the cutoff as needed.
        let mut at_cutoff = excess - times.iter().filter(|&&t| t < cutoff).count();
        for versions in self.modules.values_mut() {
            versions.retain(|_, &mut t| {
                let gone = t < cutoff || (t == cutoff && at_cutoff > 0);
                if t == cutoff && gone {
                    at_cutoff -= 1;
                }
                !gone
            });
        }
        self.modules.retain(|_, versions| !versions.is_empty());
        self.len = keep;
    }
}

#[cfg(test)]
mod tests;
