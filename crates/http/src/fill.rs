//! Filling the cache from upstream: one validated fill per artifact at a time.
//!
//! A fill streams the upstream answer into a staged blob, validates it (the `.info`
//! names the requested version, the `.mod` declares the module, the `.zip` passes the
//! go command's zip rules and matches the `.mod`), makes the blob visible, and only then
//! commits the index entry. The caller is answered from the entry the cluster settled on.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::{BoxFuture, FutureExt};
use goproxy_protocol::artifact::{validate_info, validate_mod};
use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef, IndexEntry};
use goproxy_protocol::path::{escape_path, escape_version};
use goproxy_protocol::zipcheck::check_zip;
use goproxy_store::{BlobStore, StagedBlob};

use crate::checksum::Verify;
use crate::index::{BlobPeers, CacheIndex, IndexError};
use crate::metrics::Metrics;
use crate::single_flight::SingleFlight;
use crate::upstream::{Upstream, UpstreamError};

/// Why a fill produced nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FillError {
    /// The upstream chain could not provide it.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The upstream provided content that fails validation; nothing was cached.
    #[error("upstream returned invalid {what}: {reason}")]
    Invalid {
        /// Which artifact.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Local storage failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// This node's disk is full: it cannot take fills until space is freed.
    #[error("this node's disk is full: {0}")]
    DiskFull(String),
    /// The index did not accept the entry.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// Too much is under-replicated: new fills wait until replicas catch up.
    #[error("not admitted: {0}")]
    Backlog(String),
    /// The fill took longer than allowed.
    #[error("fetch timed out")]
    TimedOut,
    /// The fill task panicked (a bug); reported, never cached.
    #[error("internal error while filling")]
    Panicked,
    /// The upstream's bytes hash differently from what the checksum database records.
    #[error("checksum mismatch against {database}: {artifact} hashes to {computed}, the checksum database records {recorded}")]
    ChecksumMismatch {
        /// Database name.
        database: String,
        /// Which artifact.
        artifact: String,
        /// What the upstream's bytes hash to.
        computed: String,
        /// What the database records (`none` when its record has no such line).
        recorded: String,
    },
    /// The version could not be verified against the checksum database (unreachable, not
    /// in it, an answer that does not verify, a forked tree).
    #[error("not verified: {0}")]
    Unverified(#[from] goproxy_checksum::CheckError),
}

impl From<goproxy_store::StoreError> for FillError {
    fn from(e: goproxy_store::StoreError) -> Self {
        match e {
            goproxy_store::StoreError::TooLarge { limit } => {
                FillError::Upstream(UpstreamError::TooLarge { limit })
            }
            full if full.is_disk_full() => FillError::DiskFull(full.to_string()),
            other => FillError::Storage(other.to_string()),
        }
    }
}

struct Inner {
    index: Arc<dyn CacheIndex>,
    peers: Arc<dyn BlobPeers>,
    store: BlobStore,
    metrics: Arc<Metrics>,
    fill_timeout: std::time::Duration,
    /// Below this much free space a fill is refused as if the disk were full.
    min_free_bytes: u64,
    flights: SingleFlight<ArtifactKey, Result<IndexEntry, FillError>>,
}

/// Fills artifacts, at most one upstream fetch per artifact at a time. Cheap to clone.
#[derive(Clone)]
pub struct Filler {
    inner: Arc<Inner>,
}

impl Filler {
    /// A filler writing into `store` and committing to `index`.
    pub fn new(
        index: Arc<dyn CacheIndex>,
        peers: Arc<dyn BlobPeers>,
        store: BlobStore,
        metrics: Arc<Metrics>,
        fill_timeout: std::time::Duration,
        min_free_bytes: u64,
    ) -> Self {
        let inner = Inner {
            index,
            peers,
            store,
            metrics,
            fill_timeout,
            min_free_bytes,
            flights: SingleFlight::default(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Fills `key` from `upstream` (or joins the fill already running) and returns the
    /// committed entry.
    ///
    /// With `verify`, a `.mod` or `.zip` is acknowledged only once its hash matches the
    /// record of `verify`'s checksum database (refused otherwise: nothing is cached).
    pub fn fill(
        &self,
        key: ArtifactKey,
        upstream: Upstream,
        verify: Option<Verify>,
    ) -> BoxFuture<'static, Result<IndexEntry, FillError>> {
        let this = self.clone();
        async move {
            let work = {
                let this = this.clone();
                let key = key.clone();
                async move {
                    let limit = this.inner.fill_timeout;
                    let kind = kind_label(key.kind);
                    let result =
                        tokio::time::timeout(limit, this.fill_now(key, &upstream, verify.as_ref()))
                            .await
                            .unwrap_or(Err(FillError::TimedOut));
                    this.inner.metrics.fill(kind, outcome_label(&result));
                    if let Err(FillError::DiskFull(reason)) = &result {
                        let (index, reason) = (this.inner.index.clone(), reason.clone());
                        tokio::spawn(async move { index.disk_full(&reason).await });
                    }
                    result
                }
            };
            this.inner
                .flights
                .run(key, work, || Err(FillError::Panicked))
                .await
        }
        .boxed()
    }

    async fn fill_now(
        &self,
        key: ArtifactKey,
        upstream: &Upstream,
        verify: Option<&Verify>,
    ) -> Result<IndexEntry, FillError> {
        if let Some(entry) = self.inner.index.lookup(&key)? {
            return Ok(entry);
        }
        self.inner.peers.admit().map_err(FillError::Backlog)?;
        self.check_space()?;
        // A zip is checked against its committed `.mod`: that is fetched (or found) while
        // the zip downloads, not after it.
        let (staged, go_mod) = if key.kind == ArtifactKind::Zip {
            let (staged, go_mod) = tokio::join!(
                self.fetch_staged(&key, upstream),
                self.committed_go_mod(&key, upstream, verify)
            );
            (staged?, Some(go_mod?))
        } else {
            (self.fetch_staged(&key, upstream).await?, None)
        };
        let facts = self.validate(&key, &staged, go_mod).await?;
        let mut proved = None;
        if let (Some(verify), Some(computed)) = (verify, &facts.sum) {
            if let Some(settle) = self.verify(&key, verify, computed).await? {
                proved = Some((verify, settle));
            }
        }
        let blob = staged.commit().await?;
        let entry = IndexEntry {
            key,
            blob,
            h1: facts.h1,
            version_time: facts.time,
            filled_at_ms: now_ms(),
        };
        // What proved the bytes (tree head, lookup, tiles) is committed with the entry, in
        // the same Raft log entry (the tree head first).
        let (verify, settle) = proved.unzip();
        let winner = match (verify, settle) {
            (Some(verify), Some(settle)) => {
                let (winner, kept) = self.commit_proved(entry.clone(), settle.files()).await?;
                verify.checker.settled(&settle, &kept)?;
                winner
            }
            _ => self.commit(entry.clone()).await?,
        };
        if let Some(verify) = verify.filter(|_| winner.same_content(&entry)) {
            verify.memo.insert(
                (verify.database.clone(), winner.key.clone()),
                winner.blob.sha256.clone(),
            );
        }
        Ok(winner)
    }

    /// Checks `computed` (the `h1:` of `key`'s bytes) against the checksum database's record:
    /// `Ok(Some(settle))` proved (settle it to keep what proved it), `Ok(None)` accepted
    /// unverified (the database unreachable and the operator accepts that).
    pub(crate) async fn verify(
        &self,
        key: &ArtifactKey,
        verify: &Verify,
        computed: &str,
    ) -> Result<Option<goproxy_checksum::Settle>, FillError> {
        let looked_up = verify
            .checker
            .prepare(&verify.database, &key.module, &key.version)
            .await;
        self.inner
            .metrics
            .sumdb_check(goproxy_checksum::Outcome::of(&looked_up).label());
        let (verified, _, settle) = match looked_up {
            Err(e) if e.is_unreachable() && verify.accept_unreachable => {
                verify
                    .checker
                    .accept_unverified(&verify.database, key, computed)
                    .await?;
                self.inner.metrics.sumdb_accepted_unverified();
                return Ok(None);
            }
            other => other?,
        };
        let recorded = match key.kind {
            ArtifactKind::Mod => verified.mod_hash(),
            _ => verified.zip_hash(),
        };
        if recorded == Some(computed) {
            return Ok(Some(settle));
        }
        self.inner.metrics.sumdb_mismatch();
        let recorded = recorded.unwrap_or("none").to_string();
        // The lookup itself proved: keep it (a later refusal needs no database).
        if let Err(e) = verify.checker.settle(settle).await {
            tracing::warn!(artifact = %key, "keeping the lookup that refused it: {e}");
        }
        tracing::error!(
            artifact = %key,
            database = %verify.database,
            computed,
            %recorded,
            "checksum mismatch: the upstream's bytes differ from what the checksum database records; refused, nothing cached"
        );
        Err(FillError::ChecksumMismatch {
            database: verify.database.to_string(),
            artifact: key.to_string(),
            computed: computed.to_string(),
            recorded,
        })
    }

    /// Keeps `bytes` under `key` (a checksum database file the checker verified), as a fill
    /// keeps an artifact: blob stored and copied to peers, entry committed. Returns the
    /// entry the cluster settled on.
    pub async fn keep(&self, key: ArtifactKey, bytes: &[u8]) -> Result<IndexEntry, FillError> {
        if let Some(entry) = self.inner.index.lookup(&key)? {
            return Ok(entry);
        }
        self.check_space()?;
        let entry = self.stage_file(key, bytes).await?;
        self.commit(entry).await
    }

    /// Commits a stored blob's entry and copies the blob to peers.
    async fn commit(&self, entry: IndexEntry) -> Result<IndexEntry, FillError> {
        let mut winners = self.commit_entries(vec![entry]).await?;
        winners
            .pop()
            .ok_or_else(|| FillError::Storage("the index settled on no entry".into()))
    }

    /// Commits stored blobs' entries together (one Raft round trip) while copying the blobs
    /// to peers; returns the entry the cluster settled on for each.
    async fn commit_entries(&self, entries: Vec<IndexEntry>) -> Result<Vec<IndexEntry>, FillError> {
        // Semi-synchronous: the fill is acknowledged only once the bytes are on
        // `sync_replicas` peers AND the entries are committed by a Raft majority. The two run
        // concurrently, so the latency is the slower of them rather than their sum.
        let commit = async {
            let started = std::time::Instant::now();
            let committed = match entries.as_slice() {
                [one] => self.inner.index.commit(one.clone()).await.map(|e| vec![e]),
                _ => self.inner.index.commit_all(entries.clone()).await,
            };
            self.inner.metrics.commit(started.elapsed().as_secs_f64());
            committed
        };
        let replicate =
            futures::future::join_all(entries.iter().map(|e| self.inner.peers.replicate(e)));
        let (replicated, committed) = tokio::join!(replicate, commit);
        for (entry, replicated) in entries.iter().zip(replicated) {
            if let Err(reason) = replicated {
                tracing::warn!(artifact = %entry.key, %reason, "replication degraded to asynchronous");
            }
        }
        let winners = match committed {
            Ok(winners) => winners,
            Err(e) => {
                // Not committed here: nothing to keep re-pushing (if a majority did get the
                // entries after all, other members fetch their blobs through their catch-up).
                for entry in &entries {
                    self.inner.peers.abandon(entry);
                }
                return Err(e.into());
            }
        };
        for (entry, winner) in entries.iter().zip(&winners) {
            if !winner.same_content(entry) {
                self.inner.peers.abandon(entry);
                if entry.key.kind.is_module_file() {
                    tracing::warn!(artifact = %entry.key, "upstream content differs from the committed entry; serving the committed one");
                }
            }
        }
        Ok(winners)
    }

    /// Commits `entry` together with the checksum database files that proved it (`files`,
    /// in order: the tree head first); returns the entry the cluster settled on and the
    /// bytes it holds for each file.
    async fn commit_proved(
        &self,
        entry: IndexEntry,
        files: Vec<(ArtifactKey, Vec<u8>)>,
    ) -> Result<(IndexEntry, Vec<Vec<u8>>), FillError> {
        let mut kept: Vec<Option<Vec<u8>>> = Vec::with_capacity(files.len());
        let mut new = Vec::new();
        for (key, bytes) in files {
            match self.inner.index.lookup(&key)? {
                Some(existing) => kept.push(Some(self.held_bytes(&existing, bytes).await?)),
                None => {
                    new.push((self.stage_file(key, &bytes).await?, bytes));
                    kept.push(None);
                }
            }
        }
        let mut entries: Vec<IndexEntry> = new.iter().map(|(e, _)| e.clone()).collect();
        entries.push(entry);
        let mut winners = self.commit_entries(entries).await?;
        let winner = winners
            .pop()
            .ok_or_else(|| FillError::Storage("the index settled on no entry".into()))?;
        let mut settled = winners.into_iter().zip(new);
        let mut out = Vec::with_capacity(kept.len());
        for slot in kept {
            match slot {
                Some(bytes) => out.push(bytes),
                None => {
                    let (winner, (_, bytes)) = settled
                        .next()
                        .ok_or_else(|| FillError::Storage("a kept file went missing".into()))?;
                    out.push(self.held_bytes(&winner, bytes).await?);
                }
            }
        }
        Ok((winner, out))
    }

    /// The bytes the cluster holds for `entry`: `ours` when they are those, else its blob.
    async fn held_bytes(&self, entry: &IndexEntry, ours: Vec<u8>) -> Result<Vec<u8>, FillError> {
        if entry.blob.size == ours.len() as u64
            && entry.blob.sha256 == goproxy_store::digest::of_bytes(&ours)
        {
            return Ok(ours);
        }
        self.read_blob(&entry.blob).await
    }

    /// Stores `bytes` as the blob of a new entry for `key` (not committed yet).
    async fn stage_file(&self, key: ArtifactKey, bytes: &[u8]) -> Result<IndexEntry, FillError> {
        let mut writer = self.inner.store.writer(key.kind.max_size()).await?;
        writer.write(bytes).await?;
        let blob = writer.finish().await?.commit().await?;
        Ok(IndexEntry {
            key,
            blob,
            h1: None,
            version_time: None,
            filled_at_ms: now_ms(),
        })
    }

    /// Refuses a fill while the blob filesystem is below `min_free_bytes`: writing would fail
    /// part-way, and the Raft log on the same disk would be next. The refusal is a full disk,
    /// so a leader hands its fills over before anything fails for lack of space.
    fn check_space(&self) -> Result<(), FillError> {
        match self.inner.store.available_bytes() {
            Ok(free) if free < self.inner.min_free_bytes => Err(FillError::DiskFull(format!(
                "{} MiB free, below min_free_bytes ({} MiB)",
                free >> 20,
                self.inner.min_free_bytes >> 20
            ))),
            Ok(_) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams the upstream answer for `key` into a staged blob.
    async fn fetch_staged(
        &self,
        key: &ArtifactKey,
        upstream: &Upstream,
    ) -> Result<StagedBlob, FillError> {
        let path = upstream_path(key)?;
        let mut body = upstream.get(&path).await?;
        let mut writer = self.inner.store.writer(key.kind.max_size()).await?;
        while let Some(chunk) = body.chunk().await? {
            writer.write(&chunk).await?;
        }
        self.inner.metrics.filled(writer.written());
        Ok(writer.finish().await?)
    }

    /// Checks staged content against the protocol's rules before it becomes visible.
    async fn validate(
        &self,
        key: &ArtifactKey,
        staged: &StagedBlob,
        go_mod: Option<Vec<u8>>,
    ) -> Result<Facts, FillError> {
        let invalid = |reason: String| FillError::Invalid {
            what: key.to_string(),
            reason,
        };
        match key.kind {
            ArtifactKind::Info => {
                let bytes = read_staged(staged).await?;
                let meta =
                    validate_info(&bytes, &key.version).map_err(|e| invalid(e.to_string()))?;
                Ok(Facts {
                    time: meta.time,
                    ..Facts::default()
                })
            }
            ArtifactKind::Mod => {
                let bytes = read_staged(staged).await?;
                validate_mod(&bytes, &key.module).map_err(|e| invalid(e.to_string()))?;
                Ok(Facts {
                    sum: Some(goproxy_protocol::dirhash::go_mod_h1(&bytes)),
                    ..Facts::default()
                })
            }
            ArtifactKind::Zip => {
                let go_mod = go_mod.ok_or_else(|| {
                    FillError::Storage(format!("{key}: no committed .mod to check it against"))
                })?;
                let path = staged.path().to_path_buf();
                let (module, version) = (key.module.clone(), key.version.clone());
                let summary = tokio::task::spawn_blocking(move || {
                    let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
                    check_zip(std::io::BufReader::new(file), &module, &version, &go_mod)
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|_| FillError::Panicked)?
                .map_err(invalid)?;
                Ok(Facts {
                    time: None,
                    sum: Some(summary.h1.clone()),
                    h1: Some(summary.h1),
                })
            }
            ArtifactKind::SumdbFile | ArtifactKind::SumdbTree => Err(invalid(
                "checksum database files are kept by the checker, not filled".into(),
            )),
        }
    }

    /// The committed `.mod` bytes for the zip's version, filling the `.mod` first if needed.
    async fn committed_go_mod(
        &self,
        key: &ArtifactKey,
        upstream: &Upstream,
        verify: Option<&Verify>,
    ) -> Result<Vec<u8>, FillError> {
        let mod_key = ArtifactKey {
            kind: ArtifactKind::Mod,
            ..key.clone()
        };
        let entry = self
            .fill(mod_key, upstream.clone(), verify.cloned())
            .await?;
        self.read_blob(&entry.blob).await
    }

    /// `Err(reason)` while too much is under-replicated for new fills.
    pub fn admit(&self) -> Result<(), String> {
        self.inner.peers.admit()
    }

    /// Reads a small committed blob, re-fetching it if this node lost it.
    pub async fn read_blob(&self, blob: &BlobRef) -> Result<Vec<u8>, FillError> {
        self.inner.store.read_small(blob).await?.ok_or_else(|| {
            FillError::Storage(format!("blob {} is missing on this node", blob.sha256))
        })
    }

    /// Restores a committed blob that is missing locally from a peer that has it.
    /// `Ok(false)` when no peer has it.
    pub async fn repair_from_peers(&self, entry: &IndexEntry) -> Result<bool, FillError> {
        self.inner
            .peers
            .fetch(&entry.blob)
            .await
            .map_err(FillError::Storage)
    }

    /// Restores a committed blob that is missing locally: from a peer that has it, else
    /// from `upstream`, checking that the bytes are exactly the committed ones.
    pub async fn repair(&self, entry: &IndexEntry, upstream: &Upstream) -> Result<(), FillError> {
        match self.repair_from_peers(entry).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => tracing::warn!(artifact = %entry.key, "peer fetch failed: {e}"),
        }
        let staged = self.fetch_staged(&entry.key, upstream).await?;
        if staged.blob() != &entry.blob {
            return Err(FillError::Invalid {
                what: entry.key.to_string(),
                reason: format!(
                    "upstream bytes (sha256 {}) differ from the committed {}",
                    staged.blob().sha256,
                    entry.blob.sha256
                ),
            });
        }
        staged.commit().await?;
        tracing::info!(artifact = %entry.key, "repaired missing blob from upstream");
        Ok(())
    }
}

#[derive(Default)]
struct Facts {
    time: Option<String>,
    /// The zip's dirhash, kept in the entry.
    h1: Option<String>,
    /// The `h1:` the checksum database records for this artifact (`.mod`, `.zip`).
    sum: Option<String>,
}

async fn read_staged(staged: &StagedBlob) -> Result<Vec<u8>, FillError> {
    tokio::fs::read(staged.path())
        .await
        .map_err(|e| FillError::Storage(e.to_string()))
}

pub(crate) fn upstream_path(key: &ArtifactKey) -> Result<String, FillError> {
    let invalid = |e: String| FillError::Invalid {
        what: key.to_string(),
        reason: e,
    };
    let module = escape_path(&key.module).map_err(|e| invalid(e.to_string()))?;
    let version = escape_version(&key.version).map_err(|e| invalid(e.to_string()))?;
    Ok(format!("{module}/@v/{version}.{}", key.kind.extension()))
}

/// Metric label for an artifact kind.
pub fn kind_label(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::Info => "info",
        ArtifactKind::Mod => "mod",
        ArtifactKind::Zip => "zip",
        ArtifactKind::SumdbFile => "sumdb",
        ArtifactKind::SumdbTree => "sumdb_tree",
    }
}

fn outcome_label(result: &Result<IndexEntry, FillError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(FillError::Upstream(e)) if e.is_not_found() => "not_found",
        Err(FillError::Upstream(_)) => "upstream_error",
        Err(FillError::Invalid { .. }) => "invalid",
        Err(FillError::TimedOut) => "timeout",
        Err(FillError::Backlog(_)) => "backlog_full",
        Err(FillError::DiskFull(_)) => "disk_full",
        Err(FillError::ChecksumMismatch { .. }) => "checksum_mismatch",
        Err(FillError::Unverified(_)) => "unverified",
        Err(_) => "error",
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
