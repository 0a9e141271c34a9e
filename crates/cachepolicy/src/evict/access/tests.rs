use super::*;
use crate::PersistError;

fn entry(module: &str, version: &str, at_ms: u64) -> AccessEntry {
    AccessEntry {
        module: module.to_string(),
        version: version.to_string(),
        at_ms,
    }
}

#[test]
fn touch_keeps_the_latest_time() {
    let times = AccessTimes::new();
    assert!(times.is_empty());
    times.touch("a.com/m", "v1.0.0", 10);
    times.touch("a.com/m", "v1.0.0", 30);
    times.touch("a.com/m", "v1.0.0", 20); // clock stepped back
    times.touch("a.com/m", "v1.1.0", 5);
    assert_eq!(times.get("a.com/m", "v1.0.0"), Some(30));
    assert_eq!(times.get("a.com/m", "v1.1.0"), Some(5));
    assert_eq!(times.get("a.com/M", "v1.0.0"), None);
    assert_eq!(times.get("a.com/m", "v1.2.0"), None);
    assert_eq!(times.len(), 2);
}

#[test]
fn snapshot_is_sorted_and_merge_takes_the_maximum() {
    let here = AccessTimes::new();
    here.touch("b.com/m", "v1.0.0", 100);
    here.touch("a.com/m", "v1.1.0", 50);
    here.touch("a.com/m", "v1.0.0", 70);
    let snapshot = here.snapshot();
    assert_eq!(
        snapshot,
        [
            entry("a.com/m", "v1.0.0", 70),
            entry("a.com/m", "v1.1.0", 50),
            entry("b.com/m", "v1.0.0", 100),
        ]
    );
    let peer = AccessTimes::new();
    peer.touch("a.com/m", "v1.0.0", 90);
    peer.touch("b.com/m", "v1.0.0", 10);
    peer.touch("c.com/m", "v2.0.0+incompatible", 1);
    here.merge(peer.snapshot());
    assert_eq!(here.get("a.com/m", "v1.0.0"), Some(90));
    assert_eq!(here.get("b.com/m", "v1.0.0"), Some(100));
    assert_eq!(here.get("c.com/m", "v2.0.0+incompatible"), Some(1));
    assert_eq!(here.len(), 4);
    // Merging is idempotent and commutative: both sides converge.
    peer.merge(here.snapshot());
    here.merge(here.snapshot());
    assert_eq!(peer.snapshot(), here.snapshot());
}

#[test]
fn snapshots_serialize_for_peers() {
    let times = AccessTimes::new();
    times.touch("a.com/m", "v1.0.0", 7);
    let json = serde_json::to_string(&times.snapshot()).unwrap();
    assert_eq!(
        json,
        r#"[{"module":"a.com/m","version":"v1.0.0","at_ms":7}]"#
    );
    let back: Vec<AccessEntry> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, times.snapshot());
}

#[test]
fn the_oldest_are_dropped_past_the_bound() {
    let times = AccessTimes::with_limit(20);
    for i in 0..20 {
        times.touch("a.com/m", &format!("v1.{i}.0"), 1000 + i);
    }
    assert_eq!(times.len(), 20);
    times.touch("b.com/m", "v1.0.0", 5000);
    // 10% of the bound freed at once: 18 remain, the 3 oldest are gone.
    assert_eq!(times.len(), 18);
    for i in 0..3 {
        assert_eq!(times.get("a.com/m", &format!("v1.{i}.0")), None, "v1.{i}.0");
    }
    assert_eq!(times.get("a.com/m", "v1.3.0"), Some(1003));
    assert_eq!(times.get("b.com/m", "v1.0.0"), Some(5000));
    assert_eq!(times.snapshot().len(), 18);
}

#[test]
fn pruning_counts_ties_exactly() {
    let times = AccessTimes::with_limit(10);
    times.merge((0..11).map(|i| entry("a.com/m", &format!("v1.{i}.0"), 42)));
    assert_eq!(times.len(), 9);
    assert_eq!(times.snapshot().len(), 9);
    let small = AccessTimes::with_limit(1);
    small.touch("a.com/m", "v1.0.0", 1);
    small.touch("b.com/m", "v1.0.0", 2);
    assert_eq!(small.snapshot(), [entry("b.com/m", "v1.0.0", 2)]);
    let empty_modules_dropped = AccessTimes::with_limit(2);
    empty_modules_dropped.touch("a.com/m", "v1.0.0", 1);
    empty_modules_dropped.touch("b.com/m", "v1.0.0", 2);
    empty_modules_dropped.touch("c.com/m", "v1.0.0", 3);
    assert_eq!(empty_modules_dropped.table().modules.len(), 2);
}

#[test]
fn large_merges_stay_bounded() {
    let times = AccessTimes::with_limit(1000);
    times.merge((0..5000).map(|i| entry("a.com/m", &format!("v1.{i}.0"), i)));
    assert!(times.len() <= 1000);
    assert_eq!(times.get("a.com/m", "v1.4999.0"), Some(4999));
    assert_eq!(times.get("a.com/m", "v1.0.0"), None);
}

#[test]
fn save_and_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.json");
    let times = AccessTimes::new();
    times.touch("a.com/m", "v1.0.0", 10);
    times.touch("b.com/m/v2", "v2.0.0-20240101000000-abcdefabcdef", 20);
    times.save(&path).unwrap();
    times.touch("c.com/m", "v1.0.0", 30);
    times.save(&path).unwrap(); // replaces

    let loaded = AccessTimes::new();
    loaded.touch("a.com/m", "v1.0.0", 15);
    assert_eq!(loaded.load(&path).unwrap(), 3);
    assert_eq!(
        loaded.get("a.com/m", "v1.0.0"),
        Some(15),
        "merged, not overwritten"
    );
    assert_eq!(loaded.get("c.com/m", "v1.0.0"), Some(30));
    assert_eq!(loaded.len(), 3);
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "no temporary file left behind");
}

#[test]
fn load_tolerates_a_missing_file_but_not_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let times = AccessTimes::new();
    assert_eq!(times.load(&dir.path().join("absent.json")).unwrap(), 0);

    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, b"{\"format\":1,\"entries\":[").unwrap();
    assert!(matches!(
        times.load(&corrupt),
        Err(PersistError::Json { .. })
    ));

    let future = dir.path().join("future.json");
    std::fs::write(&future, br#"{"format":99,"entries":[]}"#).unwrap();
    let err = times.load(&future).unwrap_err();
    assert!(
        matches!(err, PersistError::Format { found: 99, .. }),
        "{err}"
    );
    assert!(times.is_empty());

    let missing_dir = dir.path().join("no/such/dir/access.json");
    assert!(matches!(
        times.save(&missing_dir),
        Err(PersistError::Io { .. })
    ));
}
