//! The cache index as a Raft state machine on sled (openraft storage-v2).
//!
//! Tree `index`: artifact key → JSON [`IndexEntry`], plus applied-state metadata under
//! the reserved `0xFF` prefix (module paths never start with that byte). Each applied
//! batch is one atomic sled batch, so a crash never leaves entries without the matching
//! `last_applied`. Entries are insert-only: the first committed content for a key wins,
//! which makes applying deterministic and re-applying idempotent.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use goproxy_protocol::index::IndexEntry;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StoredMembership,
};
use serde::Deserialize;
use sled::IVec;

pub(crate) mod counters;
pub(crate) mod ops;
pub(crate) mod snapshot;

use snapshot::{Capture, Current, Snapshots};
pub use snapshot::{SnapshotFile, SnapshotReport, SnapshotStats};

use crate::error::storage_err;
use crate::keys;
use crate::reader::{IndexReader, SharedTree, META_PREFIX};
use crate::types::{
    AdminAction, AdminEvent, AdminRecord, ApplyResponse, Entry, IndexCommand, LogId, NodeId,
    StorageError, TypeConfig,
};

const LAST_APPLIED: &[u8] = b"\xffmeta/last_applied";
const LAST_MEMBERSHIP: &[u8] = b"\xffmeta/last_membership";
/// Client tokens live beside the metadata (outside every artifact scan), in the same tree, so
/// a token change applies in the same atomic batch as `last_applied`.
pub(crate) const TOKEN_PREFIX: &[u8] = b"\xfftoken/";
/// The admin trail: `\xffadmin/` + zero-padded log index → JSON [`AdminEvent`].
pub(crate) const ADMIN_PREFIX: &[u8] = b"\xffadmin/";
/// Log index of the last change to the tokens: readers rebuild their compiled grants when it
/// moves, instead of scanning the tokens on every request.
pub(crate) const TOKENS_AT: &[u8] = b"\xffmeta/tokens_at";
/// The members' shared secret ([`IndexCommand::MemberSecret`]).
pub(crate) const MEMBER_SECRET: &[u8] = b"\xffmeta/member_secret";
/// Legacy (single-value JSON snapshots): the meta and the data in the `snapshot` tree.
const LEGACY_SNAPSHOT_META: &[u8] = b"meta";
const LEGACY_SNAPSHOT_DATA: &[u8] = b"data";
/// The current snapshot: JSON [`snapshot::Current`] (meta and file name).
const CURRENT_SNAPSHOT: &[u8] = b"current";
/// The name of the tree a snapshot is being installed into (beside the active one); present
/// only while it is filled (a crash leaves it: the next open drops that tree).
const INSTALLING_SNAPSHOT: &[u8] = b"installing";
/// The name of the active index tree (absent: `index`).
const ACTIVE_INDEX: &[u8] = b"active_index";
/// The index tree's name before any snapshot was installed, and the prefix of every later one.
const INDEX_TREE: &str = "index";
/// Changes whenever the tree's blob feed is replaced wholesale (a snapshot installed), so
/// the blob catch-up knows to start over.
pub(crate) const BLOBFEED_RESET: &[u8] = b"\xffmeta/blobfeed_reset";

/// Artifact entries written (`Some`) or purged (`None`) earlier in the batch being applied.
pub(crate) type Pending = HashMap<Vec<u8>, Option<IndexEntry>>;

type Membership = StoredMembership<NodeId, crate::types::PeerNode>;
type Meta = SnapshotMeta<NodeId, crate::types::PeerNode>;

/// Writes to the `index` tree, applied at once; it remembers the keys it touches, so a
/// snapshot build under way can record their earlier values first.
#[derive(Debug, Default)]
pub(crate) struct WriteBatch {
    batch: sled::Batch,
    keys: Vec<IVec>,
}

impl WriteBatch {
    pub(crate) fn insert<K: Into<IVec>, V: Into<IVec>>(&mut self, key: K, value: V) {
        let key = key.into();
        self.keys.push(key.clone());
        self.batch.insert(key, value);
    }

    pub(crate) fn remove<K: Into<IVec>>(&mut self, key: K) {
        let key = key.into();
        self.keys.push(key.clone());
        self.batch.remove(key);
    }
}

