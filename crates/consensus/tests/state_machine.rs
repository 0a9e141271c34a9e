//! The state machine and reader without Raft: deterministic first-wins apply, snapshot
//! build → install on a second store (and after reopening it), exact module prefix scans.

use std::collections::BTreeMap;

use goproxy_consensus::state_machine::StateMachine;
use goproxy_consensus::{ApplyResponse, IndexCommand, PeerNode, TypeConfig};
use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef, IndexEntry};
use openraft::storage::RaftStateMachine;
use openraft::testing::log_id;
use openraft::{Entry, EntryPayload, Membership, RaftSnapshotBuilder};

fn entry(module: &str, version: &str, kind: ArtifactKind, sha_byte: char) -> IndexEntry {
    IndexEntry {
        key: ArtifactKey {
            module: module.into(),
            version: version.into(),
            kind,
        },
        blob: BlobRef {
            sha256: sha_byte.to_string().repeat(64),
            size: 7,
        },
        h1: None,
        version_time: (kind == ArtifactKind::Info).then(|| "2024-01-02T03:04:05Z".into()),
        filled_at_ms: 1,
    }
}

fn put(index: u64, e: &IndexEntry) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(IndexCommand::Put(e.clone())),
    }
}

fn membership(index: u64) -> Entry<TypeConfig> {
    let nodes = BTreeMap::from([(1u64, PeerNode::default())]);
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Membership(Membership::from(nodes)),
    }
}

fn open(dir: &std::path::Path) -> StateMachine {
    let db = sled::open(dir.join("db")).unwrap();
    StateMachine::open(&db, dir.join("snapshots")).unwrap()
}

/// A log whose apply results exercise every case, including a conflict inside one batch.
fn log() -> (Vec<Entry<TypeConfig>>, Vec<ApplyResponse>) {
    let a = entry("example.com/m", "v1.0.0", ArtifactKind::Zip, 'a');
    let b = entry("example.com/m", "v1.0.0", ArtifactKind::Zip, 'b');
    let mut a_again = a.clone();
    a_again.filled_at_ms = 99; // informational fields do not make different content
    let c = entry("example.com/m", "v1.1.0", ArtifactKind::Mod, 'c');
    let entries = vec![
        membership(1),
        put(2, &a),
        put(3, &b),
        put(4, &a_again),
        put(5, &c),
        Entry {
            log_id: log_id(1, 1, 6),
            payload: EntryPayload::Blank,
        },
    ];
    let expected = vec![
        ApplyResponse::Empty,
        ApplyResponse::Inserted,
        ApplyResponse::Conflict { existing: a },
        ApplyResponse::AlreadyPresent,
        ApplyResponse::Inserted,
        ApplyResponse::Empty,
    ];
    (entries, expected)
}

#[tokio::test]
async fn apply_is_first_wins_and_the_same_batched_or_not() {
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut batched, mut single) = (open(dir1.path()), open(dir2.path()));
    let (entries, expected) = log();

    assert_eq!(batched.apply(entries.clone()).await.unwrap(), expected);
    let mut one_by_one = Vec::new();
    for e in entries.clone() {
        one_by_one.extend(single.apply([e]).await.unwrap());
    }
    assert_eq!(one_by_one, expected);

    let contents = batched.reader().all_entries().unwrap();
    assert_eq!(contents, single.reader().all_entries().unwrap());
    assert_eq!(contents.len(), 2);
    assert_eq!(
        contents[0].blob.sha256,
        "a".repeat(64),
        "first committed wins"
    );
    let (applied, members) = batched.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 1, 6)));
    assert_eq!(members.log_id(), &Some(log_id(1, 1, 1)));

    // Re-applying the log (crash before the applied state was durable) changes nothing.
    batched.apply(entries).await.unwrap();
    assert_eq!(batched.reader().all_entries().unwrap(), contents);
}

