use std::collections::BTreeMap;

use super::*;
use crate::spec::{parse_go_mod, parse_go_sum, Artifact::*, MAX_TARGETS};

fn t(text: &str) -> Target {
    Target::parse(text).unwrap()
}

fn item(text: &str, artifact: Artifact) -> Item {
    Item {
        target: t(text),
        artifact,
    }
}

/// `.mod` texts by module version; a version missing here fails to fetch.
fn graph(entries: &[(&str, &[&str])]) -> BTreeMap<Target, String> {
    entries
        .iter()
        .map(|(target, requires)| {
            let target = t(target);
            let mut text = format!("module {}\n\ngo 1.21\n\nrequire (\n", target.module);
            for required in *requires {
                let (module, version) = required.split_once('@').unwrap();
                text.push_str(&format!("\t{module} {version}\n"));
            }
            text.push_str(")\n");
            (target, text)
        })
        .collect()
}

/// Fetches in batches of `width`, reporting each batch in reverse order; returns every
/// work handed out and the totals seen after each report.
fn drive(
    walker: &mut Walker,
    mods: &BTreeMap<Target, String>,
    width: usize,
) -> (Vec<Work>, Vec<usize>) {
    let mut handed = Vec::new();
    let mut totals = vec![walker.total_known()];
    while !walker.is_finished() {
        let batch: Vec<Work> = std::iter::from_fn(|| walker.next_work())
            .take(width)
            .collect();
        assert!(
            !batch.is_empty(),
            "stuck: nothing in flight and not finished"
        );
        for work in batch.iter().rev() {
            let text = mods.get(&work.item.target);
            let _ = match (work.item.artifact, text) {
                (Mod, Some(text)) => walker.complete(&work.item, Some(text.as_bytes())),
                (_, Some(_)) => walker.complete(&work.item, None),
                (_, None) => walker.failed(&work.item),
            };
            totals.push(walker.total_known());
        }
        handed.extend(batch);
    }
    (handed, totals)
}

fn of(handed: &[Work], artifact: Artifact) -> Vec<String> {
    let mut out: Vec<String> = handed
        .iter()
        .filter(|w| w.item.artifact == artifact)
        .map(|w| w.item.target.to_string())
        .collect();
    out.sort();
    out
}

/// a → b, c@1.0; b → c@1.1; c@1.1 → d; c@1.0 → e (reached only through an old version:
/// MVS still selects it, as the go command's unpruned graph does).
fn diamond() -> BTreeMap<Target, String> {
    graph(&[
        ("a.com/a@v1.0.0", &["b.com/b@v1.0.0", "c.com/c@v1.0.0"]),
        ("b.com/b@v1.0.0", &["c.com/c@v1.1.0"]),
        ("c.com/c@v1.0.0", &["e.com/e@v1.0.0"]),
        ("c.com/c@v1.1.0", &["d.com/d@v1.0.0"]),
        ("d.com/d@v1.0.0", &[]),
        ("e.com/e@v1.0.0", &["a.com/a@v1.0.0"]),
    ])
}

#[test]
fn mvs_zips_only_selected_versions_after_the_last_mod() {
    for width in [1, 2, 100] {
        let mut walker = Walker::new(vec![t("a.com/a@v1.0.0")], Mode::Deps);
        let (handed, totals) = drive(&mut walker, &diamond(), width);
        let all = [
            "a.com/a@v1.0.0",
            "b.com/b@v1.0.0",
            "c.com/c@v1.0.0",
            "c.com/c@v1.1.0",
            "d.com/d@v1.0.0",
            "e.com/e@v1.0.0",
        ];
        assert_eq!(of(&handed, Mod), all);
        assert_eq!(of(&handed, Info), all);
        let zips = [
            "a.com/a@v1.0.0",
            "b.com/b@v1.0.0",
            "c.com/c@v1.1.0",
            "d.com/d@v1.0.0",
            "e.com/e@v1.0.0",
        ];
        assert_eq!(of(&handed, Zip), zips);
        let last_mod = handed.iter().rposition(|w| w.item.artifact == Mod).unwrap();
        let first_unpinned_zip = handed
            .iter()
            .position(|w| w.item.artifact == Zip && w.item.target.module != "a.com/a")
            .unwrap();
        assert!(
            first_unpinned_zip > last_mod,
            "zip before the graph was complete"
        );
        assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");
        assert_eq!(*totals.last().unwrap(), 6 + 6 + 5);
        assert_eq!((walker.done(), walker.failed_count()), (17, 0));
        assert_eq!(walker.in_flight(), 0);
        assert!(handed.iter().all(|w| !w.already_done));
    }
}