/// The state machine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StateMachine {
    db: sled::Db,
    index: SharedTree,
    snapshot: sled::Tree,
    snapshots: Arc<Snapshots>,
}

pub(crate) fn read_err(e: impl std::fmt::Display) -> StorageError {
    storage_err(ErrorVerb::Read, ErrorSubject::StateMachine, e)
}

pub(crate) fn write_err(e: impl std::fmt::Display) -> StorageError {
    storage_err(ErrorVerb::Write, ErrorSubject::StateMachine, e)
}

fn snapshot_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    storage_err(verb, ErrorSubject::Snapshot(None), e)
}

impl StateMachine {
    /// Opens the state-machine trees in `db`, with snapshot files in `snapshot_dir`.
    ///
    /// A snapshot install a crash interrupted leaves a half-filled tree beside the active
    /// one: it is dropped (the active index is whole, and the leader sends the snapshot again).
    pub fn open(db: &sled::Db, snapshot_dir: impl Into<PathBuf>) -> Result<Self, sled::Error> {
        let snapshot = db.open_tree("snapshot")?;
        let active = match snapshot.get(ACTIVE_INDEX)? {
            Some(name) => String::from_utf8_lossy(&name).into_owned(),
            None => INDEX_TREE.to_string(),
        };
        if let Some(partial) = snapshot.get(INSTALLING_SNAPSHOT)? {
            tracing::warn!(
                "a snapshot install was interrupted; keeping the index as it was before it \
                 (the leader sends the snapshot again)"
            );
            let partial = String::from_utf8_lossy(&partial).into_owned();
            if partial != active {
                db.drop_tree(partial.as_bytes())?;
            }
            snapshot.remove(INSTALLING_SNAPSHOT)?;
            db.flush()?;
        }
        // Trees of earlier installs a crash left behind.
        for name in db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            if name.starts_with(INDEX_TREE) && name != active {
                db.drop_tree(name.as_bytes())?;
            }
        }
        let machine = Self {
            db: db.clone(),
            index: SharedTree::new(db.open_tree(active.as_bytes())?),
            snapshot,
            snapshots: Arc::new(Snapshots::open(snapshot_dir.into())?),
        };
        let fail = |what: &str, e: StorageError| sled::Error::Unsupported(format!("{what}: {e}"));
        machine
            .drop_legacy_snapshot()
            .map_err(|e| fail("dropping the old snapshot", e))?;
        machine
            .ensure_counters()
            .map_err(|e| fail("counting the index", e))?;
        Ok(machine)
    }

    /// The active index tree.
    pub(crate) fn index(&self) -> sled::Tree {
        self.index.get()
    }

    /// A reader over the applied index for local (non-Raft) reads.
    pub fn reader(&self) -> IndexReader {
        IndexReader::new(self.index.clone())
    }

    /// Figures about this node's snapshots.
    pub fn snapshot_stats(&self) -> Arc<SnapshotStats> {
        self.snapshots.stats.clone()
    }

    fn meta<T: for<'de> Deserialize<'de> + Default>(&self, key: &[u8]) -> Result<T, StorageError> {
        match self.index().get(key).map_err(read_err)? {
            None => Ok(T::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(read_err),
        }
    }

    fn applied(&self) -> Result<(Option<LogId>, Membership), StorageError> {
        Ok((self.meta(LAST_APPLIED)?, self.meta(LAST_MEMBERSHIP)?))
    }

    /// Applies `batch` to the index tree (recording earlier values for builds under way).
    pub(crate) fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.snapshots
            .before_write(&self.index(), &batch.keys)
            .map_err(read_err)?;
        self.index().apply_batch(batch.batch).map_err(write_err)
    }

    fn current(&self, key: &[u8]) -> Result<Option<Current<Meta>>, StorageError> {
        self.snapshot
            .get(key)
            .map_err(|e| snapshot_err(ErrorVerb::Read, e))?
            .map(|b| serde_json::from_slice(&b))
            .transpose()
            .map_err(|e| snapshot_err(ErrorVerb::Read, e))
    }

    async fn stored_snapshot(&self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        // Read which file is current and open it under the lock a new current file is
        // recorded under (and older ones deleted), so the file cannot vanish in between.
        let opened = {
            let _files = self.snapshots.files.lock().expect("snapshot files lock");
            match self.current(CURRENT_SNAPSHOT)? {
                None => None,
                Some(current) => {
                    let path = self.snapshots.path(&current.file);
                    let file =
                        std::fs::File::open(&path).map_err(|e| snapshot_err(ErrorVerb::Read, e))?;
                    Some((current, path, file))
                }
            }
        };
        let Some((current, path, file)) = opened else {
            return Ok(None);
        };
        let file = SnapshotFile::from_std(file, path);
        Ok(Some(Snapshot {
            meta: current.meta,
            snapshot: Box::new(file),
        }))
    }

    /// Records `file` as the current snapshot and deletes the others.
    fn set_current(&self, meta: &Meta, file: &str) -> Result<(), StorageError> {
        let current = Current {
            meta: meta.clone(),
            file: file.to_string(),
        };
        let _files = self.snapshots.files.lock().expect("snapshot files lock");
        self.snapshot
            .insert(
                CURRENT_SNAPSHOT,
                serde_json::to_vec(&current).map_err(write_err)?,
            )
            .map_err(|e| snapshot_err(ErrorVerb::Write, e))?;
        self.db
            .flush()
            .map_err(|e| snapshot_err(ErrorVerb::Write, e))?;
        self.snapshots.remove_others(file);
        Ok(())
    }

    /// Snapshots of versions before snapshot files were one JSON value in the `snapshot`
    /// tree; such a value is dropped (openraft builds a new snapshot when it needs one).
    fn drop_legacy_snapshot(&self) -> Result<(), StorageError> {
        if self
            .snapshot
            .contains_key(LEGACY_SNAPSHOT_DATA)
            .map_err(read_err)?
        {
            let mut batch = sled::Batch::default();
            batch.remove(LEGACY_SNAPSHOT_META);
            batch.remove(LEGACY_SNAPSHOT_DATA);
            self.snapshot.apply_batch(batch).map_err(write_err)?;
            self.db.flush().map_err(write_err)?;
            tracing::info!("dropped a snapshot in the old single-value format");
        }
        Ok(())
    }

    /// Checks the snapshot file `file`, fills a fresh tree with its contents beside the
    /// active one, and swaps it in (blocking): readers see the old index, then the new one,
    /// never a part of either.
    fn refill(&self, meta: &Meta, file: &str) -> Result<(), StorageError> {
        let path = self.snapshots.path(file);
        let records = snapshot::verify(&path).map_err(|e| snapshot_err(ErrorVerb::Read, e))?;
        let old = self.index();
        let old_name = String::from_utf8_lossy(&old.name()).into_owned();
        let generation = old_name
            .strip_prefix(INDEX_TREE)
            .and_then(|n| n.strip_prefix('-'))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let new_name = format!("{INDEX_TREE}-{}", generation + 1);
        self.snapshot
            .insert(INSTALLING_SNAPSHOT, new_name.as_bytes())
            .map_err(write_err)?;
        self.db.flush().map_err(write_err)?;
        let swap_err = |e: sled::Error| snapshot_err(ErrorVerb::Write, e);
        // The tree the previous install replaced, and any leftover of the new name.
        for name in self.db.tree_names() {
            if name.starts_with(INDEX_TREE.as_bytes()) && name != old.name() {
                self.db.drop_tree(&name).map_err(swap_err)?;
            }
        }
        let fresh = self.db.open_tree(new_name.as_bytes()).map_err(swap_err)?;
        let feed_reset: u64 = self.meta(BLOBFEED_RESET)?;
        let at = meta.last_log_id.map_or(0, |id| id.index);
        let json = |v: serde_json::Result<Vec<u8>>| v.map_err(write_err);
        let last: Vec<(&[u8], Vec<u8>)> = vec![
            (TOKENS_AT, json(serde_json::to_vec(&at))?),
            (ops::BLOCKS_AT, json(serde_json::to_vec(&at))?),
            (ops::OPS_AT, json(serde_json::to_vec(&at))?),
            (BLOBFEED_RESET, json(serde_json::to_vec(&(feed_reset + 1)))?),
            (LAST_APPLIED, json(serde_json::to_vec(&meta.last_log_id))?),
            (
                LAST_MEMBERSHIP,
                json(serde_json::to_vec(&meta.last_membership))?,
            ),
        ];
        snapshot::fill(&fresh, &path, |batch| {
            // The tokens, block rules and operating state were replaced: readers drop
            // their caches; the blob feed was too: the catch-up starts over.
            for (key, value) in last {
                batch.insert(key, value);
            }
        })
        .map_err(|e| snapshot_err(ErrorVerb::Write, e))?;
        // The switch: one sled batch names the new tree active and the file current.
        let current = Current {
            meta: meta.clone(),
            file: file.to_string(),
        };
        let mut batch = sled::Batch::default();
        batch.insert(ACTIVE_INDEX, new_name.as_bytes());
        batch.insert(
            CURRENT_SNAPSHOT,
            serde_json::to_vec(&current).map_err(write_err)?,
        );
        batch.remove(INSTALLING_SNAPSHOT);
        {
            let _files = self.snapshots.files.lock().expect("snapshot files lock");
            self.snapshot.apply_batch(batch).map_err(write_err)?;
            self.db.flush().map_err(write_err)?;
            self.snapshots.remove_others(file);
        }
        self.index.replace(fresh);
        // Readers that took the old tree just before the swap finish with it: it is dropped
        // by the next install (or the next open), not now.
        drop(old);
        // A sender of an older version sent older counts (and no blob feed).
        self.ensure_counters()?;
        self.snapshots
            .set_current(std::fs::metadata(&path).map_or(0, |m| m.len()), records);
        Ok(())
    }
}

