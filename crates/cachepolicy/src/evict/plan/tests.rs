use super::*;

const MB: u64 = 1 << 20;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;
const NOW: u64 = 100 * DAY_MS;

fn candidate(module: &str, version: &str, mb: u64, last_access: Option<u64>) -> Candidate {
    Candidate {
        module: module.to_string(),
        version: version.to_string(),
        bytes: mb * MB,
        last_access_ms: last_access,
        cached_at_ms: 0,
        pinned: false,
    }
}

fn names(plan: &Plan) -> Vec<String> {
    plan.evict
        .iter()
        .map(|e| format!("{}@{}", e.module, e.version))
        .collect()
}

#[test]
fn within_bound_and_no_idle_limit_evicts_nothing() {
    let cs = [candidate("a.com/m", "v1.0.0", 10, Some(1))];
    let policy = Policy {
        max_bytes: Some(100 * MB),
        unused_after_ms: None,
    };
    let plan = plan(&cs, 100 * MB, &policy, NOW);
    assert!(plan.evict.is_empty());
    assert_eq!(plan.freed_bytes, 0);
    assert_eq!(plan.total_after, 100 * MB, "at the bound is within it");
    assert_eq!(plan.over_bound_after, 0);
    assert_eq!(
        super::plan(&cs, 1000 * MB, &Policy::default(), NOW),
        Plan {
            total_after: 1000 * MB,
            ..Plan::default()
        }
    );
}

#[test]
fn over_bound_evicts_least_recently_used_down_to_the_watermark() {
    let cs = [
        candidate("a.com/m", "v1.0.0", 30, Some(NOW - 10)),
        candidate("a.com/m", "v1.1.0", 30, Some(NOW - 30)),
        candidate("b.com/m", "v1.0.0", 30, Some(NOW - 20)),
        candidate("c.com/m", "v1.0.0", 10, Some(NOW - 40)),
    ];
    let policy = Policy {
        max_bytes: Some(100 * MB),
        unused_after_ms: None,
    };
    // 101 MB held: over by 1 MB, must go down to 90 MB.
    let plan = plan(&cs, 101 * MB, &policy, NOW);
    assert_eq!(names(&plan), ["c.com/m@v1.0.0", "a.com/m@v1.1.0"]);
    assert!(plan.evict.iter().all(|e| e.cause == Cause::OverBound));
    assert_eq!(plan.freed_bytes, 40 * MB);
    assert_eq!(plan.total_after, 61 * MB);
    assert_eq!(plan.over_bound_after, 0);
    assert_eq!(low_watermark(100 * MB), LOW_WATERMARK_PERCENT * MB);
    assert_eq!(
        low_watermark(u64::MAX),
        u64::MAX / 100 * 90 + u64::MAX % 100 * 90 / 100
    );
}

#[test]
fn stops_exactly_at_the_watermark() {
    let cs = [
        candidate("a.com/m", "v1.0.0", 10, Some(1)),
        candidate("a.com/m", "v1.1.0", 10, Some(2)),
    ];
    let policy = Policy {
        max_bytes: Some(100 * MB),
        unused_after_ms: None,
    };
    let plan = plan(&cs, 100 * MB + 1, &policy, NOW);
    assert_eq!(names(&plan), ["a.com/m@v1.0.0", "a.com/m@v1.1.0"]);
    let plan = super::plan(&cs, 100 * MB, &policy, NOW);
    assert!(
        plan.evict.is_empty(),
        "not over: the watermark is not a trigger"
    );
    let plan = super::plan(
        &cs,
        95 * MB + 1,
        &Policy {
            max_bytes: Some(95 * MB),
            ..policy
        },
        NOW,
    );
    assert_eq!(plan.evict.len(), 1, "95 MB + 1 less 10 MB is under 85.5 MB");
}

#[test]
fn pins_are_never_evicted_and_an_excess_is_reported() {
    let mut pinned = candidate("a.com/m", "v1.0.0", 80, Some(0));
    pinned.pinned = true;
    let cs = [pinned, candidate("b.com/m", "v1.0.0", 30, Some(NOW))];
    let policy = Policy {
        max_bytes: Some(50 * MB),
        unused_after_ms: Some(1),
    };
    let plan = plan(&cs, 110 * MB, &policy, NOW);
    assert_eq!(names(&plan), ["b.com/m@v1.0.0"]);
    assert_eq!(plan.total_after, 80 * MB);
    assert_eq!(plan.over_bound_after, 30 * MB);
}

