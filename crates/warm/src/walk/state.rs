//! The walker's bookkeeping: reaching module versions, MVS, queueing and crediting items.

use std::cmp::Ordering;

use goproxy_protocol::semver;

use super::{Entry, Item, Mode, Resolved, Rules, State, WalkError, Walker};
use crate::spec::{Artifact, Artifacts, Target, MAX_TARGETS};

impl Walker {
    pub(super) fn empty(deps: bool, rules: Rules) -> Walker {
        Walker {
            deps,
            rules,
            max_targets: MAX_TARGETS,
            reached: Default::default(),
            selected: Default::default(),
            pinned: Default::default(),
            pinned_selected: 0,
            items: Default::default(),
            done_before: Default::default(),
            mods: Default::default(),
            rest: Default::default(),
            queued: 0,
            in_flight: 0,
            mods_pending: 0,
            zips_planned: !deps,
            done: 0,
            failed: 0,
            halted: None,
        }
    }

    pub(super) fn start(roots: Vec<Target>, rules: Rules, mode: Mode, pin: bool) -> Walker {
        let deps = mode == Mode::Deps;
        let mut walker = Walker::empty(deps, rules);
        for root in roots {
            let Resolved::Fetch(fetched) = walker.rules.resolve(&root) else {
                if deps {
                    walker.reach(root); // A local replacement is still selected.
                }
                continue;
            };
            if !deps {
                walker.reach_exact(fetched, Artifacts::ALL);
                continue;
            }
            if pin && walker.pinned.insert(root.clone()) {
                walker.add(Item {
                    target: fetched,
                    artifact: Artifact::Zip,
                });
            }
            walker.reach(root);
        }
        walker.plan_zips_if_ready();
        walker
    }

    /// A `.mod` whose text the walk reads.
    pub(super) fn walks(&self, item: &Item) -> bool {
        self.deps && item.artifact == Artifact::Mod
    }

    /// Counts `item` as done from an earlier run, now if it is known, else on discovery.
    pub(super) fn credit(&mut self, item: Item) {
        if !self.done_before.insert(item.clone()) {
            return;
        }
        let walks = self.walks(&item);
        let Some(entry) = self.items.get_mut(&item) else {
            return;
        };
        if entry.state != State::Queued || entry.credited {
            return;
        }
        entry.credited = true;
        self.done += 1;
        if !walks {
            entry.state = State::Done;
            self.queued -= 1;
        }
    }

    /// Moves an in-flight item to `state`; returns whether it was credited.
    pub(super) fn finish(&mut self, item: &Item, state: State) -> Result<bool, WalkError> {
        let entry = self
            .items
            .get_mut(item)
            .filter(|e| e.state == State::InFlight)
            .ok_or_else(|| WalkError::NotInFlight { item: item.clone() })?;
        entry.state = state;
        self.in_flight -= 1;
        Ok(entry.credited)
    }

    /// Turns a just-completed (so counted as done) `.mod` into a failure.
    pub(super) fn mark_failed(&mut self, item: &Item) {
        if let Some(entry) = self.items.get_mut(item) {
            entry.state = State::Failed;
        }
        self.done -= 1;
        self.failed += 1;
    }

    /// Adds a required module version to the graph: its `.mod` and `.info` become items.
    pub(super) fn reach(&mut self, required: Target) {
        if self.halted.is_some() || self.reached.contains(&required) {
            return;
        }
        let resolved = self.rules.resolve(&required);
        if resolved == Resolved::Skip || !self.admit() {
            return;
        }
        self.select(&required);
        self.reached.insert(required);
        if let Resolved::Fetch(target) = resolved {
            for artifact in [Artifact::Mod, Artifact::Info] {
                let target = target.clone();
                self.add(Item { target, artifact });
            }
        }
    }

    /// Adds exactly `artifacts` of `target`, outside any graph.
    pub(super) fn reach_exact(&mut self, target: Target, artifacts: Artifacts) {
        if !self.reached.contains(&target) {
            if !self.admit() {
                return;
            }
            self.reached.insert(target.clone());
        }
        for artifact in artifacts.iter() {
            let target = target.clone();
            self.add(Item { target, artifact });
        }
    }

    /// Room for one more module version? If not, halts the walk.
    fn admit(&mut self) -> bool {
        if self.halted.is_some() {
            return false;
        }
        if self.reached.len() >= self.max_targets {
            self.halted = Some(WalkError::TooManyTargets {
                max: self.max_targets,
            });
            return false;
        }
        true
    }

    /// MVS, incrementally: keeps the highest version of each path.
    fn select(&mut self, required: &Target) {
        let previous = match self.selected.get(&required.module) {
            Some(current) if semver::compare(&required.version, current) != Ordering::Greater => {
                return
            }
            Some(current) => Some(current.clone()),
            None => None,
        };
        if let Some(previous) = previous {
            let previous = Target {
                module: required.module.clone(),
                version: previous,
            };
            if self.pinned.contains(&previous) {
                self.pinned_selected -= 1;
            }
        }
        if self.pinned.contains(required) {
            self.pinned_selected += 1;
        }
        self.selected
            .insert(required.module.clone(), required.version.clone());
    }

    /// Queues an item once; one done in an earlier run is credited instead (a `.mod` the
    /// walk reads is still queued, flagged `already_done`).
    fn add(&mut self, item: Item) {
        if self.items.contains_key(&item) {
            return;
        }
        let credited = self.done_before.contains(&item);
        let walks = self.walks(&item);
        if credited {
            self.done += 1;
            if !walks {
                let entry = Entry {
                    state: State::Done,
                    credited,
                };
                self.items.insert(item, entry);
                return;
            }
        }
        let entry = Entry {
            state: State::Queued,
            credited,
        };
        self.items.insert(item.clone(), entry);
        self.queued += 1;
        if walks {
            self.mods_pending += 1;
            self.mods.push_back(item);
        } else {
            self.rest.push_back(item);
        }
    }

    /// Phase 2: once no `.mod` is pending, the selected versions' zips become items.
    pub(super) fn plan_zips_if_ready(&mut self) {
        if self.zips_planned || self.mods_pending > 0 || self.halted.is_some() {
            return;
        }
        self.zips_planned = true;
        for required in self.selection() {
            if let Resolved::Fetch(target) = self.rules.resolve(&required) {
                self.add(Item {
                    target,
                    artifact: Artifact::Zip,
                });
            }
        }
    }
}