fn token_key(name: &str) -> Vec<u8> {
    let mut key = TOKEN_PREFIX.to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

pub(crate) fn admin_key(index: u64) -> Vec<u8> {
    let mut key = ADMIN_PREFIX.to_vec();
    key.extend_from_slice(format!("{index:020}").as_bytes());
    key
}

impl StateMachine {
    /// Applies one admin action into `batch` (a token name is created once, revoked once)
    /// and appends it, with its outcome, to the trail.
    fn apply_admin(
        &self,
        index: u64,
        record: AdminRecord,
        batch: &mut WriteBatch,
        changed: &mut HashMap<String, bool>,
    ) -> Result<ApplyResponse, StorageError> {
        let (kind, detail) = (record.action.kind().to_string(), record.action.detail());
        let mut outcome = "ok".to_string();
        let response = match record.action {
            AdminAction::CreateToken(grant) => {
                let name = grant.name.clone();
                if self.token_present(&name, changed)? {
                    ApplyResponse::Refused {
                        reason: format!("a token named {name:?} exists"),
                    }
                } else {
                    batch.insert(
                        token_key(&name),
                        serde_json::to_vec(&grant).map_err(write_err)?,
                    );
                    changed.insert(name, true);
                    ApplyResponse::Inserted
                }
            }
            AdminAction::RevokeToken { name } => {
                if self.token_present(&name, changed)? {
                    batch.remove(token_key(&name));
                    changed.insert(name, false);
                    ApplyResponse::Inserted
                } else {
                    ApplyResponse::Refused {
                        reason: format!("no token named {name:?}"),
                    }
                }
            }
            AdminAction::Cluster {
                outcome: result, ..
            } => {
                outcome = result;
                ApplyResponse::Inserted
            }
            // Applied by `apply_ops_admin`.
            other => ApplyResponse::Refused {
                reason: format!("{} is an operating action", other.kind()),
            },
        };
        if matches!(response, ApplyResponse::Inserted) && kind.starts_with("token-") {
            batch.insert(TOKENS_AT, serde_json::to_vec(&index).map_err(write_err)?);
        }
        if let ApplyResponse::Refused { reason } = &response {
            outcome = format!("refused: {reason}");
        }
        let event = AdminEvent {
            index,
            at_ms: record.at_ms,
            actor: record.actor,
            node: record.node,
            kind,
            detail,
            outcome,
        };
        batch.insert(
            admin_key(index),
            serde_json::to_vec(&event).map_err(write_err)?,
        );
        Ok(response)
    }

    fn token_present(
        &self,
        name: &str,
        changed: &HashMap<String, bool>,
    ) -> Result<bool, StorageError> {
        match changed.get(name) {
            Some(present) => Ok(*present),
            None => self.index().contains_key(token_key(name)).map_err(read_err),
        }
    }

    /// The entry at artifact key `key` as the batch being applied left it (written or purged
    /// earlier in it, else the tree's).
    pub(crate) fn committed(
        &self,
        pending: &Pending,
        key: &[u8],
    ) -> Result<Option<IndexEntry>, StorageError> {
        match pending.get(key) {
            Some(entry) => Ok(entry.clone()),
            None => self
                .index()
                .get(key)
                .map_err(read_err)?
                .map(|b| serde_json::from_slice(&b))
                .transpose()
                .map_err(read_err),
        }
    }

    /// Applies one put into `batch`: the first committed content for a key wins.
    fn apply_put(
        &self,
        put: IndexEntry,
        batch: &mut WriteBatch,
        pending: &mut Pending,
        ops: &mut ops::Overlay,
    ) -> Result<ApplyResponse, StorageError> {
        let key = keys::artifact(&put.key);
        let existing = self.committed(pending, &key)?;
        Ok(match existing {
            Some(existing) if existing.same_content(&put) => ApplyResponse::AlreadyPresent,
            Some(existing) => ApplyResponse::Conflict { existing },
            None => {
                batch.insert(key.clone(), serde_json::to_vec(&put).map_err(write_err)?);
                let kept = !self.is_evicted_zip(ops, &put)?;
                self.count_added(batch, ops, &put, kept)?;
                pending.insert(key, Some(put));
                ApplyResponse::Inserted
            }
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        self.applied()
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let mut pending: Pending = HashMap::new();
        let mut ops = ops::Overlay::default();
        // Token names changed earlier in this batch: present or revoked.
        let mut tokens: HashMap<String, bool> = HashMap::new();
        let mut member_secret_set = false;
        let mut responses = Vec::new();
        let (mut last_applied, mut membership) = self.applied()?;
        for entry in entries {
            last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => ApplyResponse::Empty,
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(entry.log_id), m);
                    ApplyResponse::Empty
                }
                EntryPayload::Normal(IndexCommand::Put(put)) => {
                    self.apply_put(put, &mut batch, &mut pending, &mut ops)?
                }
                EntryPayload::Normal(IndexCommand::MemberSecret(secret)) => {
                    if member_secret_set
                        || self.index().contains_key(MEMBER_SECRET).map_err(read_err)?
                    {
                        ApplyResponse::AlreadyPresent
                    } else {
                        batch.insert(
                            MEMBER_SECRET,
                            serde_json::to_vec(&secret).map_err(write_err)?,
                        );
                        member_secret_set = true;
                        ApplyResponse::Inserted
                    }
                }
                EntryPayload::Normal(IndexCommand::Admin(record)) if record.action.is_ops() => self
                    .apply_ops_admin(
                        entry.log_id.index,
                        record,
                        &mut batch,
                        &mut pending,
                        &mut ops,
                    )?,
                EntryPayload::Normal(IndexCommand::Admin(record)) => {
                    self.apply_admin(entry.log_id.index, record, &mut batch, &mut tokens)?
                }
                EntryPayload::Normal(IndexCommand::WarmSource(part)) => {
                    self.apply_source(part, &mut batch, &mut ops)?
                }
                EntryPayload::Normal(IndexCommand::WarmProgress(progress)) => {
                    self.apply_progress(progress, &mut batch, &pending, &mut ops)?
                }
                EntryPayload::Normal(IndexCommand::Evict(evictions)) => self.apply_evict(
                    entry.log_id.index,
                    evictions,
                    &mut batch,
                    &mut pending,
                    &mut ops,
                )?,
                EntryPayload::Normal(IndexCommand::Restore(versions)) => self.apply_restore(
                    entry.log_id.index,
                    versions,
                    &mut batch,
                    &pending,
                    &mut ops,
                )?,
                EntryPayload::Normal(IndexCommand::PutAll(puts)) => ApplyResponse::All(
                    puts.into_iter()
                        .map(|put| self.apply_put(put, &mut batch, &mut pending, &mut ops))
                        .collect::<Result<_, _>>()?,
                ),
            };
            responses.push(response);
        }
        batch.insert(
            LAST_APPLIED,
            serde_json::to_vec(&last_applied).map_err(write_err)?,
        );
        batch.insert(
            LAST_MEMBERSHIP,
            serde_json::to_vec(&membership).map_err(write_err)?,
        );
        self.commit(batch)?;
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Between two applies: the capture point of the build.
        let guard = self.snapshots.building.clone().read_owned().await;
        let capture = self.snapshots.capture();
        let applied = self.applied();
        Builder {
            machine: self.clone(),
            capture,
            applied,
            _building: guard,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        // One transfer at a time: a new one means any earlier was abandoned.
        self.snapshots.remove_incoming();
        let name = self.snapshots.fresh_name("incoming", 0, "part");
        let file = SnapshotFile::create(self.snapshots.path(&name))
            .await
            .map_err(|e| snapshot_err(ErrorVerb::Write, e))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        let started = std::time::Instant::now();
        let index = meta.last_log_id.map_or(0, |id| id.index);
        let received = snapshot
            .finish()
            .await
            .map_err(|e| snapshot_err(ErrorVerb::Write, e))?;
        // Never rewrite the tree under a build's walk.
        let _exclusive = self.snapshots.building.clone().write_owned().await;
        let machine = self.clone();
        let meta_owned = meta.clone();
        let file = tokio::task::spawn_blocking(move || -> Result<String, StorageError> {
            let name = machine.snapshots.fresh_name("snap", index, "snap");
            let target = machine.snapshots.path(&name);
            let moved = if received.parent() == Some(machine.snapshots.dir()) {
                std::fs::rename(&received, &target)
            } else {
                // Handed a file from elsewhere (openraft's storage suite does): copy it.
                std::fs::copy(&received, &target).map(|_| ())
            };
            moved.map_err(|e| snapshot_err(ErrorVerb::Write, e))?;
            machine.refill(&meta_owned, &name)?;
            Ok(name)
        })
        .await
        .map_err(|e| snapshot_err(ErrorVerb::Write, e))??;
        self.snapshots.installed(started.elapsed());
        let report = self.snapshots.stats.report();
        tracing::info!(
            snapshot = %meta.snapshot_id,
            file,
            records = report.records,
            bytes = report.bytes,
            chunks = report.last_install_chunks,
            took_ms = report.last_install_ms.unwrap_or(0),
            "installed index snapshot"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        self.stored_snapshot().await
    }
}

/// Builds a snapshot of the tree as it was when openraft asked for the builder (see
/// [`snapshot`]), while applies go on.
pub struct Builder {
    machine: StateMachine,
    capture: Arc<Capture>,
    applied: Result<(Option<LogId>, Membership), StorageError>,
    _building: tokio::sync::OwnedRwLockReadGuard<()>,
}

impl Drop for Builder {
    fn drop(&mut self) {
        self.machine.snapshots.release(&self.capture);
    }
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (last_applied, last_membership) = self.applied.clone()?;
        let index = last_applied.map_or(0, |id| id.index);
        let (machine, capture) = (self.machine.clone(), self.capture.clone());
        let (file, records, bytes) = tokio::task::spawn_blocking(move || {
            machine.snapshots.write(
                &machine.index(),
                &capture,
                &[LAST_APPLIED, LAST_MEMBERSHIP],
                index,
            )
        })
        .await
        .map_err(|e| snapshot_err(ErrorVerb::Write, e))?
        .map_err(|e| snapshot_err(ErrorVerb::Write, e))?;
        self.machine.snapshots.release(&self.capture);
        let snapshot_id = match last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, bytes),
            None => format!("empty-{bytes}"),
        };
        let meta = Meta {
            last_log_id: last_applied,
            last_membership,
            snapshot_id,
        };
        self.machine.snapshots.set_current(bytes, records);
        self.machine.set_current(&meta, &file)?;
        let report = self.machine.snapshots.stats.report();
        tracing::info!(
            snapshot = %meta.snapshot_id,
            records,
            bytes,
            took_ms = report.last_build_ms.unwrap_or(0),
            "built index snapshot"
        );
        let data = SnapshotFile::open(self.machine.snapshots.path(&file))
            .await
            .map_err(|e| snapshot_err(ErrorVerb::Read, e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(data),
        })
    }
}

/// Guard against the reserved prefix ever colliding with artifact keys.
const _: () = assert!(META_PREFIX == 0xff);

#[cfg(test)]
mod tests;