#[test]
fn roots_named_on_the_command_line_are_zipped_even_when_not_selected() {
    let mods = graph(&[
        ("a.com/a@v1.0.0", &[]),
        ("a.com/a@v1.1.0", &[]),
        ("x.com/x@v1.0.0", &["a.com/a@v1.1.0"]),
    ]);
    let roots = vec![t("a.com/a@v1.0.0"), t("x.com/x@v1.0.0")];
    let (handed, _) = drive(&mut Walker::new(roots, Mode::Deps), &mods, 3);
    assert_eq!(
        of(&handed, Zip),
        ["a.com/a@v1.0.0", "a.com/a@v1.1.0", "x.com/x@v1.0.0"]
    );
    let go_mod = parse_go_mod("module m.com/m\nrequire (\na.com/a v1.0.0\nx.com/x v1.0.0\n)\n");
    let mut walker = Walker::from_go_mod(&go_mod.unwrap(), Mode::Deps);
    let (handed, _) = drive(&mut walker, &mods, 3);
    assert_eq!(of(&handed, Zip), ["a.com/a@v1.1.0", "x.com/x@v1.0.0"]);
    assert_eq!(
        walker.selection(),
        [t("a.com/a@v1.1.0"), t("x.com/x@v1.0.0")]
    );
}

#[test]
fn main_go_mod_excludes_and_replaces_apply_to_the_whole_graph() {
    let mods = graph(&[
        ("fork.com/b@v1.0.1", &["f.com/f@v1.0.0", "c.com/c@v1.1.0"]),
        ("c.com/c@v1.0.0", &["m.com/app@v1.0.0"]),
        ("c.com/c@v1.1.0", &["g.com/g@v1.0.0"]),
        ("f.com/f@v1.0.0", &["d.com/d@v1.5.0"]),
    ]);
    let go_mod = parse_go_mod(
        "module m.com/app
require (
	b.com/b v1.0.0
	c.com/c v1.0.0
	d.com/d v1.0.0
)
exclude c.com/c v1.1.0
replace b.com/b => fork.com/b v1.0.1
replace d.com/d => ../d
",
    )
    .unwrap();
    let mut walker = Walker::from_go_mod(&go_mod, Mode::Deps);
    let (handed, _) = drive(&mut walker, &mods, 2);
    assert_eq!(
        of(&handed, Mod),
        ["c.com/c@v1.0.0", "f.com/f@v1.0.0", "fork.com/b@v1.0.1"]
    );
    assert_eq!(
        of(&handed, Zip),
        ["c.com/c@v1.0.0", "f.com/f@v1.0.0", "fork.com/b@v1.0.1"]
    );
    // The local replacement is in the graph (and selected) but nothing is fetched for it.
    assert!(walker.selection().contains(&t("d.com/d@v1.5.0")));
    assert_eq!(walker.failed_count(), 0);
    assert_eq!(walker.done(), walker.total_known());
}

#[test]
fn failed_or_unusable_mods_leave_their_subtree_undiscovered() {
    let mut mods = graph(&[
        ("a.com/a@v1.0.0", &["b.com/b@v1.0.0", "c.com/c@v1.0.0"]),
        ("c.com/c@v1.0.0", &[]),
    ]);
    mods.insert(t("c.com/c@v1.0.0"), "require x.com/x latest\n".into());
    let mut walker = Walker::new(vec![t("a.com/a@v1.0.0")], Mode::Deps);
    let (handed, _) = drive(&mut walker, &mods, 4);
    assert_eq!(
        of(&handed, Mod),
        ["a.com/a@v1.0.0", "b.com/b@v1.0.0", "c.com/c@v1.0.0"]
    );
    // b's .info and .zip fail to fetch too (the fake knows only .mod texts it has).
    assert_eq!(walker.failed_count(), 2 + 2);
    assert_eq!(walker.done() + walker.failed_count(), walker.total_known());
}

#[test]
fn bad_reports_are_refused() {
    let mut walker = Walker::new(vec![t("a.com/a@v1.0.0")], Mode::Deps);
    let never = item("z.com/z@v1.0.0", Mod);
    assert!(matches!(
        walker.complete(&never, None),
        Err(WalkError::NotInFlight { .. })
    ));
    let work = walker.next_work().unwrap();
    assert_eq!(work.item, item("a.com/a@v1.0.0", Mod));
    let err = walker.complete(&work.item, None).unwrap_err();
    assert!(err.to_string().contains("unusable .mod"), "{err}");
    assert!(walker.failed(&work.item).is_err(), "reported twice");
    let err = walker
        .complete(&work.item, Some(b"module a.com/a\n"))
        .unwrap_err();
    assert!(matches!(err, WalkError::NotInFlight { .. }));
}

#[test]
fn a_hostile_graph_halts_at_the_limit() {
    let wide: Vec<String> = (0..50).map(|i| format!("w.com/m{i}@v1.0.0")).collect();
    let wide: Vec<&str> = wide.iter().map(String::as_str).collect();
    let mods = graph(&[("a.com/a@v1.0.0", &wide)]);
    let mut walker = Walker::new(vec![t("a.com/a@v1.0.0")], Mode::Deps).with_max_targets(10);
    let work = walker.next_work().unwrap();
    let err = walker
        .complete(&work.item, Some(mods[&work.item.target].as_bytes()))
        .unwrap_err();
    assert_eq!(err, WalkError::TooManyTargets { max: 10 });
    assert_eq!(walker.halted(), Some(&err));
    assert!(walker.is_finished());
    assert_eq!(walker.next_work(), None);
}

