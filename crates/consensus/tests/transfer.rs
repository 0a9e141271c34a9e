//! Planned leadership transfer across three in-process members over real tonic: the named
//! voter takes over, every committed entry survives, and bad requests are refused cleanly.

mod support;

use std::time::Duration;

use goproxy_consensus::transfer::TransferError;
use goproxy_consensus::ApplyResponse;

use support::{entry, leader_of, three_members, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_moves_to_the_named_voter_and_back() {
    let (members, _addrs) = three_members().await;
    let mut written = Vec::new();
    for round in 0..3 {
        let leader = leader_of(&members).unwrap();
        let e = entry("example.com/t", &format!("v1.0.{round}"), 'a');
        assert_eq!(
            members[&leader].consensus.put(e.clone()).await.unwrap(),
            ApplyResponse::Inserted
        );
        written.push(e);
        // Each round names a different follower: the transfer picks the target, not chance.
        let target = *members
            .keys()
            .filter(|id| **id != leader)
            .nth(round % 2)
            .unwrap();
        let started = std::time::Instant::now();
        // On a loaded machine a voter can miss its pause window and win an election of its
        // own while the target campaigns: the transfer then fails cleanly (no two leaders),
        // and is asked again of whoever leads, a bounded number of times.
        let mut attempt = 0;
        loop {
            let from = leader_of(&members).unwrap();
            match members[&from].consensus.transfer_leader(target).await {
                Ok(()) => break,
                Err(TransferError::Timeout { leader: now, .. }) if attempt < 3 => {
                    attempt += 1;
                    println!("round {round}: {from} → {target} lost to an election (leader now {now:?}); again");
                    until("a leader", || leader_of(&members).is_some()).await;
                }
                Err(e) => panic!("round {round}: {from} → {target}: {e}"),
            }
        }
        println!(
            "round {round}: {leader} → {target} in {:?}",
            started.elapsed()
        );
        until("everyone to follow the target", || {
            members
                .values()
                .all(|m| m.consensus.leader().map(|(id, _)| id) == Some(target))
        })
        .await;
        assert_eq!(leader_of(&members), Some(target));
    }
    // Nothing committed before a transfer is lost, and the new leader accepts writes.
    let leader = leader_of(&members).unwrap();
    let last = entry("example.com/t", "v2.0.0", 'b');
    assert_eq!(
        members[&leader].consensus.put(last.clone()).await.unwrap(),
        ApplyResponse::Inserted
    );
    written.push(last);
    until("every entry on every member", || {
        members.values().all(|m| {
            written
                .iter()
                .all(|e| m.consensus.reader().get(&e.key).unwrap().is_some())
        })
    })
    .await;
    for (_, member) in members {
        member.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfer_requests_that_cannot_succeed_are_refused() {
    let (members, addrs) = three_members().await;
    let leader = leader_of(&members).unwrap();
    let follower = *members.keys().find(|id| **id != leader).unwrap();
    match members[&follower].consensus.transfer_leader(leader).await {
        Err(TransferError::NotLeader { leader: Some(node) }) => {
            assert_eq!(node.raft_addr, addrs[&leader])
        }
        other => panic!("a follower must redirect, got {other:?}"),
    }
    match members[&leader].consensus.transfer_leader(42).await {
        Err(TransferError::NotAVoter(42)) => {}
        other => panic!("unknown target must be refused, got {other:?}"),
    }
    // Transferring to itself is a no-op and leadership stays put.
    members[&leader]
        .consensus
        .transfer_leader(leader)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(leader_of(&members), Some(leader));
    for (_, member) in members {
        member.stop().await;
    }
}
