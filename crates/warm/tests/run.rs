//! The runner: bounded concurrency, cancellation, resuming.

mod common;

use std::time::Duration;

use common::{gin, within, CorpusFetcher};
use goproxy_warm::walk::Mode;
use goproxy_warm::{run, Artifact, Fetch, Fetched, Item, Outcome, Walker};
use tokio_util::sync::CancellationToken;

const DELAY: Duration = Duration::from_millis(3);

fn slow() -> CorpusFetcher {
    CorpusFetcher {
        delay: Some(DELAY),
        ..CorpusFetcher::default()
    }
}

async fn full_run() -> (usize, Vec<Item>) {
    let fetcher = CorpusFetcher::default();
    let summary = within(run(
        Walker::new(vec![gin()], Mode::Deps),
        &fetcher,
        8,
        &CancellationToken::new(),
        |_| {},
    ))
    .await;
    assert_eq!(summary.outcome, Outcome::Finished);
    (summary.progress.total, fetcher.calls())
}

#[tokio::test]
async fn concurrency_is_bounded_and_used() {
    for limit in [1, 3, 8] {
        let fetcher = slow();
        let walker = Walker::new(vec![gin()], Mode::Deps);
        let summary = within(run(
            walker,
            &fetcher,
            limit,
            &CancellationToken::new(),
            |_| {},
        ))
        .await;
        assert_eq!(summary.outcome, Outcome::Finished);
        let max = fetcher
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(max, limit, "max in flight with concurrency {limit}");
    }
}

#[tokio::test]
async fn cancelling_stops_new_fetches_at_once() {
    let fetcher = slow();
    let cancel = CancellationToken::new();
    let mut calls_at_cancel = None;
    let summary = within(run(
        Walker::new(vec![gin()], Mode::Deps),
        &fetcher,
        2,
        &cancel,
        |p| {
            if p.done >= 5 && calls_at_cancel.is_none() {
                cancel.cancel();
                calls_at_cancel = Some(fetcher.calls().len());
            }
        },
    ))
    .await;
    assert_eq!(summary.outcome, Outcome::Cancelled);
    assert_eq!(
        Some(fetcher.calls().len()),
        calls_at_cancel,
        "fetch started after cancel"
    );
    assert!(summary.progress.done < summary.progress.total);
}

/// Never answers: only cancellation can end a run over it.
struct Stuck;

#[async_trait::async_trait]
impl Fetch for Stuck {
    async fn fetch(&self, _: &str, _: &str, _: Artifact) -> Result<Fetched, String> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn cancelling_interrupts_fetches_in_flight() {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let walker = Walker::new(vec![gin()], Mode::Deps);
    let summary = tokio::time::timeout(
        Duration::from_secs(5),
        run(walker, &Stuck, 4, &cancel, |_| {}),
    )
    .await
    .expect("run ignored the cancel");
    assert_eq!(summary.outcome, Outcome::Cancelled);
    assert_eq!(summary.progress.done, 0);
}

#[tokio::test]
async fn resuming_after_a_cancel_finishes_without_counting_twice() {
    let (total, all_calls) = full_run().await;

    // First leader: persists each newly finished item, then loses leadership midway.
    let fetcher = slow();
    let cancel = CancellationToken::new();
    let mut persisted: Vec<Item> = Vec::new();
    let summary = within(run(
        Walker::new(vec![gin()], Mode::Deps),
        &fetcher,
        3,
        &cancel,
        |p| {
            if let Some(f) = p.last.as_ref().filter(|f| f.ok) {
                persisted.push(f.item.clone());
            }
            if p.done >= total / 2 {
                cancel.cancel();
            }
        },
    ))
    .await;
    assert_eq!(summary.outcome, Outcome::Cancelled);
    assert!(persisted.len() >= total / 2 && persisted.len() < total);

    // Next leader: the same job, resumed.
    let fetcher = CorpusFetcher::default();
    let walker = Walker::new(vec![gin()], Mode::Deps).with_done(persisted.clone());
    let mut reports = Vec::new();
    let summary = within(run(walker, &fetcher, 3, &CancellationToken::new(), |p| {
        reports.push(p.clone())
    }))
    .await;
    assert_eq!(summary.outcome, Outcome::Finished);
    let p = &summary.progress;
    assert_eq!((p.done, p.total, p.failed), (total, total, 0));
    assert!(reports
        .iter()
        .all(|r| r.done <= r.total && r.total <= total));

    // Newly finished items are exactly the ones not persisted: none counted twice.
    let news: Vec<Item> = reports
        .iter()
        .filter_map(|r| r.last.clone())
        .map(|f| f.item)
        .collect();
    assert_eq!(news.len() + persisted.len(), total);
    assert!(news.iter().all(|i| !persisted.contains(i)));
    // Only .mod files done before are fetched again (the walk must read them).
    for call in fetcher.calls() {
        assert!(
            !persisted.contains(&call) || call.artifact == Artifact::Mod,
            "{call} refetched"
        );
    }
    let mut union: Vec<Item> = news.into_iter().chain(persisted).collect();
    union.sort();
    let mut all = all_calls;
    all.sort();
    assert_eq!(union, all);
}

#[tokio::test]
async fn resuming_with_half_done_counts_only_the_other_half() {
    let (total, all_calls) = full_run().await;
    let half: Vec<Item> = all_calls.iter().step_by(2).cloned().collect();
    let fetcher = CorpusFetcher::default();
    let walker = Walker::new(vec![gin()], Mode::Deps).with_done(half.clone());
    let mut first = None;
    let summary = within(run(walker, &fetcher, 4, &CancellationToken::new(), |p| {
        first.get_or_insert(p.done);
    }))
    .await;
    assert_eq!(summary.outcome, Outcome::Finished);
    assert_eq!(
        (summary.progress.done, summary.progress.total),
        (total, total)
    );
    // Only gin's own items are credited before the walk discovers the rest.
    assert!(first.unwrap() <= 3);
    let refetched_mods = half.iter().filter(|i| i.artifact == Artifact::Mod).count();
    assert_eq!(fetcher.calls().len(), total - half.len() + refetched_mods);
    assert_eq!(summary.progress.filled, total - half.len());
}

#[tokio::test]
async fn the_summary_round_trips_through_json() {
    let fetcher = CorpusFetcher::default();
    let walker = Walker::new(vec![common::t("example.com/absent@v1.0.0")], Mode::Deps);
    let summary = within(run(walker, &fetcher, 2, &CancellationToken::new(), |_| {})).await;
    assert_eq!(summary.progress.failed, 3);
    let json = serde_json::to_string(&summary).unwrap();
    assert!(json.contains(r#""artifact":"mod""#), "{json}");
    let back: goproxy_warm::Summary = serde_json::from_str(&json).unwrap();
    assert_eq!(back, summary);
}
