//! Applying the operating commands ([`crate::ops`]): warm jobs, purges, block rules, pins,
//! evictions. Deterministic like the rest of the state machine: every decision depends only
//! on the applied state and the entry.

use std::collections::HashMap;

use goproxy_protocol::index::{ArtifactKind, IndexEntry};

use super::{read_err, write_err, Pending, StateMachine, WriteBatch};
use crate::keys;
use crate::ops::{
    BlockRecord, JobState, Reclaim, SourcePart, VersionRef, WarmJob, WarmProgress, WarmSpec,
    MAX_FINISHED_JOBS, MAX_JOB_FAILURES, MAX_OPEN_JOBS, MAX_OPEN_JOBS_PER_SUBMITTER, MAX_RECLAIMS,
    MAX_SOURCE_PARTS, SOURCE_PART_BYTES,
};
use crate::types::{AdminAction, AdminEvent, AdminRecord, ApplyResponse, StorageError};

/// Block rules: `\xffblock/` + rule → [`BlockRecord`].
pub(crate) const BLOCK_PREFIX: &[u8] = b"\xffblock/";
/// Log index of the last change to the block rules.
pub(crate) const BLOCKS_AT: &[u8] = b"\xffmeta/blocks_at";
/// Log index of the last purge, eviction or restore.
pub(crate) const OPS_AT: &[u8] = b"\xffmeta/ops_at";
/// Warm jobs: `\xffwarm/` + id → [`WarmJob`].
pub(crate) const WARM_PREFIX: &[u8] = b"\xffwarm/";
/// The parts of a job's input: `\xffwarmsrc/` + id + `\0` + zero-padded part.
pub(crate) const WARM_SOURCE_PREFIX: &[u8] = b"\xffwarmsrc/";
/// Items a job has done: `\xffwarmdone/` + id + `\0` + item.
pub(crate) const WARM_DONE_PREFIX: &[u8] = b"\xffwarmdone/";
/// Pinned versions: `\xffpin/` + module + `\0` + version → the job id.
pub(crate) const PIN_PREFIX: &[u8] = b"\xffpin/";
/// Evicted versions: `\xffevicted/` + module + `\0` + version → ms since the epoch.
pub(crate) const EVICTED_PREFIX: &[u8] = b"\xffevicted/";
/// Reclaim records: `\xffreclaim/` + zero-padded log index → [`Reclaim`].
pub(crate) const RECLAIM_PREFIX: &[u8] = b"\xffreclaim/";

/// The operating state's prefixes (reclaim records aside).
#[cfg(test)]
const SNAPSHOT_PREFIXES: [&[u8]; 6] = [
    BLOCK_PREFIX,
    WARM_PREFIX,
    WARM_SOURCE_PREFIX,
    WARM_DONE_PREFIX,
    PIN_PREFIX,
    EVICTED_PREFIX,
];

pub(crate) fn ops_key(prefix: &[u8], rest: &[&str]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    for (i, part) in rest.iter().enumerate() {
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part.as_bytes());
    }
    key
}

pub(crate) fn reclaim_key(index: u64) -> Vec<u8> {
    ops_key(RECLAIM_PREFIX, &[&format!("{index:020}")])
}

/// A key and its value.
type KeyValue = (Vec<u8>, Vec<u8>);

/// Ops keys written or removed earlier in the batch being applied.
#[derive(Default)]
pub(crate) struct Overlay {
    pending: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Overlay {
    pub(super) fn get(
        &self,
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        match self.pending.get(key) {
            Some(value) => Ok(value.clone()),
            None => Ok(tree.get(key).map_err(read_err)?.map(|v| v.to_vec())),
        }
    }

    pub(super) fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        match self.get(tree, key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(read_err),
        }
    }

    pub(super) fn put(&mut self, batch: &mut WriteBatch, key: Vec<u8>, value: Vec<u8>) {
        batch.insert(key.clone(), value.clone());
        self.pending.insert(key, Some(value));
    }

