//! Raft behaviour through the public facade: deterministic first-wins apply, restart
//! durability, and a three-node group over real tonic on loopback (port 0).

mod support;

use std::time::Duration;

use goproxy_consensus::{ApplyResponse, ConsensusError};
use tokio::net::TcpListener;

use support::{config, entry, leader_of, start_member, three_members, until};
use support::{FAILOVER_BOUND, SETTLE};

#[tokio::test]
async fn first_committed_content_wins_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let a = entry("example.com/x", "v1.0.0", 'a');
    let b = entry("example.com/x", "v1.0.0", 'b');
    {
        let node = support::open(dir.path(), config(1, "127.0.0.1:1".into()))
            .await
            .unwrap();
        node.initialize_single().await.unwrap();
        until("leadership", || node.is_leader()).await;
        assert_eq!(node.put(a.clone()).await.unwrap(), ApplyResponse::Inserted);
        assert_eq!(
            node.put(a.clone()).await.unwrap(),
            ApplyResponse::AlreadyPresent
        );
        assert_eq!(
            node.put(b.clone()).await.unwrap(),
            ApplyResponse::Conflict {
                existing: a.clone()
            }
        );
        assert_eq!(node.reader().get(&a.key).unwrap(), Some(a.clone()));
        node.shutdown().await.unwrap();
    }
    let node = support::open(dir.path(), config(1, "127.0.0.1:1".into()))
        .await
        .unwrap();
    node.initialize_single().await.unwrap();
    until("leadership after restart", || node.is_leader()).await;
    assert_eq!(node.reader().get(&a.key).unwrap(), Some(a.clone()));
    assert_eq!(
        node.put(b).await.unwrap(),
        ApplyResponse::Conflict { existing: a }
    );
    let c = entry("example.com/x", "v1.1.0", 'c');
    assert_eq!(node.put(c).await.unwrap(), ApplyResponse::Inserted);
    let versions: Vec<String> = node
        .reader()
        .versions("example.com/x")
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, ["v1.0.0", "v1.1.0"]);
    assert!(
        node.reader().versions("example.com").unwrap().is_empty(),
        "prefix must not match a parent path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_replicate_fail_over_and_catch_up_by_snapshot() {
    let (mut members, addrs) = three_members().await;
    let leader = leader_of(&members).unwrap();

    let first = entry("example.com/a", "v1.0.0", 'a');
    assert_eq!(
        members[&leader].consensus.put(first.clone()).await.unwrap(),
        ApplyResponse::Inserted
    );
    until("replication to all", || {
        members
            .values()
            .all(|m| m.consensus.reader().get(&first.key).unwrap().is_some())
    })
    .await;

    let follower = *members.keys().find(|id| **id != leader).unwrap();
    let leader_before = leader;
    match members[&follower]
        .consensus
        .put(entry("example.com/b", "v1.0.0", 'b'))
        .await
    {
        Err(ConsensusError::NotLeader { leader_id, leader }) => {
            assert_eq!(leader_id, Some(leader_before));
            let leader = leader.expect("leader addresses");
            assert_eq!(leader.raft_addr, addrs[&leader_before]);
            assert_eq!(
                leader.http_addr,
                format!("http-of-{}", addrs[&leader_before])
            );
        }
        other => panic!("expected NotLeader, got {other:?}"),
    }

    // The leader dies: the two survivors elect a new one that accepts writes. The clock starts
    // when it begins to stop; the rest of its stop (flushing its state, closing its listener)
    // runs alongside the election instead of being counted as failover time.
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(members.remove(&leader).unwrap().stop());
    until("a new leader", || leader_of(&members).is_some()).await;
    let failover = started.elapsed();
    stopping.await.unwrap();
    println!("new leader elected {failover:?} after the old one stopped");
    assert!(failover < FAILOVER_BOUND, "failover took {failover:?}");
    let new_leader = leader_of(&members).unwrap();
    assert_ne!(new_leader, leader);
    let after = entry("example.com/after-failover", "v1.0.0", 'd');
    let put = tokio::time::timeout(SETTLE, members[&new_leader].consensus.put(after.clone()));
    assert_eq!(put.await.unwrap().unwrap(), ApplyResponse::Inserted);
    until("replication to the surviving follower", || {
        members
            .values()
            .all(|m| m.consensus.reader().get(&after.key).unwrap().is_some())
    })
    .await;

    // A survivor goes down; many writes with snapshot+purge; it returns and catches up.
    let lagging = *members.keys().find(|id| **id != new_leader).unwrap();
    let lagging_dir = members.remove(&lagging).unwrap().stop().await;
    // Two of three are down now: restart the old leader so writes have a majority.
    let old = TcpListener::bind(&addrs[&leader]).await.unwrap();
    members.insert(
        leader,
        start_member(leader, old, tempfile::tempdir().unwrap()).await,
    );
    // A loaded machine can delay heartbeats past an election timeout; a write that meets a
    // leader change is retried on whoever leads then (this part only builds up a log to purge).
    let mut written = Vec::new();
    for i in 0..60 {
        let e = entry("example.com/bulk", &format!("v1.0.{i}"), 'c');
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "write {i}: no leader accepted it"
            );
            let Some(target) = leader_of(&members) else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            match members[&target].consensus.put(e.clone()).await {
                Ok(_) => break,
                Err(ConsensusError::NotLeader { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(err) => panic!("write {i} failed: {err}"),
            }
        }
        written.push(e);
    }
    let relisten = TcpListener::bind(&addrs[&lagging]).await.unwrap();
    members.insert(lagging, start_member(lagging, relisten, lagging_dir).await);
    until("the returning node to catch up", || {
        written.iter().all(|e| {
            members[&lagging]
                .consensus
                .reader()
                .get(&e.key)
                .unwrap()
                .is_some()
        })
    })
    .await;
    // 60+ entries of ~200 bytes of JSON each: the snapshot is several times the 2 KiB chunk
    // size of these tests, so the catch-up exercised multi-chunk InstallSnapshot.
    let snapshot = members[&lagging].consensus.metrics().borrow().snapshot;
    assert!(
        snapshot.is_some(),
        "catch-up after purge should have installed a snapshot"
    );
    for (_, member) in members {
        member.stop().await;
    }
}

