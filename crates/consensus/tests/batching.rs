//! Group commit: concurrent puts share log entries, and each caller still gets the result
//! of its own put.

mod support;

use std::collections::BTreeMap;

use goproxy_consensus::{ApplyResponse, ConsensusError};

use support::{config, entry, until};

const PUTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_share_log_entries_and_each_caller_gets_its_own_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(1, "127.0.0.1:1".into());
    cfg.snapshot_logs_since_last = 1_000_000;
    let node = support::open(dir.path(), cfg).await.unwrap();
    node.initialize_single().await.unwrap();
    until("leadership", || node.is_leader()).await;
    let index_before = node.metrics().borrow().last_log_index.unwrap_or(0);

    // PUTS distinct versions, plus two callers racing for one path with different content.
    let mut tasks = Vec::new();
    for i in 0..PUTS {
        let node = node.clone();
        let put = entry("example.com/batch", &format!("v1.0.{i}"), 'a');
        tasks.push(tokio::spawn(async move { node.put(put).await }));
    }
    let racers: Vec<_> = ['b', 'c']
        .into_iter()
        .map(|byte| {
            let node = node.clone();
            let put = entry("example.com/race", "v1.0.0", byte);
            tokio::spawn(async move { (byte, node.put(put).await) })
        })
        .collect();
    // One caller's entry is too large for any log entry: only that caller fails.
    let mut huge = entry("example.com/huge", "v1.0.0", 'd');
    huge.h1 = Some("h1:".to_string() + &"x".repeat(8 * 1024));
    let huge = {
        let node = node.clone();
        tokio::spawn(async move { node.put(huge).await })
    };

    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), ApplyResponse::Inserted);
    }
    let mut outcomes = BTreeMap::new();
    for racer in racers {
        let (byte, outcome) = racer.await.unwrap();
        outcomes.insert(byte, outcome.unwrap());
    }
    let winner = if outcomes[&'b'] == ApplyResponse::Inserted {
        'b'
    } else {
        'c'
    };
    let loser = if winner == 'b' { 'c' } else { 'b' };
    assert_eq!(outcomes[&winner], ApplyResponse::Inserted, "{outcomes:?}");
    assert_eq!(
        outcomes[&loser],
        ApplyResponse::Conflict {
            existing: entry("example.com/race", "v1.0.0", winner)
        },
        "{outcomes:?}"
    );
    assert!(
        matches!(
            huge.await.unwrap(),
            Err(ConsensusError::EntryTooLarge { .. })
        ),
        "an oversized put is refused on its own"
    );

    for i in 0..PUTS {
        let key = entry("example.com/batch", &format!("v1.0.{i}"), 'a').key;
        assert!(
            node.reader().get(&key).unwrap().is_some(),
            "v1.0.{i} applied"
        );
    }
    let entries_used = node.metrics().borrow().last_log_index.unwrap_or(0) - index_before;
    println!("{} puts in {entries_used} log entries", PUTS + 2);
    assert!(
        entries_used < (PUTS + 2) as u64,
        "concurrent puts share log entries ({} puts took {entries_used})",
        PUTS + 2
    );
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_put_on_a_follower_is_refused_as_not_leader() {
    let (members, _) = support::three_members().await;
    let follower = members
        .iter()
        .find(|(_, member)| !member.consensus.is_leader())
        .map(|(_, member)| member.consensus.clone())
        .unwrap();
    let outcome = follower.put(entry("example.com/f", "v1.0.0", 'a')).await;
    assert!(
        matches!(outcome, Err(ConsensusError::NotLeader { .. })),
        "{outcome:?}"
    );
    for (_, member) in members {
        member.stop().await;
    }
}
