//! The checker: lookups proved in signed trees, trees checked against the newest one the
//! cluster verified, and what verified kept for the whole cluster.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::join_all;
use goproxy_protocol::index::{
    sumdb_key, sumdb_tree_key, sumdb_tree_module, sumdb_tree_size, sumdb_unverified_artifact,
    sumdb_unverified_key, sumdb_unverified_module, ArtifactKey, ArtifactKind,
};
use goproxy_protocol::path::{escape_path, escape_version};
use goproxy_sumdb::note::open;
use goproxy_sumdb::record::{needed_tiles, Lookup, Verified};
use goproxy_sumdb::tile::{verify_tile, Tile};
use goproxy_sumdb::tlog::{check_tree, prove_tree};
use goproxy_sumdb::{Database, ProofError, Tree, Verifier};

use crate::tiles::TileSet;
use crate::{CheckError, FetchError, Files, TILE_HEIGHT};

/// How long the newest tree head read from the cluster index is trusted before reading it
/// again (another node may have led and recorded a newer one).
const RELOAD_INTERVAL: Duration = Duration::from_secs(30);
/// Most tiles one verification fetches and proves (a proof needs a few per level).
const MAX_TILES: usize = 64;

/// What a verification came to, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Proved.
    Verified,
    /// The answer did not verify (or the version is not in the database).
    Refused,
    /// The database was unreachable.
    Unreachable,
    /// A forked tree.
    Fork,
}

impl Outcome {
    /// The outcome of a verification result.
    pub fn of<T>(result: &Result<T, CheckError>) -> Self {
        match result {
            Ok(_) => Outcome::Verified,
            Err(CheckError::Unreachable { .. } | CheckError::Cache(_)) => Outcome::Unreachable,
            Err(CheckError::Fork { .. }) => Outcome::Fork,
            Err(_) => Outcome::Refused,
        }
    }

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Verified => "verified",
            Outcome::Refused => "refused",
            Outcome::Unreachable => "unreachable",
            Outcome::Fork => "fork",
        }
    }
}

/// What a [`Checker::prepare`] proved and has yet to keep: the tree head, then the files.
#[must_use = "settle it, or nothing that proved the lookup is kept"]
pub struct Settle {
    db: String,
    tree: Option<(Tree, Vec<u8>)>,
    keep: Vec<(ArtifactKey, Vec<u8>)>,
}

impl Settle {
    /// The files to keep, in order: the tree head first (recorded before anything proved in
    /// it), then tiles and the lookup. A caller keeping them itself (in one batch with what
    /// they proved) reports the bytes the cluster holds to [`Checker::settled`].
    pub fn files(&self) -> Vec<(ArtifactKey, Vec<u8>)> {
        let tree = self
            .tree
            .iter()
            .map(|(tree, note)| (sumdb_tree_key(&self.db, tree.n), note.clone()));
        tree.chain(self.keep.iter().cloned()).collect()
    }
}

/// One database's verification state: the `/cluster/status` contract's own type.
pub use goproxy_status::ChecksumDatabaseStatus as DatabaseStatus;

/// What one [`Checker::recheck`] pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recheck {
    /// Accepted fills verified in this pass.
    pub verified: u64,
    /// Accepted fills still waiting for the database.
    pub pending: u64,
    /// Accepted fills the database contradicts (or refuses), described.
    pub refused: Vec<String>,
}

#[derive(Default)]
struct State {
    /// The newest tree verified (signed, consistent), in memory.
    newest: Option<Tree>,
    /// When the cluster index was last read for a newer tree.
    loaded_at: Option<Instant>,
    status: DatabaseStatus,
}

struct Db {
    name: String,
    verifier: Verifier,
    state: Mutex<State>,
    /// Unverified markers already settled by a recheck (verified or reported).
    settled: Mutex<std::collections::HashSet<String>>,
    /// Held while a fresh lookup's tree is checked against the newest and recorded.
    consistency: futures::lock::Mutex<()>,
}

