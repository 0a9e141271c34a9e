//! The audit log through its handle and task: order, rotation, flushing, shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{all_files, config, numbered, record, sequence};

const SMALL: u64 = 4096;

/// Writes records `0..count` through the handle, drops it and waits for the task.
async fn write_all(config: &goproxy_audit::AuditConfig, count: u64) {
    let (log, task) = goproxy_audit::open(config).unwrap();
    let task = tokio::spawn(task.run());
    for i in 0..count {
        assert!(log.record(record(i)).await);
    }
    drop(log);
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the task ends once the handle is dropped")
        .unwrap();
}

#[tokio::test]
async fn every_line_is_written_in_order_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 1 << 30, 3);
    write_all(&config, 1000).await;
    let path = config.path.unwrap();
    assert_eq!(sequence(&path), (0..1000).collect::<Vec<_>>());
    assert!(!numbered(&path, 1).exists(), "no rotation below max_bytes");
}

#[tokio::test]
async fn rotation_keeps_the_last_lines_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), SMALL, 3);
    write_all(&config, 500).await;
    let path = config.path.unwrap();
    for n in 1..=3 {
        assert!(numbered(&path, n).exists(), "{n} rotated files");
    }
    assert!(!numbered(&path, 4).exists(), "at most keep rotated files");
    let kept = all_files(&path, 3, SMALL);
    assert!(kept.len() > 20, "{kept:?}");
    let first = 500 - kept.len() as u64;
    assert_eq!(kept, (first..500).collect::<Vec<_>>());
    // Each rotated file was full: the next line would not have fitted.
    let line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .len() as u64;
    let rotated = std::fs::metadata(numbered(&path, 1)).unwrap().len();
    assert!(rotated + line > SMALL - 2 * line, "{rotated}");
}

#[tokio::test]
async fn with_enough_files_every_line_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), SMALL, 1000);
    write_all(&config, 500).await;
    let path = config.path.unwrap();
    assert_eq!(all_files(&path, 1000, SMALL), (0..500).collect::<Vec<_>>());
    assert!(numbered(&path, 2).exists());
}

#[tokio::test]
async fn the_size_of_an_existing_file_counts() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), SMALL, 2);
    let path = config.path.clone().unwrap();
    let old = "x".repeat(4000) + "\n";
    std::fs::write(&path, &old).unwrap();
    write_all(&config, 1).await;
    assert_eq!(std::fs::read_to_string(numbered(&path, 1)).unwrap(), old);
    assert_eq!(sequence(&path), [0]);
    // Reopening appends.
    write_all(&config, 2).await;
    assert_eq!(sequence(&path), [0, 0, 1]);
}

#[tokio::test]
async fn lines_are_flushed_within_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 1 << 20, 3);
    let path = config.path.clone().unwrap();
    let (log, task) = goproxy_audit::open(&config).unwrap();
    let task = tokio::spawn(task.run());
    for i in 0..3 {
        assert!(log.record(record(i)).await);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while sequence(&path).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "not flushed: {:?}",
            sequence(&path)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sequence(&path), [0, 1, 2]);
    assert_eq!(log.stats().lines, 3);
    assert!(!task.is_finished(), "the handle is alive");
    drop(log);
    task.await.unwrap();
}

/// On a full queue, records wait for room (up to as many as the queue holds again), so a
/// burst is not lost; beyond that (a disk stalled for long) records are dropped and counted,
/// so memory stays bounded. Every record accepted is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_record_waits_on_a_full_queue_and_counts_what_it_drops() {
    for (queue, burst) in [(300, 300), (1, 300)] {
        let dir = tempfile::tempdir().unwrap();
        let config = goproxy_audit::AuditConfig {
            queue,
            ..config(dir.path(), 1 << 20, 3)
        };
        let (log, task) = goproxy_audit::open(&config).unwrap();
        let task = tokio::spawn(task.run());
        let accepted: Vec<u64> = (0..burst).filter(|i| log.try_record(record(*i))).collect();
        let dropped = log.stats().dropped;
        drop(log);
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap()
            .unwrap();
        // Records that waited for room may be written out of order; none accepted is missing.
        let mut written = sequence(&config.path.unwrap());
        written.sort_unstable();
        assert_eq!(written, accepted, "queue {queue}");
        assert_eq!(accepted.len() as u64 + dropped, burst, "queue {queue}");
        if queue >= burst as usize {
            assert_eq!(dropped, 0, "a burst the queue holds loses nothing");
        }
    }
}

#[test]
fn try_record_outside_a_runtime_waits_for_room() {
    let dir = tempfile::tempdir().unwrap();
    let config = goproxy_audit::AuditConfig {
        queue: 1,
        ..config(dir.path(), 1 << 20, 3)
    };
    let (log, task) = goproxy_audit::open(&config).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let task = runtime.spawn(task.run());
    for i in 0..50 {
        assert!(log.try_record(record(i)));
    }
    drop(log);
    runtime.block_on(task).unwrap();
    assert_eq!(sequence(&config.path.unwrap()), (0..50).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_task_retries_after_a_failed_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), SMALL, 1);
    let path = config.path.clone().unwrap();
    let blocker = numbered(&path, 1);
    std::fs::create_dir(&blocker).unwrap();
    std::fs::write(blocker.join("x"), "x").unwrap();
    let (log, task) = goproxy_audit::open(&config).unwrap();
    let task = tokio::spawn(task.run());
    for i in 0..20 {
        assert!(log.record(record(i)).await);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.stats().write_errors < 2 {
        assert!(Instant::now() < deadline, "{:?}", log.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = sequence(&path);
    assert!((11..20).contains(&first.len()), "{first:?}");
    std::fs::remove_dir_all(&blocker).unwrap();
    while log.stats().lines < 20 {
        assert!(Instant::now() < deadline, "{:?}", log.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(log);
    task.await.unwrap();
    assert_eq!(all_files(&path, 1, SMALL), (0..20).collect::<Vec<_>>());
    assert_eq!(sequence(&blocker), first);
}
