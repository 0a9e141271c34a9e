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
