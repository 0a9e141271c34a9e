//! The cache index as a Raft state machine on sled (openraft storage-v2).
//!
//! Tree `index`: artifact key → JSON [`IndexEntry`], plus applied-state metadata under
//! the reserved `0xFF` prefix (module paths never start with that byte). Each applied
//! batch is one atomic sled batch, so a crash never leaves entries without the matching
//! `last_applied`. Entries are insert-only: the first committed content for a key wins,
//! which makes applying deterministic and re-applying idempotent.

use std::collections::HashMap;
use std::io::Cursor;

use goproxy_protocol::index::IndexEntry;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StoredMembership,
};
use serde::{Deserialize, Serialize};

pub(crate) mod counters;
pub(crate) mod ops;

use crate::error::storage_err;
use crate::keys;
use crate::reader::{IndexReader, META_PREFIX};
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
const SNAPSHOT_META: &[u8] = b"meta";
const SNAPSHOT_DATA: &[u8] = b"data";

/// Artifact entries written (`Some`) or purged (`None`) earlier in the batch being applied.
pub(crate) type Pending = HashMap<Vec<u8>, Option<IndexEntry>>;

type Membership = StoredMembership<NodeId, crate::types::PeerNode>;
type Meta = SnapshotMeta<NodeId, crate::types::PeerNode>;

/// Snapshot payload: the whole index at `last_applied`. Serialized as JSON.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    last_applied: Option<LogId>,
    last_membership: Membership,
    entries: Vec<IndexEntry>,
    /// Client tokens (absent in snapshots of versions without them).
    #[serde(default)]
    tokens: Vec<goproxy_access::Grant>,
    /// The admin trail.
    #[serde(default)]
    admin: Vec<AdminEvent>,
    /// The members' shared secret.
    #[serde(default)]
    member_secret: Option<String>,
    /// Operating state (warm jobs, block rules, pins, evictions): key without its leading
    /// reserved byte, and value, both UTF-8.
    #[serde(default)]
    ops: Vec<(String, String)>,
}

/// The state machine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StateMachine {
    db: sled::Db,
    index: sled::Tree,
    snapshot: sled::Tree,
}

pub(crate) fn read_err(e: impl std::fmt::Display) -> StorageError {
    storage_err(ErrorVerb::Read, ErrorSubject::StateMachine, e)
}

pub(crate) fn write_err(e: impl std::fmt::Display) -> StorageError {
    storage_err(ErrorVerb::Write, ErrorSubject::StateMachine, e)
}