    pub(super) fn put_json<T: serde::Serialize>(
        &mut self,
        batch: &mut WriteBatch,
        key: Vec<u8>,
        value: &T,
    ) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(write_err)?;
        self.put(batch, key, bytes);
        Ok(())
    }

    /// The keys and values under `prefix` as this batch has left them (the tree's, with
    /// what earlier entries of the batch wrote or removed), in key order.
    pub(super) fn scan_prefix(
        &self,
        tree: &sled::Tree,
        prefix: &[u8],
    ) -> Result<Vec<KeyValue>, StorageError> {
        let mut merged = std::collections::BTreeMap::new();
        for item in tree.scan_prefix(prefix) {
            let (key, value) = item.map_err(read_err)?;
            merged.insert(key.to_vec(), value.to_vec());
        }
        for (key, value) in &self.pending {
            if key.starts_with(prefix) {
                match value {
                    Some(value) => merged.insert(key.clone(), value.clone()),
                    None => merged.remove(key),
                };
            }
        }
        Ok(merged.into_iter().collect())
    }

    pub(super) fn remove(&mut self, batch: &mut WriteBatch, key: Vec<u8>) {
        batch.remove(key.clone());
        self.pending.insert(key, None);
    }
}

impl AdminAction {
    /// Whether this action is an operating one (applied by [`StateMachine::apply_ops_admin`]).
    pub(crate) fn is_ops(&self) -> bool {
        matches!(
            self,
            AdminAction::Purge(_)
                | AdminAction::Block { .. }
                | AdminAction::Unblock { .. }
                | AdminAction::WarmSubmit(_)
                | AdminAction::WarmCancel { .. }
                | AdminAction::WarmUnpin { .. }
        )
    }
}

fn refused(reason: String) -> ApplyResponse {
    ApplyResponse::Refused { reason }
}