/// Writes `n` entries through whoever leads (retrying across leader changes).
async fn write_through_leader(
    members: &std::collections::BTreeMap<u64, support::Member>,
    tag: &str,
    n: usize,
) {
    for i in 0..n {
        let e = entry(&format!("example.com/{tag}"), &format!("v1.0.{i}"), 'e');
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "write {i}: no leader"
            );
            let Some(target) = leader_of(members) else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            match members[&target].consensus.put(e.clone()).await {
                Ok(_) => break,
                Err(ConsensusError::NotLeader { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(err) => panic!("write {i} failed: {err}"),
            }
        }
    }
}

/// A snapshot damaged on the leader's disk is refused by the follower it is sent to, which
/// keeps running (an error in openraft's install would stop its Raft for good), and catches
/// up once the leader has built a sound one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_damaged_snapshot_is_refused_in_transit_and_the_follower_keeps_running() {
    let (mut members, addrs) = three_members().await;
    let leader = leader_of(&members).unwrap();
    let lagging = *members.keys().find(|id| **id != leader).unwrap();
    let lagging_dir = members.remove(&lagging).unwrap().stop().await;
    write_through_leader(&members, "bulk", 60).await;
    let leader = leader_of(&members).unwrap();
    // The last snapshot due is built on both members (none is due before 20 more entries,
    // see the config); both are damaged, so whichever leads while the lagging member returns
    // (a loaded machine may move leadership) sends a damaged one.
    for id in members.keys() {
        until("the members' snapshots to settle", || {
            let m = members[id].consensus.metrics().borrow().clone();
            let index = |id: Option<openraft::LogId<u64>>| id.map_or(0, |id| id.index);
            m.snapshot.is_some() && index(m.snapshot) + 20 > index(m.last_applied)
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut damaged = 0;
    for member in members.values() {
        let snapshots = member.dir().join("snapshots");
        for file in std::fs::read_dir(&snapshots).unwrap().flatten() {
            if file.file_name().to_string_lossy().ends_with(".snap") {
                let mut bytes = std::fs::read(file.path()).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 1;
                std::fs::write(file.path(), bytes).unwrap();
                damaged += 1;
            }
        }
    }
    assert!(damaged >= 2, "{damaged} snapshot files damaged");
    let relisten = TcpListener::bind(&addrs[&lagging]).await.unwrap();
    members.insert(lagging, start_member(lagging, relisten, lagging_dir).await);
    // The damaged file is sent and refused (again and again, as the leader retries): for a
    // while the follower keeps running and installs nothing.
    let watch_until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < watch_until {
        let state = members[&lagging]
            .consensus
            .metrics()
            .borrow()
            .running_state
            .clone();
        assert!(state.is_ok(), "the follower stopped: {state:?}");
        assert_eq!(
            members[&lagging].consensus.snapshot_report().installs,
            0,
            "leader was {leader}, now {:?}",
            leader_of(&members)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Heal: more writes make the leader build a sound snapshot; the follower converges.
    write_through_leader(&members, "more", 30).await;
    until("the follower to install a sound snapshot", || {
        members[&lagging].consensus.snapshot_report().installs > 0
    })
    .await;
    let leader = leader_of(&members).unwrap();
    let want = members[&leader].consensus.reader().entry_count();
    until("the follower to converge", || {
        members[&lagging].consensus.reader().entry_count() == want
    })
    .await;
    let state = members[&lagging]
        .consensus
        .metrics()
        .borrow()
        .running_state
        .clone();
    assert!(state.is_ok(), "{state:?}");
    for (_, member) in members {
        member.stop().await;
    }
}

#[tokio::test]
async fn invalid_timings_are_rejected_by_openraft_validation() {
    let dir = tempfile::tempdir().unwrap();
    let mut slow_heartbeat = config(1, "127.0.0.1:1".into());
    slow_heartbeat.heartbeat_interval_ms = 200;
    let mut empty_range = config(1, "127.0.0.1:1".into());
    empty_range.election_timeout_max_ms = empty_range.election_timeout_min_ms;
    for cfg in [slow_heartbeat, empty_range] {
        match support::open(dir.path(), cfg.clone()).await {
            Err(ConsensusError::Config(_)) => {}
            Err(other) => panic!("{cfg:?}: expected a config error, got {other}"),
            Ok(_) => panic!("{cfg:?}: accepted"),
        }
    }
}