/// A batch of puts in one log entry (a fill with what proved it) applies each in order, first
/// wins, exactly as the same puts in separate entries; the last applied state and the
/// newest version of a module come from the same scan.
#[tokio::test]
async fn a_batch_of_puts_applies_like_the_puts_one_by_one() {
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut batched, mut single) = (open(dir1.path()), open(dir2.path()));
    let tree = entry(
        "sumdb/sum.example/tree",
        "tree/00000000000000000007",
        ArtifactKind::SumdbTree,
        't',
    );
    let lookup = entry(
        "sumdb/sum.example",
        "lookup/example.com/m@v1.0.0",
        ArtifactKind::SumdbFile,
        'l',
    );
    let artifact = entry("example.com/m", "v1.0.0", ArtifactKind::Mod, 'm');
    let other_artifact = entry("example.com/m", "v1.0.0", ArtifactKind::Mod, 'x');
    let newer = entry(
        "sumdb/sum.example/tree",
        "tree/00000000000000000012",
        ArtifactKind::SumdbTree,
        'u',
    );
    let batch = |index: u64, puts: Vec<IndexEntry>| Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(IndexCommand::PutAll(puts)),
    };
    let responses = batched
        .apply([
            batch(1, vec![tree.clone(), lookup.clone(), artifact.clone()]),
            batch(
                2,
                vec![newer.clone(), lookup.clone(), other_artifact.clone()],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(
        responses,
        vec![
            ApplyResponse::All(vec![ApplyResponse::Inserted; 3]),
            ApplyResponse::All(vec![
                ApplyResponse::Inserted,
                ApplyResponse::AlreadyPresent,
                ApplyResponse::Conflict {
                    existing: artifact.clone()
                },
            ]),
        ]
    );
    let mut index = 0;
    for e in [&tree, &lookup, &artifact, &newer, &lookup, &other_artifact] {
        index += 1;
        single.apply([put(index, e)]).await.unwrap();
    }
    assert_eq!(
        batched.reader().all_entries().unwrap(),
        single.reader().all_entries().unwrap()
    );
    assert_eq!(
        batched
            .reader()
            .last_version("sumdb/sum.example/tree")
            .unwrap(),
        Some("tree/00000000000000000012".to_string())
    );
    assert_eq!(
        batched.reader().last_version("sumdb/nothing").unwrap(),
        None
    );
}

#[tokio::test]
async fn snapshot_installs_on_another_store_and_survives_reopen() {
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut source = open(dir1.path());
    let (entries, _) = log();
    source.apply(entries).await.unwrap();
    let mut snapshot = source
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 1, 6)));

    {
        let mut target = open(dir2.path());
        // Stale state the snapshot must replace, not merge with.
        let stale = entry("example.com/stale", "v0.0.1", ArtifactKind::Zip, 'f');
        target.apply([put(1, &stale)]).await.unwrap();
        let mut buffer = target.begin_receiving_snapshot().await.unwrap();
        tokio::io::copy(&mut *snapshot.snapshot, &mut *buffer)
            .await
            .unwrap();
        target
            .install_snapshot(&snapshot.meta, buffer)
            .await
            .unwrap();
        assert_eq!(
            target.reader().all_entries().unwrap(),
            source.reader().all_entries().unwrap()
        );
        assert!(target
            .reader()
            .versions("example.com/stale")
            .unwrap()
            .is_empty());
    }

    // After a restart the installed state and the current snapshot are still there.
    let mut target = open(dir2.path());
    let (applied, _) = target.applied_state().await.unwrap();
    assert_eq!(applied, snapshot.meta.last_log_id);
    let current = target.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snapshot.meta);
    assert_eq!(
        std::fs::read(current.snapshot.path()).unwrap(),
        std::fs::read(snapshot.snapshot.path()).unwrap()
    );
    assert_eq!(target.reader().entry_count(), 2);
}

#[tokio::test]
async fn reader_scans_exactly_one_module() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let zip = entry("a/b", "v1.0.0", ArtifactKind::Zip, '1');
    let info = entry("a/b", "v1.0.0", ArtifactKind::Info, '2');
    let puts = [
        zip.clone(),
        info.clone(),
        entry("a/b", "v1.1.0", ArtifactKind::Mod, '1'), // same blob as `zip`
        entry("a/bc", "v2.0.0", ArtifactKind::Zip, '3'),
        entry("a", "v0.1.0", ArtifactKind::Zip, '4'),
    ];
    let log: Vec<_> = puts
        .iter()
        .enumerate()
        .map(|(i, e)| put(i as u64 + 1, e))
        .collect();
    sm.apply(log).await.unwrap();
    let reader = sm.reader();

    let versions = |m: &str| -> Vec<(String, Option<String>)> {
        let list = reader.versions(m).unwrap();
        list.into_iter().map(|v| (v.version, v.time)).collect()
    };
    assert_eq!(
        versions("a/b"),
        [
            ("v1.0.0".into(), info.version_time.clone()),
            ("v1.1.0".into(), None)
        ]
    );
    assert_eq!(versions("a/bc"), [("v2.0.0".into(), None)]);
    assert_eq!(versions("a"), [("v0.1.0".into(), None)]);
    assert!(versions("a/").is_empty() && versions("a/b/c").is_empty());

    assert_eq!(reader.get(&zip.key).unwrap(), Some(zip));
    let mut missing = info.key.clone();
    missing.kind = ArtifactKind::Mod;
    assert_eq!(reader.get(&missing).unwrap(), None);
    assert_eq!(reader.entry_count(), 5);
    let blobs: Vec<_> = reader.all_blobs().unwrap();
    assert_eq!(blobs.len(), 4, "distinct blobs: {blobs:?}");
}

