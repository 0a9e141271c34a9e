//! The node-to-node port under attack (issue: "secure the cluster surface"). Three in-process
//! members over real tonic with mutual TLS; an attacker dials them with certificates of another
//! CA, none, plaintext, or a real member's certificate claiming another identity. Each finding
//! of the hostile probe is one test here.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use goproxy_consensus::wire::{self, admin, pb};
use goproxy_consensus::{IndexCommand, NodeId, TypeConfig};
use goproxy_pki::identity::node_server_name;
use goproxy_pki::{Authority, Identity};
use goproxy_rpc::PeerName;
use openraft::raft::AppendEntriesRequest;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use support::{ca, entry, leader_of, three_members, transport_of, until};

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A channel to `addr` presenting `identity` (None: no client certificate) issued by
/// `issuer`, trusting the real cluster CA to verify the server.
async fn tls_channel(addr: &str, server: u64, client: Option<(&Authority, Identity)>) -> Channel {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca().cert_pem()))
        .domain_name(node_server_name(server));
    if let Some((issuer, identity)) = client {
        let issued = issuer.issue(&identity, YEAR).unwrap();
        tls = tls.identity(tonic::transport::Identity::from_pem(
            issued.cert_pem,
            issued.key_pem,
        ));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy()
}

/// A channel with a genuine certificate of the cluster CA naming `identity`.
fn member_channel(addr: &str, identity: Identity) -> Channel {
    transport_of(ca(), identity)
        .endpoint(addr, &PeerName::AnyMember)
        .unwrap()
        .connect_lazy()
}

/// An AppendEntries claiming to come from leader `claimed` at term 1000, appending one `Put`
/// of a poisoned entry right after `prev`.
fn forged_append(claimed: NodeId, prev: Option<LogId<NodeId>>) -> pb::RaftRequest {
    let term = 1000;
    let index = prev.map_or(1, |p| p.index + 1);
    let log_id = LogId::new(CommittedLeaderId::new(term, claimed), index);
    let poisoned = entry("golang.org/x/net", "v0.7.0", 'e');
    let request = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(term, claimed),
        prev_log_id: prev,
        entries: vec![Entry {
            log_id,
            payload: EntryPayload::Normal(IndexCommand::Put(poisoned)),
        }],
        leader_commit: Some(log_id),
    };
    wire::request(&request).unwrap()
}

fn poisoned_key() -> goproxy_protocol::index::ArtifactKey {
    entry("golang.org/x/net", "v0.7.0", 'e').key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_append_entries_never_reach_the_index() {
    let (members, addrs) = three_members().await;
    let leader = leader_of(&members).unwrap();
    let victim = *members.keys().find(|id| **id != leader).unwrap();
    let other = *members
        .keys()
        .find(|id| **id != leader && **id != victim)
        .unwrap();
    let prev = members[&victim].consensus.metrics().borrow().last_applied;
    let addr = &addrs[&victim];
    let attacker_ca = Authority::generate("attacker", YEAR).unwrap();

    // A certificate from another CA, no certificate, plaintext: the handshake refuses them.
    let refused = [
        tls_channel(addr, victim, Some((&attacker_ca, Identity::Node(leader)))).await,
        tls_channel(addr, victim, None).await,
        Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy(),
    ];
    for (i, channel) in refused.into_iter().enumerate() {
        let mut client = pb::raft_service_client::RaftServiceClient::new(channel);
        let result = client.append_entries(forged_append(leader, prev)).await;
        assert!(result.is_err(), "attempt {i} was answered: {result:?}");
    }

    // A real member's certificate cannot speak as the leader.
    let mut client = pb::raft_service_client::RaftServiceClient::new(member_channel(
        addr,
        Identity::Node(other),
    ));
    let status = client
        .append_entries(forged_append(leader, prev))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    // Nothing was appended: the poisoned key is absent, the leader's term unchanged, and the
    // cluster still commits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for member in members.values() {
        assert_eq!(
            member.consensus.reader().get(&poisoned_key()).unwrap(),
            None
        );
        assert!(member.consensus.metrics().borrow().current_term < 1000);
    }
    let leader = leader_of(&members).unwrap();
    members[&leader]
        .consensus
        .put(entry("example.com/ok", "v1.0.0", 'a'))
        .await
        .unwrap();
    for (_, member) in members {
        member.stop().await;
    }
}

