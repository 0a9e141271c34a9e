//! The operating commands through the real apply path: entries built as openraft builds them,
//! applied with `RaftStateMachine::apply` (one batch or one by one), snapshots built and
//! installed, and the applied state read back through `IndexReader`.

use goproxy_protocol::index::{ArtifactKey, ArtifactKind, IndexEntry};
use openraft::storage::RaftStateMachine;
use openraft::testing::log_id;
use openraft::{Entry, EntryPayload, RaftSnapshotBuilder};

use super::{MAX_OPEN_JOBS, RECLAIM_PREFIX, SNAPSHOT_PREFIXES};
use crate::ops::{
    BlockRecord, DoneItem, Evictions, JobState, Reclaim, VersionRef, WarmJob, WarmProgress,
    WarmSource, WarmSpec, MAX_JOB_FAILURES, MAX_RECLAIMS,
};
use crate::reader::IndexReader;
use crate::state_machine::StateMachine;
use crate::types::{AdminAction, AdminRecord, ApplyResponse, IndexCommand, NodeId, TypeConfig};

const ACTOR: &str = "alice";
const AT_MS: u64 = 5_000;
const A: &str = "example.com/a";
const AB: &str = "example.com/ab";

fn open() -> StateMachine {
    let db = sled::Config::new().temporary(true).open().unwrap();
    StateMachine::open(&db).unwrap()
}

/// A distinct 64-character "sha256" per tag.
fn sha(tag: &str) -> String {
    format!("{tag:0>64}")
}

fn artifact(module: &str, version: &str, kind: ArtifactKind, blob: &str) -> IndexEntry {
    IndexEntry {
        key: ArtifactKey {
            module: module.into(),
            version: version.into(),
            kind,
        },
        blob: goproxy_protocol::index::BlobRef {
            sha256: sha(blob),
            size: 7,
        },
        h1: None,
        version_time: (kind == ArtifactKind::Info).then(|| "2024-01-02T03:04:05Z".into()),
        filled_at_ms: 1,
    }
}

/// The info, mod and zip of a version, with blobs `{tag}i`, `{tag}m`, `{tag}z`.
fn version(module: &str, version: &str, tag: &str) -> Vec<IndexEntry> {
    [
        (ArtifactKind::Info, "i"),
        (ArtifactKind::Mod, "m"),
        (ArtifactKind::Zip, "z"),
    ]
    .into_iter()
    .map(|(kind, suffix)| artifact(module, version, kind, &format!("{tag}{suffix}")))
    .collect()
}

fn blobs_of(entries: &[IndexEntry]) -> Vec<String> {
    entries.iter().map(|e| e.blob.sha256.clone()).collect()
}

fn vref(module: &str, version: &str) -> VersionRef {
    VersionRef {
        module: module.into(),
        version: version.into(),
    }
}

fn admin(action: AdminAction) -> IndexCommand {
    IndexCommand::Admin(AdminRecord {
        at_ms: AT_MS,
        actor: ACTOR.into(),
        node: 1,
        action,
    })
}

fn purge(module: &str, v: &str) -> IndexCommand {
    admin(AdminAction::Purge(vref(module, v)))
}

fn block(rule: &str, reason: &str) -> IndexCommand {
    admin(AdminAction::Block {
        rule: rule.into(),
        reason: reason.into(),
    })
}

fn unblock(rule: &str) -> IndexCommand {
    admin(AdminAction::Unblock { rule: rule.into() })
}

fn spec(id: &str, pin: bool) -> WarmSpec {
    WarmSpec {
        id: id.into(),
        source: WarmSource::Targets(vec![format!("{A}@v1.0.0")]),
        no_deps: false,
        pin,
        description: "test job".into(),
    }
}

fn submit(id: &str, pin: bool) -> IndexCommand {
    admin(AdminAction::WarmSubmit(spec(id, pin)))
}

fn cancel(id: &str) -> IndexCommand {
    admin(AdminAction::WarmCancel { id: id.into() })
}

fn unpin(id: &str) -> IndexCommand {
    admin(AdminAction::WarmUnpin { id: id.into() })
}

fn progress(id: &str, runner: NodeId) -> WarmProgress {
    WarmProgress {
        id: id.into(),
        runner,
        at_ms: 6_000,
        started: false,
        done: Vec::new(),
        failed: Vec::new(),
        total: 0,
        pins: Vec::new(),
        finished: None,
        error: None,
    }
}

fn done(item: &str, bytes: u64, filled: bool) -> DoneItem {
    DoneItem {
        item: item.into(),
        bytes,
        filled,
    }
}

fn evict(at_ms: u64, versions: &[(&str, &str)]) -> IndexCommand {
    IndexCommand::Evict(Evictions {
        at_ms,
        versions: versions.iter().map(|(m, v)| vref(m, v)).collect(),
    })
}

fn restore(versions: &[(&str, &str)]) -> IndexCommand {
    IndexCommand::Restore(versions.iter().map(|(m, v)| vref(m, v)).collect())
}

fn entry_at(index: u64, command: IndexCommand) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(command),
    }
}

