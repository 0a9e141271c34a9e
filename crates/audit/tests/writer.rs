//! The file side on its own: opening, write errors and their retry, oversized lines.

mod common;

use common::{all_files, config, numbered, record, sequence};
use goproxy_audit::{AuditConfig, AuditError, AuditWriter};

const SMALL: u64 = 4096;

#[test]
fn open_names_a_missing_directory_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let error = AuditWriter::open(&config(&missing, SMALL, 3)).unwrap_err();
    match &error {
        AuditError::MissingDirectory { dir } => assert_eq!(dir, &missing),
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("missing"), "{error}");
    assert!(!missing.exists());
}

#[test]
fn open_refuses_no_path_and_invalid_settings() {
    let disabled = AuditWriter::open(&AuditConfig::default()).unwrap_err();
    assert!(matches!(disabled, AuditError::Disabled), "{disabled:?}");
    let dir = tempfile::tempdir().unwrap();
    let invalid = AuditConfig {
        keep: 0,
        queue: 0,
        ..config(dir.path(), SMALL, 3)
    };
    let error = goproxy_audit::open(&invalid).unwrap_err();
    assert_eq!(
        error.to_string(),
        "audit: invalid configuration: keep: between 1 and 1000; queue: at least 1"
    );
}

#[test]
fn failed_rotation_keeps_the_lines_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), SMALL, 1);
    let path = config.path.clone().unwrap();
    // A non-empty directory where the rotated file goes: renaming onto it fails.
    let blocker = numbered(&path, 1);
    std::fs::create_dir(&blocker).unwrap();
    std::fs::write(blocker.join("x"), "x").unwrap();

    let mut writer = AuditWriter::open(&config).unwrap();
    for i in 0..20 {
        writer.push(&record(i));
    }
    let error = writer.flush().unwrap_err();
    assert!(matches!(error, AuditError::Rotate { .. }), "{error:?}");
    let first = sequence(&path);
    // About 340 bytes a line: 12 fit in 4096, so the rest fits in the next file.
    assert!((11..20).contains(&first.len()), "{first:?}");
    assert_eq!(first, (0..first.len() as u64).collect::<Vec<_>>());
    assert_eq!(writer.pending_lines(), 20 - first.len());
    assert!(writer.flush().is_err(), "still blocked");
    assert_eq!(writer.stats().write_errors, 2);
    assert_eq!(writer.stats().lines, first.len() as u64);

    std::fs::remove_dir_all(&blocker).unwrap();
    for i in 20..22 {
        writer.push(&record(i));
    }
    writer.flush_and_sync().unwrap();
    assert_eq!(writer.pending_lines(), 0);
    assert_eq!(sequence(&blocker), first, "the full file was rotated");
    let all = all_files(&path, 1, SMALL);
    assert_eq!(
        all[first.len()..],
        (first.len() as u64..22).collect::<Vec<_>>()[..]
    );
    let stats = writer.stats();
    assert_eq!(
        (stats.lines, stats.rotations, stats.write_errors),
        (22, 1, 2)
    );
}

#[test]
fn an_oversized_line_goes_alone_into_a_fresh_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), SMALL, 3);
    let path = config.path.clone().unwrap();
    let mut writer = AuditWriter::open(&config).unwrap();
    let mut huge = record(1);
    huge.module = Some("m".repeat(5000));
    writer.push(&record(0));
    writer.push(&huge);
    writer.push(&record(2));
    writer.flush().unwrap();
    assert_eq!(sequence(&numbered(&path, 2)), [0]);
    assert_eq!(sequence(&numbered(&path, 1)), [1]);
    assert!(std::fs::metadata(numbered(&path, 1)).unwrap().len() > SMALL);
    assert_eq!(sequence(&path), [2]);
}