fn admin_client(
    addr: &str,
    identity: Identity,
) -> admin::admin_service_client::AdminServiceClient<Channel> {
    admin::admin_service_client::AdminServiceClient::new(member_channel(addr, identity))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn elections_and_membership_cannot_be_controlled_without_the_right_identity() {
    let (members, addrs) = three_members().await;
    let leader = leader_of(&members).unwrap();
    let follower = *members.keys().find(|id| **id != leader).unwrap();
    let other = *members
        .keys()
        .find(|id| **id != leader && **id != follower)
        .unwrap();
    let denied = |status: tonic::Status| {
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    };
    let huge = admin::PauseElectionsRequest {
        duration_ms: u64::MAX / 2,
    };
    let short = admin::PauseElectionsRequest { duration_ms: 1000 };

    // Another follower (a real member) and an operator may not pause a follower's elections.
    for identity in [Identity::Node(other), Identity::Admin("ops".into())] {
        let mut client = admin_client(&addrs[&follower], identity);
        denied(client.pause_elections(short).await.unwrap_err());
        denied(
            client
                .campaign(admin::CampaignRequest {})
                .await
                .unwrap_err(),
        );
        denied(
            client
                .retire(admin::RetireRequest {
                    removed_at_index: 1,
                })
                .await
                .unwrap_err(),
        );
    }
    // The leader itself may, but only for a bounded time.
    let mut as_leader = admin_client(&addrs[&follower], Identity::Node(leader));
    let status = as_leader.pause_elections(huge).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        as_leader
            .pause_elections(admin::PauseElectionsRequest { duration_ms: 0 })
            .await
            .unwrap()
            .into_inner()
            .ok
    );

    // Membership changes and transfers need an admin certificate: a node's is refused.
    let mut as_node = admin_client(&addrs[&leader], Identity::Node(follower));
    denied(
        as_node
            .add_member(admin::AddMemberRequest {
                id: 9,
                raft_addr: "127.0.0.1:9".into(),
                http_addr: "127.0.0.1:9".into(),
                catch_up_timeout_ms: 0,
            })
            .await
            .unwrap_err(),
    );
    denied(
        as_node
            .remove_member(admin::RemoveMemberRequest { id: other })
            .await
            .unwrap_err(),
    );
    denied(
        as_node
            .transfer_leader(admin::TransferLeaderRequest {
                target_id: follower,
            })
            .await
            .unwrap_err(),
    );
    let voters: BTreeSet<u64> = members[&leader]
        .consensus
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect();
    assert_eq!(voters, BTreeSet::from([1, 2, 3]));
    assert_eq!(leader_of(&members), Some(leader));
    for (_, member) in members {
        member.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joining_unreachable_nodes_leaves_them_learners_and_the_cluster_writable() {
    let (members, addrs) = three_members().await;
    let leader = leader_of(&members).unwrap();
    let mut ops = admin_client(&addrs[&leader], Identity::Admin("ops".into()));
    for id in [9u64, 10, 11] {
        let reply = ops
            .add_member(admin::AddMemberRequest {
                id,
                // Nothing listens on port 9 (discard) of loopback.
                raft_addr: format!("127.0.0.{id}:9"),
                http_addr: format!("127.0.0.{id}:9"),
                catch_up_timeout_ms: 1500,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!reply.ok, "an unreachable node {id} was reported joined");
        assert!(
            reply.message.contains("stays a learner"),
            "{}",
            reply.message
        );
        // Still writable after every failed join: learners do not count toward quorum.
        members[&leader]
            .consensus
            .put(entry("example.com/join", &format!("v1.0.{id}"), 'a'))
            .await
            .unwrap_or_else(|e| panic!("put after joining {id}: {e}"));
    }
    let metrics = members[&leader].consensus.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    assert_eq!(
        membership.voter_ids().collect::<BTreeSet<_>>(),
        BTreeSet::from([1, 2, 3])
    );
    assert_eq!(
        membership.learner_ids().collect::<BTreeSet<_>>(),
        BTreeSet::from([9, 10, 11])
    );
    // And they can be removed again.
    for id in [9u64, 10, 11] {
        let reply = ops
            .remove_member(admin::RemoveMemberRequest { id })
            .await
            .unwrap()
            .into_inner();
        assert!(reply.ok, "leave {id}: {}", reply.message);
    }
    until("the learners gone", || {
        members[&leader]
            .consensus
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .learner_ids()
            .next()
            .is_none()
    })
    .await;
    for (_, member) in members {
        member.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_node_stops_campaigning_and_rejoins_without_an_election() {
    let (mut members, addrs) = three_members().await;
    let leader = leader_of(&members).unwrap();
    let removed = *members.keys().find(|id| **id != leader).unwrap();
    let remaining = *members
        .keys()
        .find(|id| **id != leader && **id != removed)
        .unwrap();
    let mut ops = admin_client(&addrs[&leader], Identity::Admin("ops".into()));
    let term = members[&leader].consensus.metrics().borrow().current_term;

    // The leader cannot be removed, nor a node whose removal leaves no live quorum.
    let reply = ops
        .remove_member(admin::RemoveMemberRequest { id: leader })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !reply.ok && reply.message.contains("transfer"),
        "{}",
        reply.message
    );

    let reply = ops
        .remove_member(admin::RemoveMemberRequest { id: removed })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.ok, "{}", reply.message);
    until("the removed node to retire", || {
        members[&removed].consensus.retired().is_some()
    })
    .await;
    // Well past several election timeouts: it has not campaigned.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        members[&removed].consensus.metrics().borrow().current_term,
        term
    );

    // Added back, it catches up as a learner and becomes a voter: no election, same leader.
    let reply = ops
        .add_member(admin::AddMemberRequest {
            id: removed,
            raft_addr: addrs[&removed].clone(),
            http_addr: format!("http-of-{}", addrs[&removed]),
            catch_up_timeout_ms: 10_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.ok, "rejoin: {}", reply.message);
    until("the rejoined node to campaign again if needed", || {
        members[&removed].consensus.retired().is_none()
    })
    .await;
    assert_eq!(leader_of(&members), Some(leader));
    assert_eq!(
        members[&leader].consensus.metrics().borrow().current_term,
        term
    );

    // With one follower down, removing the other would leave one live voter of two.
    let _dir = members.remove(&remaining).unwrap().stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let reply = ops
        .remove_member(admin::RemoveMemberRequest { id: removed })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !reply.ok && reply.message.contains("quorum"),
        "{}",
        reply.message
    );
    for (_, member) in members {
        member.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_raft_messages_are_refused_before_they_are_buffered() {
    let (members, addrs) = three_members().await;
    let leader = leader_of(&members).unwrap();
    let follower = *members.keys().find(|id| **id != leader).unwrap();
    let mut client = pb::raft_service_client::RaftServiceClient::new(member_channel(
        &addrs[&follower],
        Identity::Node(leader),
    ));
    // Well past the limit (the snapshot chunk of the tests, 2 KiB, plus 2 MiB of framing).
    let request = pb::RaftRequest {
        payload: vec![b' '; 3 << 20],
        data: vec![0u8; 1 << 20],
    };
    let status = client.install_snapshot(request).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            tonic::Code::ResourceExhausted | tonic::Code::OutOfRange
        ),
        "{status:?}"
    );
    // The cluster is unaffected.
    members[&leader]
        .consensus
        .put(entry("example.com/after", "v1.0.0", 'a'))
        .await
        .unwrap();
    for (_, member) in members {
        member.stop().await;
    }
}

/// A heartbeat (no entries) claiming leadership at `term` from `claimed`.
fn heartbeat(claimed: NodeId, term: u64) -> pb::RaftRequest {
    let request = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(term, claimed),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    wire::request(&request).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificates_of_removed_or_unknown_nodes_cannot_lead_or_retire_anyone() {
    let (members, addrs) = three_members().await;
    let leader = leader_of(&members).unwrap();
    let removed = *members.keys().find(|id| **id != leader).unwrap();
    let victim = *members
        .keys()
        .find(|id| **id != leader && **id != removed)
        .unwrap();
    let mut ops = admin_client(&addrs[&leader], Identity::Admin("ops".into()));
    let reply = ops
        .remove_member(admin::RemoveMemberRequest { id: removed })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.ok, "{}", reply.message);
    let term = members[&leader].consensus.metrics().borrow().current_term;
    until("the victim to see the removal", || {
        !members[&victim]
            .consensus
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == removed)
    })
    .await;

    // The removed node's genuine certificate, and one for a node that never was a member,
    // cannot append (poisoned entry or bare heartbeat at a higher term) nor retire a voter.
    let prev = members[&victim].consensus.metrics().borrow().last_applied;
    for outsider in [removed, 9] {
        let mut raft = pb::raft_service_client::RaftServiceClient::new(member_channel(
            &addrs[&victim],
            Identity::Node(outsider),
        ));
        for request in [
            forged_append(outsider, prev),
            heartbeat(outsider, term + 50),
        ] {
            let status = raft.append_entries(request).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
        }
        let mut admin = admin_client(&addrs[&victim], Identity::Node(outsider));
        let status = admin
            .retire(admin::RetireRequest {
                removed_at_index: 1,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    }
    // Even the real leader cannot retire a voter its membership still lists.
    let mut as_leader = admin_client(&addrs[&victim], Identity::Node(leader));
    let status = as_leader
        .retire(admin::RetireRequest {
            removed_at_index: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(members[&victim].consensus.retired(), None);
    assert_eq!(
        members[&victim]
            .consensus
            .reader()
            .get(&poisoned_key())
            .unwrap(),
        None
    );
    assert_eq!(leader_of(&members), Some(leader));
    assert_eq!(
        members[&leader].consensus.metrics().borrow().current_term,
        term
    );
    members[&leader]
        .consensus
        .put(entry("example.com/still", "v1.0.0", 'a'))
        .await
        .unwrap();
    for (_, member) in members {
        member.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_that_missed_a_join_follows_the_new_node_once_a_voter_vouches_for_it() {
    let (mut members, mut addrs) = three_members().await;
    let leader = leader_of(&members).unwrap();
    let stale = *members.keys().find(|id| **id != leader).unwrap();
    let stale_dir = members.remove(&stale).unwrap().stop().await;

    // Node 4 joins while `stale` is down, then leads.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    addrs.insert(4, listener.local_addr().unwrap().to_string());
    members.insert(
        4,
        support::start_member(4, listener, tempfile::tempdir().unwrap()).await,
    );
    let mut ops = admin_client(&addrs[&leader], Identity::Admin("ops".into()));
    let reply = ops
        .add_member(admin::AddMemberRequest {
            id: 4,
            raft_addr: addrs[&4].clone(),
            http_addr: format!("http-of-{}", addrs[&4]),
            catch_up_timeout_ms: 10_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.ok, "join 4: {}", reply.message);
    // The transfer goes ahead once the leader counts the stopped member as down.
    let deadline = tokio::time::Instant::now() + support::SETTLE;
    while let Err(e) = members[&leader].consensus.transfer_leader(4).await {
        assert!(tokio::time::Instant::now() < deadline, "transfer to 4: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until("node 4 to lead", || leader_of(&members) == Some(4)).await;

    // The stale member returns knowing only {1, 2, 3}: it must still take node 4's log.
    let relisten = tokio::net::TcpListener::bind(&addrs[&stale]).await.unwrap();
    members.insert(
        stale,
        support::start_member(stale, relisten, stale_dir).await,
    );
    let after = entry("example.com/after-join", "v1.0.0", 'b');
    let deadline = tokio::time::Instant::now() + support::SETTLE;
    loop {
        let target = leader_of(&members).unwrap_or(4);
        if members[&target].consensus.put(after.clone()).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no write after the join"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until("the stale member to catch up with node 4's log", || {
        members[&stale]
            .consensus
            .reader()
            .get(&after.key)
            .unwrap()
            .is_some()
    })
    .await;
    assert_eq!(members[&stale].consensus.retired(), None);
    for (_, member) in members {
        member.stop().await;
    }
}