fn reason(response: &ApplyResponse) -> &str {
    match response {
        ApplyResponse::Refused { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Every key and value of the state machine's index tree.
fn dump(sm: &StateMachine) -> Vec<(Vec<u8>, Vec<u8>)> {
    sm.index
        .iter()
        .map(|item| {
            let (k, v) = item.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Only the keys a snapshot carries.
fn ops_dump(sm: &StateMachine) -> Vec<(Vec<u8>, Vec<u8>)> {
    dump(sm)
        .into_iter()
        .filter(|(k, _)| SNAPSHOT_PREFIXES.iter().any(|p| k.starts_with(p)))
        .collect()
}

/// A state machine with the next log index to use.
struct Log {
    sm: StateMachine,
    next: u64,
}

impl Log {
    fn new() -> Self {
        Self {
            sm: open(),
            next: 1,
        }
    }

    /// Applies `commands` as one batch of consecutive log entries.
    async fn batch(&mut self, commands: Vec<IndexCommand>) -> Vec<ApplyResponse> {
        let entries: Vec<_> = commands
            .into_iter()
            .map(|command| {
                let entry = entry_at(self.next, command);
                self.next += 1;
                entry
            })
            .collect();
        self.sm.apply(entries).await.unwrap()
    }

    /// Applies each command in its own batch.
    async fn one_by_one(&mut self, commands: Vec<IndexCommand>) -> Vec<ApplyResponse> {
        let mut out = Vec::new();
        for command in commands {
            out.extend(self.batch(vec![command]).await);
        }
        out
    }

    async fn one(&mut self, command: IndexCommand) -> ApplyResponse {
        self.batch(vec![command]).await.remove(0)
    }

    /// Continues at log index `index` (leaves a gap).
    fn skip_to(&mut self, index: u64) {
        assert!(index >= self.next);
        self.next = index;
    }

    fn last(&self) -> u64 {
        self.next - 1
    }

    fn reader(&self) -> IndexReader {
        self.sm.reader()
    }

    fn job(&self, id: &str) -> WarmJob {
        self.reader().warm_job(id).unwrap().expect("job exists")
    }

    /// The trail as (index, kind, detail, outcome).
    fn trail(&self) -> Vec<(u64, String, String, String)> {
        self.reader()
            .admin_trail(0)
            .unwrap()
            .into_iter()
            .map(|e| (e.index, e.kind, e.detail, e.outcome))
            .collect()
    }

    fn outcome(&self, index: u64) -> String {
        let trail = self.reader().admin_trail(index).unwrap();
        let event = trail.first().expect("an admin event");
        assert_eq!(event.index, index);
        event.outcome.clone()
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// Purge
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn purge_removes_only_that_version_and_clears_its_pin_and_eviction_mark() {
    let mut log = Log::new();
    let a1 = version(A, "v1.0.0", "a1");
    let a2 = version(A, "v1.1.0", "a2");
    let ab1 = version(AB, "v1.0.0", "ab1");
    log.batch(vec![
        IndexCommand::PutAll(a1.clone()),
        IndexCommand::PutAll(a2.clone()),
        IndexCommand::PutAll(ab1.clone()),
    ])
    .await;
    // Evicted first (a pinned version is never evicted), pinned afterwards by a pin job.
    assert_eq!(
        log.one(evict(10, &[(A, "v1.0.0")])).await,
        ApplyResponse::Inserted
    );
    let evicted_at = log.last();
    assert_eq!(
        log.one(submit("pin-job", true)).await,
        ApplyResponse::Inserted
    );
    let mut p = progress("pin-job", 1);
    p.pins = vec![(A.into(), "v1.0.0".into()), (A.into(), "v1.1.0".into())];
    assert_eq!(
        log.one(IndexCommand::WarmProgress(p)).await,
        ApplyResponse::Inserted
    );
    assert_eq!(log.reader().pins().unwrap().len(), 2);
    assert!(
        !log.reader().is_evicted(A, "v1.0.0").unwrap(),
        "a pinning job fetched it: kept again"
    );

    assert_eq!(log.one(purge(A, "v1.0.0")).await, ApplyResponse::Inserted);
    let purged_at = log.last();
    let reader = log.reader();

    for e in &a1 {
        assert_eq!(reader.get(&e.key).unwrap(), None, "{} purged", e.key);
    }
    for e in a2.iter().chain(&ab1) {
        assert_eq!(
            reader.get(&e.key).unwrap(),
            Some(e.clone()),
            "{} kept (another version, or a module sharing the prefix)",
            e.key
        );
    }
    assert_eq!(reader.entry_count(), 6);
    assert_eq!(
        reader.versions(A).unwrap()[0].version,
        "v1.1.0",
        "only v1.1.0 is left of {A}"
    );
    assert_eq!(reader.versions(AB).unwrap().len(), 1);

    assert_eq!(
        reader.pins().unwrap(),
        vec![(vref(A, "v1.1.0"), "pin-job".to_string())],
        "the purged version's pin is gone, the other stays"
    );
    assert!(reader.evicted().unwrap().is_empty());
    assert!(!reader.is_evicted(A, "v1.0.0").unwrap());

    let reclaims = reader.reclaims_after(evicted_at).unwrap();
    assert_eq!(
        reclaims,
        vec![Reclaim {
            index: purged_at,
            purged: vec![vref(A, "v1.0.0")],
            blobs: blobs_of(&a1),
        }]
    );
    assert_eq!(reader.ops_at().unwrap(), purged_at);
    assert_eq!(
        log.trail().last().unwrap(),
        &(
            purged_at,
            "purge".to_string(),
            "example.com/a@v1.0.0".to_string(),
            "ok".to_string()
        )
    );

    // A purge clears an eviction mark too.
    assert_eq!(
        log.one(evict(20, &[(AB, "v1.0.0")])).await,
        ApplyResponse::Inserted
    );
    assert!(log.reader().is_evicted(AB, "v1.0.0").unwrap());
    assert_eq!(log.one(purge(AB, "v1.0.0")).await, ApplyResponse::Inserted);
    assert!(!log.reader().is_evicted(AB, "v1.0.0").unwrap());
    assert!(log.reader().evicted().unwrap().is_empty());
}

#[tokio::test]
async fn purge_of_an_uncached_version_is_refused_with_a_reason() {
    let mut log = Log::new();
    let mod_only = artifact(A, "v1.0.0", ArtifactKind::Mod, "m");
    log.one(IndexCommand::Put(mod_only.clone())).await; // 1
    log.one(IndexCommand::Put(artifact(
        AB,
        "v2.0.0",
        ArtifactKind::Zip,
        "ab",
    )))
    .await; // 2

    let responses = log
        .batch(vec![
            purge(A, "v2.0.0"),             // 3: another module has it
            purge("example.com", "v1.0.0"), // 4: a prefix of the module
            purge(A, "v1.0.0"),             // 5: only its .mod
            purge(A, "v1.0.0"),             // 6: purged just before
        ])
        .await;
    assert_eq!(reason(&responses[0]), "example.com/a@v2.0.0 is not cached");
    assert_eq!(reason(&responses[1]), "example.com@v1.0.0 is not cached");
    assert_eq!(responses[2], ApplyResponse::Inserted);
    assert_eq!(reason(&responses[3]), "example.com/a@v1.0.0 is not cached");
    assert_eq!(log.one(purge(A, "v1.0.0")).await, responses[3]); // 7

    let reader = log.reader();
    assert_eq!(
        reader.reclaims_after(0).unwrap(),
        vec![Reclaim {
            index: 5,
            purged: vec![vref(A, "v1.0.0")],
            blobs: vec![mod_only.blob.sha256.clone()],
        }],
        "a refused purge records no reclaim"
    );
    assert_eq!(reader.ops_at().unwrap(), 5, "a refused purge is no change");
    assert_eq!(reader.entry_count(), 1);
    let outcomes: Vec<_> = (3..=7).map(|i| log.outcome(i)).collect();
    assert_eq!(
        outcomes,
        [
            "refused: example.com/a@v2.0.0 is not cached",
            "refused: example.com@v1.0.0 is not cached",
            "ok",
            "refused: example.com/a@v1.0.0 is not cached",
            "refused: example.com/a@v1.0.0 is not cached",
        ]
    );
}

#[tokio::test]
async fn a_put_after_a_purge_in_the_same_batch_inserts() {
    let a1 = version(A, "v1.0.0", "a1");
    let mut refill = a1[2].clone();
    refill.blob.sha256 = sha("new-zip");
    let commands = vec![
        purge(A, "v1.0.0"),
        IndexCommand::Put(refill.clone()), // other content: no conflict after the tombstone
        IndexCommand::Put(a1[0].clone()),  // same content: inserted, not "already present"
    ];

    let mut batched = Log::new();
    batched.one(IndexCommand::PutAll(a1.clone())).await;
    let responses = batched.batch(commands.clone()).await;
    assert_eq!(responses, vec![ApplyResponse::Inserted; 3]);
    let reader = batched.reader();
    assert_eq!(reader.get(&refill.key).unwrap(), Some(refill.clone()));
    assert_eq!(reader.get(&a1[0].key).unwrap(), Some(a1[0].clone()));
    assert_eq!(reader.get(&a1[1].key).unwrap(), None);
    assert_eq!(reader.reclaims_after(0).unwrap()[0].blobs, blobs_of(&a1));

    let mut single = Log::new();
    single.one(IndexCommand::PutAll(a1)).await;
    assert_eq!(single.one_by_one(commands).await, responses);
    assert_eq!(dump(&single.sm), dump(&batched.sm));
}

#[tokio::test]
async fn a_put_then_a_purge_in_the_same_batch_leaves_nothing() {
    let a1 = version(A, "v1.0.0", "a1");
    let commands = vec![
        IndexCommand::Put(a1[0].clone()),
        IndexCommand::PutAll(a1[1..].to_vec()),
        purge(A, "v1.0.0"),
    ];
    let mut batched = Log::new();
    let responses = batched.batch(commands.clone()).await;
    assert_eq!(
        responses,
        vec![
            ApplyResponse::Inserted,
            ApplyResponse::All(vec![ApplyResponse::Inserted; 2]),
            ApplyResponse::Inserted,
        ]
    );
    let reader = batched.reader();
    assert!(reader.all_entries().unwrap().is_empty());
    assert_eq!(reader.entry_count(), 0);
    assert_eq!(
        reader.reclaims_after(0).unwrap(),
        vec![Reclaim {
            index: 3,
            purged: vec![vref(A, "v1.0.0")],
            blobs: blobs_of(&a1),
        }]
    );

    let mut single = Log::new();
    assert_eq!(single.one_by_one(commands).await, responses);
    assert_eq!(dump(&single.sm), dump(&batched.sm));
}

// ---------------------------------------------------------------------------------------
// Block rules and the admin trail
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn block_and_unblock_update_blocks_and_blocks_at() {
    let mut log = Log::new();
    assert_eq!(log.reader().blocks_at().unwrap(), 0);
    assert!(log.reader().blocks().unwrap().is_empty());

    let responses = log
        .batch(vec![
            block("example.com/b", "licence"),     // 1
            block("example.com/a@<v1.2.0", "CVE"), // 2
        ])
        .await;
    assert_eq!(responses, vec![ApplyResponse::Inserted; 2]);
    let record = |rule: &str, reason: &str| BlockRecord {
        rule: rule.into(),
        reason: reason.into(),
        by: ACTOR.into(),
        at_ms: AT_MS,
    };
    assert_eq!(
        log.reader().blocks().unwrap(),
        vec![
            record("example.com/a@<v1.2.0", "CVE"),
            record("example.com/b", "licence")
        ]
    );
    assert_eq!(log.reader().blocks_at().unwrap(), 2);

    let r = log.one(unblock("example.com/zzz")).await; // 3
    assert_eq!(reason(&r), "no block rule \"example.com/zzz\"");
    assert_eq!(
        log.reader().blocks_at().unwrap(),
        2,
        "a refusal changes nothing"
    );
    assert_eq!(log.reader().blocks().unwrap().len(), 2);

    // Blocking a rule again replaces its reason.
    log.one(block("example.com/b", "changed")).await; // 4
    assert_eq!(
        log.reader().blocks().unwrap()[1],
        record("example.com/b", "changed")
    );
    assert_eq!(log.reader().blocks_at().unwrap(), 4);

    assert_eq!(
        log.one(unblock("example.com/b")).await,
        ApplyResponse::Inserted
    ); // 5
    assert_eq!(
        log.reader().blocks().unwrap(),
        vec![record("example.com/a@<v1.2.0", "CVE")]
    );
    assert_eq!(log.reader().blocks_at().unwrap(), 5);

    // In one batch: an unblock sees the removal and the addition before it.
    let responses = log
        .batch(vec![
            unblock("example.com/a@<v1.2.0"), // 6
            unblock("example.com/a@<v1.2.0"), // 7
            block("example.com/c", "c"),      // 8
            unblock("example.com/c"),         // 9
        ])
        .await;
    assert_eq!(responses[0], ApplyResponse::Inserted);
    assert_eq!(
        reason(&responses[1]),
        "no block rule \"example.com/a@<v1.2.0\""
    );
    assert_eq!(
        responses[2..],
        [ApplyResponse::Inserted, ApplyResponse::Inserted]
    );
    assert!(log.reader().blocks().unwrap().is_empty());
    assert_eq!(log.reader().blocks_at().unwrap(), 9);

    let trail = log.trail();
    assert_eq!(
        trail[0],
        (
            1,
            "block".into(),
            "example.com/b reason=\"licence\"".into(),
            "ok".into()
        )
    );
    assert_eq!(
        trail[2],
        (
            3,
            "unblock".into(),
            "example.com/zzz".into(),
            "refused: no block rule \"example.com/zzz\"".into()
        )
    );
    assert_eq!(trail.len(), 9);
}

#[tokio::test]
async fn every_operating_action_lands_in_the_admin_trail_with_its_outcome() {
    let mut log = Log::new();
    let mut full_spec = spec("j1", true);
    full_spec.no_deps = true;
    let responses = log
        .batch(vec![
            admin(AdminAction::WarmSubmit(full_spec)), // 1
            submit("j1", false),                       // 2
            cancel("nope"),                            // 3
            cancel("j1"),                              // 4
            cancel("j1"),                              // 5
            unpin("j1"),                               // 6
            purge(A, "v1.0.0"),                        // 7
            block(A, "r"),                             // 8
            unblock(A),                                // 9
            unblock(A),                                // 10
        ])
        .await;
    // Not admin actions: not in the trail.
    log.batch(vec![
        IndexCommand::WarmProgress(progress("j1", 1)), // 11
        evict(1, &[(A, "v1.0.0")]),                    // 12
        restore(&[(A, "v1.0.0")]),                     // 13
    ])
    .await;

    let expected: Vec<(u64, &str, &str, &str)> = vec![
        (1, "warm-submit", "j1 test job pin no-deps", "ok"),
        (
            2,
            "warm-submit",
            "j1 test job",
            "refused: a job \"j1\" exists",
        ),
        (3, "warm-cancel", "nope", "refused: no job \"nope\""),
        (4, "warm-cancel", "j1", "ok"),
        (
            5,
            "warm-cancel",
            "j1",
            "refused: job j1 is already cancelled",
        ),
        (6, "warm-unpin", "j1", "refused: job \"j1\" pinned nothing"),
        (
            7,
            "purge",
            "example.com/a@v1.0.0",
            "refused: example.com/a@v1.0.0 is not cached",
        ),
        (8, "block", "example.com/a reason=\"r\"", "ok"),
        (9, "unblock", "example.com/a", "ok"),
        (
            10,
            "unblock",
            "example.com/a",
            "refused: no block rule \"example.com/a\"",
        ),
    ];
    let expected: Vec<(u64, String, String, String)> = expected
        .into_iter()
        .map(|(i, k, d, o)| (i, k.into(), d.into(), o.into()))
        .collect();
    assert_eq!(log.trail(), expected);
    // The responses agree with the outcomes.
    for (response, (_, _, _, outcome)) in responses.iter().zip(&expected) {
        match response {
            ApplyResponse::Refused { reason } => assert_eq!(outcome, &format!("refused: {reason}")),
            other => {
                assert_eq!(other, &ApplyResponse::Inserted);
                assert_eq!(outcome, "ok");
            }
        }
    }
    for event in log.reader().admin_trail(0).unwrap() {
        assert_eq!(
            (event.actor.as_str(), event.node, event.at_ms),
            (ACTOR, 1, AT_MS)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Warm jobs
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn warm_submit_queues_a_job_and_refuses_a_duplicate_id() {
    let mut log = Log::new();
    assert_eq!(log.one(submit("j1", false)).await, ApplyResponse::Inserted);
    let job = log.job("j1");
    assert_eq!(
        job,
        WarmJob {
            spec: spec("j1", false),
            submitted_by: ACTOR.into(),
            submitted_at_ms: AT_MS,
            state: JobState::Queued,
            done: 0,
            total: 0,
            failed: 0,
            bytes: 0,
            filled: 0,
            runner: None,
            runs: 0,
            updated_at_ms: AT_MS,
            failures: Vec::new(),
            error: None,
        }
    );
    // A duplicate in a later batch, and one in the same batch as the first submission.
    let r = log.one(submit("j1", true)).await;
    assert_eq!(reason(&r), "a job \"j1\" exists");
    let responses = log
        .batch(vec![submit("j2", false), submit("j2", true)])
        .await;
    assert_eq!(responses[0], ApplyResponse::Inserted);
    assert_eq!(reason(&responses[1]), "a job \"j2\" exists");
    assert!(!log.job("j2").spec.pin, "the first submission stays");
    // Even a finished job keeps its id.
    log.one(cancel("j1")).await;
    assert_eq!(
        reason(&log.one(submit("j1", false)).await),
        "a job \"j1\" exists"
    );
    assert_eq!(log.reader().warm_jobs().unwrap().len(), 2);
}

#[tokio::test]
async fn warm_submit_refuses_more_than_max_open_jobs() {
    let mut log = Log::new();
    for i in 0..MAX_OPEN_JOBS {
        assert_eq!(
            log.one(submit(&format!("job{i:02}"), false)).await,
            ApplyResponse::Inserted
        );
    }
    let r = log.one(submit("extra", false)).await;
    assert_eq!(
        reason(&r),
        format!(
            "{MAX_OPEN_JOBS} jobs are queued or running (at most {MAX_OPEN_JOBS}); wait or cancel one"
        )
    );
    assert!(log.reader().warm_job("extra").unwrap().is_none());

    // A finished job no longer counts...
    let mut finish = progress("job00", 1);
    finish.finished = Some(JobState::Done);
    log.one(IndexCommand::WarmProgress(finish)).await;
    assert_eq!(
        log.one(submit("extra", false)).await,
        ApplyResponse::Inserted
    );
    assert!(matches!(
        log.one(submit("extra2", false)).await,
        ApplyResponse::Refused { .. }
    ));
    // ...nor does a cancelled one.
    log.one(cancel("job01")).await;
    assert_eq!(
        log.one(submit("extra2", false)).await,
        ApplyResponse::Inserted
    );
    assert_eq!(log.reader().warm_jobs().unwrap().len(), MAX_OPEN_JOBS + 2);
    let open = log
        .reader()
        .warm_jobs()
        .unwrap()
        .into_iter()
        .filter(|j| !j.state.is_final())
        .count();
    assert_eq!(open, MAX_OPEN_JOBS);
}

#[tokio::test]
async fn open_jobs_limit_is_the_same_batched_or_not() {
    let mut commands: Vec<_> = (0..=MAX_OPEN_JOBS)
        .map(|i| submit(&format!("job{i:02}"), false))
        .collect();
    // Also: a cancellation earlier in the batch frees a place.
    commands.push(cancel("job00"));
    commands.push(submit("after-cancel", false));

    let mut single = Log::new();
    let expected = single.one_by_one(commands.clone()).await;
    assert!(matches!(
        expected[MAX_OPEN_JOBS],
        ApplyResponse::Refused { .. }
    ));
    assert_eq!(expected[MAX_OPEN_JOBS + 2], ApplyResponse::Inserted);

    let mut batched = Log::new();
    let responses = batched.batch(commands).await;
    assert_eq!(
        responses[MAX_OPEN_JOBS],
        expected[MAX_OPEN_JOBS],
        "job #{} of one batch must be refused like when applied alone",
        MAX_OPEN_JOBS + 1
    );
    assert_eq!(responses, expected);
    assert_eq!(dump(&batched.sm), dump(&single.sm));
}

#[tokio::test]
async fn warm_progress_counts_each_done_item_once() {
    let mut log = Log::new();
    log.one(submit("j", false)).await;

    let mut p = progress("j", 1);
    p.started = true;
    p.total = 5;
    p.done = vec![done("a", 10, true), done("b", 20, false)];
    assert_eq!(
        log.one(IndexCommand::WarmProgress(p)).await,
        ApplyResponse::Inserted
    );
    let job = log.job("j");
    assert_eq!((job.done, job.bytes, job.filled, job.total), (2, 30, 1, 5));

    // A new leader resumes: "b" again, "c" twice in one checkpoint.
    let mut p = progress("j", 2);
    p.started = true;
    p.done = vec![done("b", 20, false), done("c", 5, true), done("c", 5, true)];
    log.one(IndexCommand::WarmProgress(p)).await;
    let job = log.job("j");
    assert_eq!((job.done, job.bytes, job.filled), (3, 35, 2));

    // "d" in two checkpoints of one batch, "a" again.
    let mut p1 = progress("j", 2);
    p1.done = vec![done("d", 100, true)];
    let mut p2 = progress("j", 2);
    p2.done = vec![done("d", 100, true), done("a", 10, true)];
    let responses = log
        .batch(vec![
            IndexCommand::WarmProgress(p1),
            IndexCommand::WarmProgress(p2),
        ])
        .await;
    assert_eq!(responses, vec![ApplyResponse::Inserted; 2]);
    let job = log.job("j");
    assert_eq!((job.done, job.bytes, job.filled), (4, 135, 3));
    assert_eq!(job.runs, 2);
    assert_eq!(
        log.reader().warm_done("j").unwrap(),
        ["a", "b", "c", "d"].into_iter().map(String::from).collect()
    );
    assert!(log.reader().warm_done("other").unwrap().is_empty());
}

#[tokio::test]
async fn warm_done_items_of_a_job_are_not_those_of_a_job_with_a_longer_id() {
    let mut log = Log::new();
    log.batch(vec![submit("j", false), submit("j2", false)])
        .await;
    let mut p = progress("j2", 1);
    p.done = vec![done("x", 1, false)];
    log.one(IndexCommand::WarmProgress(p)).await;
    assert!(log.reader().warm_done("j").unwrap().is_empty());
    let mut p = progress("j", 1);
    p.done = vec![done("x", 1, false)];
    log.one(IndexCommand::WarmProgress(p)).await;
    assert_eq!(log.job("j").done, 1, "j2's item does not count for j");
}

#[tokio::test]
async fn warm_progress_accumulates_failures_and_caps_the_list() {
    let mut log = Log::new();
    log.one(submit("j", false)).await;
    let failures = |range: std::ops::Range<usize>| -> Vec<String> {
        range.map(|i| format!("item{i:02}: boom")).collect()
    };
    let mut p = progress("j", 1);
    p.failed = failures(0..30);
    p.done = vec![done("ok", 1, false)];
    log.one(IndexCommand::WarmProgress(p)).await;
    let job = log.job("j");
    assert_eq!((job.failed, job.failures.len()), (30, 30));
    assert_eq!(job.total, 31, "total is at least done + failed");

    let mut p = progress("j", 1);
    p.failed = failures(30..60);
    log.one(IndexCommand::WarmProgress(p)).await;
    let job = log.job("j");
    assert_eq!(job.failed, 60, "every failure is counted");
    assert_eq!(job.failures.len(), MAX_JOB_FAILURES, "the newest are kept");
    assert_eq!(job.failures, failures(60 - MAX_JOB_FAILURES..60));
    assert_eq!(job.total, 61);
}

#[tokio::test]
async fn warm_progress_sets_runner_runs_and_total_and_applies_the_final_state() {
    let mut log = Log::new();
    log.one(submit("j", false)).await;
    let mut p = progress("j", 3);
    p.total = 10;
    p.at_ms = 7_000;
    log.one(IndexCommand::WarmProgress(p)).await;
    let job = log.job("j");
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.runner, Some(3));
    assert_eq!(job.runs, 0, "not a started checkpoint");
    assert_eq!((job.total, job.updated_at_ms), (10, 7_000));

    let mut p = progress("j", 2);
    p.started = true;
    p.total = 4; // a smaller total never lowers it
    p.error = Some("transient".into());
    log.one(IndexCommand::WarmProgress(p)).await;
    let job = log.job("j");
    assert_eq!((job.runner, job.runs, job.total), (Some(2), 1, 10));
    assert_eq!(job.error.as_deref(), Some("transient"));

    let mut p = progress("j", 1);
    p.started = true;
    p.total = 12;
    log.one(IndexCommand::WarmProgress(p)).await;
    let job = log.job("j");
    assert_eq!((job.runner, job.runs, job.total), (Some(1), 2, 12));
    assert_eq!(
        job.error.as_deref(),
        Some("transient"),
        "no error in a checkpoint keeps the last one"
    );

    let mut p = progress("j", 1);
    p.finished = Some(JobState::Failed);
    p.error = Some("graph too large".into());
    log.one(IndexCommand::WarmProgress(p)).await;
    let job = log.job("j");
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.error.as_deref(), Some("graph too large"));

    // Final: further checkpoints and a cancellation are refused.
    let before = log.job("j");
    let mut p = progress("j", 1);
    p.done = vec![done("late", 1, false)];
    assert_eq!(
        reason(&log.one(IndexCommand::WarmProgress(p)).await),
        "job j is failed"
    );
    assert_eq!(
        reason(&log.one(cancel("j")).await),
        "job j is already failed"
    );
    assert_eq!(log.job("j"), before);

    // A job finished as done.
    log.one(submit("k", false)).await;
    let mut p = progress("k", 1);
    p.started = true;
    p.done = vec![done("x", 3, true)];
    p.finished = Some(JobState::Done);
    log.one(IndexCommand::WarmProgress(p)).await;
    let job = log.job("k");
    assert_eq!(
        (job.state, job.done, job.total, job.runs),
        (JobState::Done, 1, 1, 1)
    );

    // A checkpoint for an unknown job.
    assert_eq!(
        reason(
            &log.one(IndexCommand::WarmProgress(progress("nope", 1)))
                .await
        ),
        "no job \"nope\""
    );
    assert!(log.reader().warm_job("nope").unwrap().is_none());
}

#[tokio::test]
async fn warm_progress_pins_only_for_pin_jobs_and_unpin_removes_them() {
    let mut log = Log::new();
    log.batch(vec![submit("pinning", true), submit("plain", false)])
        .await;
    let mut p = progress("pinning", 1);
    p.pins = vec![(A.into(), "v1.0.0".into()), (AB.into(), "v2.0.0".into())];
    log.one(IndexCommand::WarmProgress(p.clone())).await;
    let mut q = progress("plain", 1);
    q.pins = vec![(A.into(), "v3.0.0".into())];
    assert_eq!(
        log.one(IndexCommand::WarmProgress(q)).await,
        ApplyResponse::Inserted
    );
    assert_eq!(
        log.reader().pins().unwrap(),
        vec![
            (vref(A, "v1.0.0"), "pinning".to_string()),
            (vref(AB, "v2.0.0"), "pinning".to_string()),
        ]
    );

    assert_eq!(
        reason(&log.one(unpin("plain")).await),
        "job \"plain\" pinned nothing"
    );
    assert_eq!(log.one(unpin("pinning")).await, ApplyResponse::Inserted);
    assert!(log.reader().pins().unwrap().is_empty());
    assert_eq!(
        reason(&log.one(unpin("pinning")).await),
        "job \"pinning\" pinned nothing"
    );
}

#[tokio::test]
async fn a_checkpoint_for_a_cancelled_job_is_refused_and_changes_nothing() {
    let mut log = Log::new();
    log.one(submit("j", true)).await;
    let mut p = progress("j", 1);
    p.started = true;
    p.done = vec![done("a", 1, true)];
    p.pins = vec![(A.into(), "v1.0.0".into())];
    log.one(IndexCommand::WarmProgress(p)).await;
    assert_eq!(log.one(cancel("j")).await, ApplyResponse::Inserted);
    let job = log.job("j");
    assert_eq!(job.state, JobState::Cancelled);
    let before = dump(&log.sm);

    let late = || {
        let mut p = progress("j", 2);
        p.started = true;
        p.done = vec![done("a", 1, true), done("b", 2, true)];
        p.failed = vec!["c: boom".into()];
        p.total = 99;
        p.pins = vec![(A.into(), "v2.0.0".into())];
        p.finished = Some(JobState::Done);
        p.error = Some("late".into());
        IndexCommand::WarmProgress(p)
    };
    let r = log.one(late()).await;
    assert_eq!(reason(&r), "job j is cancelled");
    assert_eq!(log.job("j"), job);
    assert_eq!(log.reader().warm_done("j").unwrap().len(), 1);
    assert_eq!(log.reader().pins().unwrap().len(), 1);
    // Only the applied log id moved.
    let changed: Vec<_> = dump(&log.sm)
        .into_iter()
        .filter(|kv| !before.contains(kv))
        .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
        .collect();
    assert_eq!(changed, ["\u{fffd}meta/last_applied"]);

    // Cancelled and checkpointed in one batch.
    log.one(submit("k", false)).await;
    let mut p = progress("k", 1);
    p.done = vec![done("x", 1, false)];
    let responses = log
        .batch(vec![cancel("k"), IndexCommand::WarmProgress(p)])
        .await;
    assert_eq!(responses[0], ApplyResponse::Inserted);
    assert_eq!(reason(&responses[1]), "job k is cancelled");
    let job = log.job("k");
    assert_eq!((job.state, job.done), (JobState::Cancelled, 0));
    assert!(log.reader().warm_done("k").unwrap().is_empty());
}

#[tokio::test]
async fn unpin_sees_pins_made_earlier_in_the_same_batch() {
    let commands = || {
        let mut p = progress("pinning", 1);
        p.pins = vec![(A.into(), "v1.0.0".into())];
        vec![
            submit("pinning", true),
            IndexCommand::WarmProgress(p),
            unpin("pinning"),
        ]
    };
    let mut single = Log::new();
    let expected = single.one_by_one(commands()).await;
    assert_eq!(expected[2], ApplyResponse::Inserted);
    assert!(single.reader().pins().unwrap().is_empty());

    let mut batched = Log::new();
    let responses = batched.batch(commands()).await;
    assert_eq!(
        responses[2], expected[2],
        "unpin in the pinning checkpoint's batch"
    );
    assert!(
        batched.reader().pins().unwrap().is_empty(),
        "the pin must be gone"
    );
    assert_eq!(dump(&batched.sm), dump(&single.sm));
}

#[tokio::test]
async fn unpin_after_a_purge_in_the_same_batch_is_refused_like_alone() {
    let setup = || {
        let mut p = progress("pinning", 1);
        p.pins = vec![(A.into(), "v1.0.0".into())];
        vec![
            IndexCommand::PutAll(version(A, "v1.0.0", "a1")),
            submit("pinning", true),
            IndexCommand::WarmProgress(p),
        ]
    };
    let commands = || vec![purge(A, "v1.0.0"), unpin("pinning")];

    let mut single = Log::new();
    single.one_by_one(setup()).await;
    let expected = single.one_by_one(commands()).await;
    assert_eq!(reason(&expected[1]), "job \"pinning\" pinned nothing");

    let mut batched = Log::new();
    batched.one_by_one(setup()).await;
    let responses = batched.batch(commands()).await;
    assert_eq!(responses, expected);
    assert_eq!(dump(&batched.sm), dump(&single.sm), "same trail outcome");
}

// ---------------------------------------------------------------------------------------
// Evictions, restores, kept blobs
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn evict_skips_pinned_evicted_and_zipless_versions() {
    let mut log = Log::new();
    let v1 = version(A, "v1.0.0", "v1");
    let v2 = version(A, "v2.0.0", "v2");
    let mut p = progress("pinning", 1);
    p.pins = vec![(A.into(), "v2.0.0".into())];
    log.batch(vec![
        IndexCommand::PutAll(v1.clone()),
        IndexCommand::PutAll(v2.clone()),
        IndexCommand::PutAll(version(A, "v3.0.0", "v3")[..2].to_vec()), // no zip
        IndexCommand::PutAll(version(A, "v4.0.0", "v4")),
        submit("pinning", true),
        IndexCommand::WarmProgress(p),
    ])
    .await;
    assert_eq!(log.reader().ops_at().unwrap(), 0);

    let r = log
        .one(evict(
            777,
            &[
                (A, "v1.0.0"),
                (A, "v2.0.0"), // pinned
                (A, "v3.0.0"), // no zip
                (A, "v9.0.0"), // not cached
                (A, "v1.0.0"), // twice in one entry
            ],
        ))
        .await;
    assert_eq!(r, ApplyResponse::Inserted);
    let at = log.last();
    let reader = log.reader();
    assert_eq!(reader.evicted().unwrap(), vec![(vref(A, "v1.0.0"), 777)]);
    assert!(reader.is_evicted(A, "v1.0.0").unwrap());
    assert!(!reader.is_evicted(A, "v2.0.0").unwrap());
    assert!(!reader.is_evicted(A, "v3.0.0").unwrap());
    assert_eq!(
        reader.reclaims_after(0).unwrap(),
        vec![Reclaim {
            index: at,
            purged: Vec::new(),
            blobs: vec![v1[2].blob.sha256.clone()],
        }]
    );
    assert_eq!(reader.ops_at().unwrap(), at);
    assert_eq!(
        reader.get(&v1[2].key).unwrap(),
        Some(v1[2].clone()),
        "the entry stays"
    );

    // Nothing left to evict: no change, no record.
    let r = log
        .one(evict(888, &[(A, "v1.0.0"), (A, "v2.0.0"), (A, "v3.0.0")]))
        .await;
    assert_eq!(r, ApplyResponse::AlreadyPresent);
    assert_eq!(log.reader().ops_at().unwrap(), at);
    assert_eq!(log.reader().reclaims_after(at).unwrap(), vec![]);
    assert_eq!(
        log.reader().evicted().unwrap(),
        vec![(vref(A, "v1.0.0"), 777)]
    );

    // Evicted after a put earlier in the same batch; not after a purge.
    let v5 = version(A, "v5.0.0", "v5");
    let responses = log
        .batch(vec![
            IndexCommand::PutAll(v5.clone()),
            evict(999, &[(A, "v5.0.0")]),
            purge(A, "v4.0.0"),
            evict(999, &[(A, "v4.0.0")]),
        ])
        .await;
    assert_eq!(responses[1], ApplyResponse::Inserted);
    assert_eq!(responses[3], ApplyResponse::AlreadyPresent);
    assert!(log.reader().is_evicted(A, "v5.0.0").unwrap());
    assert!(!log.reader().is_evicted(A, "v4.0.0").unwrap());

    // Pinned earlier in the same batch: not evicted.
    let mut p = progress("pinning", 1);
    p.pins = vec![(A.into(), "v6.0.0".into())];
    let responses = log
        .batch(vec![
            IndexCommand::PutAll(version(A, "v6.0.0", "v6")),
            IndexCommand::WarmProgress(p),
            evict(1_000, &[(A, "v6.0.0")]),
        ])
        .await;
    assert_eq!(responses[2], ApplyResponse::AlreadyPresent);
    assert!(!log.reader().is_evicted(A, "v6.0.0").unwrap());
}

#[tokio::test]
async fn kept_blobs_exclude_evicted_zips_but_keep_a_blob_a_kept_entry_shares() {
    let mut log = Log::new();
    let shared_zip_a = artifact(A, "v1.0.0", ArtifactKind::Zip, "shared");
    let shared_zip_ab = artifact(AB, "v1.0.0", ArtifactKind::Zip, "shared");
    let own_zip = artifact(A, "v2.0.0", ArtifactKind::Zip, "own");
    let info = artifact(A, "v2.0.0", ArtifactKind::Info, "info");
    log.one(IndexCommand::PutAll(vec![
        shared_zip_a.clone(),
        shared_zip_ab.clone(),
        own_zip.clone(),
        info.clone(),
    ]))
    .await;
    log.one(evict(1, &[(A, "v1.0.0"), (A, "v2.0.0")])).await;

    let reader = log.reader();
    let kept: Vec<String> = reader
        .kept_blobs()
        .unwrap()
        .into_iter()
        .map(|b| b.sha256)
        .collect();
    assert_eq!(
        kept,
        sorted(vec![sha("shared"), sha("info")]),
        "the shared blob stays (example.com/ab keeps it), the evicted-only zip goes"
    );
    assert_eq!(reader.all_blobs().unwrap().len(), 3, "all entries stay");
    assert_eq!(
        reader.reclaims_after(0).unwrap()[0].blobs,
        vec![sha("shared"), sha("own")],
        "the record lists both; a node keeps what kept_blobs lists"
    );
}

#[tokio::test]
async fn restore_clears_eviction_marks_and_bumps_ops_at() {
    let mut log = Log::new();
    let v1 = version(A, "v1.0.0", "v1");
    log.batch(vec![
        IndexCommand::PutAll(v1.clone()),
        IndexCommand::PutAll(version(A, "v2.0.0", "v2")),
    ])
    .await;
    log.one(evict(5, &[(A, "v1.0.0"), (A, "v2.0.0")])).await;
    let evicted_at = log.last();
    assert!(!log
        .reader()
        .kept_blobs()
        .unwrap()
        .iter()
        .any(|b| b.sha256 == v1[2].blob.sha256));

    let r = log
        .one(restore(&[(A, "v1.0.0"), ("example.com/unknown", "v0.1.0")]))
        .await;
    assert_eq!(r, ApplyResponse::Inserted);
    let reader = log.reader();
    assert!(!reader.is_evicted(A, "v1.0.0").unwrap());
    assert_eq!(reader.evicted().unwrap(), vec![(vref(A, "v2.0.0"), 5)]);
    assert_eq!(reader.ops_at().unwrap(), log.last());
    assert!(log.last() > evicted_at);
    assert!(reader
        .kept_blobs()
        .unwrap()
        .iter()
        .any(|b| b.sha256 == v1[2].blob.sha256));
    assert_eq!(
        reader.reclaims_after(evicted_at).unwrap(),
        vec![],
        "no record"
    );

    // Evictable again; and restored in the same batch as it is evicted.
    let responses = log
        .batch(vec![evict(6, &[(A, "v1.0.0")]), restore(&[(A, "v1.0.0")])])
        .await;
    assert_eq!(responses, vec![ApplyResponse::Inserted; 2]);
    assert!(log
        .reader()
        .evicted()
        .unwrap()
        .iter()
        .all(|(v, _)| v.version != "v1.0.0"));
    assert_eq!(log.reader().ops_at().unwrap(), log.last());
}

// ---------------------------------------------------------------------------------------
// Reclaim records
// ---------------------------------------------------------------------------------------

/// Puts a zip of `A@version` and purges it at log index `index` (the put at `index - 1`).
async fn reclaim_at(log: &mut Log, index: u64, version: &str) {
    log.skip_to(index - 1);
    let responses = log
        .batch(vec![
            IndexCommand::Put(artifact(A, version, ArtifactKind::Zip, version)),
            purge(A, version),
        ])
        .await;
    assert_eq!(responses, vec![ApplyResponse::Inserted; 2]);
    assert_eq!(log.last(), index);
}

fn indexes(records: &[Reclaim]) -> Vec<u64> {
    records.iter().map(|r| r.index).collect()
}

#[tokio::test]
async fn reclaims_after_returns_the_records_after_an_index_in_order() {
    let mut log = Log::new();
    reclaim_at(&mut log, 3, "v1.0.0").await;
    reclaim_at(&mut log, 5, "v2.0.0").await;
    reclaim_at(&mut log, 11, "v3.0.0").await;
    reclaim_at(&mut log, 100, "v4.0.0").await;
    let reader = log.reader();
    assert_eq!(indexes(&reader.reclaims_after(0).unwrap()), [3, 5, 11, 100]);
    assert_eq!(indexes(&reader.reclaims_after(3).unwrap()), [5, 11, 100]);
    assert_eq!(indexes(&reader.reclaims_after(4).unwrap()), [5, 11, 100]);
    assert_eq!(indexes(&reader.reclaims_after(10).unwrap()), [11, 100]);
    assert_eq!(
        indexes(&reader.reclaims_after(100).unwrap()),
        [] as [u64; 0]
    );
    assert_eq!(
        indexes(&reader.reclaims_after(u64::MAX).unwrap()),
        [] as [u64; 0]
    );
    let third = &reader.reclaims_after(10).unwrap()[0];
    assert_eq!(third.purged, vec![vref(A, "v3.0.0")]);
    assert_eq!(third.blobs, vec![sha("v3.0.0")]);
    // Reclaim records are outside every artifact and ops scan.
    assert_eq!(reader.entry_count(), 0);
    assert!(reader.warm_jobs().unwrap().is_empty() && reader.pins().unwrap().is_empty());
}

#[tokio::test]
async fn reclaim_records_more_than_max_reclaims_old_are_dropped() {
    let mut log = Log::new();
    let first = 2;
    reclaim_at(&mut log, first, "v1.0.0").await;
    let second = first + MAX_RECLAIMS - 1;
    reclaim_at(&mut log, second, "v2.0.0").await;
    assert_eq!(
        indexes(&log.reader().reclaims_after(0).unwrap()),
        [first, second],
        "within MAX_RECLAIMS of each other: both kept"
    );

    let third = first + MAX_RECLAIMS + 1;
    reclaim_at(&mut log, third, "v3.0.0").await;
    assert_eq!(
        indexes(&log.reader().reclaims_after(0).unwrap()),
        [second, third],
        "the record more than MAX_RECLAIMS before the newest is dropped"
    );

    // An eviction's record trims too.
    let fourth = second + MAX_RECLAIMS + 1;
    log.skip_to(fourth - 1);
    log.batch(vec![
        IndexCommand::Put(artifact(AB, "v1.0.0", ArtifactKind::Zip, "z")),
        evict(1, &[(AB, "v1.0.0")]),
    ])
    .await;
    assert_eq!(
        indexes(&log.reader().reclaims_after(0).unwrap()),
        [third, fourth]
    );
    let keys = log.sm.index.scan_prefix(RECLAIM_PREFIX).count();
    assert_eq!(keys, 2);
}

#[tokio::test]
async fn reclaim_trimming_is_the_same_batched_or_not() {
    let commands = vec![
        IndexCommand::Put(artifact(A, "v1.0.0", ArtifactKind::Zip, "one")),
        purge(A, "v1.0.0"),
        IndexCommand::Put(artifact(A, "v2.0.0", ArtifactKind::Zip, "two")),
        purge(A, "v2.0.0"),
    ];
    // Indexes 1, 2 and then far later 2 + MAX_RECLAIMS + 1 (put), 2 + MAX_RECLAIMS + 2.
    let entries = |commands: Vec<IndexCommand>| -> Vec<Entry<TypeConfig>> {
        let idx = [1, 2, MAX_RECLAIMS + 3, MAX_RECLAIMS + 4];
        commands
            .into_iter()
            .zip(idx)
            .map(|(c, i)| entry_at(i, c))
            .collect()
    };
    let mut single = open();
    for e in entries(commands.clone()) {
        single.apply([e]).await.unwrap();
    }
    assert_eq!(
        indexes(&single.reader().reclaims_after(0).unwrap()),
        [MAX_RECLAIMS + 4]
    );

    let mut batched = open();
    batched.apply(entries(commands)).await.unwrap();
    assert_eq!(
        indexes(&batched.reader().reclaims_after(0).unwrap()),
        [MAX_RECLAIMS + 4],
        "the record at index 2 is more than MAX_RECLAIMS old"
    );
    assert_eq!(dump(&batched), dump(&single));
}

// ---------------------------------------------------------------------------------------
// Snapshots and determinism
// ---------------------------------------------------------------------------------------

/// A log touching every kind of operating state, with in-batch interactions the overlay
/// handles (purge + put, put + purge, block + unblock, checkpoints repeating items, evict +
/// restore, submit + cancel).
fn script() -> Vec<Vec<IndexCommand>> {
    let mut p1 = progress("running", 1);
    p1.started = true;
    p1.total = 7;
    p1.done = vec![done("a", 10, true), done("b", 20, false)];
    p1.failed = vec!["x: boom".into()];
    let mut p2 = progress("running", 2);
    p2.started = true;
    p2.done = vec![done("b", 20, false), done("c", 30, true)];
    let mut pin = progress("pinning", 1);
    pin.started = true;
    pin.done = vec![done("a@v1", 1, true)];
    pin.pins = vec![(A.into(), "v2.0.0".into()), (AB.into(), "v1.0.0".into())];
    pin.finished = Some(JobState::Done);
    let mut late = progress("cancelled", 1);
    late.done = vec![done("z", 1, false)];
    let mut refill = artifact(A, "v3.0.0", ArtifactKind::Zip, "refill");
    refill.filled_at_ms = 42;
    vec![
        vec![
            IndexCommand::PutAll(version(A, "v1.0.0", "a1")),
            IndexCommand::PutAll(version(A, "v2.0.0", "a2")),
            IndexCommand::PutAll(version(A, "v3.0.0", "a3")),
            IndexCommand::PutAll(version(AB, "v1.0.0", "ab1")),
            IndexCommand::PutAll(version(AB, "v2.0.0", "ab2")),
        ],
        vec![
            block("example.com/bad", "malware"),
            block("example.com/a@<v1.0.0", "old"),
            block("example.com/tmp", "t"),
            unblock("example.com/tmp"),
            unblock("example.com/never"),
        ],
        vec![
            submit("running", false),
            submit("pinning", true),
            submit("cancelled", false),
            submit("running", false),
            IndexCommand::WarmProgress(p1),
        ],
        vec![
            IndexCommand::WarmProgress(p2),
            IndexCommand::WarmProgress(pin),
            cancel("cancelled"),
            IndexCommand::WarmProgress(late),
        ],
        vec![
            evict(100, &[(A, "v1.0.0"), (A, "v2.0.0"), (AB, "v2.0.0")]),
            purge(A, "v3.0.0"),
            IndexCommand::Put(refill),
            IndexCommand::Put(artifact(AB, "v9.0.0", ArtifactKind::Mod, "gone")),
            purge(AB, "v9.0.0"),
            purge(A, "v7.0.0"),
        ],
        vec![evict(200, &[(A, "v3.0.0")]), restore(&[(A, "v3.0.0")])],
    ]
}

async fn apply_script(log: &mut Log, batched: bool) {
    for batch in script() {
        if batched {
            log.batch(batch).await;
        } else {
            log.one_by_one(batch).await;
        }
    }
}

#[tokio::test]
async fn the_same_entries_make_identical_trees_batched_or_not() {
    let (mut a, mut b, mut c) = (Log::new(), Log::new(), Log::new());
    apply_script(&mut a, true).await;
    apply_script(&mut b, true).await;
    apply_script(&mut c, false).await;
    let tree = dump(&a.sm);
    assert_eq!(
        tree,
        dump(&b.sm),
        "two fresh state machines, the same batches"
    );
    assert_eq!(tree, dump(&c.sm), "the same entries one by one");

    // The script did what it says (so the comparison is not of empty trees).
    let reader = a.reader();
    assert_eq!(reader.blocks().unwrap().len(), 2);
    assert_eq!(reader.warm_jobs().unwrap().len(), 3);
    let running = a.job("running");
    assert_eq!((running.done, running.bytes, running.runs), (3, 60, 2));
    assert_eq!(a.job("cancelled").state, JobState::Cancelled);
    assert_eq!(reader.pins().unwrap().len(), 2);
    assert_eq!(
        reader.evicted().unwrap(),
        vec![(vref(A, "v1.0.0"), 100), (vref(AB, "v2.0.0"), 100)],
        "v2.0.0 of {A} is pinned"
    );
    assert_eq!(
        reader
            .get(&artifact(A, "v3.0.0", ArtifactKind::Zip, "x").key)
            .unwrap()
            .unwrap()
            .blob
            .sha256,
        sha("refill")
    );
    assert_eq!(indexes(&reader.reclaims_after(0).unwrap()).len(), 4);
}

#[tokio::test]
async fn a_snapshot_carries_the_operating_state_to_a_fresh_state_machine() {
    let mut source = Log::new();
    apply_script(&mut source, true).await;
    let snapshot = source
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let last = source.last();
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 1, last)));

    // A target with stale operating state the snapshot must replace.
    let mut target = Log::new();
    let mut stale = progress("stale", 9);
    stale.done = vec![done("s", 1, false)];
    stale.pins = vec![("example.com/stale".into(), "v1.0.0".into())];
    target
        .batch(vec![
            block("example.com/stale", "stale"),
            submit("stale", true),
            IndexCommand::WarmProgress(stale),
            IndexCommand::Put(artifact(
                "example.com/stale",
                "v1.0.0",
                ArtifactKind::Zip,
                "s",
            )),
            evict(1, &[("example.com/stale", "v1.0.0")]),
        ])
        .await;
    let mut buffer = target.sm.begin_receiving_snapshot().await.unwrap();
    buffer
        .get_mut()
        .extend_from_slice(snapshot.snapshot.get_ref());
    target
        .sm
        .install_snapshot(&snapshot.meta, buffer)
        .await
        .unwrap();

    let (s, t) = (source.reader(), target.reader());
    assert_eq!(t.blocks().unwrap(), s.blocks().unwrap());
    assert_eq!(t.warm_jobs().unwrap(), s.warm_jobs().unwrap());
    for id in ["running", "pinning", "cancelled", "stale"] {
        assert_eq!(t.warm_job(id).unwrap(), s.warm_job(id).unwrap(), "{id}");
        assert_eq!(t.warm_done(id).unwrap(), s.warm_done(id).unwrap(), "{id}");
    }
    assert_eq!(t.warm_done("running").unwrap().len(), 3);
    assert_eq!(t.pins().unwrap(), s.pins().unwrap());
    assert_eq!(t.evicted().unwrap(), s.evicted().unwrap());
    assert!(t.is_evicted(A, "v1.0.0").unwrap());
    assert!(!t.is_evicted("example.com/stale", "v1.0.0").unwrap());
    assert_eq!(t.kept_blobs().unwrap(), s.kept_blobs().unwrap());
    assert_eq!(t.all_entries().unwrap(), s.all_entries().unwrap());
    assert_eq!(t.admin_trail(0).unwrap(), s.admin_trail(0).unwrap());
    assert_eq!(
        ops_dump(&target.sm),
        ops_dump(&source.sm),
        "the same ops keys"
    );
    assert_eq!(
        target.sm.ops_entries().unwrap(),
        source.sm.ops_entries().unwrap()
    );
    // Readers drop their caches: both marks move to the snapshot's index.
    assert_eq!(t.blocks_at().unwrap(), last);
    assert_eq!(t.ops_at().unwrap(), last);
    // Reclaim records are local housekeeping, not carried.
    assert!(t.reclaims_after(0).unwrap().is_empty());

    // The target goes on from the snapshot exactly as the source does.
    let mut resume = progress("running", 3);
    resume.started = true;
    resume.done = vec![done("a", 10, true), done("d", 40, false)];
    let next = vec![
        IndexCommand::WarmProgress(resume),
        unpin("pinning"),
        unblock("example.com/bad"),
        IndexCommand::WarmProgress(progress("cancelled", 3)),
    ];
    target.skip_to(last + 1);
    let responses = target.batch(next.clone()).await;
    let expected = source.batch(next).await;
    assert_eq!(responses, expected);
    assert_eq!(
        responses[..3],
        [
            ApplyResponse::Inserted,
            ApplyResponse::Inserted,
            ApplyResponse::Inserted
        ]
    );
    assert!(matches!(responses[3], ApplyResponse::Refused { .. }));
    let job = target.job("running");
    assert_eq!(
        (job.done, job.bytes, job.runs),
        (4, 100, 3),
        "\"a\" not counted again"
    );
    assert_eq!(ops_dump(&target.sm), ops_dump(&source.sm));
}
