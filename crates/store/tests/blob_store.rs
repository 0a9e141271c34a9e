//! Black-box tests of the blob store: atomic commit, limits, cleanup, corruption.

use goproxy_store::{digest, BlobStore, StoreError};

#[tokio::test]
async fn committed_blob_is_served_with_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path()).unwrap();
    let staged = store
        .stage_bytes(b"module example.com/x\n", 1024)
        .await
        .unwrap();
    let blob = staged.blob().clone();
    assert_eq!(blob.sha256, digest::of_bytes(b"module example.com/x\n"));
    assert!(
        !store.contains(&blob).await.unwrap(),
        "staged is not visible"
    );
    staged.commit().await.unwrap();
    assert_eq!(
        store.read_small(&blob).await.unwrap().unwrap(),
        b"module example.com/x\n"
    );
    store.verify(&blob).await.unwrap();
}

#[tokio::test]
async fn dropped_stage_and_leftovers_leave_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path()).unwrap();
    drop(store.stage_bytes(b"abandoned", 1024).await.unwrap());
    let mut writer = store.writer(1024).await.unwrap();
    writer.write(b"partial").await.unwrap();
    std::mem::forget(writer); // simulates a crash mid-write
    let (_, removed) = BlobStore::open(dir.path()).unwrap();
    assert_eq!(removed, 1);
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn size_limit_is_enforced_while_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path()).unwrap();
    let err = store.stage_bytes(&[0u8; 100], 99).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { limit: 99 }));
}

#[tokio::test]
async fn truncated_blob_is_missing_and_corruption_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path()).unwrap();
    let blob = store
        .stage_bytes(b"0123456789", 64)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    let path = store.path_of(&blob.sha256).unwrap();
    std::fs::write(&path, b"01234").unwrap();
    assert!(store.open_blob(&blob).await.unwrap().is_none());
    std::fs::write(&path, b"0123456780").unwrap();
    assert!(matches!(
        store.verify(&blob).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn hostile_digest_never_becomes_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path()).unwrap();
    assert!(store.path_of("../../../../etc/passwd").is_err());
}

/// Writes `bytes` as an unsynced staged blob.
async fn stage_unsynced(store: &BlobStore, bytes: &[u8]) -> goproxy_store::StagedBlob {
    let mut writer = store.writer(1 << 20).await.unwrap();
    writer.write(bytes).await.unwrap();
    writer.finish_unsynced().await.unwrap()
}

#[tokio::test]
async fn a_batch_commit_makes_every_blob_visible_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path()).unwrap();
    let present = store
        .stage_bytes(b"already here", 64)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    let contents: Vec<Vec<u8>> = (0..40)
        .map(|i| format!("blob number {i}").into_bytes())
        .chain([b"already here".to_vec()])
        .collect();
    let mut staged = Vec::new();
    for bytes in &contents {
        staged.push(stage_unsynced(&store, bytes).await);
    }
    for s in &staged[..40] {
        assert!(
            !store.contains(s.blob()).await.unwrap(),
            "staged is not visible"
        );
    }
    let committed = store.commit_all(staged).await.unwrap();
    assert_eq!(committed.len(), contents.len());
    assert_eq!(committed.last(), Some(&present));
    for (blob, bytes) in committed.iter().zip(&contents) {
        assert_eq!(blob.sha256, digest::of_bytes(bytes));
        assert_eq!(&store.read_small(blob).await.unwrap().unwrap(), bytes);
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "renamed or (for the blob already present) removed"
    );
    assert!(store.commit_all(Vec::new()).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unsynced_stage_committed_alone_is_synced_and_visible() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path()).unwrap();
    let staged = stage_unsynced(&store, b"alone").await;
    let blob = staged.commit().await.unwrap();
    assert_eq!(store.read_small(&blob).await.unwrap().unwrap(), b"alone");
}

#[tokio::test]
async fn a_dropped_unsynced_stage_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = BlobStore::open(dir.path()).unwrap();
    let staged = stage_unsynced(&store, b"never committed").await;
    let blob = staged.blob().clone();
    drop(staged);
    assert!(!store.contains(&blob).await.unwrap());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}
