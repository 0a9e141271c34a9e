//! The block rules compiled for the per-request check.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{BlockRule, BlockTarget};

/// Every block rule, indexed by module path. [`BlockList::check`] runs on every request:
/// one hash of the module path, and when that module has no rule (the common case) no
/// allocation and no semver parsing. Serializes as the list of rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<BlockRule>", into = "Vec<BlockRule>")]
pub struct BlockList {
    /// Keyed by the exact module path: a rule's identity (what `unblock` names).
    by_module: HashMap<String, ModuleRules>,
    /// The exact paths of the rules by ASCII-lower-cased path. Go module paths are
    /// case-sensitive, but a hosting site may not be: `example.com/Blockme` (escaped
    /// `example.com/!blockme`) can fetch the same repository as a blocked
    /// `example.com/blockme`, so a rule blocks every case variant of its path.
    folded: HashMap<String, Vec<String>>,
}

/// The rules of one module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ModuleRules {
    /// The rule without a range: it blocks everything, so it answers first.
    all: Option<BlockRule>,
    /// Rules with a range, sorted by displayed range so the rule reported for a version
    /// in several ranges does not depend on the order the rules were added.
    ranged: Vec<BlockRule>,
}

impl ModuleRules {
    fn check(&self, version: Option<&str>) -> Option<&BlockRule> {
        if let Some(all) = &self.all {
            return Some(all);
        }
        self.ranged.iter().find(|r| r.blocks_version(version))
    }
}

impl BlockList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rule blocking a request for `module` at `version`, if any. `version` is `None`
    /// for a list or `@latest`, which only a rule without a range blocks. A version that
    /// is not valid semver is in no range.
    pub fn check(&self, module: &str, version: Option<&str>) -> Option<&BlockRule> {
        if let Some(rules) = self.by_module.get(module) {
            if let Some(rule) = rules.check(version) {
                return Some(rule);
            }
        }
        // Case variants: no allocation unless the path has upper-case letters.
        let folded = if module.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(module.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(module)
        };
        self.folded
            .get(folded.as_ref())?
            .iter()
            .filter(|exact| exact.as_str() != module)
            .find_map(|exact| self.by_module.get(exact)?.check(version))
    }

    /// Adds `rule`, replacing (and returning) the rule with the same target: blocking a
    /// target again updates its reason.
    pub fn insert(&mut self, rule: BlockRule) -> Option<BlockRule> {
        let exact = self
            .folded
            .entry(rule.module.to_ascii_lowercase())
            .or_default();
        if !exact.contains(&rule.module) {
            exact.push(rule.module.clone());
        }
        let rules = self.by_module.entry(rule.module.clone()).or_default();
        if rule.range.is_none() {
            return rules.all.replace(rule);
        }
        if let Some(same) = rules.ranged.iter_mut().find(|r| r.range == rule.range) {
            return Some(std::mem::replace(same, rule));
        }
        rules.ranged.push(rule);
        rules.ranged.sort_by_cached_key(|r| r.to_string());
        None
    }

    /// Removes and returns the rule whose identity is `target` (what `unblock` names).
    pub fn remove(&mut self, target: &BlockTarget) -> Option<BlockRule> {
        let rules = self.by_module.get_mut(&target.module)?;
        let removed = match &target.range {
            None => rules.all.take(),
            Some(range) => rules
                .ranged
                .iter()
                .position(|r| r.range.as_ref() == Some(range))
                .map(|i| rules.ranged.remove(i)),
        };
        if rules.all.is_none() && rules.ranged.is_empty() {
            self.by_module.remove(&target.module);
            let folded = target.module.to_ascii_lowercase();
            if let Some(exact) = self.folded.get_mut(&folded) {
                exact.retain(|m| m != &target.module);
                if exact.is_empty() {
                    self.folded.remove(&folded);
                }
            }
        }
        removed
    }

    /// Every rule, sorted by module then displayed range (for listing and snapshots).
    pub fn rules(&self) -> Vec<&BlockRule> {
        let mut rules: Vec<&BlockRule> = self
            .by_module
            .values()
            .flat_map(|m| m.all.iter().chain(&m.ranged))
            .collect();
        rules.sort_by_cached_key(|r| (r.module.as_str(), r.range.as_ref().map(|r| r.to_string())));
        rules
    }

    /// How many rules.
    pub fn len(&self) -> usize {
        self.by_module
            .values()
            .map(|m| usize::from(m.all.is_some()) + m.ranged.len())
            .sum()
    }

    /// True when nothing is blocked.
    pub fn is_empty(&self) -> bool {
        self.by_module.is_empty()
    }
}

/// Later rules replace earlier ones with the same target.
impl FromIterator<BlockRule> for BlockList {
    fn from_iter<I: IntoIterator<Item = BlockRule>>(rules: I) -> Self {
        let mut list = BlockList::new();
        for rule in rules {
            list.insert(rule);
        }
        list
    }
}

impl From<Vec<BlockRule>> for BlockList {
    fn from(rules: Vec<BlockRule>) -> Self {
        rules.into_iter().collect()
    }
}

impl From<BlockList> for Vec<BlockRule> {
    fn from(list: BlockList) -> Self {
        list.rules().into_iter().cloned().collect()
    }
}
