//! An interrupted snapshot install is finished when the state machine opens again.

use std::collections::BTreeMap;

use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef, IndexEntry};
use openraft::storage::RaftStateMachine;
use openraft::testing::log_id;
use openraft::{Entry, EntryPayload, Membership, RaftSnapshotBuilder};

use super::*;
use crate::types::PeerNode;

fn zip(i: u64) -> IndexEntry {
    IndexEntry {
        key: ArtifactKey {
            module: format!("example.com/m{i:04}"),
            version: "v1.0.0".into(),
            kind: ArtifactKind::Zip,
        },
        blob: BlobRef {
            sha256: format!("{i:064x}"),
            size: 10,
        },
        h1: None,
        version_time: None,
        filled_at_ms: 1,
    }
}

fn log(n: u64) -> Vec<Entry<TypeConfig>> {
    let nodes = BTreeMap::from([(1u64, PeerNode::default())]);
    let mut log = vec![Entry {
        log_id: log_id(1, 1, 1),
        payload: EntryPayload::Membership(Membership::from(nodes)),
    }];
    log.extend((0..n).map(|i| Entry {
        log_id: log_id(1, 1, i + 2),
        payload: EntryPayload::Normal(IndexCommand::Put(zip(i))),
    }));
    log
}

fn open(dir: &std::path::Path) -> (sled::Db, StateMachine) {
    let db = sled::open(dir.join("db")).unwrap();
    let sm = StateMachine::open(&db, dir.join("snapshots")).unwrap();
    (db, sm)
}

/// The state left by a crash in the middle of `refill`: the marker set, the tree half
/// cleared, the file in place.
async fn interrupted(source: &mut StateMachine, target_dir: &std::path::Path) -> Meta {
    let snapshot = source
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let (db, mut target) = open(target_dir);
    target.apply(log(3)).await.unwrap();
    let name = "snap-crashed.snap";
    std::fs::copy(snapshot.snapshot.path(), target.snapshots.path(name)).unwrap();
    let marker = Current {
        meta: snapshot.meta.clone(),
        file: name.to_string(),
    };
    target
        .snapshot
        .insert(INSTALLING_SNAPSHOT, serde_json::to_vec(&marker).unwrap())
        .unwrap();
    let first = target.index.first().unwrap().unwrap().0;
    target.index.remove(first).unwrap();
    db.flush().unwrap();
    snapshot.meta
}

#[tokio::test]
async fn an_interrupted_install_is_finished_when_the_state_machine_opens() {
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_db, mut source) = open(dir1.path());
    source.apply(log(200)).await.unwrap();
    let meta = interrupted(&mut source, dir2.path()).await;

    let (_db, mut target) = open(dir2.path());
    assert_eq!(
        target.reader().all_entries().unwrap(),
        source.reader().all_entries().unwrap()
    );
    assert_eq!(target.reader().entry_count(), 200);
    assert_eq!(target.applied_state().await.unwrap().0, meta.last_log_id);
    assert!(target.current(INSTALLING_SNAPSHOT).unwrap().is_none());
    let current = target.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, meta);
}

#[tokio::test]
async fn an_interrupted_install_without_its_file_refuses_to_open_and_says_what_to_do() {
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_db, mut source) = open(dir1.path());
    source.apply(log(20)).await.unwrap();
    interrupted(&mut source, dir2.path()).await;
    std::fs::remove_file(dir2.path().join("snapshots/snap-crashed.snap")).unwrap();

    let db = sled::open(dir2.path().join("db")).unwrap();
    let err = StateMachine::open(&db, dir2.path().join("snapshots")).unwrap_err();
    assert!(err.to_string().contains("wipe"), "{err}");
}
