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

/// Builds a snapshot of `source` and leaves `target_dir` as a crash in the middle of an
/// install into it would: the marker naming a half-filled tree beside the active one.
async fn interrupted(source: &mut StateMachine, target_dir: &std::path::Path) {
    source
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let (db, mut target) = open(target_dir);
    target.apply(log(3)).await.unwrap();
    let partial = db.open_tree("index-1").unwrap();
    partial.insert(b"half", b"filled").unwrap();
    target
        .snapshot
        .insert(INSTALLING_SNAPSHOT, &b"index-1"[..])
        .unwrap();
    db.flush().unwrap();
}

#[tokio::test]
async fn an_interrupted_install_leaves_the_earlier_index_whole() {
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_db, mut source) = open(dir1.path());
    source.apply(log(200)).await.unwrap();
    interrupted(&mut source, dir2.path()).await;

    let (db, mut target) = open(dir2.path());
    assert_eq!(
        target.reader().entry_count(),
        3,
        "the index before the install"
    );
    assert_eq!(
        target.applied_state().await.unwrap().0,
        Some(log_id(1, 1, 4))
    );
    assert!(target.snapshot.get(INSTALLING_SNAPSHOT).unwrap().is_none());
    assert!(
        !db.tree_names().iter().any(|n| &n[..] == b"index-1"),
        "the half-filled tree is dropped"
    );
}

/// Readers see the index before an install, then after it, never a part of either (here
/// both hold the same entries, so a key is never absent and the count never drops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_half_installed_index() {
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_db1, mut source) = open(dir1.path());
    let n = 20_000;
    source.apply(log(n)).await.unwrap();
    let snapshot = source
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let (db2, mut target) = open(dir2.path());
    target.apply(log(n)).await.unwrap();
    let key = zip(n - 1).key;
    let reader = target.reader();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (reader, done, key) = (reader.clone(), done.clone(), key.clone());
        std::thread::spawn(move || {
            let (mut absent, mut min_count, mut reads) = (0u64, usize::MAX, 0u64);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if reader.get(&key).unwrap().is_none() {
                    absent += 1;
                }
                min_count = min_count.min(reader.entry_count());
                reads += 1;
            }
            (absent, min_count, reads)
        })
    };
    let mut buffer = target.begin_receiving_snapshot().await.unwrap();
    let mut data = snapshot.snapshot;
    tokio::io::copy(&mut *data, &mut *buffer).await.unwrap();
    target
        .install_snapshot(&snapshot.meta, buffer)
        .await
        .unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (absent, min_count, reads) = watcher.join().unwrap();
    assert!(reads > 0);
    assert_eq!((absent, min_count), (0, n as usize));
    assert_eq!(reader.entry_count(), n as usize);
    // The new tree is active, and recorded as such for the next open.
    assert_eq!(&target.index().name()[..], b"index-1");
    assert_eq!(
        target.snapshot.get(ACTIVE_INDEX).unwrap().as_deref(),
        Some(&b"index-1"[..])
    );
    drop(db2);
}

/// A build recording a new current file (and deleting older ones) never makes a concurrent
/// `get_current_snapshot` fail (openraft stops on that error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_snapshot_opens_while_builds_replace_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, mut sm) = open(dir.path());
    sm.apply(log(10)).await.unwrap();
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let getter = {
        let (mut sm, stop) = (sm.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut failed, mut opened) = (Vec::new(), 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match sm.get_current_snapshot().await {
                    Ok(_) => opened += 1,
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (failed, opened)
        })
    };
    for _ in 0..150 {
        let mut builder = sm.get_snapshot_builder().await;
        tokio::spawn(async move { builder.build_snapshot().await.unwrap() })
            .await
            .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (failed, opened) = getter.await.unwrap();
    assert!(opened > 0);
    assert!(failed.is_empty(), "{failed:?}");
}