/// Client tokens are replicated state: created once per name, revoked once, applied in log
/// order within a batch, outside every artifact scan, and carried by snapshots; every admin
/// action, refused or not, is in the trail in log order (without token hashes).
#[tokio::test]
async fn tokens_are_created_and_revoked_in_log_order_and_travel_in_snapshots() {
    use goproxy_access::{Grant, Role};
    use goproxy_consensus::{AdminAction as TokenCommand, AdminRecord};
    let grant = |name: &str| Grant {
        name: name.into(),
        role: Role::Read,
        allow: Some("corp.example".into()),
        deny: None,
        expires_at_ms: None,
        hash: goproxy_access::token::generate().hash,
        created_at_ms: 1,
    };
    let token = |index: u64, command: TokenCommand| Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(IndexCommand::Admin(AdminRecord {
            at_ms: 1000 + index,
            actor: "alice".into(),
            node: 1,
            action: command,
        })),
    };
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut sm = open(dir1.path());
    let ci = grant("ci");
    let responses = sm
        .apply([
            token(1, TokenCommand::CreateToken(ci.clone())),
            token(2, TokenCommand::CreateToken(grant("ci"))),
            token(3, TokenCommand::CreateToken(grant("old"))),
            token(4, TokenCommand::RevokeToken { name: "old".into() }),
            token(5, TokenCommand::RevokeToken { name: "old".into() }),
            put(6, &entry("example.com/m", "v1.0.0", ArtifactKind::Mod, 'm')),
            Entry {
                log_id: log_id(1, 1, 7),
                payload: EntryPayload::Normal(IndexCommand::MemberSecret("first".into())),
            },
            Entry {
                log_id: log_id(1, 1, 8),
                payload: EntryPayload::Normal(IndexCommand::MemberSecret("second".into())),
            },
        ])
        .await
        .unwrap();
    assert_eq!(responses[0], ApplyResponse::Inserted);
    assert!(
        matches!(&responses[1], ApplyResponse::Refused { reason } if reason.contains("exists"))
    );
    assert_eq!(
        responses[2..4],
        [ApplyResponse::Inserted, ApplyResponse::Inserted]
    );
    assert!(
        matches!(&responses[4], ApplyResponse::Refused { reason } if reason.contains("no token"))
    );
    assert_eq!(sm.reader().tokens().unwrap(), vec![ci.clone()]);
    assert_eq!(sm.reader().entry_count(), 1, "tokens are not artifacts");
    assert_eq!(sm.reader().tokens_at().unwrap(), 4, "the last token change");
    assert_eq!(
        sm.reader().member_secret().unwrap().as_deref(),
        Some("first"),
        "the members' secret is set once"
    );
    let trail = sm.reader().admin_trail(0).unwrap();
    let shown: Vec<_> = trail
        .iter()
        .map(|e| (e.index, e.kind.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            (1, "token-create", "ok"),
            (2, "token-create", "refused: a token named \"ci\" exists"),
            (3, "token-create", "ok"),
            (4, "token-revoke", "ok"),
            (5, "token-revoke", "refused: no token named \"old\""),
        ]
    );
    assert_eq!(trail[0].detail, "ci role=read allow=corp.example");
    assert_eq!((trail[0].actor.as_str(), trail[0].at_ms), ("alice", 1001));
    assert_eq!(
        sm.reader().admin_trail(4).unwrap().len(),
        2,
        "from index 4 on"
    );

    let mut snapshot = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut other = open(dir2.path());
    other
        .apply([token(1, TokenCommand::CreateToken(grant("stale")))])
        .await
        .unwrap();
    let mut buffer = other.begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut *snapshot.snapshot, &mut *buffer)
        .await
        .unwrap();
    other
        .install_snapshot(&snapshot.meta, buffer)
        .await
        .unwrap();
    assert_eq!(other.reader().tokens().unwrap(), vec![ci]);
    assert_eq!(other.reader().admin_trail(0).unwrap(), trail);
    assert_eq!(
        other.reader().member_secret().unwrap().as_deref(),
        Some("first")
    );
    assert!(
        other.reader().tokens_at().unwrap() >= 5,
        "installing moves tokens_at"
    );
}