impl StateMachine {
    /// Applies an operating admin action and appends it to the trail with its outcome.
    pub(super) fn apply_ops_admin(
        &self,
        index: u64,
        record: AdminRecord,
        batch: &mut WriteBatch,
        pending: &mut Pending,
        ops: &mut Overlay,
    ) -> Result<ApplyResponse, StorageError> {
        let (kind, detail) = (record.action.kind().to_string(), record.action.detail());
        let response = match record.action {
            AdminAction::Purge(version) => self.purge(index, version, batch, pending, ops)?,
            AdminAction::Block { rule, reason } => {
                let key = ops_key(BLOCK_PREFIX, &[&rule]);
                let block = BlockRecord {
                    rule,
                    reason,
                    by: record.actor.clone(),
                    at_ms: record.at_ms,
                };
                ops.put_json(batch, key, &block)?;
                ops.put_json(batch, BLOCKS_AT.to_vec(), &index)?;
                ApplyResponse::Inserted
            }
            AdminAction::Unblock { rule } => {
                let key = ops_key(BLOCK_PREFIX, &[&rule]);
                if ops.get(&self.index(), &key)?.is_none() {
                    refused(format!("no block rule {rule:?}"))
                } else {
                    ops.remove(batch, key);
                    ops.put_json(batch, BLOCKS_AT.to_vec(), &index)?;
                    ApplyResponse::Inserted
                }
            }
            AdminAction::WarmSubmit(spec) => {
                self.submit(spec, &record.actor, record.at_ms, batch, ops)?
            }
            AdminAction::WarmCancel { id } => {
                let key = ops_key(WARM_PREFIX, &[&id]);
                match ops.get_json::<WarmJob>(&self.index(), &key)? {
                    None => refused(format!("no job {id:?}")),
                    Some(job) if job.state.is_final() => {
                        refused(format!("job {id} is already {}", job.state.as_str()))
                    }
                    Some(mut job) => {
                        job.state = JobState::Cancelled;
                        job.updated_at_ms = record.at_ms;
                        ops.put_json(batch, key, &job)?;
                        ApplyResponse::Inserted
                    }
                }
            }
            AdminAction::WarmUnpin { id } => {
                let mut removed = 0;
                let job = serde_json::to_vec(&id).map_err(write_err)?;
                for (key, value) in ops.scan_prefix(&self.index(), PIN_PREFIX)? {
                    if value == job {
                        ops.remove(batch, key);
                        removed += 1;
                    }
                }
                if removed == 0 {
                    refused(format!("job {id:?} pinned nothing"))
                } else {
                    ApplyResponse::Inserted
                }
            }
            other => refused(format!("{} is not an operating action", other.kind())),
        };
        let outcome = match &response {
            ApplyResponse::Refused { reason } => format!("refused: {reason}"),
            _ => "ok".into(),
        };
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
            super::admin_key(index),
            serde_json::to_vec(&event).map_err(write_err)?,
        );
        Ok(response)
    }

    fn submit(
        &self,
        spec: WarmSpec,
        actor: &str,
        at_ms: u64,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
    ) -> Result<ApplyResponse, StorageError> {
        let key = ops_key(WARM_PREFIX, &[&spec.id]);
        if ops.get(&self.index(), &key)?.is_some() {
            return Ok(refused(format!("a job {:?} exists", spec.id)));
        }
        if spec.parts == 0 || spec.parts > MAX_SOURCE_PARTS {
            return Ok(refused(format!(
                "a job's input has 1 to {MAX_SOURCE_PARTS} parts, not {}",
                spec.parts
            )));
        }
        let jobs: Vec<WarmJob> = ops
            .scan_prefix(&self.index(), WARM_PREFIX)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<WarmJob>(&v).ok())
            .collect();
        let open = jobs.iter().filter(|job| !job.state.is_final()).count();
        if open >= MAX_OPEN_JOBS {
            return Ok(refused(format!(
                "{open} jobs are queued or running (at most {MAX_OPEN_JOBS}); wait or cancel one"
            )));
        }
        let mine = jobs
            .iter()
            .filter(|job| !job.state.is_final() && job.submitted_by == actor)
            .count();
        if mine >= MAX_OPEN_JOBS_PER_SUBMITTER {
            return Ok(refused(format!(
                "{actor} has {mine} jobs queued or running (at most {MAX_OPEN_JOBS_PER_SUBMITTER}); wait or cancel one"
            )));
        }
        // Forget the oldest finished jobs beyond the number kept, with their inputs and items.
        let mut finished: Vec<&WarmJob> = jobs.iter().filter(|job| job.state.is_final()).collect();
        finished
            .sort_by(|a, b| (a.submitted_at_ms, &a.spec.id).cmp(&(b.submitted_at_ms, &b.spec.id)));
        let excess = (finished.len() + 1).saturating_sub(MAX_FINISHED_JOBS);
        for old in finished.into_iter().take(excess) {
            self.forget_job(&old.spec.id, batch, ops)?;
        }
        let job = WarmJob {
            spec,
            submitted_by: actor.to_string(),
            submitted_at_ms: at_ms,
            state: JobState::Receiving,
            parts_received: 0,
            done: 0,
            total: 0,
            failed: 0,
            bytes: 0,
            filled: 0,
            runner: None,
            runs: 0,
            updated_at_ms: at_ms,
            failures: Vec::new(),
            error: None,
        };
        ops.put_json(batch, key, &job)?;
        Ok(ApplyResponse::Inserted)
    }

    /// Removes a job's record, input and done items (its pins stay until unpinned).
    fn forget_job(
        &self,
        id: &str,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
    ) -> Result<(), StorageError> {
        ops.remove(batch, ops_key(WARM_PREFIX, &[id]));
        for prefix in [source_prefix(id), key_done(id, "")] {
            for (key, _) in ops.scan_prefix(&self.index(), &prefix)? {
                ops.remove(batch, key);
            }
        }
        Ok(())
    }

    /// Records one part of a job's input, in order; the last one queues the job.
    pub(super) fn apply_source(
        &self,
        part: SourcePart,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
    ) -> Result<ApplyResponse, StorageError> {
        let key = ops_key(WARM_PREFIX, &[&part.id]);
        let Some(mut job) = ops.get_json::<WarmJob>(&self.index(), &key)? else {
            return Ok(refused(format!("no job {:?}", part.id)));
        };
        if job.state != JobState::Receiving || part.part != job.parts_received {
            return Ok(refused(format!(
                "job {} does not expect part {} (state {}, {} of {} received)",
                part.id,
                part.part,
                job.state.as_str(),
                job.parts_received,
                job.spec.parts
            )));
        }
        if part.text.len() > SOURCE_PART_BYTES {
            return Ok(refused(format!(
                "a part of a job's input is at most {SOURCE_PART_BYTES} bytes"
            )));
        }
        ops.put(
            batch,
            source_key(&part.id, part.part),
            part.text.into_bytes(),
        );
        job.parts_received += 1;
        if job.parts_received == job.spec.parts {
            job.state = JobState::Queued;
        }
        ops.put_json(batch, key, &job)?;
        Ok(ApplyResponse::Inserted)
    }

    /// Removes every entry of a version; its blobs go to a reclaim record.
    fn purge(
        &self,
        index: u64,
        version: VersionRef,
        batch: &mut WriteBatch,
        pending: &mut Pending,
        ops: &mut Overlay,
    ) -> Result<ApplyResponse, StorageError> {
        let mut blobs = Vec::new();
        for kind in [ArtifactKind::Info, ArtifactKind::Mod, ArtifactKind::Zip] {
            let artifact = goproxy_protocol::index::ArtifactKey {
                module: version.module.clone(),
                version: version.version.clone(),
                kind,
            };
            let key = keys::artifact(&artifact);
            let existing = self.committed(pending, &key)?;
            if let Some(entry) = existing {
                let kept = !self.is_evicted_zip(ops, &entry)?;
                self.count_removed(batch, ops, &entry, kept)?;
                blobs.push(entry.blob.sha256);
                batch.remove(key.clone());
                pending.insert(key, None);
            }
        }
        if blobs.is_empty() {
            return Ok(refused(format!("{version} is not cached")));
        }
        let parts = [version.module.as_str(), version.version.as_str()];
        ops.remove(batch, ops_key(PIN_PREFIX, &parts));
        ops.remove(batch, ops_key(EVICTED_PREFIX, &parts));
        self.reclaim(index, vec![version], blobs, batch, ops)?;
        Ok(ApplyResponse::Inserted)
    }

    fn reclaim(
        &self,
        index: u64,
        purged: Vec<VersionRef>,
        blobs: Vec<String>,
        batch: &mut WriteBatch,
        ops: &mut Overlay,
    ) -> Result<(), StorageError> {
        let record = Reclaim {
            index,
            purged,
            blobs,
        };
        ops.put_json(batch, reclaim_key(index), &record)?;
        if index > MAX_RECLAIMS {
            let oldest_kept = reclaim_key(index - MAX_RECLAIMS);
            for (key, _) in ops.scan_prefix(&self.index(), RECLAIM_PREFIX)? {
                if key < oldest_kept {
                    ops.remove(batch, key);
                }
            }
        }
        ops.put_json(batch, OPS_AT.to_vec(), &index)
    }

    /// Records a checkpoint of a running job: each item is counted once, however many
    /// leaders ran it.
    pub(super) fn apply_progress(
        &self,
        progress: WarmProgress,
        batch: &mut WriteBatch,
        pending: &Pending,
        ops: &mut Overlay,
    ) -> Result<ApplyResponse, StorageError> {
        let key = ops_key(WARM_PREFIX, &[&progress.id]);
        let Some(mut job) = ops.get_json::<WarmJob>(&self.index(), &key)? else {
            return Ok(refused(format!("no job {:?}", progress.id)));
        };
        if job.state.is_final() {
            // Cancelled meanwhile: the runner learns it from this answer.
            return Ok(refused(format!(
                "job {} is {}",
                progress.id,
                job.state.as_str()
            )));
        }
        if job.state == JobState::Receiving && progress.finished.is_none() {
            return Ok(refused(format!(
                "job {} has not received its input",
                progress.id
            )));
        }
        if progress.started {
            job.runs += 1;
        }
        for done in progress.done {
            let done_key = key_done(&progress.id, &done.item);
            if ops.get(&self.index(), &done_key)?.is_none() {
                ops.put(batch, done_key, Vec::new());
                job.done += 1;
                job.bytes += done.bytes;
                job.filled += u64::from(done.filled);
            }
        }
        job.failed += progress.failed.len() as u64;
        job.failures.extend(progress.failed);
        let excess = job.failures.len().saturating_sub(MAX_JOB_FAILURES);
        job.failures.drain(..excess);
        if job.spec.pin {
            for (module, version) in progress.pins {
                ops.put_json(
                    batch,
                    ops_key(PIN_PREFIX, &[&module, &version]),
                    &job.spec.id,
                )?;
                // The job just fetched it: kept (and copied to every node) again.
                self.unevict(batch, pending, ops, &module, &version)?;
            }
        }
        job.total = job.total.max(progress.total).max(job.done + job.failed);
        job.runner = Some(progress.runner);
        job.updated_at_ms = progress.at_ms;
        job.state = progress.finished.unwrap_or(JobState::Running);
        job.error = progress.error.or(job.error);
        ops.put_json(batch, key, &job)?;
        Ok(ApplyResponse::Inserted)
    }

    /// Marks versions evicted (never a pinned one) and lets every node drop their zips.
    pub(super) fn apply_evict(
        &self,
        index: u64,
        evictions: crate::ops::Evictions,
        batch: &mut WriteBatch,
        pending: &mut Pending,
        ops: &mut Overlay,
    ) -> Result<ApplyResponse, StorageError> {
        let mut blobs = Vec::new();
        for version in evictions.versions {
            let parts = [version.module.as_str(), version.version.as_str()];
            if ops
                .get(&self.index(), &ops_key(PIN_PREFIX, &parts))?
                .is_some()
                || ops
                    .get(&self.index(), &ops_key(EVICTED_PREFIX, &parts))?
                    .is_some()
            {
                continue;
            }
            let entry = self.zip_of(pending, &version.module, &version.version)?;
            let Some(entry) = entry else { continue };
            ops.put_json(batch, ops_key(EVICTED_PREFIX, &parts), &evictions.at_ms)?;
            self.release_blob(batch, ops, &entry.blob.sha256, entry.blob.size)?;
            blobs.push(entry.blob.sha256);
        }
        if blobs.is_empty() {
            return Ok(ApplyResponse::AlreadyPresent);
        }
        self.reclaim(index, Vec::new(), blobs, batch, ops)?;
        Ok(ApplyResponse::Inserted)
    }

    /// Marks evicted versions kept again.
    pub(super) fn apply_restore(
        &self,
        index: u64,
        versions: Vec<VersionRef>,
        batch: &mut WriteBatch,
        pending: &Pending,
        ops: &mut Overlay,
    ) -> Result<ApplyResponse, StorageError> {
        for version in versions {
            self.unevict(batch, pending, ops, &version.module, &version.version)?;
        }
        ops.put_json(batch, OPS_AT.to_vec(), &index)?;
        Ok(ApplyResponse::Inserted)
    }

    /// The committed zip of `module@version`, as the batch left it.
    fn zip_of(
        &self,
        pending: &Pending,
        module: &str,
        version: &str,
    ) -> Result<Option<IndexEntry>, StorageError> {
        let zip = goproxy_protocol::index::ArtifactKey {
            module: module.to_string(),
            version: version.to_string(),
            kind: ArtifactKind::Zip,
        };
        self.committed(pending, &keys::artifact(&zip))
    }

    /// Keeps an evicted version's zip again (every node fetches it back).
    fn unevict(
        &self,
        batch: &mut WriteBatch,
        pending: &Pending,
        ops: &mut Overlay,
        module: &str,
        version: &str,
    ) -> Result<(), StorageError> {
        let mark = ops_key(EVICTED_PREFIX, &[module, version]);
        if ops.get(&self.index(), &mark)?.is_none() {
            return Ok(());
        }
        ops.remove(batch, mark);
        if let Some(zip) = self.zip_of(pending, module, version)? {
            self.keep_blob(batch, ops, &zip.blob.sha256, zip.blob.size)?;
        }
        Ok(())
    }
}

pub(crate) fn source_prefix(id: &str) -> Vec<u8> {
    ops_key(WARM_SOURCE_PREFIX, &[id, ""])
}

pub(crate) fn source_key(id: &str, part: u32) -> Vec<u8> {
    ops_key(WARM_SOURCE_PREFIX, &[id, &format!("{part:04}")])
}

pub(crate) fn key_done(id: &str, item: &str) -> Vec<u8> {
    ops_key(WARM_DONE_PREFIX, &[id, item])
}

#[cfg(test)]
mod tests;
