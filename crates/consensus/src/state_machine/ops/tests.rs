//! The operating commands through the real apply path: entries built as openraft builds them,
//! applied with `RaftStateMachine::apply` (one batch or one by one), snapshots built and
//! installed, and the applied state read back through `IndexReader`.

use goproxy_protocol::index::{ArtifactKey, ArtifactKind, IndexEntry};
use openraft::storage::RaftStateMachine;
use openraft::testing::log_id;
use openraft::{Entry, EntryPayload, RaftSnapshotBuilder};

use super::{
    key_done, source_prefix, RECLAIM_PREFIX, SNAPSHOT_PREFIXES, WARM_DONE_PREFIX,
    WARM_SOURCE_PREFIX,
};
use crate::ops::{
    BlockRecord, DoneItem, Evictions, JobState, Reclaim, SourceKind, SourcePart, VersionRef,
    WarmJob, WarmProgress, WarmSpec, MAX_FINISHED_JOBS, MAX_JOB_FAILURES, MAX_OPEN_JOBS,
    MAX_OPEN_JOBS_PER_SUBMITTER, MAX_RECLAIMS, MAX_SOURCE_PARTS, SOURCE_PART_BYTES,
};
use crate::reader::IndexReader;
use crate::state_machine::StateMachine;
use crate::types::{AdminAction, AdminRecord, ApplyResponse, IndexCommand, NodeId, TypeConfig};

const ACTOR: &str = "alice";
const AT_MS: u64 = 5_000;
const A: &str = "example.com/a";
const AB: &str = "example.com/ab";

/// A snapshot directory for a test's state machine (left in the temporary directory).
fn snapshot_dir() -> std::path::PathBuf {
    tempfile::tempdir().unwrap().keep()
}

fn open() -> StateMachine {
    let db = sled::Config::new().temporary(true).open().unwrap();
    StateMachine::open(&db, snapshot_dir()).unwrap()
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
    admin_as(ACTOR, AT_MS, action)
}