#[test]
fn idle_versions_go_first_even_within_the_bound() {
    let policy = Policy {
        max_bytes: Some(1000 * MB),
        unused_after_ms: Some(30 * DAY_MS),
    };
    let mut recently_cached = candidate("d.com/m", "v1.0.0", 1, Some(NOW - 60 * DAY_MS));
    recently_cached.cached_at_ms = NOW - DAY_MS;
    let mut never_accessed = candidate("e.com/m", "v1.0.0", 1, None);
    never_accessed.cached_at_ms = NOW - 40 * DAY_MS;
    let cs = [
        candidate("a.com/m", "v1.0.0", 1, Some(NOW - 31 * DAY_MS)),
        candidate("b.com/m", "v1.0.0", 1, Some(NOW - 30 * DAY_MS)),
        candidate("c.com/m", "v1.0.0", 1, Some(NOW)),
        recently_cached,
        never_accessed,
    ];
    let plan = plan(&cs, 5 * MB, &policy, NOW);
    // Exactly `unused_after` idle is not longer than it.
    assert_eq!(names(&plan), ["e.com/m@v1.0.0", "a.com/m@v1.0.0"]);
    assert!(plan.evict.iter().all(|e| e.cause == Cause::Idle));
    assert_eq!(plan.freed_bytes, 2 * MB);
}

#[test]
fn idle_then_size_when_still_over() {
    let policy = Policy {
        max_bytes: Some(100 * MB),
        unused_after_ms: Some(DAY_MS),
    };
    let cs = [
        candidate("a.com/m", "v1.0.0", 10, Some(NOW - 2 * DAY_MS)),
        candidate("b.com/m", "v1.0.0", 20, Some(NOW - 10)),
        candidate("c.com/m", "v1.0.0", 20, Some(NOW - 5)),
    ];
    let plan = plan(&cs, 120 * MB, &policy, NOW);
    assert_eq!(names(&plan), ["a.com/m@v1.0.0", "b.com/m@v1.0.0"]);
    assert_eq!(plan.evict[0].cause, Cause::Idle);
    assert_eq!(plan.evict[1].cause, Cause::OverBound);
    assert_eq!(plan.total_after, 90 * MB);
    // Idle eviction alone bringing it under the bound: no size pass.
    let plan = super::plan(&cs, 105 * MB, &policy, NOW);
    assert_eq!(names(&plan), ["a.com/m@v1.0.0"]);
    assert_eq!(plan.total_after, 95 * MB);
}

#[test]
fn ties_are_broken_by_module_then_version_whatever_the_input_order() {
    let mut cs: Vec<Candidate> = [
        "b.com/m@v1.0.0",
        "a.com/m@v1.10.0",
        "a.com/m@v1.2.0",
        "a.com/z@v0.1.0",
    ]
    .iter()
    .map(|s| {
        let (m, v) = s.split_once('@').unwrap();
        candidate(m, v, 10, Some(5))
    })
    .collect();
    let policy = Policy {
        max_bytes: Some(20 * MB),
        unused_after_ms: None,
    };
    let expected = plan(&cs, 40 * MB, &policy, NOW);
    assert_eq!(
        names(&expected),
        ["a.com/m@v1.10.0", "a.com/m@v1.2.0", "a.com/z@v0.1.0"]
    );
    for _ in 0..4 {
        cs.rotate_left(1);
        cs.swap(0, 2);
        assert_eq!(plan(&cs, 40 * MB, &policy, NOW), expected);
    }
}

#[test]
fn inconsistent_inputs_do_not_underflow() {
    let cs = [candidate("a.com/m", "v1.0.0", 50, Some(NOW + DAY_MS))];
    let policy = Policy {
        max_bytes: Some(0),
        unused_after_ms: Some(0),
    };
    let plan = plan(&cs, 10 * MB, &policy, NOW);
    assert_eq!(
        plan.evict[0].cause,
        Cause::OverBound,
        "a future access is not idle"
    );
    assert_eq!(plan.total_after, 0);
    assert_eq!(plan.freed_bytes, 50 * MB);
}
