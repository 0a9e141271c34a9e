//! The main module's `exclude` and `replace` directives, applied to every requirement in
//! the graph (a dependency's own excludes and replaces are ignored, as by the go command).

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::{GoMod, Replacement, Target};

/// What a required module version turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Resolved {
    /// Not part of the graph: the main module itself, or an excluded version.
    Skip,
    /// In the graph, but replaced by a local directory: nothing to fetch, and its
    /// requirements cannot be read.
    Local,
    /// Fetch this module version (the requirement itself, or its replacement).
    Fetch(Target),
}

/// Excludes and replaces of the main module.
#[derive(Debug, Clone, Default)]
pub(super) struct Rules {
    /// The main module's path: requirements of it (cycles back to the root) are skipped.
    main: Option<String>,
    excludes: BTreeSet<Target>,
    /// `replace m vX => …`: wins over a path-wide replace, as in the go command.
    exact: BTreeMap<Target, Replacement>,
    /// `replace m => …`: every version of `m`.
    any: BTreeMap<String, Replacement>,
}

impl Rules {
    /// The rules of a main go.mod; a later duplicate `replace` wins.
    pub(super) fn from_go_mod(go_mod: &GoMod) -> Rules {
        let mut rules = Rules {
            main: go_mod.module.clone(),
            excludes: go_mod.excludes.iter().cloned().collect(),
            ..Rules::default()
        };
        for replace in &go_mod.replaces {
            let with = replace.with.clone();
            match &replace.version {
                Some(version) => {
                    let old = Target {
                        module: replace.module.clone(),
                        version: version.clone(),
                    };
                    rules.exact.insert(old, with);
                }
                None => {
                    rules.any.insert(replace.module.clone(), with);
                }
            }
        }
        rules
    }

    /// Applies the rules to one requirement.
    pub(super) fn resolve(&self, required: &Target) -> Resolved {
        if self.main.as_deref() == Some(required.module.as_str())
            || self.excludes.contains(required)
        {
            return Resolved::Skip;
        }
        let replacement = self
            .exact
            .get(required)
            .or_else(|| self.any.get(&required.module));
        match replacement {
            None => Resolved::Fetch(required.clone()),
            Some(Replacement::Module(target)) => Resolved::Fetch(target.clone()),
            Some(Replacement::Dir(_)) => Resolved::Local,
        }
    }
}
