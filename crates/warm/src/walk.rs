//! The requirement-graph walk as a pure state machine: it says what to fetch next and
//! learns from what was fetched; the caller does all I/O.
//!
//! Phase 1 hands out `.mod` (and `.info`) fetches; each `.mod` reported with
//! [`Walker::complete`] adds its requirements (through the main module's excludes and
//! replaces), deduplicated. Once no `.mod` is queued or in flight the graph is complete,
//! and phase 2 hands out the `.zip` of each module's selected version: Minimal Version
//! Selection, the highest version of each module path reached, which is the set
//! `go mod download` fetches. See `DESIGN.md` for the resume contract.

mod rules;
mod state;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::{Artifact, GoMod, SumLine, Target};
use rules::{Resolved, Rules};

/// One artifact of one module version: the unit of work and of progress.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Item {
    /// The module version fetched (after replacement).
    pub target: Target,
    /// Which of its files.
    pub artifact: Artifact,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.target, self.artifact)
    }
}

/// An item to fetch now, from [`Walker::next_work`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    /// What to fetch.
    pub item: Item,
    /// Already done in an earlier run (see [`Walker::with_done`]): fetched again only
    /// because the walk needs the `.mod`'s text. Its completion is not progress.
    pub already_done: bool,
}

/// Whether to follow requirements from the roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Walk the requirement graph; zips for the MVS selection.
    Deps,
    /// Only the roots: `.info`, `.mod` and `.zip` of each (`--no-deps`).
    NoDeps,
}

/// Why a report was refused or the walk stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// A fetched `.mod` could not be read; the item counts as failed and its requirements
    /// stay undiscovered.
    #[error("{target}: unusable .mod: {reason}")]
    BadMod {
        /// The module version whose `.mod` it is.
        target: Target,
        /// What is wrong with it.
        reason: String,
    },
    /// The graph reached more module versions than the limit; the walk hands out no more
    /// work.
    #[error("the requirement graph reaches more than {max} module versions; the walk stopped")]
    TooManyTargets {
        /// The limit.
        max: usize,
    },
    /// The item was not handed out by [`Walker::next_work`], or was already reported.
    #[error("{item} is not in flight")]
    NotInFlight {
        /// The item reported.
        item: Item,
    },
}

/// Where one item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    InFlight,
    Done,
    Failed,
}

/// One needed item.
#[derive(Debug, Clone, Copy)]
struct Entry {
    state: State,
    /// Done in an earlier run: counted in `done` from the moment it was discovered.
    credited: bool,
}

/// The walk of one warm job. See the [module documentation](self).
#[derive(Debug)]
pub struct Walker {
    /// Follow requirements (`Mode::Deps`), or fetch exactly the items named.
    deps: bool,
    rules: Rules,
    max_targets: usize,
    /// Module versions reached, as required (before replacement); bounded by `max_targets`.
    reached: BTreeSet<Target>,
    /// MVS so far: the highest version reached of each module path.
    selected: BTreeMap<String, String>,
    /// Roots named as `MODULE@VERSION`: their zips are wanted even if not selected.
    pinned: BTreeSet<Target>,
    /// How many paths currently select a pinned root (whose zip is already an item).
    pinned_selected: usize,
    items: BTreeMap<Item, Entry>,
    /// Items the caller says an earlier run completed.
    done_before: BTreeSet<Item>,
    /// `.mod` fetches of the walk, handed out first: they are on the critical path.
    mods: VecDeque<Item>,
    /// Everything else.
    rest: VecDeque<Item>,
    queued: usize,
    in_flight: usize,
    /// `.mod`s queued or in flight whose text the walk still needs.
    mods_pending: usize,
    /// Phase 2 has begun: the zips of the selection are items.
    zips_planned: bool,
    done: usize,
    failed: usize,
    halted: Option<WalkError>,
}

impl Walker {
    /// A walk from `MODULE@VERSION` roots. In [`Mode::Deps`] each root's zip is fetched
    /// even if a higher version of it is selected: the operator asked for it.
    pub fn new(roots: Vec<Target>, mode: Mode) -> Walker {
        Walker::start(roots, Rules::default(), mode, true)
    }

    /// A walk from a main module's go.mod: its requirements, excludes and replaces. Only
    /// selected versions are zipped (a consistent go.mod requires the selected versions).
    pub fn from_go_mod(go_mod: &GoMod, mode: Mode) -> Walker {
        let rules = Rules::from_go_mod(go_mod);
        Walker::start(go_mod.requires.clone(), rules, mode, false)
    }

    /// Exactly the artifacts a go.sum lists, no walk.
    pub fn from_go_sum(lines: &[SumLine]) -> Walker {
        let mut walker = Walker::empty(false, Rules::default());
        for line in lines {
            walker.reach_exact(line.target.clone(), line.artifacts());
        }
        walker
    }