#[test]
fn a_hostile_graph_halts_at_max_targets() {
    const WIDE: usize = 60_000;
    let requires = |prefix: &str| -> String {
        let mut text = String::from("require (\n");
        for i in 0..WIDE {
            text.push_str(&format!("{prefix}.com/m{i} v1.0.0\n"));
        }
        text + ")\n"
    };
    let mut walker = Walker::new(vec![t("a.com/a@v1.0.0")], Mode::Deps);
    let root = walker.next_work().unwrap();
    walker
        .complete(&root.item, Some(requires("p").as_bytes()))
        .unwrap();
    assert_eq!(walker.total_known(), 3 + 3 * WIDE);
    let first = loop {
        let work = walker.next_work().unwrap();
        if work.item.target.module == "p.com/m0" && work.item.artifact == Mod {
            break work;
        }
    };
    let err = walker
        .complete(&first.item, Some(requires("q").as_bytes()))
        .unwrap_err();
    assert_eq!(err, WalkError::TooManyTargets { max: MAX_TARGETS });
    assert!(walker.total_known() <= 3 * MAX_TARGETS + 1);
    assert_eq!(walker.next_work(), None);
}

#[test]
fn resuming_credits_done_items_once_and_rereads_their_mods() {
    let mods = diamond();
    let root = || vec![t("a.com/a@v1.0.0")];
    let mut first = Walker::new(root(), Mode::Deps);
    let (handed, _) = drive(&mut first, &mods, 3);
    let total = first.total_known();
    // Every other item was done before the restart.
    let done: Vec<Item> = handed.iter().step_by(2).map(|w| w.item.clone()).collect();
    let mut again = Walker::new(root(), Mode::Deps).with_done(done.clone());
    let (handed_again, totals) = drive(&mut again, &mods, 3);
    assert_eq!(again.total_known(), total);
    assert_eq!(again.done(), total, "done items counted twice or lost");
    assert!(totals.iter().all(|&t| t <= total));
    for work in &handed_again {
        let was_done = done.contains(&work.item);
        assert_eq!(work.already_done, was_done, "{}", work.item);
        assert!(
            !was_done || work.item.artifact == Mod,
            "{} fetched again",
            work.item
        );
    }
    let done_mods = done.iter().filter(|i| i.artifact == Mod).count();
    assert_eq!(handed_again.len(), total - done.len() + done_mods);
}

#[test]
fn a_done_mod_that_now_fails_moves_from_done_to_failed() {
    let mods = graph(&[("a.com/a@v1.0.0", &[])]);
    let done = [item("a.com/a@v1.0.0", Mod), item("a.com/a@v1.0.0", Info)];
    let mut walker = Walker::new(vec![t("a.com/a@v1.0.0")], Mode::Deps).with_done(done);
    assert_eq!(walker.done(), 2);
    let work = walker.next_work().unwrap();
    assert!(work.already_done);
    walker.failed(&work.item).unwrap();
    assert_eq!((walker.done(), walker.failed_count()), (1, 1));
    let (handed, _) = drive(&mut walker, &mods, 1);
    assert_eq!(of(&handed, Zip), ["a.com/a@v1.0.0"]);
    assert_eq!(walker.done() + walker.failed_count(), walker.total_known());
}

#[test]
fn no_deps_and_go_sum_fetch_exactly_what_is_named() {
    let mods = graph(&[("a.com/a@v1.0.0", &["b.com/b@v1.0.0"])]);
    let mut walker = Walker::new(vec![t("a.com/a@v1.0.0")], Mode::NoDeps);
    let (handed, _) = drive(&mut walker, &mods, 2);
    assert_eq!(handed.len(), 3);
    assert_eq!(walker.done(), 3);

    let sum = parse_go_sum(
        "a.com/a v1.0.0 h1:x=\na.com/a v1.0.0/go.mod h1:y=\nb.com/b v1.0.0/go.mod h1:z=\n",
    )
    .unwrap();
    let mut walker = Walker::from_go_sum(&sum).with_done([item("a.com/a@v1.0.0", Zip)]);
    assert_eq!((walker.done(), walker.total_known()), (1, 4));
    let (handed, _) = drive(&mut walker, &mods, 2);
    let names: Vec<String> = handed.iter().map(|w| w.item.to_string()).collect();
    assert_eq!(
        names,
        [
            "a.com/a@v1.0.0.info",
            "a.com/a@v1.0.0.mod",
            "b.com/b@v1.0.0.mod"
        ]
    );
    // b's .mod is missing from the fake: failed, and no walk happens from a's .mod.
    assert_eq!((walker.done(), walker.failed_count()), (3, 1));
}

#[test]
fn an_empty_job_is_finished_at_once() {
    let mut walker = Walker::new(Vec::new(), Mode::Deps);
    assert!(walker.is_finished());
    assert_eq!(walker.next_work(), None);
    assert_eq!(walker.total_known(), 0);
}
