//! End-to-end walks over the real module tree in /work/shared/testdata/goproxy-corpus.

mod common;

use std::collections::BTreeSet;

use common::{bfs, corpus, file, gin, mvs, t, within, CorpusFetcher};
use goproxy_warm::spec::parse_go_mod;
use goproxy_warm::walk::Mode;
use goproxy_warm::{run, Artifact, Outcome, Progress, Target, Walker};
use tokio_util::sync::CancellationToken;

const CONCURRENCY: usize = 4;

async fn warm(walker: Walker, fetcher: &CorpusFetcher) -> (goproxy_warm::Summary, Vec<Progress>) {
    let mut reports = Vec::new();
    let cancel = CancellationToken::new();
    let summary = within(run(walker, fetcher, CONCURRENCY, &cancel, |p| {
        reports.push(p.clone())
    }))
    .await;
    (summary, reports)
}

fn size(target: &Target, artifact: Artifact) -> u64 {
    std::fs::metadata(file(target, artifact)).unwrap().len()
}

#[tokio::test]
async fn gin_walk_discovers_the_whole_graph_and_zips_the_selection() {
    let expected = bfs(&gin());
    let selected = mvs(&expected);
    // The independent computation itself is sane: big, but not the whole corpus.
    assert!(expected.len() >= 20, "{expected:?}");
    for known in [
        "golang.org/x/text@v0.7.0",
        "gopkg.in/yaml.v3@v3.0.1",
        "golang.org/x/mod@v0.7.0",
    ] {
        assert!(expected.contains(&t(known)), "{known}");
    }
    assert!(!expected.contains(&t("github.com/kr/pretty@v0.3.0")));

    let fetcher = CorpusFetcher::default();
    let walker = Walker::new(vec![gin()], Mode::Deps);
    let (summary, reports) = warm(walker, &fetcher).await;

    assert_eq!(summary.outcome, Outcome::Finished);
    assert_eq!(fetcher.fetched(Artifact::Mod), expected);
    assert_eq!(fetcher.fetched(Artifact::Info), expected);
    assert_eq!(fetcher.fetched(Artifact::Zip), selected);
    for known in ["golang.org/x/text@v0.7.0", "gopkg.in/yaml.v3@v3.0.1"] {
        assert!(
            fetcher.fetched(Artifact::Zip).contains(&t(known)),
            "{known}"
        );
    }
    for absent in ["github.com/ugorji/go@v1.2.8", "example.com/hello@v1.1.0"] {
        assert!(
            !fetcher.fetched(Artifact::Mod).contains(&t(absent)),
            "{absent}"
        );
    }
    assert_eq!(
        fetcher.calls().len(),
        2 * expected.len() + selected.len(),
        "a duplicate fetch"
    );

    let p = &summary.progress;
    assert_eq!(
        (p.done, p.total, p.failed),
        (fetcher.calls().len(), fetcher.calls().len(), 0)
    );
    assert!(p.failures.is_empty());
    let bytes: u64 = fetcher
        .calls()
        .iter()
        .map(|i| size(&i.target, i.artifact))
        .sum();
    assert_eq!(p.bytes, bytes);
    assert_eq!(p.filled, p.done);

    // Progress: done only grows, never passes total, and every completion is reported once.
    assert!(reports
        .windows(2)
        .all(|w| w[0].done <= w[1].done && w[0].total <= w[1].total));
    assert!(reports.iter().all(|r| r.done <= r.total));
    let finished: Vec<_> = reports.iter().filter_map(|r| r.last.clone()).collect();
    assert_eq!(finished.len(), p.done);
    assert!(finished.iter().all(|f| f.ok));
}

#[tokio::test]
async fn a_go_mod_with_two_versions_of_a_module_zips_only_the_higher() {
    let go_mod = parse_go_mod(
        "module example.com/app

go 1.19

require (
	github.com/gin-gonic/gin v1.8.1
	example.com/hello v1.0.0
	example.com/bump v1.0.0 // requires hello v1.1.0
)

exclude golang.org/x/mod v0.7.0
replace gopkg.in/yaml.v2 => ./third_party/yaml
",
    )
    .unwrap();
    let fetcher = CorpusFetcher {
        overlay: [(
            t("example.com/bump@v1.0.0"),
            "module example.com/bump\nrequire example.com/hello v1.1.0\n".to_string(),
        )]
        .into(),
        ..CorpusFetcher::default()
    };
    let (summary, _) = warm(Walker::from_go_mod(&go_mod, Mode::Deps), &fetcher).await;
    assert_eq!(summary.outcome, Outcome::Finished);
    assert_eq!(
        summary.progress.failed, 0,
        "{:?}",
        summary.progress.failures
    );

    let mods = fetcher.fetched(Artifact::Mod);
    let zips = fetcher.fetched(Artifact::Zip);
    assert!(mods.contains(&t("example.com/hello@v1.0.0")));
    assert!(mods.contains(&t("example.com/hello@v1.1.0")));
    assert!(zips.contains(&t("example.com/hello@v1.1.0")));
    assert!(!zips.contains(&t("example.com/hello@v1.0.0")));
    // Replaced by a directory: nothing fetched; check.v1 is still reached through yaml.v3.
    assert!(!fetcher
        .calls()
        .iter()
        .any(|i| i.target.module == "gopkg.in/yaml.v2"));
    assert!(zips.contains(&t("gopkg.in/check.v1@v1.0.0-20201130134442-10cb98267c6c")));
    // Excluded: golang.org/x/text requires it, but it is not part of the build.
    assert!(!fetcher
        .calls()
        .iter()
        .any(|i| i.target.module == "golang.org/x/mod"));

    let mut expected: BTreeSet<Target> = bfs(&gin());
    expected.retain(|t| t.module != "gopkg.in/yaml.v2" && t.module != "golang.org/x/mod");
    expected.extend([t("example.com/hello@v1.0.0"), t("example.com/hello@v1.1.0")]);
    expected.insert(t("example.com/bump@v1.0.0"));
    assert_eq!(mods, expected);
}

#[tokio::test]
async fn no_deps_fetches_only_the_roots() {
    let fetcher = CorpusFetcher::default();
    let roots = vec![gin(), t("github.com/BurntSushi/toml@v1.2.0")];
    let (summary, _) = warm(Walker::new(roots, Mode::NoDeps), &fetcher).await;
    assert_eq!(summary.outcome, Outcome::Finished);
    assert_eq!((summary.progress.done, summary.progress.total), (6, 6));
    let modules: BTreeSet<String> = fetcher
        .calls()
        .into_iter()
        .map(|i| i.target.module)
        .collect();
    assert_eq!(
        modules,
        ["github.com/BurntSushi/toml", "github.com/gin-gonic/gin"]
            .map(String::from)
            .into()
    );
    assert!(corpus().join("github.com/!burnt!sushi/toml").is_dir());
}

#[tokio::test]
async fn missing_artifacts_are_reported_as_failures() {
    let fetcher = CorpusFetcher::default();
    let roots = vec![gin(), t("example.com/absent@v1.0.0")];
    let (summary, _) = warm(Walker::new(roots, Mode::Deps), &fetcher).await;
    assert_eq!(summary.outcome, Outcome::Finished);
    let p = &summary.progress;
    assert_eq!(p.failed, 3, "{:?}", p.failures);
    assert!(p
        .failures
        .iter()
        .all(|f| f.item.target.module == "example.com/absent"));
    assert_eq!(p.done + p.failed, p.total);
}