fn zips(range: std::ops::Range<u64>) -> Vec<IndexEntry> {
    range
        .map(|i| {
            let mut e = entry(
                &format!("example.com/m{i:04}"),
                "v1.0.0",
                ArtifactKind::Zip,
                'a',
            );
            e.blob.sha256 = format!("{i:064x}");
            e
        })
        .collect()
}

/// A snapshot is the tree as it was when openraft asked for the builder, although applies
/// (new entries, a purge of an earlier one) go on while it is built.
#[tokio::test]
async fn a_snapshot_is_the_state_at_its_capture_point_while_applies_go_on() {
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut source = open(dir1.path());
    let before = zips(0..300);
    let mut log: Vec<Entry<TypeConfig>> = vec![membership(1)];
    log.extend(before.iter().enumerate().map(|(i, e)| put(i as u64 + 2, e)));
    source.apply(log).await.unwrap();
    let captured = source.applied_state().await.unwrap();
    let expect = source.reader().all_entries().unwrap();

    let mut builder = source.get_snapshot_builder().await;
    // After the capture point: more entries, and a purge of one the snapshot must keep.
    let later: Vec<Entry<TypeConfig>> = zips(300..400)
        .iter()
        .enumerate()
        .map(|(i, e)| put(i as u64 + 302, e))
        .collect();
    source.apply(later).await.unwrap();
    source
        .apply([Entry {
            log_id: log_id(1, 1, 402),
            payload: EntryPayload::Normal(IndexCommand::Admin(goproxy_consensus::AdminRecord {
                actor: "ops".into(),
                node: 1,
                at_ms: 1,
                action: goproxy_consensus::AdminAction::Purge(goproxy_consensus::ops::VersionRef {
                    module: "example.com/m0007".into(),
                    version: "v1.0.0".into(),
                }),
            })),
        }])
        .await
        .unwrap();
    assert_eq!(source.reader().entry_count(), 399, "the purge applied");
    let mut snapshot = builder.build_snapshot().await.unwrap();
    drop(builder);
    assert_eq!(snapshot.meta.last_log_id, captured.0);

    let mut target = open(dir2.path());
    let mut buffer = target.begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut *snapshot.snapshot, &mut *buffer)
        .await
        .unwrap();
    target
        .install_snapshot(&snapshot.meta, buffer)
        .await
        .unwrap();
    assert_eq!(target.reader().all_entries().unwrap(), expect);
    assert_eq!(target.reader().entry_count(), 300, "counts as captured");
    assert_eq!(target.applied_state().await.unwrap(), captured);
}

/// A damaged transfer is refused before the tree is touched.
#[tokio::test]
async fn a_damaged_snapshot_is_refused_and_the_index_kept() {
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut source = open(dir1.path());
    let mut log: Vec<Entry<TypeConfig>> = vec![membership(1)];
    log.extend(
        zips(0..50)
            .iter()
            .enumerate()
            .map(|(i, e)| put(i as u64 + 2, e)),
    );
    source.apply(log).await.unwrap();
    let mut snapshot = source
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();

    let mut target = open(dir2.path());
    target
        .apply([membership(1), put(2, &zips(900..901)[0])])
        .await
        .unwrap();
    let kept = target.reader().all_entries().unwrap();
    let buffer = target.begin_receiving_snapshot().await.unwrap();
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut *snapshot.snapshot, &mut bytes)
        .await
        .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(buffer.path(), &bytes).unwrap();
    let err = target
        .install_snapshot(&snapshot.meta, buffer)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("damaged snapshot"), "{err}");
    assert_eq!(target.reader().all_entries().unwrap(), kept);
}