/// An admin action by another actor, or at another time.
fn admin_as(actor: &str, at_ms: u64, action: AdminAction) -> IndexCommand {
    IndexCommand::Admin(AdminRecord {
        at_ms,
        actor: actor.into(),
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

/// The input of the jobs [`spec`] describes (one part).
const TARGETS: &str = "example.com/a@v1.0.0\n";

/// A one-part `List` job.
fn spec(id: &str, pin: bool) -> WarmSpec {
    WarmSpec {
        id: id.into(),
        kind: SourceKind::List,
        parts: 1,
        no_deps: false,
        pin,
        description: "test job".into(),
    }
}

/// Submits a one-part job: it is receiving its input until [`part`] sends it.
fn submit(id: &str, pin: bool) -> IndexCommand {
    admin(AdminAction::WarmSubmit(spec(id, pin)))
}

/// Submits a one-part job as `actor` at `at_ms`.
fn submit_as(actor: &str, at_ms: u64, id: &str, pin: bool) -> IndexCommand {
    admin_as(actor, at_ms, AdminAction::WarmSubmit(spec(id, pin)))
}

/// Submits a job of `parts` parts of `kind`.
fn submit_parts(id: &str, kind: SourceKind, parts: u32) -> IndexCommand {
    admin(AdminAction::WarmSubmit(WarmSpec {
        kind,
        parts,
        ..spec(id, false)
    }))
}

/// Part `part` of a job's input.
fn part(id: &str, part: u32, text: &str) -> IndexCommand {
    IndexCommand::WarmSource(SourcePart {
        id: id.into(),
        part,
        text: text.into(),
    })
}

/// Submits a one-part job and sends its input: it is queued, ready for checkpoints.
fn queued(id: &str, pin: bool) -> Vec<IndexCommand> {
    vec![submit(id, pin), part(id, 0, TARGETS)]
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

/// A checkpoint ending a job in `state`.
fn finish(id: &str, state: JobState) -> IndexCommand {
    let mut p = progress(id, 1);
    p.finished = Some(state);
    IndexCommand::WarmProgress(p)
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
    sm.index()
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
        log.batch(queued("pin-job", true)).await,
        vec![ApplyResponse::Inserted; 2]
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
        part("j1", 0, TARGETS),                        // 11
        IndexCommand::WarmProgress(progress("j1", 1)), // 12
        evict(1, &[(A, "v1.0.0")]),                    // 13
        restore(&[(A, "v1.0.0")]),                     // 14
    ])
    .await;

    let expected: Vec<(u64, &str, &str, &str)> = vec![
        (1, "warm-submit", "j1 test job parts=1 pin no-deps", "ok"),
        (
            2,
            "warm-submit",
            "j1 test job parts=1",
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
    let receiving = log.job("j1");
    assert_eq!(
        (receiving.state, receiving.parts_received),
        (JobState::Receiving, 0),
        "receiving its input"
    );
    assert_eq!(
        log.one(part("j1", 0, TARGETS)).await,
        ApplyResponse::Inserted
    );
    let job = log.job("j1");
    assert_eq!(
        job,
        WarmJob {
            spec: spec("j1", false),
            submitted_by: ACTOR.into(),
            submitted_at_ms: AT_MS,
            state: JobState::Queued,
            parts_received: 1,
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

/// The submitter of the `i`th of many open jobs: each has at most the open jobs one may.
fn submitter(i: usize) -> String {
    format!("user{}", i / MAX_OPEN_JOBS_PER_SUBMITTER)
}

#[tokio::test]
async fn warm_submit_refuses_more_than_max_open_jobs() {
    let mut log = Log::new();
    for i in 0..MAX_OPEN_JOBS {
        assert_eq!(
            log.one(submit_as(
                &submitter(i),
                AT_MS,
                &format!("job{i:02}"),
                false
            ))
            .await,
            ApplyResponse::Inserted
        );
    }
    let total_reason = format!(
        "{MAX_OPEN_JOBS} jobs are queued or running (at most {MAX_OPEN_JOBS}); wait or cancel one"
    );
    let r = log.one(submit_as("newcomer", AT_MS, "extra", false)).await;
    assert_eq!(reason(&r), total_reason, "a submitter with no open job");
    assert!(log.reader().warm_job("extra").unwrap().is_none());
    // A submitter at their own limit too: the limit in all is the reason given.
    let r = log
        .one(submit_as(&submitter(0), AT_MS, "extra", false))
        .await;
    assert_eq!(reason(&r), total_reason);

    // A finished job no longer counts (a queued one, or one still receiving its input)...
    log.one(part("job00", 0, TARGETS)).await;
    log.one(finish("job00", JobState::Done)).await;
    assert_eq!(
        log.one(submit_as("newcomer", AT_MS, "extra", false)).await,
        ApplyResponse::Inserted
    );
    assert!(matches!(
        log.one(submit_as("newcomer2", AT_MS, "extra2", false))
            .await,
        ApplyResponse::Refused { .. }
    ));
    // ...nor does a cancelled one.
    log.one(cancel("job01")).await;
    assert_eq!(
        log.one(submit_as("newcomer2", AT_MS, "extra2", false))
            .await,
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
        .map(|i| submit_as(&submitter(i), AT_MS, &format!("job{i:02}"), false))
        .collect();
    // Also: a cancellation earlier in the batch frees a place.
    commands.push(cancel("job00"));
    commands.push(submit_as("newcomer", AT_MS, "after-cancel", false));

    let mut single = Log::new();
    let expected = single.one_by_one(commands.clone()).await;
    assert_eq!(
        reason(&expected[MAX_OPEN_JOBS]),
        format!(
            "{MAX_OPEN_JOBS} jobs are queued or running (at most {MAX_OPEN_JOBS}); wait or cancel one"
        )
    );
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
    log.batch(queued("j", false)).await;

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
    log.batch([queued("j", false), queued("j2", false)].concat())
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
    log.batch(queued("j", false)).await;
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
    log.batch(queued("j", false)).await;
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
    log.batch(queued("k", false)).await;
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
    log.batch([queued("pinning", true), queued("plain", false)].concat())
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
    log.batch(queued("j", true)).await;
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
    log.batch(queued("k", false)).await;
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
            part("pinning", 0, TARGETS),
            IndexCommand::WarmProgress(p),
            unpin("pinning"),
        ]
    };
    let mut single = Log::new();
    let expected = single.one_by_one(commands()).await;
    assert_eq!(expected, vec![ApplyResponse::Inserted; 4]);
    assert!(single.reader().pins().unwrap().is_empty());

    let mut batched = Log::new();
    let responses = batched.batch(commands()).await;
    assert_eq!(
        responses[3], expected[3],
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
            part("pinning", 0, TARGETS),
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
// A job's input
// ---------------------------------------------------------------------------------------

/// The keys, other than the applied log id, whose value `before` does not have.
fn changed_since(log: &Log, before: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
    dump(&log.sm)
        .into_iter()
        .filter(|kv| !before.contains(kv))
        .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
        .filter(|k| k != "\u{fffd}meta/last_applied")
        .collect()
}

#[tokio::test]
async fn parts_in_order_queue_the_job_and_warm_source_returns_the_text() {
    let mut log = Log::new();
    let parts = [
        "module example.com/m\n",
        "require example.com/a v1.0.0\n",
        "// é: a multi-byte tail\n",
    ];
    assert_eq!(
        log.one(submit_parts("j", SourceKind::GoMod, 3)).await,
        ApplyResponse::Inserted
    );
    // A job whose id extends "j", with an input of its own.
    log.batch(queued("j2", false)).await;
    let job = log.job("j");
    assert_eq!(
        (job.spec.kind, job.spec.parts, job.state, job.parts_received),
        (SourceKind::GoMod, 3, JobState::Receiving, 0)
    );
    assert_eq!(log.reader().warm_source("j").unwrap(), None, "no input yet");

    for (i, text) in (0u32..).zip(parts) {
        assert_eq!(log.one(part("j", i, text)).await, ApplyResponse::Inserted);
        let job = log.job("j");
        assert_eq!(job.parts_received, i + 1);
        if job.parts_received < 3 {
            assert_eq!(job.state, JobState::Receiving);
            assert_eq!(
                log.reader().warm_source("j").unwrap(),
                None,
                "only {} of 3 parts",
                i + 1
            );
        }
    }
    let job = log.job("j");
    assert_eq!(job.state, JobState::Queued, "the last part queues it");
    assert_eq!(
        log.reader().warm_source("j").unwrap(),
        Some(parts.concat()),
        "the parts in order, not j2's"
    );
    assert_eq!(
        log.reader().warm_source("j2").unwrap().as_deref(),
        Some(TARGETS)
    );
    assert_eq!(log.reader().warm_source("nope").unwrap(), None);
    // Parts are not admin actions: the trail has the two submissions only.
    assert_eq!(log.trail().len(), 2);

    // Queued: checkpoints are accepted.
    let mut p = progress("j", 1);
    p.started = true;
    assert_eq!(
        log.one(IndexCommand::WarmProgress(p)).await,
        ApplyResponse::Inserted
    );
    assert_eq!(log.job("j").state, JobState::Running);
    assert_eq!(log.reader().warm_source("j").unwrap(), Some(parts.concat()));
}

#[tokio::test]
async fn a_job_of_max_source_parts_full_parts_reads_back_in_part_order() {
    let mut log = Log::new();
    // Part i is SOURCE_PART_BYTES bytes of one letter, so that an order by the part's
    // number as text (10 before 2) would show.
    let text = |i: u32| {
        let letter = char::from(b'0' + (i % 75) as u8);
        letter.to_string().repeat(SOURCE_PART_BYTES)
    };
    let mut commands = vec![submit_parts("big", SourceKind::GoSum, MAX_SOURCE_PARTS)];
    commands.extend((0..MAX_SOURCE_PARTS).map(|i| part("big", i, &text(i))));
    let responses = log.batch(commands).await;
    assert_eq!(
        responses,
        vec![ApplyResponse::Inserted; MAX_SOURCE_PARTS as usize + 1]
    );
    let job = log.job("big");
    assert_eq!(
        (job.state, job.parts_received),
        (JobState::Queued, MAX_SOURCE_PARTS)
    );
    let expected: String = (0..MAX_SOURCE_PARTS).map(text).collect();
    assert_eq!(
        log.reader().warm_source("big").unwrap().map(|s| s.len()),
        Some(MAX_SOURCE_PARTS as usize * SOURCE_PART_BYTES)
    );
    assert!(log.reader().warm_source("big").unwrap() == Some(expected));
}

#[tokio::test]
async fn warm_submit_refuses_no_parts_or_more_than_max_source_parts() {
    let mut log = Log::new();
    let responses = log
        .batch(vec![
            submit_parts("none", SourceKind::List, 0),
            submit_parts("many", SourceKind::List, MAX_SOURCE_PARTS + 1),
            submit_parts("most", SourceKind::List, MAX_SOURCE_PARTS),
            submit_parts("one", SourceKind::GoSum, 1),
        ])
        .await;
    assert_eq!(
        reason(&responses[0]),
        format!("a job's input has 1 to {MAX_SOURCE_PARTS} parts, not 0")
    );
    assert_eq!(
        reason(&responses[1]),
        format!(
            "a job's input has 1 to {MAX_SOURCE_PARTS} parts, not {}",
            MAX_SOURCE_PARTS + 1
        )
    );
    assert_eq!(responses[2..], vec![ApplyResponse::Inserted; 2]);
    assert!(log.reader().warm_job("none").unwrap().is_none());
    assert!(log.reader().warm_job("many").unwrap().is_none());
    assert_eq!(log.reader().warm_jobs().unwrap().len(), 2);
    assert_eq!(
        log.outcome(1),
        format!("refused: a job's input has 1 to {MAX_SOURCE_PARTS} parts, not 0")
    );
    // The refused ids are free.
    assert_eq!(
        log.one(submit_parts("none", SourceKind::List, 1)).await,
        ApplyResponse::Inserted
    );
}

#[tokio::test]
async fn out_of_order_duplicate_oversized_and_unknown_job_parts_are_refused() {
    let mut log = Log::new();
    log.one(submit_parts("j", SourceKind::GoSum, 2)).await;
    let before = dump(&log.sm);
    let refused = log
        .one_by_one(vec![
            part("nope", 0, "x"),
            part("j", 1, "second first"),
            part("j", 0, &"x".repeat(SOURCE_PART_BYTES + 1)),
            // Bytes, not characters: SOURCE_PART_BYTES + 1 bytes in fewer characters.
            part("j", 0, &format!("{}x", "é".repeat(SOURCE_PART_BYTES / 2))),
        ])
        .await;
    let too_large = format!("a part of a job's input is at most {SOURCE_PART_BYTES} bytes");
    assert_eq!(reason(&refused[0]), "no job \"nope\"");
    assert_eq!(
        reason(&refused[1]),
        "job j does not expect part 1 (state receiving, 0 of 2 received)"
    );
    assert_eq!(reason(&refused[2]), too_large);
    assert_eq!(reason(&refused[3]), too_large);
    assert!(
        changed_since(&log, &before).is_empty(),
        "a refused part changes nothing"
    );
    assert!(log.reader().warm_job("nope").unwrap().is_none());

    // Exactly SOURCE_PART_BYTES bytes is accepted.
    let first = "é".repeat(SOURCE_PART_BYTES / 2);
    assert_eq!(log.one(part("j", 0, &first)).await, ApplyResponse::Inserted);
    let before = dump(&log.sm);
    let refused = log
        .one_by_one(vec![part("j", 0, "again"), part("j", 2, "skipping one")])
        .await;
    assert_eq!(
        reason(&refused[0]),
        "job j does not expect part 0 (state receiving, 1 of 2 received)"
    );
    assert_eq!(
        reason(&refused[1]),
        "job j does not expect part 2 (state receiving, 1 of 2 received)"
    );
    assert!(changed_since(&log, &before).is_empty());
    assert_eq!(log.job("j").parts_received, 1);

    assert_eq!(log.one(part("j", 1, "tail")).await, ApplyResponse::Inserted);
    // Complete: no further part, not even the next number.
    let refused = log
        .one_by_one(vec![part("j", 2, "extra"), part("j", 1, "tail")])
        .await;
    assert_eq!(
        reason(&refused[0]),
        "job j does not expect part 2 (state queued, 2 of 2 received)"
    );
    assert_eq!(
        reason(&refused[1]),
        "job j does not expect part 1 (state queued, 2 of 2 received)"
    );
    assert_eq!(
        log.reader().warm_source("j").unwrap(),
        Some(format!("{first}tail"))
    );

    // A duplicate in the same batch as the part it repeats; a part after a cancellation.
    log.one(submit_parts("k", SourceKind::List, 3)).await;
    let responses = log
        .batch(vec![
            part("k", 0, "a\n"),
            part("k", 0, "a\n"),
            cancel("k"),
            part("k", 1, "b\n"),
        ])
        .await;
    assert_eq!(responses[0], ApplyResponse::Inserted);
    assert_eq!(
        reason(&responses[1]),
        "job k does not expect part 0 (state receiving, 1 of 3 received)"
    );
    assert_eq!(responses[2], ApplyResponse::Inserted);
    assert_eq!(
        reason(&responses[3]),
        "job k does not expect part 1 (state cancelled, 1 of 3 received)"
    );
    assert_eq!(log.reader().warm_source("k").unwrap(), None);
    assert_eq!(
        log.sm.index().scan_prefix(source_prefix("k")).count(),
        1,
        "only the accepted part is stored"
    );
}

#[tokio::test]
async fn progress_is_refused_while_receiving_but_a_failed_checkpoint_is_accepted() {
    let mut log = Log::new();
    log.batch(vec![
        submit_parts("j", SourceKind::GoMod, 2),
        part("j", 0, "module example.com/m\n"),
    ])
    .await;
    let before = dump(&log.sm);
    let mut busy = progress("j", 1);
    busy.started = true;
    busy.total = 3;
    busy.done = vec![done("a", 1, true)];
    busy.failed = vec!["b: boom".into()];
    let responses = log
        .one_by_one(vec![
            IndexCommand::WarmProgress(busy),
            IndexCommand::WarmProgress(progress("j", 2)),
        ])
        .await;
    for response in &responses {
        assert_eq!(reason(response), "job j has not received its input");
    }
    assert!(changed_since(&log, &before).is_empty());
    assert!(log.reader().warm_done("j").unwrap().is_empty());

    // The runner fails the job whose input never arrived.
    let mut give_up = progress("j", 2);
    give_up.at_ms = 9_000;
    give_up.finished = Some(JobState::Failed);
    give_up.error = Some("its input never arrived".into());
    assert_eq!(
        log.one(IndexCommand::WarmProgress(give_up)).await,
        ApplyResponse::Inserted
    );
    let job = log.job("j");
    assert_eq!(
        (
            job.state,
            job.parts_received,
            job.runner,
            job.updated_at_ms,
            job.runs,
            job.done
        ),
        (JobState::Failed, 1, Some(2), 9_000, 0, 0)
    );
    assert_eq!(job.error.as_deref(), Some("its input never arrived"));
    // The missing part comes too late; so does any checkpoint.
    assert_eq!(
        reason(
            &log.one(part("j", 1, "require example.com/a v1.0.0\n"))
                .await
        ),
        "job j does not expect part 1 (state failed, 1 of 2 received)"
    );
    assert_eq!(log.reader().warm_source("j").unwrap(), None);
    assert_eq!(
        reason(&log.one(IndexCommand::WarmProgress(progress("j", 2))).await),
        "job j is failed"
    );

    // Refused before its last part, accepted after it, in one batch.
    log.one(submit("k", false)).await;
    let mut p = progress("k", 1);
    p.started = true;
    p.done = vec![done("a", 1, true)];
    let responses = log
        .batch(vec![
            IndexCommand::WarmProgress(p.clone()),
            part("k", 0, TARGETS),
            IndexCommand::WarmProgress(p),
        ])
        .await;
    assert_eq!(reason(&responses[0]), "job k has not received its input");
    assert_eq!(responses[1..], vec![ApplyResponse::Inserted; 2]);
    let job = log.job("k");
    assert_eq!((job.state, job.runs, job.done), (JobState::Running, 1, 1));
}

// ---------------------------------------------------------------------------------------
// Open jobs per submitter
// ---------------------------------------------------------------------------------------

fn per_submitter_reason(actor: &str) -> String {
    format!(
        "{actor} has {MAX_OPEN_JOBS_PER_SUBMITTER} jobs queued or running (at most {MAX_OPEN_JOBS_PER_SUBMITTER}); wait or cancel one"
    )
}

/// The ids of the jobs not finished that `actor` submitted.
fn open_of(log: &Log, actor: &str) -> Vec<String> {
    let mut ids: Vec<String> = log
        .reader()
        .warm_jobs()
        .unwrap()
        .into_iter()
        .filter(|j| !j.state.is_final() && j.submitted_by == actor)
        .map(|j| j.spec.id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn warm_submit_refuses_more_than_max_open_jobs_per_submitter() {
    let mut log = Log::new();
    // Open in every way: receiving, queued, running.
    let mut commands = vec![submit("receiving", false)];
    commands.extend(queued("queued", false));
    commands.extend(queued("running", false));
    commands.push(IndexCommand::WarmProgress(progress("running", 1)));
    for i in 3..MAX_OPEN_JOBS_PER_SUBMITTER {
        commands.push(submit_parts(&format!("more{i}"), SourceKind::GoMod, 2));
    }
    let n = commands.len();
    assert_eq!(log.batch(commands).await, vec![ApplyResponse::Inserted; n]);
    assert_eq!(log.job("receiving").state, JobState::Receiving);
    assert_eq!(log.job("queued").state, JobState::Queued);
    assert_eq!(log.job("running").state, JobState::Running);
    assert_eq!(open_of(&log, ACTOR).len(), MAX_OPEN_JOBS_PER_SUBMITTER);

    let r = log.one(submit("extra", false)).await;
    assert_eq!(reason(&r), per_submitter_reason(ACTOR));
    assert_eq!(
        log.outcome(log.last()),
        format!("refused: {}", per_submitter_reason(ACTOR))
    );
    assert!(log.reader().warm_job("extra").unwrap().is_none());
    // Another submitter is not held back.
    assert_eq!(
        log.one(submit_as("bob", AT_MS, "bobs", false)).await,
        ApplyResponse::Inserted
    );

    // Finishing one frees a place, for one job.
    log.one(finish("running", JobState::Done)).await;
    assert_eq!(
        log.one(submit("extra", false)).await,
        ApplyResponse::Inserted
    );
    assert_eq!(
        reason(&log.one(submit("extra2", false)).await),
        per_submitter_reason(ACTOR)
    );
    // So does failing one still receiving its input...
    log.one(finish("receiving", JobState::Failed)).await;
    assert_eq!(
        log.one(submit("extra2", false)).await,
        ApplyResponse::Inserted
    );
    assert_eq!(
        reason(&log.one(submit("extra3", false)).await),
        per_submitter_reason(ACTOR)
    );
    // ...and cancelling one.
    assert_eq!(log.one(cancel("queued")).await, ApplyResponse::Inserted);
    assert_eq!(
        log.one(submit("extra3", false)).await,
        ApplyResponse::Inserted
    );
    assert_eq!(
        reason(&log.one(submit("extra4", false)).await),
        per_submitter_reason(ACTOR)
    );
    assert_eq!(open_of(&log, ACTOR).len(), MAX_OPEN_JOBS_PER_SUBMITTER);
    assert_eq!(open_of(&log, "bob"), ["bobs"]);
}

// ---------------------------------------------------------------------------------------
// Finished jobs kept
// ---------------------------------------------------------------------------------------

/// When the retention script's jobs are submitted: after `AT_MS`, so that jobs submitted
/// with [`admin`] are older.
const LATER: u64 = AT_MS + 1_000;

/// Jobs submitted and finished so that exactly MAX_FINISHED_JOBS are finished, with two
/// open jobs of "bob" older than all of them. The oldest finished job by time (not by id)
/// is "zz-oldest", a pinning job with a two-part input, done items and pins; then
/// "a-tied" and "b-tied", submitted at the same time; then "f00", "f01", ...
fn retention_setup() -> Vec<IndexCommand> {
    let mut c = vec![
        submit_as("bob", LATER + 1, "open-receiving", false),
        submit_as("bob", LATER + 1, "open-running", false),
        part("open-running", 0, TARGETS),
    ];
    let mut p = progress("open-running", 1);
    p.started = true;
    p.done = vec![done("r", 1, true)];
    c.push(IndexCommand::WarmProgress(p));

    c.push(admin_as(
        ACTOR,
        LATER + 10,
        AdminAction::WarmSubmit(WarmSpec {
            parts: 2,
            ..spec("zz-oldest", true)
        }),
    ));
    c.push(part("zz-oldest", 0, "example.com/a@v1.0.0\n"));
    c.push(part("zz-oldest", 1, "example.com/ab@v1.0.0\n"));
    let mut p = progress("zz-oldest", 1);
    p.started = true;
    p.done = vec![done("a", 1, true), done("ab", 2, true)];
    p.pins = vec![(A.into(), "v1.0.0".into()), (AB.into(), "v1.0.0".into())];
    p.finished = Some(JobState::Done);
    c.push(IndexCommand::WarmProgress(p));

    for id in ["b-tied", "a-tied"] {
        c.push(submit_as(ACTOR, LATER + 20, id, false));
        c.push(part(id, 0, TARGETS));
        let mut p = progress(id, 1);
        p.done = vec![done("x", 1, false)];
        p.finished = Some(JobState::Failed);
        c.push(IndexCommand::WarmProgress(p));
    }
    for i in 0..MAX_FINISHED_JOBS - 3 {
        let id = format!("f{i:02}");
        c.push(submit_as(ACTOR, LATER + 30 + i as u64, &id, false));
        if i % 2 == 0 {
            c.push(cancel(&id)); // still receiving
        } else {
            c.push(part(&id, 0, TARGETS));
            c.push(finish(&id, JobState::Done));
        }
    }
    c
}

/// After [`retention_setup`]: submissions forgetting the oldest finished jobs.
fn retention_steps() -> Vec<IndexCommand> {
    vec![
        // Refused: forget nothing.
        submit("zz-oldest", false),
        submit_parts("no-parts", SourceKind::List, 0),
        // zz-oldest goes.
        submit_as(ACTOR, LATER + 1_000, "new1", false),
        // new1 is open: nothing goes.
        submit_as(ACTOR, LATER + 1_001, "new2", false),
        finish("new1", JobState::Failed),
        // a-tied goes, not b-tied.
        submit_as(ACTOR, LATER + 1_002, "new3", false),
        finish("new2", JobState::Failed),
        finish("new3", JobState::Failed),
        // Bob's jobs finish: the oldest now; four go: them, b-tied, f00.
        finish("open-receiving", JobState::Failed),
        finish("open-running", JobState::Done),
        finish("new3", JobState::Failed), // refused: already failed
        submit_as(ACTOR, LATER + 1_003, "new4", false),
    ]
}

fn finished_count(log: &Log) -> usize {
    log.reader()
        .warm_jobs()
        .unwrap()
        .into_iter()
        .filter(|j| j.state.is_final())
        .count()
}

fn assert_forgotten(log: &Log, id: &str) {
    let reader = log.reader();
    assert!(reader.warm_job(id).unwrap().is_none(), "{id}'s record");
    assert_eq!(reader.warm_source(id).unwrap(), None, "{id}'s input");
    assert!(reader.warm_done(id).unwrap().is_empty(), "{id}'s items");
    assert_eq!(
        log.sm.index().scan_prefix(source_prefix(id)).count(),
        0,
        "{id}'s input parts"
    );
    assert_eq!(
        log.sm.index().scan_prefix(key_done(id, "")).count(),
        0,
        "{id}'s done items"
    );
}

fn assert_kept(log: &Log, id: &str) {
    let job = log.job(id);
    if job.parts_received == job.spec.parts {
        assert!(log.reader().warm_source(id).unwrap().is_some(), "{id}");
    }
    assert_eq!(
        log.reader().warm_done(id).unwrap().len() as u64,
        job.done,
        "{id}"
    );
}

#[tokio::test]
async fn finished_jobs_beyond_max_finished_jobs_are_forgotten_oldest_first() {
    let mut log = Log::new();
    let setup = retention_setup();
    let n = setup.len();
    assert_eq!(
        log.one_by_one(setup).await,
        vec![ApplyResponse::Inserted; n],
        "nothing refused"
    );
    assert_eq!(
        finished_count(&log),
        MAX_FINISHED_JOBS,
        "none forgotten yet"
    );
    assert_eq!(
        log.reader().warm_jobs().unwrap().len(),
        MAX_FINISHED_JOBS + 2
    );
    assert_eq!(log.job("zz-oldest").done, 2);
    assert_eq!(
        log.reader().warm_source("zz-oldest").unwrap().as_deref(),
        Some("example.com/a@v1.0.0\nexample.com/ab@v1.0.0\n")
    );
    let pins = vec![
        (vref(A, "v1.0.0"), "zz-oldest".to_string()),
        (vref(AB, "v1.0.0"), "zz-oldest".to_string()),
    ];
    assert_eq!(log.reader().pins().unwrap(), pins);

    let mut steps = retention_steps().into_iter();
    let mut step = || steps.next().unwrap();

    // A refused submission forgets nothing.
    let before = dump(&log.sm);
    assert_eq!(reason(&log.one(step()).await), "a job \"zz-oldest\" exists");
    assert!(matches!(
        log.one(step()).await,
        ApplyResponse::Refused { .. }
    ));
    let changed = changed_since(&log, &before);
    assert!(
        changed.iter().all(|k| k.starts_with("\u{fffd}admin/")),
        "only the trail: {changed:?}"
    );
    assert_kept(&log, "zz-oldest");

    // The submission that would make MAX_FINISHED_JOBS + 1 finished jobs' worth forgets
    // the oldest by time, though its id sorts last, with its input and items. (The new job
    // counts: a submission leaves MAX_FINISHED_JOBS - 1 finished ones.)
    assert_eq!(log.one(step()).await, ApplyResponse::Inserted); // new1
    assert_forgotten(&log, "zz-oldest");
    assert_eq!(
        log.reader().pins().unwrap(),
        pins,
        "its pins stay until unpinned"
    );
    assert_eq!(finished_count(&log), MAX_FINISHED_JOBS - 1);
    // Open jobs older than every finished one are never forgotten.
    assert_eq!(log.job("open-receiving").state, JobState::Receiving);
    assert_eq!(log.job("open-running").state, JobState::Running);
    assert_kept(&log, "open-running");
    assert_eq!(log.reader().warm_done("open-running").unwrap().len(), 1);
    for id in ["a-tied", "b-tied", "f00", "f01"] {
        assert_kept(&log, id);
    }

    // new1 is open: the finished ones and it fit.
    assert_eq!(log.one(step()).await, ApplyResponse::Inserted); // new2
    assert_kept(&log, "a-tied");
    assert_eq!(finished_count(&log), MAX_FINISHED_JOBS - 1);
    assert_eq!(log.one(step()).await, ApplyResponse::Inserted); // new1 fails
    assert_eq!(finished_count(&log), MAX_FINISHED_JOBS);

    // Of two submitted at the same time, the smaller id goes first.
    assert_eq!(log.one(step()).await, ApplyResponse::Inserted); // new3
    assert_forgotten(&log, "a-tied");
    assert_kept(&log, "b-tied");
    assert_eq!(finished_count(&log), MAX_FINISHED_JOBS - 1);
    assert_eq!(log.one(step()).await, ApplyResponse::Inserted); // new2 fails
    assert_eq!(log.one(step()).await, ApplyResponse::Inserted); // new3 fails

    // Once finished, bob's jobs are the oldest: they go first, then b-tied and f00.
    assert_eq!(log.one(step()).await, ApplyResponse::Inserted);
    assert_eq!(log.one(step()).await, ApplyResponse::Inserted);
    assert_eq!(reason(&log.one(step()).await), "job new3 is failed");
    assert_eq!(finished_count(&log), MAX_FINISHED_JOBS + 3);
    assert_eq!(log.one(step()).await, ApplyResponse::Inserted); // new4
    for id in ["open-receiving", "open-running", "b-tied", "f00"] {
        assert_forgotten(&log, id);
    }
    assert_eq!(finished_count(&log), MAX_FINISHED_JOBS - 1);
    for id in ["f01", "f02", "new1", "new2", "new3"] {
        assert_kept(&log, id);
    }
    assert_eq!(log.job("new4").state, JobState::Receiving);
    assert!(steps.next().is_none());

    // The forgotten job's pins still go with an unpin.
    assert_eq!(log.reader().pins().unwrap(), pins);
    assert_eq!(log.one(unpin("zz-oldest")).await, ApplyResponse::Inserted);
    assert!(log.reader().pins().unwrap().is_empty());
    // Nothing of a forgotten job is left but its trail entries.
    for prefix in [WARM_SOURCE_PREFIX, WARM_DONE_PREFIX] {
        for (key, _) in dump(&log.sm).iter().filter(|(k, _)| k.starts_with(prefix)) {
            let key = String::from_utf8_lossy(key);
            for id in ["zz-oldest", "a-tied", "b-tied", "open-running", "f00"] {
                assert!(!key.contains(&format!("/{id}\0")), "{key:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The new commands batched or not
// ---------------------------------------------------------------------------------------

/// Parts in order, out of order, duplicated, oversized, for unknown jobs; checkpoints
/// before and after the input; the per-submitter limit with places freed; the finished
/// jobs forgotten.
fn new_commands() -> Vec<IndexCommand> {
    let mut busy = progress("parts", 1);
    busy.started = true;
    busy.done = vec![done("a", 1, true)];
    let mut c = vec![
        submit_parts("parts", SourceKind::GoMod, 3),
        part("parts", 1, "early"),
        IndexCommand::WarmProgress(busy.clone()),
        part("parts", 0, "module m\n"),
        part("parts", 0, "module m\n"),
        part("parts", 1, &"x".repeat(SOURCE_PART_BYTES + 1)),
        part("parts", 1, "go 1.22\n"),
        part("nope", 0, "x"),
        IndexCommand::WarmProgress(busy.clone()),
        part("parts", 2, "require example.com/a v1.0.0\n"),
        part("parts", 3, "late"),
        IndexCommand::WarmProgress(busy),
        submit_parts("dropped", SourceKind::List, 2),
        finish("dropped", JobState::Failed),
        part("dropped", 0, TARGETS),
    ];
    // Carol: four open, a fifth refused, one cancelled, one finished, two more.
    for i in 0..=MAX_OPEN_JOBS_PER_SUBMITTER {
        c.push(submit_as("carol", AT_MS, &format!("carol{i}"), false));
    }
    c.push(cancel("carol0"));
    c.push(submit_as("carol", AT_MS, "carol-a", false));
    c.push(submit_as("carol", AT_MS, "carol-b", false));
    c.push(part("carol1", 0, TARGETS));
    c.push(finish("carol1", JobState::Done));
    c.push(submit_as("carol", AT_MS, "carol-b", false));
    // Room for the retention script's jobs: carol's and the parts jobs finish.
    for id in ["parts", "carol2", "carol3", "carol-a", "carol-b"] {
        c.push(finish(id, JobState::Done));
    }
    c.extend(retention_setup());
    c.extend(retention_steps());
    c
}

#[tokio::test]
async fn new_job_commands_are_the_same_batched_or_not() {
    let mut single = Log::new();
    let expected = single.one_by_one(new_commands()).await;
    let refusals = expected
        .iter()
        .filter(|r| matches!(r, ApplyResponse::Refused { .. }))
        .count();
    assert!(refusals >= 10, "the commands exercise refusals: {refusals}");
    // The retention steps do what they do alone: the jobs finished before them are older
    // and went first.
    let steps = &expected[expected.len() - retention_steps().len()..];
    assert_eq!(reason(&steps[0]), "a job \"zz-oldest\" exists");
    for id in [
        "zz-oldest",
        "a-tied",
        "b-tied",
        "open-running",
        "f00",
        "parts",
    ] {
        assert_forgotten(&single, id);
    }
    assert_kept(&single, "f01");
    assert_eq!(single.job("new4").state, JobState::Receiving);
    assert_eq!(finished_count(&single), MAX_FINISHED_JOBS - 1);

    let mut batched = Log::new();
    let responses = batched.batch(new_commands()).await;
    assert_eq!(responses, expected, "one batch");
    assert_eq!(dump(&batched.sm), dump(&single.sm));

    let mut chunked = Log::new();
    let mut responses = Vec::new();
    let commands = new_commands();
    for chunk in commands.chunks(7) {
        responses.extend(chunked.batch(chunk.to_vec()).await);
    }
    assert_eq!(responses, expected, "batches of 7");
    assert_eq!(dump(&chunked.sm), dump(&single.sm));
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
        part("pinning", 0, TARGETS),
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
    let keys = log.sm.index().scan_prefix(RECLAIM_PREFIX).count();
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
/// handles (purge + put, put + purge, block + unblock, submit + its input's parts,
/// checkpoints repeating items, evict + restore, submit + cancel). The job "receiving" is
/// left with two of its three parts.
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
            part("running", 0, TARGETS),
            submit("pinning", true),
            part("pinning", 0, TARGETS),
            submit("cancelled", false),
            submit("running", false),
            submit_parts("receiving", SourceKind::GoMod, 3),
            part("receiving", 0, "module example.com/m\n"),
            part("receiving", 0, "a duplicate\n"),
            IndexCommand::WarmProgress(p1),
        ],
        vec![
            IndexCommand::WarmProgress(p2),
            IndexCommand::WarmProgress(pin),
            part("receiving", 1, "require (\n\texample.com/a v1.0.0\n"),
            cancel("cancelled"),
            IndexCommand::WarmProgress(late),
            part("cancelled", 0, TARGETS),
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
    assert!(
        !feed(&a.reader()).is_empty(),
        "the blob feed is part of the comparison"
    );

    // The script did what it says (so the comparison is not of empty trees).
    let reader = a.reader();
    assert_eq!(reader.blocks().unwrap().len(), 2);
    assert_eq!(reader.warm_jobs().unwrap().len(), 4);
    let running = a.job("running");
    assert_eq!((running.done, running.bytes, running.runs), (3, 60, 2));
    assert_eq!(a.job("cancelled").state, JobState::Cancelled);
    assert_eq!(reader.warm_source("cancelled").unwrap(), None);
    assert_eq!(
        reader.warm_source("running").unwrap().as_deref(),
        Some(TARGETS)
    );
    let receiving = a.job("receiving");
    assert_eq!(
        (receiving.state, receiving.parts_received),
        (JobState::Receiving, 2)
    );
    assert_eq!(reader.warm_source("receiving").unwrap(), None);
    assert_eq!(
        a.sm.index().scan_prefix(WARM_SOURCE_PREFIX).count(),
        4,
        "running, pinning and two of receiving"
    );
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
    let mut snapshot = source
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
            part("stale", 0, "example.com/stale@v1.0.0\n"),
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
    tokio::io::copy(&mut *snapshot.snapshot, &mut *buffer)
        .await
        .unwrap();
    target
        .sm
        .install_snapshot(&snapshot.meta, buffer)
        .await
        .unwrap();

    let (s, t) = (source.reader(), target.reader());
    assert_eq!(t.blocks().unwrap(), s.blocks().unwrap());
    assert_eq!(t.warm_jobs().unwrap(), s.warm_jobs().unwrap());
    for id in ["running", "pinning", "cancelled", "receiving", "stale"] {
        assert_eq!(t.warm_job(id).unwrap(), s.warm_job(id).unwrap(), "{id}");
        assert_eq!(t.warm_done(id).unwrap(), s.warm_done(id).unwrap(), "{id}");
        assert_eq!(
            t.warm_source(id).unwrap(),
            s.warm_source(id).unwrap(),
            "{id}"
        );
    }
    assert_eq!(t.warm_source("pinning").unwrap().as_deref(), Some(TARGETS));
    assert!(
        ops_dump(&target.sm)
            .iter()
            .any(|(k, _)| k.starts_with(WARM_SOURCE_PREFIX)),
        "the input parts are carried"
    );
    assert_eq!(
        target
            .sm
            .index()
            .scan_prefix(source_prefix("stale"))
            .count(),
        0,
        "the stale job's input is gone"
    );
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
    // Readers drop their caches: both marks move to the snapshot's index.
    assert_eq!(t.blocks_at().unwrap(), last);
    assert_eq!(t.ops_at().unwrap(), last);
    // The whole tree is carried, reclaim records too (every node's tree is the same).
    assert_eq!(t.reclaims_after(0).unwrap(), s.reclaims_after(0).unwrap());

    // The target goes on from the snapshot exactly as the source does.
    let mut resume = progress("running", 3);
    resume.started = true;
    resume.done = vec![done("a", 10, true), done("d", 40, false)];
    let next = vec![
        IndexCommand::WarmProgress(resume),
        unpin("pinning"),
        unblock("example.com/bad"),
        part("receiving", 2, ")\n"),
        IndexCommand::WarmProgress(progress("cancelled", 3)),
        part("receiving", 3, "one too many\n"),
    ];
    target.skip_to(last + 1);
    let responses = target.batch(next.clone()).await;
    let expected = source.batch(next).await;
    assert_eq!(responses, expected);
    assert_eq!(responses[..4], vec![ApplyResponse::Inserted; 4]);
    assert!(matches!(responses[4], ApplyResponse::Refused { .. }));
    assert_eq!(
        reason(&responses[5]),
        "job receiving does not expect part 3 (state queued, 3 of 3 received)"
    );
    assert_eq!(target.job("receiving").state, JobState::Queued);
    assert_eq!(
        target.reader().warm_source("receiving").unwrap().as_deref(),
        Some("module example.com/m\nrequire (\n\texample.com/a v1.0.0\n)\n"),
        "parts committed before and after the snapshot, in order"
    );
    let job = target.job("running");
    assert_eq!(
        (job.done, job.bytes, job.runs),
        (4, 100, 3),
        "\"a\" not counted again"
    );
    assert_eq!(ops_dump(&target.sm), ops_dump(&source.sm));
}

// ---------------------------------------------------------------------------------------
// The counts the state machine keeps (entries, kept blobs and bytes)
// ---------------------------------------------------------------------------------------

/// The kept counts, and the same computed from scratch from the entries and the evictions.
fn counts(reader: &IndexReader) -> ((usize, u64, u64), (usize, u64, u64)) {
    let kept = reader.kept().unwrap();
    let evicted: std::collections::HashSet<(String, String)> = reader
        .evicted()
        .unwrap()
        .into_iter()
        .map(|(v, _)| (v.module, v.version))
        .collect();
    let entries = reader.all_entries().unwrap();
    let mut blobs = std::collections::BTreeMap::new();
    for entry in &entries {
        let key = &entry.key;
        if key.kind == ArtifactKind::Zip
            && evicted.contains(&(key.module.clone(), key.version.clone()))
        {
            continue;
        }
        blobs.insert(entry.blob.sha256.clone(), entry.blob.size);
    }
    for sha in blobs.keys() {
        assert!(reader.is_blob_kept(sha).unwrap(), "{sha} is kept");
    }
    // The feed holds exactly the kept blobs, once each.
    let mut fed: Vec<(String, u64)> = feed(reader)
        .into_iter()
        .map(|(_, b)| (b.sha256, b.size))
        .collect();
    fed.sort();
    let kept_blobs: Vec<(String, u64)> = blobs.iter().map(|(s, n)| (s.clone(), *n)).collect();
    assert_eq!(fed, kept_blobs, "the blob feed lists the kept blobs");
    (
        (reader.entry_count(), kept.0, kept.1),
        (entries.len(), blobs.values().sum(), blobs.len() as u64),
    )
}

fn sized(mut entry: IndexEntry, size: u64) -> IndexEntry {
    entry.blob.size = size;
    entry
}

#[tokio::test]
async fn the_kept_counts_match_a_recount_after_every_operation() {
    let mut log = Log::new();
    let check = |log: &Log, what: &str| {
        let (kept, recounted) = counts(&log.reader());
        assert_eq!(kept, recounted, "after {what}");
    };
    check(&log, "nothing");
    // v1 and v2 share their .mod's bytes (an unchanged go.mod): one blob, two references.
    let v1 = vec![
        sized(artifact(A, "v1.0.0", ArtifactKind::Info, "i1"), 100),
        sized(artifact(A, "v1.0.0", ArtifactKind::Mod, "shared"), 30),
        sized(artifact(A, "v1.0.0", ArtifactKind::Zip, "z1"), 5_000),
    ];
    let v2 = vec![
        sized(artifact(A, "v1.1.0", ArtifactKind::Info, "i2"), 100),
        sized(artifact(A, "v1.1.0", ArtifactKind::Mod, "shared"), 30),
        sized(artifact(A, "v1.1.0", ArtifactKind::Zip, "z2"), 7_000),
    ];
    log.batch(vec![
        IndexCommand::PutAll(v1.clone()),
        IndexCommand::PutAll(v2.clone()),
    ])
    .await;
    check(&log, "two versions");
    assert_eq!(log.reader().kept().unwrap(), (12_230, 5));
    log.one(IndexCommand::Put(v1[2].clone())).await;
    check(&log, "the same put again");
    log.one(evict(1, &[(A, "v1.0.0")])).await;
    check(&log, "an eviction");
    assert_eq!(log.reader().kept().unwrap(), (7_230, 4));
    assert!(!log.reader().is_blob_kept(&sha("z1")).unwrap());
    log.one(restore(&[(A, "v1.0.0")])).await;
    check(&log, "a restore");
    log.one(evict(2, &[(A, "v1.1.0")])).await;
    // A pinning job that fetched the evicted v1.1.0 keeps it again.
    log.batch(queued("pins", true)).await;
    let mut p = progress("pins", 1);
    p.pins = vec![(A.into(), "v1.1.0".into())];
    log.one(IndexCommand::WarmProgress(p)).await;
    check(&log, "a pin of an evicted version");
    assert_eq!(log.reader().kept().unwrap(), (12_230, 5));
    log.one(purge(A, "v1.0.0")).await;
    check(&log, "a purge");
    assert!(
        log.reader().is_blob_kept(&sha("shared")).unwrap(),
        "v1.1.0 still uses it"
    );
    // Purge and put again in one batch, evict and purge in one batch.
    log.batch(vec![
        purge(A, "v1.1.0"),
        IndexCommand::PutAll(v2.clone()),
        evict(3, &[(A, "v1.1.0")]),
    ])
    .await;
    check(&log, "purge, put, evict in one batch");
    log.batch(vec![purge(A, "v1.1.0")]).await;
    check(&log, "everything purged");
    assert_eq!(log.reader().kept().unwrap(), (0, 0));
    assert_eq!(log.reader().entry_count(), 0);

    // A snapshot carries the state; the installing side counts it.
    log.batch(vec![
        IndexCommand::PutAll(v1.clone()),
        IndexCommand::PutAll(v2.clone()),
    ])
    .await;
    log.one(evict(4, &[(A, "v1.0.0")])).await;
    let mut snapshot = log
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let target = Log::new();
    target
        .sm
        .clone()
        .apply(vec![entry_at(
            1,
            IndexCommand::Put(sized(artifact(AB, "v9.0.0", ArtifactKind::Zip, "old"), 99)),
        )])
        .await
        .unwrap();
    let mut buffer = target.sm.clone().begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut *snapshot.snapshot, &mut *buffer)
        .await
        .unwrap();
    target
        .sm
        .clone()
        .install_snapshot(&snapshot.meta, buffer)
        .await
        .unwrap();
    check(&target, "a snapshot install");
    assert_eq!(
        target.reader().kept().unwrap(),
        log.reader().kept().unwrap()
    );
    assert!(!target.reader().is_blob_kept(&sha("old")).unwrap());
}

#[tokio::test]
async fn a_tree_without_counts_is_counted_when_opened() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let mut sm = StateMachine::open(&db, snapshot_dir()).unwrap();
    let entries: Vec<_> = version(A, "v1.0.0", "a")
        .into_iter()
        .chain(version(AB, "v1.0.0", "b"))
        .enumerate()
        .map(|(i, e)| entry_at(i as u64 + 1, IndexCommand::Put(e)))
        .collect();
    sm.apply(entries).await.unwrap();
    let before = sm.reader().kept().unwrap();
    // As a data directory from before the counts: none of them in the tree.
    let tree = db.open_tree("index").unwrap();
    for key in [
        &b"\xffmeta/entries"[..],
        b"\xffmeta/kept_bytes",
        b"\xffmeta/kept_blobs",
        b"\xffmeta/counters_version",
    ] {
        tree.remove(key).unwrap();
    }
    for key in tree.scan_prefix(b"\xffblobref/").keys() {
        tree.remove(key.unwrap()).unwrap();
    }
    assert_eq!(sm.reader().entry_count(), 0);
    let reopened = StateMachine::open(&db, snapshot_dir()).unwrap();
    assert_eq!(reopened.reader().entry_count(), 6);
    assert_eq!(reopened.reader().kept().unwrap(), before);
    assert!(reopened.reader().is_blob_kept(&sha("az")).unwrap());
}

// ---------------------------------------------------------------------------------------
// The blob feed
// ---------------------------------------------------------------------------------------

/// The whole blob feed, read in small pages as the catch-up reads it.
fn feed(reader: &IndexReader) -> Vec<(u64, goproxy_protocol::index::BlobRef)> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = reader.blob_feed_after(after, 2).unwrap();
        let Some((last, _)) = page.last() else {
            return out;
        };
        after = Some(*last);
        out.extend(page);
    }
}

/// The feed as (sequence, blob tag) with the tags of [`sha`].
fn fed(log: &Log) -> Vec<(u64, String)> {
    feed(&log.reader())
        .into_iter()
        .map(|(seq, blob)| (seq, blob.sha256.trim_start_matches('0').to_string()))
        .collect()
}

fn tagged(records: &[(u64, &str)]) -> Vec<(u64, String)> {
    records.iter().map(|(n, t)| (*n, t.to_string())).collect()
}

#[tokio::test]
async fn the_blob_feed_records_a_blob_when_it_becomes_kept_and_drops_it_when_released() {
    let mut log = Log::new();
    let v1 = vec![
        artifact(A, "v1.0.0", ArtifactKind::Info, "i1"),
        artifact(A, "v1.0.0", ArtifactKind::Mod, "shared"),
        artifact(A, "v1.0.0", ArtifactKind::Zip, "z1"),
    ];
    let v2 = vec![
        artifact(A, "v1.1.0", ArtifactKind::Info, "i2"),
        artifact(A, "v1.1.0", ArtifactKind::Mod, "shared"),
        artifact(A, "v1.1.0", ArtifactKind::Zip, "z2"),
    ];
    log.one(IndexCommand::PutAll(v1.clone())).await;
    assert_eq!(fed(&log), tagged(&[(1, "i1"), (2, "shared"), (3, "z1")]));
    log.one(IndexCommand::PutAll(v2)).await;
    assert_eq!(
        fed(&log),
        tagged(&[(1, "i1"), (2, "shared"), (3, "z1"), (4, "i2"), (5, "z2")]),
        "the shared blob was kept already: no second record"
    );
    log.one(IndexCommand::Put(v1[2].clone())).await;
    assert_eq!(fed(&log).len(), 5, "the same put again adds nothing");

    log.one(evict(1, &[(A, "v1.0.0")])).await;
    assert_eq!(
        fed(&log),
        tagged(&[(1, "i1"), (2, "shared"), (4, "i2"), (5, "z2")]),
        "an evicted zip leaves the feed"
    );
    log.one(restore(&[(A, "v1.0.0")])).await;
    assert_eq!(
        fed(&log),
        tagged(&[(1, "i1"), (2, "shared"), (4, "i2"), (5, "z2"), (6, "z1")]),
        "a restored zip comes back as a new record"
    );
    let reader = log.reader();
    assert_eq!(
        reader
            .blob_feed_after(Some(2), 2)
            .unwrap()
            .into_iter()
            .map(|(seq, _)| seq)
            .collect::<Vec<_>>(),
        [4, 5],
        "after 2, at most 2"
    );
    assert!(reader.blob_feed_after(Some(6), 10).unwrap().is_empty());
    assert!(reader
        .blob_feed_after(Some(u64::MAX), 10)
        .unwrap()
        .is_empty());

    log.one(purge(A, "v1.0.0")).await;
    assert_eq!(
        fed(&log),
        tagged(&[(2, "shared"), (4, "i2"), (5, "z2")]),
        "v1.1.0 still uses the shared blob"
    );
    log.one(purge(A, "v1.1.0")).await;
    assert!(fed(&log).is_empty());
    log.one(IndexCommand::PutAll(v1)).await;
    assert_eq!(
        fed(&log),
        tagged(&[(7, "i1"), (8, "shared"), (9, "z1")]),
        "sequences go on growing"
    );
}

#[tokio::test]
async fn the_blob_feed_is_the_same_applied_one_by_one_or_in_one_batch() {
    let commands = || {
        vec![
            IndexCommand::PutAll(version(A, "v1.0.0", "a1")),
            IndexCommand::Put(artifact(AB, "v1.0.0", ArtifactKind::Mod, "a1m")),
            evict(1, &[(A, "v1.0.0")]),
            IndexCommand::PutAll(version(A, "v2.0.0", "a2")),
            restore(&[(A, "v1.0.0")]),
            purge(A, "v2.0.0"),
            IndexCommand::PutAll(version(A, "v2.0.0", "a2")),
            purge(AB, "v1.0.0"),
        ]
    };
    let (mut batched, mut single) = (Log::new(), Log::new());
    batched.batch(commands()).await;
    single.one_by_one(commands()).await;
    assert_eq!(fed(&batched), fed(&single));
    assert_eq!(dump(&batched.sm), dump(&single.sm), "the whole tree");
    assert_eq!(
        fed(&batched),
        tagged(&[
            (1, "a1i"),
            (2, "a1m"),
            (7, "a1z"),
            (8, "a2i"),
            (9, "a2m"),
            (10, "a2z")
        ])
    );
    counts(&batched.reader());
}

#[tokio::test]
async fn rebuilding_the_feed_renumbers_it_and_moves_its_generation() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let mut sm = StateMachine::open(&db, snapshot_dir()).unwrap();
    let first = sm.reader().blob_feed_generation().unwrap();
    let entries: Vec<_> = [
        artifact(A, "v1.0.0", ArtifactKind::Mod, "b"),
        artifact(A, "v1.0.0", ArtifactKind::Zip, "c"),
        artifact(A, "v2.0.0", ArtifactKind::Mod, "a"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, e)| entry_at(i as u64 + 1, IndexCommand::Put(e)))
    .collect();
    sm.apply(entries).await.unwrap();
    sm.apply(vec![entry_at(4, evict(1, &[(A, "v1.0.0")]))])
        .await
        .unwrap();
    assert_eq!(sm.reader().blob_feed_generation().unwrap(), first);
    let log = Log { sm, next: 5 };
    assert_eq!(fed(&log), tagged(&[(1, "b"), (3, "a")]));

    // A data directory of the previous version of the counts (bare reference counts, no
    // feed) is counted again when opened.
    as_counts_version_1(&log.sm);
    let reopened = Log {
        sm: StateMachine::open(&db, snapshot_dir()).unwrap(),
        next: 5,
    };
    assert_eq!(
        reopened.reader().blob_feed_generation().unwrap(),
        first + 1,
        "a rebuilt feed is a new generation"
    );
    assert_eq!(
        fed(&reopened),
        tagged(&[(1, "a"), (2, "b")]),
        "one record per kept blob, by sha256, numbered from 1"
    );
    counts(&reopened.reader());
    let mut reopened = reopened;
    reopened.one(purge(A, "v2.0.0")).await;
    reopened.one(restore(&[(A, "v1.0.0")])).await;
    assert_eq!(fed(&reopened), tagged(&[(2, "b"), (3, "c")]));
    counts(&reopened.reader());

    // Opening a counted tree again changes nothing.
    let again = StateMachine::open(&db, snapshot_dir()).unwrap();
    assert_eq!(again.reader().blob_feed_generation().unwrap(), first + 1);

    // A snapshot installed replaces the feed (by the sender's): a new generation.
    let mut source = Log::new();
    source
        .batch(vec![IndexCommand::PutAll(version(AB, "v1.0.0", "s"))])
        .await;
    let mut snapshot = source
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut buffer = reopened.sm.begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut *snapshot.snapshot, &mut *buffer)
        .await
        .unwrap();
    reopened
        .sm
        .install_snapshot(&snapshot.meta, buffer)
        .await
        .unwrap();
    assert!(reopened.reader().blob_feed_generation().unwrap() > first + 1);
    assert_eq!(fed(&reopened), tagged(&[(1, "si"), (2, "sm"), (3, "sz")]));
    counts(&reopened.reader());
}

/// Makes `sm`'s counts those of the previous version: bare reference counts, no feed.
fn as_counts_version_1(sm: &StateMachine) {
    for key in sm.index().scan_prefix(b"\xffblobfeed/").keys() {
        sm.index().remove(key.unwrap()).unwrap();
    }
    for key in sm.index().scan_prefix(b"\xffblobref/").keys() {
        sm.index().insert(key.unwrap(), &b"1"[..]).unwrap();
    }
    sm.index().remove(b"\xffmeta/blobfeed_seq").unwrap();
    sm.index()
        .insert(b"\xffmeta/counters_version", &b"1"[..])
        .unwrap();
}

#[tokio::test]
async fn a_snapshot_from_a_sender_with_older_counts_is_counted_again_when_installed() {
    let mut source = Log::new();
    source
        .batch(vec![IndexCommand::PutAll(version(A, "v1.0.0", "a"))])
        .await;
    as_counts_version_1(&source.sm);
    let mut snapshot = source
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut target = Log::new();
    let mut buffer = target.sm.begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut *snapshot.snapshot, &mut *buffer)
        .await
        .unwrap();
    target
        .sm
        .install_snapshot(&snapshot.meta, buffer)
        .await
        .unwrap();
    assert_eq!(fed(&target), tagged(&[(1, "ai"), (2, "am"), (3, "az")]));
    counts(&target.reader());

    // It applies on from there.
    target.skip_to(source.last() + 1);
    target.one(evict(1, &[(A, "v1.0.0")])).await;
    assert_eq!(fed(&target), tagged(&[(1, "ai"), (2, "am")]));
    counts(&target.reader());
}