impl StateMachine {
    /// Opens the state-machine trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        let machine = Self {
            db: db.clone(),
            index: db.open_tree("index")?,
            snapshot: db.open_tree("snapshot")?,
        };
        machine
            .ensure_counters()
            .map_err(|e| sled::Error::Unsupported(format!("counting the index: {e}")))?;
        Ok(machine)
    }

    /// A reader over the applied index for local (non-Raft) reads.
    pub fn reader(&self) -> IndexReader {
        IndexReader::new(self.index.clone())
    }

    fn meta<T: for<'de> Deserialize<'de> + Default>(&self, key: &[u8]) -> Result<T, StorageError> {
        match self.index.get(key).map_err(read_err)? {
            None => Ok(T::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(read_err),
        }
    }

    fn applied(&self) -> Result<(Option<LogId>, Membership), StorageError> {
        Ok((self.meta(LAST_APPLIED)?, self.meta(LAST_MEMBERSHIP)?))
    }

    fn stored_snapshot(&self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let meta = self.snapshot.get(SNAPSHOT_META).map_err(read_err)?;
        let data = self.snapshot.get(SNAPSHOT_DATA).map_err(read_err)?;
        match (meta, data) {
            (Some(meta), Some(data)) => {
                let meta: Meta = serde_json::from_slice(&meta).map_err(read_err)?;
                Ok(Some(Snapshot {
                    meta,
                    snapshot: Box::new(Cursor::new(data.to_vec())),
                }))
            }
            _ => Ok(None),
        }
    }

    async fn store_snapshot(&self, meta: &Meta, data: &[u8]) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        batch.insert(SNAPSHOT_META, serde_json::to_vec(meta).map_err(write_err)?);
        batch.insert(SNAPSHOT_DATA, data);
        self.snapshot.apply_batch(batch).map_err(write_err)?;
        self.db.flush_async().await.map_err(write_err)?;
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
        batch: &mut sled::Batch,
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
            None => self.index.contains_key(token_key(name)).map_err(read_err),
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
                .index
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
        batch: &mut sled::Batch,
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

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // Applied state first, then entries: the entries may include a few applied later,
        // which is harmless because re-applying those log entries is idempotent.
        let (last_applied, last_membership) = self.applied()?;
        let reader = self.reader();
        let entries = reader.all_entries().map_err(read_err)?;
        let tokens = reader.tokens().map_err(read_err)?;
        let admin = reader.admin_trail(0).map_err(read_err)?;
        let member_secret = reader.member_secret().map_err(read_err)?;
        let ops = self.ops_entries()?;
        let data = SnapshotData {
            last_applied,
            last_membership: last_membership.clone(),
            entries,
            tokens,
            admin,
            member_secret,
            ops,
        };
        let bytes = serde_json::to_vec(&data).map_err(write_err)?;
        let snapshot_id = match last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, bytes.len()),
            None => format!("empty-{}", bytes.len()),
        };
        let meta = Meta {
            last_log_id: last_applied,
            last_membership,
            snapshot_id,
        };
        self.store_snapshot(&meta, &bytes).await?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = bytes.len(), "built index snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        self.applied()
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
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
                        || self.index.contains_key(MEMBER_SECRET).map_err(read_err)?
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
        self.index.apply_batch(batch).map_err(write_err)?;
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let data: SnapshotData = serde_json::from_slice(&bytes).map_err(write_err)?;
        let mut batch = sled::Batch::default();
        for key in self.index.iter().keys() {
            batch.remove(key.map_err(read_err)?);
        }
        for entry in &data.entries {
            batch.insert(
                keys::artifact(&entry.key),
                serde_json::to_vec(entry).map_err(write_err)?,
            );
        }
        for grant in &data.tokens {
            batch.insert(
                token_key(&grant.name),
                serde_json::to_vec(grant).map_err(write_err)?,
            );
        }
        for event in &data.admin {
            batch.insert(
                admin_key(event.index),
                serde_json::to_vec(event).map_err(write_err)?,
            );
        }
        if let Some(secret) = &data.member_secret {
            batch.insert(
                MEMBER_SECRET,
                serde_json::to_vec(secret).map_err(write_err)?,
            );
        }
        for (key, value) in &data.ops {
            let mut full = vec![META_PREFIX];
            full.extend_from_slice(key.as_bytes());
            batch.insert(full, value.as_bytes());
        }
        let evicted: std::collections::HashSet<String> = data
            .ops
            .iter()
            .filter_map(|(key, _)| key.strip_prefix(ops::EVICTED_KEY_PREFIX))
            .map(str::to_string)
            .collect();
        self.recount_from(
            data.entries.iter().cloned().map(Ok),
            |module, version| Ok(evicted.contains(&format!("{module}\0{version}"))),
            &mut batch,
        )?;
        // The tokens were replaced: readers recompile them.
        let at = meta.last_log_id.map_or(0, |id| id.index);
        batch.insert(TOKENS_AT, serde_json::to_vec(&at).map_err(write_err)?);
        // So were the block rules, and perhaps purges happened: caches are dropped.
        batch.insert(ops::BLOCKS_AT, serde_json::to_vec(&at).map_err(write_err)?);
        batch.insert(ops::OPS_AT, serde_json::to_vec(&at).map_err(write_err)?);
        batch.insert(
            LAST_APPLIED,
            serde_json::to_vec(&meta.last_log_id).map_err(write_err)?,
        );
        batch.insert(
            LAST_MEMBERSHIP,
            serde_json::to_vec(&meta.last_membership).map_err(write_err)?,
        );
        self.index.apply_batch(batch).map_err(write_err)?;
        self.store_snapshot(meta, &bytes).await?;
        tracing::info!(snapshot = %meta.snapshot_id, entries = data.entries.len(), "installed index snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        self.stored_snapshot()
    }
}

/// Guard against the reserved prefix ever colliding with artifact keys.
const _: () = assert!(META_PREFIX == 0xff);
