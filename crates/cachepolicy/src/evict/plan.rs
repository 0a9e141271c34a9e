//! Choosing the versions to evict.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// Once the disk is over `max_bytes`, evict down to this percentage of it, so the next
/// few fills do not each trigger another round of eviction.
pub const LOW_WATERMARK_PERCENT: u64 = 90;

/// Divisor turning [`LOW_WATERMARK_PERCENT`] into a fraction.
const PERCENT: u64 = 100;

/// The eviction settings of a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Bound on the blob disk; `None`: no bound.
    pub max_bytes: Option<u64>,
    /// Evict versions idle for longer than this (ms); `None`: never for idleness.
    pub unused_after_ms: Option<u64>,
}

/// A cached version that could be evicted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Module path.
    pub module: String,
    /// Canonical version.
    pub version: String,
    /// Bytes freed by evicting this version (its zip).
    pub bytes: u64,
    /// Last access seen by any node; `None` when never accessed since tracking began.
    pub last_access_ms: Option<u64>,
    /// When the version was cached. Counts as a use: a version just filled again after
    /// an eviction is not idle because of an older access time.
    pub cached_at_ms: u64,
    /// Pinned by an operator: never evicted.
    pub pinned: bool,
}

impl Candidate {
    /// The last time this version was used: its last access or its caching, whichever is
    /// later.
    pub fn last_used_ms(&self) -> u64 {
        self.last_access_ms
            .map_or(self.cached_at_ms, |at| at.max(self.cached_at_ms))
    }

    /// Least recently used first; ties broken by module, then version, so every node
    /// orders the same inputs the same way.
    fn lru_order(&self, other: &Self) -> Ordering {
        self.last_used_ms()
            .cmp(&other.last_used_ms())
            .then_with(|| self.module.cmp(&other.module))
            .then_with(|| self.version.cmp(&other.version))
    }
}

/// Why a version is evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cause {
    /// Unused for longer than [`Policy::unused_after_ms`].
    Idle,
    /// Least recently used while the disk was over [`Policy::max_bytes`].
    OverBound,
}

/// One version to evict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evicted {
    /// Module path.
    pub module: String,
    /// Version.
    pub version: String,
    /// Bytes freed.
    pub bytes: u64,
    /// Why.
    pub cause: Cause,
}

/// What [`plan`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The versions to evict, in order: idle ones, then least recently used.
    pub evict: Vec<Evicted>,
    /// Sum of the evicted versions' bytes.
    pub freed_bytes: u64,
    /// Bytes held once the plan is carried out.
    pub total_after: u64,
    /// Bytes still over `max_bytes` once every unpinned version is gone: pinned versions
    /// (and whatever is not evictable) alone exceed the bound. 0 when within it.
    pub over_bound_after: u64,
}

/// Chooses the versions to evict from `candidates` (one per cached version) when the node
/// holds `total_bytes`: first every unpinned version idle for longer than
/// `policy.unused_after_ms`, then, only if the total still exceeds `policy.max_bytes`,
/// unpinned versions least recently used first until the total is at or under
/// [`LOW_WATERMARK_PERCENT`] of the bound. Pinned versions are never chosen.
pub fn plan(candidates: &[Candidate], total_bytes: u64, policy: &Policy, now_ms: u64) -> Plan {
    let mut order: Vec<&Candidate> = candidates.iter().filter(|c| !c.pinned).collect();
    order.sort_by(|a, b| a.lru_order(b));
    let idle = |c: &Candidate| {
        policy
            .unused_after_ms
            .is_some_and(|after| now_ms.saturating_sub(c.last_used_ms()) > after)
    };
    let mut result = Plan::default();
    let mut total = total_bytes;
    // In LRU order the idle versions come first; the size pass continues from there.
    let mut rest = order.into_iter().peekable();
    while let Some(c) = rest.next_if(|c| idle(c)) {
        total = take(&mut result, c, Cause::Idle, total);
    }
    if let Some(max) = policy.max_bytes.filter(|&max| total > max) {
        let low = low_watermark(max);
        for c in rest {
            if total <= low {
                break;
            }
            total = take(&mut result, c, Cause::OverBound, total);
        }
        result.over_bound_after = total.saturating_sub(max);
    }
    result.total_after = total;
    result
}

/// Records `c` in `plan`; returns the total once it is gone.
fn take(plan: &mut Plan, c: &Candidate, cause: Cause, total: u64) -> u64 {
    plan.evict.push(Evicted {
        module: c.module.clone(),
        version: c.version.clone(),
        bytes: c.bytes,
        cause,
    });
    plan.freed_bytes = plan.freed_bytes.saturating_add(c.bytes);
    total.saturating_sub(c.bytes)
}

/// [`LOW_WATERMARK_PERCENT`] of `max`, without overflow.
fn low_watermark(max: u64) -> u64 {
    let low = u128::from(max) * u128::from(LOW_WATERMARK_PERCENT) / u128::from(PERCENT);
    u64::try_from(low).unwrap_or(max)
}

#[cfg(test)]
mod tests;