    /// Resume: `done` lists items an earlier run of the same job completed. Each is
    /// counted as done once, when (and if) this walk discovers it; it is not handed out
    /// again, except a `.mod` the walk must read, which comes with `already_done` set.
    /// Call before the first [`next_work`](Self::next_work).
    pub fn with_done(mut self, done: impl IntoIterator<Item = Item>) -> Walker {
        for item in done {
            self.credit(item);
        }
        self
    }

    /// Lowers (or raises) the cap on module versions reached,
    /// [`MAX_TARGETS`](crate::spec::MAX_TARGETS) by default;
    /// it applies to versions reached from now on.
    pub fn with_max_targets(mut self, max: usize) -> Walker {
        self.max_targets = max;
        self
    }

    /// The next item to fetch, or `None` when nothing can start now: all handed out
    /// (wait for reports: a `.mod` may add work, and the zips come after the last one), or
    /// finished, or halted.
    pub fn next_work(&mut self) -> Option<Work> {
        if self.halted.is_some() {
            return None;
        }
        self.plan_zips_if_ready();
        while let Some(item) = self.mods.pop_front().or_else(|| self.rest.pop_front()) {
            let Some(entry) = self.items.get_mut(&item) else {
                continue;
            };
            if entry.state != State::Queued {
                continue; // Credited after it was queued.
            }
            entry.state = State::InFlight;
            self.queued -= 1;
            self.in_flight += 1;
            let already_done = entry.credited;
            return Some(Work { item, already_done });
        }
        None
    }

    /// Reports a successful fetch. `body` is the `.mod`'s text, required for a `.mod` in
    /// [`Mode::Deps`] and ignored otherwise. `Err(BadMod)`: the item counts as failed;
    /// `Err(TooManyTargets)`: the walk is halted; either way the report is recorded.
    pub fn complete(&mut self, item: &Item, body: Option<&[u8]>) -> Result<(), WalkError> {
        let credited = self.finish(item, State::Done)?;
        if !credited {
            self.done += 1;
        }
        if !self.walks(item) {
            return Ok(());
        }
        self.mods_pending -= 1;
        let requires = match body
            .ok_or_else(|| "no text".to_string())
            .and_then(requirements)
        {
            Ok(requires) => requires,
            Err(reason) => {
                self.mark_failed(item);
                self.plan_zips_if_ready();
                return Err(WalkError::BadMod {
                    target: item.target.clone(),
                    reason,
                });
            }
        };
        for required in requires {
            self.reach(required);
        }
        self.plan_zips_if_ready();
        self.halted.clone().map_or(Ok(()), Err)
    }

    /// Reports a failed fetch: the item counts as failed (a `.mod`'s requirements stay
    /// undiscovered).
    pub fn failed(&mut self, item: &Item) -> Result<(), WalkError> {
        let credited = self.finish(item, State::Failed)?;
        if credited {
            self.done -= 1;
        }
        self.failed += 1;
        if self.walks(item) {
            self.mods_pending -= 1;
            self.plan_zips_if_ready();
        }
        Ok(())
    }

    /// Items known to be needed. Before phase 2 this includes one zip per module path
    /// reached (MVS selects one version of each); it only grows as the graph is discovered,
    /// and is exact once phase 2 begins (when a path replaced by a directory, or two paths
    /// replaced by the same module version, stop counting a zip each).
    pub fn total_known(&self) -> usize {
        let zips_to_come = if self.deps && !self.zips_planned {
            self.selected.len().saturating_sub(self.pinned_selected)
        } else {
            0
        };
        self.items.len() + zips_to_come
    }

    /// Items done, including those credited from an earlier run.
    pub fn done(&self) -> usize {
        self.done
    }

    /// Items whose fetch failed (or whose `.mod` was unusable).
    pub fn failed_count(&self) -> usize {
        self.failed
    }

    /// Items handed out and not yet reported.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Why the walk stopped early, if it did.
    pub fn halted(&self) -> Option<&WalkError> {
        self.halted.as_ref()
    }

    /// True when nothing is queued or in flight and the zips are planned, or halted.
    pub fn is_finished(&self) -> bool {
        self.halted.is_some() || (self.zips_planned && self.queued == 0 && self.in_flight == 0)
    }

    /// The MVS selection so far, as required (before replacement): final once the last
    /// `.mod` is reported.
    pub fn selection(&self) -> Vec<Target> {
        self.selected
            .iter()
            .map(|(module, version)| Target {
                module: module.clone(),
                version: version.clone(),
            })
            .collect()
    }
}

/// The requirements of a dependency's `.mod`.
fn requirements(body: &[u8]) -> Result<Vec<Target>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
    crate::spec::parse_go_mod(text)
        .map(|go_mod| go_mod.requires)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