impl Db {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a verification's outcome (a fork also logged as an error).
    fn count<T>(&self, result: &Result<T, CheckError>) {
        let mut state = self.state();
        match (result, Outcome::of(result)) {
            (_, Outcome::Verified) => state.status.verified += 1,
            (_, Outcome::Unreachable) => state.status.unreachable += 1,
            (Err(e), Outcome::Fork) => {
                state.status.forks += 1;
                state.status.last_fork = Some(e.to_string());
                tracing::error!(database = %self.name, "{e}");
            }
            _ => state.status.refused += 1,
        }
    }

    fn invalid(&self, reason: impl std::fmt::Display) -> CheckError {
        CheckError::Invalid {
            db: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// Makes `tree` (verified and consistent with the newest) the newest if it is larger;
    /// another tree of the newest's size is a fork.
    fn advance(&self, tree: Tree) -> Result<(), CheckError> {
        let mut state = self.state();
        match state.newest {
            Some(newest) if newest.n == tree.n && newest.hash != tree.hash => {
                Err(self.fork(&newest, &tree))
            }
            Some(newest) if newest.n >= tree.n => Ok(()),
            _ => {
                state.newest = Some(tree);
                Ok(())
            }
        }
    }

    fn fork(&self, known: &Tree, presented: &Tree) -> CheckError {
        CheckError::Fork {
            db: self.name.clone(),
            known: describe(known),
            presented: describe(presented),
        }
    }

    fn unreachable(&self, reason: impl std::fmt::Display) -> CheckError {
        CheckError::Unreachable {
            db: self.name.clone(),
            reason: reason.to_string(),
        }
    }
}

fn describe(tree: &Tree) -> String {
    format!("tree of {} records with hash {}", tree.n, tree.hash)
}

/// Verifies versions against the configured databases; see the crate documentation.
pub struct Checker<F> {
    files: F,
    dbs: HashMap<String, Db>,
}

impl<F: Files> Checker<F> {
    /// A checker for `databases` (their keys already validated by the configuration; a key
    /// that does not parse is reported).
    pub fn new(databases: &[Database], files: F) -> Result<Self, String> {
        let mut dbs = HashMap::new();
        for db in databases {
            let verifier = db.verifier()?;
            dbs.insert(
                db.name.clone(),
                Db {
                    name: db.name.clone(),
                    verifier,
                    state: Mutex::new(State {
                        status: DatabaseStatus {
                            name: db.name.clone(),
                            ..DatabaseStatus::default()
                        },
                        ..State::default()
                    }),
                    settled: Mutex::default(),
                    consistency: futures::lock::Mutex::new(()),
                },
            );
        }
        Ok(Self { files, dbs })
    }

    /// Whether database `name` is configured.
    pub fn serves(&self, name: &str) -> bool {
        self.dbs.contains_key(name)
    }

    /// Each database's state, by name.
    pub fn status(&self) -> Vec<DatabaseStatus> {
        let mut out: Vec<DatabaseStatus> = self
            .dbs
            .values()
            .map(|db| {
                let state = db.state();
                DatabaseStatus {
                    tree_size: state.newest.map(|t| t.n),
                    ..state.status.clone()
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// What database `name` records for `module@version`, proved, with the lookup answer's
    /// bytes (to serve to clients, who verify it themselves); what proved it is kept.
    pub async fn lookup(
        &self,
        name: &str,
        module: &str,
        version: &str,
    ) -> Result<(Verified, Vec<u8>), CheckError> {
        let (verified, body, settle) = self.prepare(name, module, version).await?;
        self.settle(settle).await?;
        Ok((verified, body))
    }

    /// [`Checker::lookup`] without keeping: the proof is complete (signature, inclusion,
    /// consistency with the newest tree, which now includes this one), and [`Settle`] keeps
    /// what proved it (the tree head first), so a fill can keep it while it commits.
    pub async fn prepare(
        &self,
        name: &str,
        module: &str,
        version: &str,
    ) -> Result<(Verified, Vec<u8>, Settle), CheckError> {
        let db = self
            .dbs
            .get(name)
            .ok_or_else(|| CheckError::Unknown(name.to_string()))?;
        let result = self.lookup_in(db, module, version).await;
        db.count(&result);
        result
    }

    /// After the caller kept [`Settle::files`] (`kept`: the bytes the cluster holds for each,
    /// in order): another tree head of the same size kept before is a fork.
    pub fn settled(&self, settle: &Settle, kept: &[Vec<u8>]) -> Result<(), CheckError> {
        let (Some(db), Some((tree, note)), Some(held)) =
            (self.dbs.get(&settle.db), &settle.tree, kept.first())
        else {
            return Ok(());
        };
        if held == note {
            return Ok(());
        }
        let other = open(held, &db.verifier)
            .ok()
            .and_then(|n| Tree::parse(&n.text));
        match other {
            Some(other) if other.hash != tree.hash => {
                let fork = db.fork(&other, tree);
                db.count::<()>(&Err(fork.clone()));
                Err(fork)
            }
            _ => Ok(()),
        }
    }

    /// Keeps what a [`Checker::prepare`] proved: records its tree head (another tree of the
    /// same size recorded meanwhile is a fork), then the lookup and tiles. Without a leader
    /// nothing is kept (the proof stands).
    pub async fn settle(&self, settle: Settle) -> Result<(), CheckError> {
        let Some(db) = self.dbs.get(&settle.db) else {
            return Err(CheckError::Unknown(settle.db));
        };
        if let Some((tree, note)) = &settle.tree {
            match self.record(db, *tree, note).await {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => {
                    db.count::<()>(&Err(e.clone()));
                    return Err(e);
                }
            }
        }
        self.keep_all(settle.keep).await;
        Ok(())
    }

    async fn lookup_in(
        &self,
        db: &Db,
        module: &str,
        version: &str,
    ) -> Result<(Verified, Vec<u8>, Settle), CheckError> {
        let path = format!(
            "lookup/{}@{}",
            escape_path(module).map_err(|e| db.invalid(e))?,
            escape_version(version).map_err(|e| db.invalid(e))?
        );
        let key = sumdb_key(&db.name, &path);
        let cached = self.files.cached(&key).await.map_err(CheckError::Cache)?;
        let from_cache = cached.is_some();
        let body = match cached {
            Some(body) => body,
            None => self
                .files
                .fetch(&db.name, &path)
                .await
                .map_err(|e| match e {
                    FetchError::NotFound(reason) => CheckError::NotFound {
                        db: db.name.clone(),
                        module: module.to_string(),
                        version: version.to_string(),
                        reason,
                    },
                    FetchError::Unavailable(reason) => db.unreachable(reason),
                })?,
        };
        let lookup = Lookup::parse(&body).map_err(|e| db.invalid(e))?;
        let tree = lookup.tree(&db.verifier).map_err(|e| db.invalid(e))?;
        let mut tiles = TileSet::new(tree);
        self.load(db, &mut tiles, lookup.tiles(&tree, TILE_HEIGHT))
            .await?;
        let verified = lookup
            .verify(tree, &tiles, module, version)
            .map_err(|e| db.invalid(e))?;
        if from_cache {
            // Kept after it was checked against the newest tree, which was recorded first.
            let keep = self.prove_tiles(db, &mut tiles).await?;
            let settle = Settle {
                db: db.name.clone(),
                tree: None,
                keep,
            };
            return Ok((verified, body, settle));
        }
        // One consistency check and advance at a time per database: two lookups checked
        // against the same known tree must not both advance it to different histories.
        let mut keep = {
            let _one = db.consistency.lock().await;
            let mut keep = self.check_consistent(db, &mut tiles).await?;
            keep.extend(self.prove_tiles(db, &mut tiles).await?);
            db.advance(tree)?;
            keep
        };
        // Settling records the tree for the cluster before anything proved in it is kept,
        // so a new leader checks later trees against it (or a newer one).
        keep.push((key, body.clone()));
        let settle = Settle {
            db: db.name.clone(),
            tree: Some((tree, lookup.note.as_bytes().to_vec())),
            keep,
        };
        Ok((verified, body, settle))
    }

    /// A tile of database `name` for a client: from the cluster cache, else from the
    /// database, kept for the cluster once proved part of the newest verified tree.
    pub async fn tile(&self, name: &str, path: &str) -> Result<Vec<u8>, CheckError> {
        let db = self
            .dbs
            .get(name)
            .ok_or_else(|| CheckError::Unknown(name.to_string()))?;
        let key = sumdb_key(&db.name, path);
        if let Some(data) = self.files.cached(&key).await.map_err(CheckError::Cache)? {
            return Ok(data);
        }
        let data = self
            .files
            .fetch(&db.name, path)
            .await
            .map_err(|e| match e {
                FetchError::NotFound(reason) => db.invalid(format!("{path}: {reason}")),
                FetchError::Unavailable(reason) => db.unreachable(reason),
            })?;
        // Only hash tiles of the go command's height, full or of a recorded tree, are kept
        // from client requests (once proved): any other path an outsider names is passed
        // through, so requests cannot make the cluster keep files without bound.
        let (Some(tile), Some(tree)) = (Tile::parse(path), self.newest(db).await?) else {
            return Ok(data);
        };
        let Some(level) = tile.level.filter(|_| tile.height == TILE_HEIGHT) else {
            return Ok(data);
        };
        if !tile.is_full() {
            // A partial tile is kept only for a tree the cluster recorded (a go command
            // verifying a kept lookup reads the partial tiles of that lookup's tree).
            let size = (tile.index << TILE_HEIGHT) + u64::from(tile.width);
            let recorded = level > 0
                || self
                    .files
                    .cached(&sumdb_tree_key(&db.name, size))
                    .await
                    .map_err(CheckError::Cache)?
                    .is_some();
            if !recorded {
                return Ok(data);
            }
        }
        let mut tiles = TileSet::new(tree);
        tiles.add_fetched(tile, data.clone());
        match self.prove_tiles(db, &mut tiles).await {
            Ok(keep) => self.keep_all(keep).await,
            Err(e) => tracing::warn!(database = %db.name, tile = path, "not kept: {e}"),
        }
        Ok(data)
    }

    /// Loads `wanted` tiles of `tiles.tree` not loaded yet: kept ones from the cluster,
    /// the others from the database (concurrently).
    async fn load(
        &self,
        db: &Db,
        tiles: &mut TileSet,
        wanted: Vec<Tile>,
    ) -> Result<(), CheckError> {
        let missing = tiles.missing(wanted);
        let found = join_all(missing.iter().map(|tile| async move {
            let path = tile.path();
            if let Some(data) = self
                .files
                .cached(&sumdb_key(&db.name, &path))
                .await
                .map_err(CheckError::Cache)?
            {
                return Ok((*tile, data, true));
            }
            match self.files.fetch(&db.name, &path).await {
                Ok(data) => Ok((*tile, data, false)),
                Err(FetchError::NotFound(reason)) => Err(db.invalid(format!("{path}: {reason}"))),
                Err(FetchError::Unavailable(reason)) => Err(db.unreachable(reason)),
            }
        }))
        .await;
        for item in found {
            let (tile, data, cached) = item?;
            if cached {
                tiles.add_cached(tile, data);
            } else {
                tiles.add_fetched(tile, data);
            }
        }
        Ok(())
    }

    /// Checks that `tiles.tree` (signed) and the newest verified tree are one history (a consistency
    /// proof from the smaller to the larger, through tiles proved against their own signed
    /// tree first, so a bad tile is an invalid answer, not a fork). A tree that is not is a
    /// fork: refused. Returns the proved tiles to keep once everything passed.
    async fn check_consistent(
        &self,
        db: &Db,
        tiles: &mut TileSet,
    ) -> Result<Vec<(ArtifactKey, Vec<u8>)>, CheckError> {
        let tree = tiles.tree;
        let Some(known) = self.newest(db).await? else {
            return Ok(Vec::new());
        };
        if known.n == tree.n {
            return if known.hash == tree.hash {
                Ok(Vec::new())
            } else {
                Err(db.fork(&known, &tree))
            };
        }
        let (old, mut larger) = if known.n < tree.n {
            (known, None)
        } else {
            (tree, Some(TileSet::new(known)))
        };
        let set = larger.as_mut().unwrap_or(tiles);
        let new = set.tree;
        let mut keep = Vec::new();
        if old.n > 0 {
            let wanted = needed_tiles(TILE_HEIGHT, new.n, |r| {
                prove_tree(old.n, new.n, r).map(drop)
            });
            self.load(db, set, wanted).await?;
            keep = self.prove_tiles(db, set).await?;
            let proved = prove_tree(old.n, new.n, set)
                .and_then(|proof| check_tree(&proof, old.n, &old.hash, new.n, &new.hash));
            match proved {
                Ok(()) => {}
                Err(ProofError::Read(reason)) => return Err(db.invalid(reason)),
                Err(_) => return Err(db.fork(&known, &tree)),
            }
        }
        Ok(keep)
    }

    /// Records `tree` (verified and consistent, signed by `note`) in the cluster index (every
    /// tree a kept lookup is proved in is recorded, so its partial tiles may be kept and a
    /// new leader continues from it). `Ok(false)`: it could not be recorded (no leader): the
    /// verification stands, nothing proved in it may be kept. Another tree of the same size
    /// recorded before is a fork.
    async fn record(&self, db: &Db, tree: Tree, note: &[u8]) -> Result<bool, CheckError> {
        let key = sumdb_tree_key(&db.name, tree.n);
        let kept = match self.files.cached(&key).await {
            Ok(Some(kept)) => Ok(kept),
            Ok(None) => self.files.keep(key, note.to_vec()).await,
            Err(e) => Err(e),
        };
        let kept = match kept {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(database = %db.name, records = tree.n, "verified, but the tree head could not be recorded (nothing kept): {e}");
                return Ok(false);
            }
        };
        if kept != note {
            let other = open(&kept, &db.verifier)
                .ok()
                .and_then(|n| Tree::parse(&n.text));
            match other {
                Some(other) if other.hash != tree.hash => return Err(db.fork(&other, &tree)),
                Some(_) => {}
                None => {
                    tracing::warn!(database = %db.name, n = tree.n, "the kept tree head does not verify");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The newest verified tree: this node's, or a larger one the cluster index holds (read
    /// again every [`RELOAD_INTERVAL`], its signature checked).
    async fn newest(&self, db: &Db) -> Result<Option<Tree>, CheckError> {
        let (newest, due) = {
            let state = db.state();
            let due = state
                .loaded_at
                .is_none_or(|at| at.elapsed() >= RELOAD_INTERVAL);
            (state.newest, due)
        };
        if !due {
            return Ok(newest);
        }
        let stored = self
            .newest_kept(&db.name)
            .await
            .map_err(CheckError::Cache)?;
        let stored = stored.and_then(|note| match open(&note, &db.verifier) {
            Ok(note) => Tree::parse(&note.text),
            Err(e) => {
                tracing::warn!(database = %db.name, "a kept tree head does not verify: {e}");
                None
            }
        });
        let mut state = db.state();
        state.loaded_at = Some(Instant::now());
        match (state.newest, stored) {
            (Some(mine), Some(theirs)) if mine.n == theirs.n && mine.hash != theirs.hash => {
                return Err(db.fork(&theirs, &mine));
            }
            (mine, Some(theirs)) if mine.is_none_or(|m| m.n < theirs.n) => {
                state.newest = Some(theirs);
            }
            _ => {}
        }
        Ok(state.newest)
    }

    /// The kept signed tree head with the most records.
    async fn newest_kept(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let last = self.files.last_version(&sumdb_tree_module(name)).await?;
        let Some(n) = last.as_deref().and_then(sumdb_tree_size) else {
            return Ok(None);
        };
        self.files.cached(&sumdb_tree_key(name, n)).await
    }

    /// Records that `artifact` was filled without database `name`'s verification (it was
    /// unreachable and the operator accepts that), with the `computed` hash, so that
    /// [`Checker::recheck`] verifies it later. Kept for the cluster before the fill is.
    pub async fn accept_unverified(
        &self,
        name: &str,
        artifact: &ArtifactKey,
        computed: &str,
    ) -> Result<(), CheckError> {
        if !self.dbs.contains_key(name) {
            return Err(CheckError::Unknown(name.to_string()));
        }
        self.files
            .keep(
                sumdb_unverified_key(name, artifact),
                computed.as_bytes().to_vec(),
            )
            .await
            .map_err(CheckError::Cache)?;
        tracing::warn!(artifact = %artifact, database = name, computed, "checksum database unreachable: accepted unverified, to be verified later");
        Ok(())
    }

    /// Verifies the fills accepted unverified for database `name` (stops at the first
    /// "unreachable": the rest waits for the next pass). A contradicted fill is logged as an
    /// error and counted; removing it is an operator's decision.
    pub async fn recheck(&self, name: &str) -> Result<Recheck, CheckError> {
        let db = self
            .dbs
            .get(name)
            .ok_or_else(|| CheckError::Unknown(name.to_string()))?;
        let markers = self
            .files
            .versions(&sumdb_unverified_module(name))
            .await
            .map_err(CheckError::Cache)?;
        let mut report = Recheck::default();
        let mut unreachable = false;
        for marker in markers {
            if db
                .settled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&marker)
            {
                continue;
            }
            let Some(artifact) = sumdb_unverified_artifact(&marker) else {
                continue;
            };
            if unreachable {
                report.pending += 1;
                continue;
            }
            let computed = self
                .files
                .cached(&sumdb_unverified_key(name, &artifact))
                .await
                .map_err(CheckError::Cache)?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let refusal = match self.lookup(name, &artifact.module, &artifact.version).await {
                Ok((verified, _)) => {
                    let recorded = match artifact.kind {
                        ArtifactKind::Mod => verified.mod_hash(),
                        _ => verified.zip_hash(),
                    };
                    if recorded == Some(computed.as_str()) {
                        report.verified += 1;
                        None
                    } else {
                        Some(format!(
                            "checksum mismatch against {name}: {artifact} was accepted unverified with {computed}, the checksum database records {}",
                            recorded.unwrap_or("none")
                        ))
                    }
                }
                Err(e) if e.is_unreachable() => {
                    unreachable = true;
                    report.pending += 1;
                    continue;
                }
                Err(e) => Some(format!(
                    "{artifact} was accepted unverified and does not verify now: {e}"
                )),
            };
            if let Some(refusal) = &refusal {
                tracing::error!(database = name, artifact = %artifact, "{refusal}");
                report.refused.push(refusal.clone());
            }
            db.settled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(marker);
        }
        let mut state = db.state();
        state.status.unverified = report.pending;
        state.status.refused_after_accept += report.refused.len() as u64;
        Ok(report)
    }

    /// Proves each tile fetched into `tiles` part of its tree (loading what the proofs need,
    /// at most [`MAX_TILES`] in all) and returns them to keep. A tile that does not prove
    /// refuses the whole answer: the database served data inconsistent with what it signed.
    async fn prove_tiles(
        &self,
        db: &Db,
        tiles: &mut TileSet,
    ) -> Result<Vec<(ArtifactKey, Vec<u8>)>, CheckError> {
        let tree = tiles.tree;
        let mut keep = Vec::new();
        let mut budget = MAX_TILES;
        while let Some((tile, data)) = tiles.next_unproved() {
            if tile.level.is_none() {
                continue;
            }
            budget = budget
                .checked_sub(1)
                .ok_or_else(|| db.invalid("a proof needs more tiles than any tree has levels"))?;
            let wanted = needed_tiles(TILE_HEIGHT, tree.n, |r| verify_tile(&tile, &data, &tree, r));
            self.load(db, tiles, wanted).await?;
            verify_tile(&tile, &data, &tree, tiles).map_err(|e| {
                db.invalid(format!(
                    "{} does not prove against the signed tree of {} records: {e}",
                    tile.path(),
                    tree.n
                ))
            })?;
            tiles.proved(tile);
            keep.push((sumdb_key(&db.name, &tile.path()), data));
        }
        Ok(keep)
    }

    /// Keeps files for the cluster, concurrently; a failure is logged (the verification
    /// stands, the file is fetched again next time).
    async fn keep_all(&self, files: Vec<(ArtifactKey, Vec<u8>)>) {
        let kept = join_all(files.into_iter().map(|(key, bytes)| async move {
            let name = key.to_string();
            (name, self.files.keep(key, bytes).await)
        }))
        .await;
        for (name, result) in kept {
            if let Err(e) = result {
                tracing::warn!(file = %name, "not kept for the cluster: {e}");
            }
        }
    }
}
