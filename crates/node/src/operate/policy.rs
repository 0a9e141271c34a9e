//! The front end's [`CachePolicy`] over the replicated state: the block rules this node has
//! applied, compiled once per change (like the tokens: a rule committed through any node
//! refuses here as soon as this node applies it), and the access times eviction reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use goproxy_cachepolicy::{AccessTimes, BlockList, BlockRule};
use goproxy_consensus::Consensus;
use goproxy_http::operate::CachePolicy;

/// Block rules and access times of this node.
pub struct ReplicatedPolicy {
    consensus: Consensus,
    metrics: tokio::sync::watch::Receiver<goproxy_consensus::RaftMetrics>,
    /// The last applied index the compiled rules were checked at.
    checked_at: AtomicU64,
    /// The compiled rules and the block-change index they were compiled at.
    compiled: RwLock<(u64, Arc<BlockList>)>,
    /// When each version was last served here (merged with the peers' by the evictor).
    pub access: Arc<AccessTimes>,
}

impl ReplicatedPolicy {
    /// Reads block rules from `consensus`'s applied state.
    pub fn new(consensus: Consensus, access: Arc<AccessTimes>) -> Self {
        Self {
            metrics: consensus.metrics(),
            checked_at: AtomicU64::new(u64::MAX),
            consensus,
            compiled: RwLock::new((u64::MAX, Arc::new(BlockList::new()))),
            access,
        }
    }

    /// The rules in force, recompiled when the applied state moved and the rules changed.
    pub fn rules(&self) -> Arc<BlockList> {
        let applied = self.metrics.borrow().last_applied.map_or(0, |id| id.index);
        if self.checked_at.load(Ordering::Acquire) != applied {
            self.refresh();
            self.checked_at.store(applied, Ordering::Release);
        }
        self.compiled
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    fn refresh(&self) {
        let reader = self.consensus.reader();
        let at = match reader.blocks_at() {
            Ok(at) => at,
            Err(e) => {
                tracing::error!("reading the block rules: {e}");
                return;
            }
        };
        if self.compiled.read().unwrap_or_else(|p| p.into_inner()).0 == at {
            return;
        }
        let rules = match reader.blocks() {
            Ok(rules) => rules,
            Err(e) => {
                tracing::error!("reading the block rules: {e}");
                return;
            }
        };
        let list: BlockList = rules
            .into_iter()
            .filter_map(|record| match BlockRule::parse(&record.rule, &record.reason) {
                Ok(rule) => Some(rule),
                Err(e) => {
                    tracing::error!(rule = %record.rule, "ignoring a block rule that does not parse: {e}");
                    None
                }
            })
            .collect();
        *self.compiled.write().unwrap_or_else(|p| p.into_inner()) = (at, Arc::new(list));
    }
}

impl CachePolicy for ReplicatedPolicy {
    fn blocked(&self, module: &str, version: Option<&str>) -> Option<(String, String)> {
        let rules = self.rules();
        rules
            .check(module, version)
            .map(|rule| (rule.to_string(), rule.reason.clone()))
    }

    fn touched(&self, module: &str, version: &str) {
        self.access.touch(module, version, super::now_ms());
    }
}
