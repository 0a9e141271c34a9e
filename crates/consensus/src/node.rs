//! The facade the node binary uses: open, bootstrap, write, read, watch, shut down.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use goproxy_protocol::index::IndexEntry;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{ServerState, SnapshotPolicy};

use crate::types::PeerNode;

use goproxy_rpc::Channels;

use crate::batcher::Batcher;
use crate::election_pause::ElectionPause;
use crate::error::ConsensusError;
use crate::foreign_lease::ForeignLease;
use crate::log_store::LogStore;
use crate::membership::Membership;
use crate::network::{max_message, Network, PeerContact};
use crate::prompt_election;
use crate::reader::IndexReader;
use crate::retire::Retirement;
use crate::server::RaftGrpc;
use crate::state_machine::{SnapshotReport, SnapshotStats, StateMachine};
use crate::transfer::{transfer_leadership, TransferError};
use crate::types::{ApplyResponse, IndexCommand, NodeId, Raft, RaftMetrics};
use crate::view::{RaftView, RaftWatch};
use crate::vouch::Vouching;
use crate::wire::pb::raft_service_server::RaftServiceServer;

/// Sub-directory holding the Raft log database.
const LOG_DB: &str = "log";
/// Sub-directory holding the state-machine database.
const STATE_DB: &str = "state";
/// Sub-directory holding the snapshot files.
const SNAPSHOTS: &str = "snapshots";
/// sled's page cache for the log database (appends, recent entries).
const LOG_DB_CACHE_BYTES: u64 = 16 << 20;
/// sled's page cache for the state-machine database: hot index pages; a million-entry
/// index does not fit and need not (the rest is read through the OS page cache).
const STATE_DB_CACHE_BYTES: u64 = 64 << 20;
/// Time allowed for one `InstallSnapshot` chunk (openraft's default, 200 ms, is too tight
/// for a 3 MiB chunk that is decoded and buffered by a busy or debug-built follower); the
/// last chunk's answer waits for the install (checking the file and filling the index: a few
/// seconds per million artifacts).
pub(crate) const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 120_000;

/// Consensus settings (the node's validated configuration fills these in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusConfig {
    /// This node's id.
    pub node_id: NodeId,
    /// `host:port` peers use to reach this node's gRPC listener.
    pub raft_addr: String,
    /// `host:port` of this node's HTTP front end (for forwarding and status).
    pub http_addr: String,
    /// Leader heartbeat period, ms.
    pub heartbeat_interval_ms: u64,
    /// Election timeout lower bound, ms.
    pub election_timeout_min_ms: u64,
    /// Election timeout upper bound, ms.
    pub election_timeout_max_ms: u64,
    /// Log entries since the last snapshot that trigger a new one.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept behind the snapshot for lagging followers.
    pub max_in_snapshot_log_to_keep: u64,
    /// Largest `InstallSnapshot` chunk, bytes ([`DEFAULT_SNAPSHOT_CHUNK_BYTES`] in production).
    pub snapshot_chunk_bytes: u64,
}

/// openraft's default chunk size, well under the gRPC message limit.
pub const DEFAULT_SNAPSHOT_CHUNK_BYTES: u64 = 3 * 1024 * 1024;
/// Entries per `AppendEntries`: with log entries of at most [`MAX_LOG_ENTRY_BYTES`], one
/// message stays inside the Raft message limit ([`crate::network::max_message`]).
const MAX_PAYLOAD_ENTRIES: u64 = 64;
/// Largest serialized index entry (or admin action) accepted for commit. Request paths are
/// at most 2 KiB, so a real entry is far below this.
pub const MAX_ENTRY_BYTES: usize = 6 * 1024;
/// Largest log entry: a batch of puts ([`crate::batcher`]) fills up to this.
pub const MAX_LOG_ENTRY_BYTES: usize = 24 * 1024;
const _: () = assert!(
    MAX_PAYLOAD_ENTRIES as usize * (MAX_LOG_ENTRY_BYTES + 256) <= crate::network::MESSAGE_HEADROOM
);

/// A running Raft member holding the cache index. Cheap to clone.
#[derive(Clone)]
pub struct Consensus {
    raft: Raft,
    reader: IndexReader,
    node_id: NodeId,
    me: PeerNode,
    /// Flushed at shutdown (the log database is flushed on every append).
    state_db: sled::Db,
    /// Election pauses requested by a transferring leader (or by this node transferring).
    pause: ElectionPause,
    /// When this member last acknowledged another leader (bounds that leader's VIP lease).
    foreign: ForeignLease,
    /// Node-to-node channels (mutual TLS), shared with blob replication.
    channels: Channels,
    /// One membership change at a time, none that breaks quorum.
    membership: Membership,
    /// Whether this node was removed from the voters (and then does not campaign).
    retirement: Retirement,
    /// Which leaders this member accepts.
    vouching: Vouching,
    /// When each peer last answered (which voters are up).
    contact: PeerContact,
    /// Largest Raft message sent or accepted.
    max_message: usize,
    /// This node's snapshots.
    snapshots: Arc<SnapshotStats>,
    /// Elections held after a snapshot install (two election timeouts).
    after_install: Duration,
    /// Group commit of concurrent puts.
    batcher: Batcher,
}

/// Largest admin request (they are a few fields).
const ADMIN_MAX_MESSAGE: usize = 64 * 1024;
/// How often [`Consensus::stopped`] checks that the Raft core still answers.
const CORE_CHECK_PERIOD: Duration = Duration::from_secs(2);
/// How often [`Consensus::snapshot_now`] asks again while no snapshot covers its target.
const SNAPSHOT_RETRIGGER: Duration = Duration::from_secs(1);
/// How long the Raft core may take to answer before the member counts as stuck.
pub const CORE_ANSWER_BOUND: Duration = Duration::from_secs(10);

fn stuck_reason() -> String {
    format!("the raft core has not answered for {CORE_ANSWER_BOUND:?} (storage stuck?)")
}

/// A member restarting into a multi-voter group listens before it campaigns: for two election
/// timeouts it votes but does not start elections, so a leader that is alive reaches it first.
/// Without this (openraft 0.9 has no pre-vote) every restart of a follower could unseat a
/// healthy leader and move the VIP for nothing. A group with no leader at all elects one
/// after the hold.
fn hold_elections_on_rejoin(raft: &Raft, pause: &ElectionPause, cfg: &ConsensusConfig) {
    let voters = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .count();
    if voters > 1 {
        let hold = Duration::from_millis(2 * cfg.election_timeout_max_ms);
        tracing::info!(
            ?hold,
            voters,
            "rejoining: elections held until the leader is heard"
        );
        pause.pause_for(hold, false);
    }
}

impl Consensus {
    /// Opens the Raft log (`<dir>/log`) and the state machine (`<dir>/state`) as two sled
    /// databases, so each log flush writes only log pages, and starts the Raft member.
    ///
    /// Peers are reached over `channels`, whose transport also secures this member's own
    /// listener (see [`Consensus::grpc_routes`]).
    pub async fn open(
        dir: impl AsRef<std::path::Path>,
        cfg: ConsensusConfig,
        channels: Channels,
    ) -> Result<Self, ConsensusError> {
        let config = openraft::Config {
            cluster_name: "goproxy-ha".into(),
            heartbeat_interval: cfg.heartbeat_interval_ms,
            election_timeout_min: cfg.election_timeout_min_ms,
            election_timeout_max: cfg.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: cfg.max_in_snapshot_log_to_keep,
            snapshot_max_chunk_size: cfg.snapshot_chunk_bytes,
            max_payload_entries: MAX_PAYLOAD_ENTRIES,
            install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ConsensusError::Config(e.to_string()))?;
        let open_db = |name: &str, cache: u64| {
            sled::Config::new()
                .path(dir.as_ref().join(name))
                .cache_capacity(cache)
                .open()
        };
        let log_db = open_db(LOG_DB, LOG_DB_CACHE_BYTES)?;
        let state_db = open_db(STATE_DB, STATE_DB_CACHE_BYTES)?;
        let log = LogStore::open(&log_db)?.durable_in(dir.as_ref().join(LOG_DB));
        let state_machine = StateMachine::open(&state_db, dir.as_ref().join(SNAPSHOTS))?;
        let snapshots = state_machine.snapshot_stats();
        let reader = state_machine.reader();
        let max_message = max_message(cfg.snapshot_chunk_bytes);
        let contact = PeerContact::default();
        let retirement_slot = Arc::new(std::sync::OnceLock::new());
        let network = Network::new(
            channels.clone(),
            Duration::from_millis(cfg.heartbeat_interval_ms),
            max_message,
            contact.clone(),
            retirement_slot.clone(),
        );
        let raft = Raft::new(cfg.node_id, Arc::new(config), network, log, state_machine)
            .await
            .map_err(|e| ConsensusError::Raft(e.to_string()))?;
        let pause = ElectionPause::new(raft.clone());
        let vouching = Vouching::new(raft.clone(), cfg.node_id, channels.clone());
        let retirement =
            Retirement::new(raft.clone(), pause.clone(), vouching.clone(), cfg.node_id);
        let _ = retirement_slot.set(retirement.clone());
        tokio::spawn(retirement.clone().watch());
        hold_elections_on_rejoin(&raft, &pause, &cfg);
        tokio::spawn(crate::warm::run(
            raft.clone(),
            cfg.node_id,
            channels.clone(),
        ));
        tokio::spawn(prompt_election::run(
            raft.clone(),
            pause.clone(),
            cfg.node_id,
        ));
        Ok(Self {
            vouching,
            membership: Membership::new(raft.clone(), cfg.node_id, contact.clone()),
            contact,
            retirement,
            channels,
            max_message,
            pause,
            foreign: ForeignLease::default(),
            raft: raft.clone(),
            reader,
            node_id: cfg.node_id,
            state_db,
            snapshots,
            after_install: Duration::from_millis(2 * cfg.election_timeout_max_ms),
            batcher: Batcher::start(raft.clone()),
            me: PeerNode {
                raft_addr: cfg.raft_addr,
                http_addr: cfg.http_addr,
            },
        })
    }

    /// Initialises a one-member group of this node, unless already initialised.
    pub async fn initialize_single(&self) -> Result<(), ConsensusError> {
        let members = BTreeMap::from([(self.node_id, self.me.clone())]);
        self.initialize(members).await
    }

    /// Initialises the group with `members`, unless already initialised.
    pub async fn initialize(
        &self,
        members: BTreeMap<NodeId, PeerNode>,
    ) -> Result<(), ConsensusError> {
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| ConsensusError::Raft(e.to_string()))?
        {
            return Ok(());
        }
        match self.raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(ConsensusError::Raft(e.to_string())),
        }
    }

    /// Commits an index entry through Raft and returns what applying it did. Concurrent
    /// puts share log entries (see [`crate::batcher`]): one flush on each member covers many.
    pub async fn put(&self, entry: IndexEntry) -> Result<ApplyResponse, ConsensusError> {
        self.batcher.put(entry).await
    }

    /// Commits several index entries in one log entry (in order, atomically) and returns
    /// what applying each did.
    pub async fn put_all(
        &self,
        entries: Vec<IndexEntry>,
    ) -> Result<Vec<ApplyResponse>, ConsensusError> {
        let count = entries.len();
        match self.write(IndexCommand::PutAll(entries)).await? {
            ApplyResponse::All(responses) if responses.len() == count => Ok(responses),
            other => Err(ConsensusError::Raft(format!(
                "a batch of {count} puts was applied as {other:?}"
            ))),
        }
    }

    /// On the leader, sets the members' shared secret (256 random bits) unless it is set;
    /// true once it is set.
    pub async fn ensure_member_secret(&self) -> Result<bool, ConsensusError> {
        if self.reader().member_secret()?.is_some() {
            return Ok(true);
        }
        if !self.is_leader() {
            return Ok(false);
        }
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
        self.write(IndexCommand::MemberSecret(hex::encode(secret)))
            .await?;
        Ok(true)
    }

    /// Commits an operating command (warm progress, evictions, restores) on the leader.
    pub async fn operate(&self, command: IndexCommand) -> Result<ApplyResponse, ConsensusError> {
        self.write(command).await
    }

    /// Commits an operator's action by `actor` on the leader: `Ok(Ok(index))` once
    /// committed, `Ok(Err(reason))` when the state machine refused it. It is in the admin
    /// trail either way.
    pub async fn admin(
        &self,
        actor: String,
        action: crate::types::AdminAction,
    ) -> Result<Result<u64, String>, ConsensusError> {
        let record = crate::types::AdminRecord {
            at_ms: crate::admin_tokens::now_ms(),
            actor,
            node: self.node_id(),
            action,
        };
        let command = IndexCommand::Admin(record);
        // What a client's token can ask for stays under the bound every entry keeps, so a
        // follower's batch of entries always fits a Raft message.
        let size = serde_json::to_vec(&command).map_or(usize::MAX, |bytes| bytes.len());
        if size > MAX_ENTRY_BYTES {
            return Err(ConsensusError::EntryTooLarge {
                size,
                limit: MAX_ENTRY_BYTES,
            });
        }
        match self.raft.client_write(command).await {
            Ok(response) => Ok(match response.data {
                ApplyResponse::Refused { reason } => Err(reason),
                _ => Ok(response.log_id.index),
            }),
            Err(e) => Err(write_error(e)),
        }
    }

    async fn write(&self, command: IndexCommand) -> Result<ApplyResponse, ConsensusError> {
        let size = serde_json::to_vec(&command).map_or(usize::MAX, |bytes| bytes.len());
        if size > MAX_ENTRY_BYTES {
            return Err(ConsensusError::EntryTooLarge {
                size,
                limit: MAX_ENTRY_BYTES,
            });
        }
        match self.raft.client_write(command).await {
            Ok(response) => Ok(response.data),
            Err(e) => Err(write_error(e)),
        }
    }

    /// Builds a snapshot of the applied index now (an operator's request, the scale test)
    /// and waits, at most `bound`, until the current snapshot covers everything applied when
    /// asked. Returns the log index it covers (`None`: nothing applied yet); when the current
    /// snapshot already covers it, nothing is built. Logs it covers are then purged as usual
    /// (`max_in_snapshot_log_to_keep`).
    pub async fn snapshot_now(&self, bound: Duration) -> Result<Option<u64>, ConsensusError> {
        let mut metrics = self.raft.metrics();
        let Some(target) = metrics.borrow().last_applied.map(|id| id.index) else {
            return Ok(None);
        };
        let covered = |m: &RaftMetrics| m.snapshot.map(|id| id.index).filter(|&i| i >= target);
        if let Some(index) = covered(&metrics.borrow_and_update()) {
            // openraft would build one and then drop it as no newer than the current one.
            return Ok(Some(index));
        }
        let waiting = async {
            loop {
                // A build already under way ignores the trigger and may cover less: ask again
                // until one covers the target.
                self.raft
                    .trigger()
                    .snapshot()
                    .await
                    .map_err(|e| ConsensusError::Raft(e.to_string()))?;
                let retry = tokio::time::sleep(SNAPSHOT_RETRIGGER);
                tokio::pin!(retry);
                loop {
                    if let Some(index) = covered(&metrics.borrow_and_update()) {
                        return Ok(Some(index));
                    }
                    tokio::select! {
                        changed = metrics.changed() => changed
                            .map_err(|_| ConsensusError::Raft("the raft core exited".into()))?,
                        () = &mut retry => break,
                    }
                }
            }
        };
        tokio::time::timeout(bound, waiting).await.map_err(|_| {
            ConsensusError::Raft(format!(
                "no snapshot covering log index {target} within {bound:?}"
            ))
        })?
    }

    /// Hands leadership to voter `target` (this node must lead); see [`crate::transfer`].
    pub async fn transfer_leader(&self, target: NodeId) -> Result<(), TransferError> {
        transfer_leadership(
            &self.raft,
            &self.pause,
            &self.channels,
            &self.contact,
            self.node_id,
            target,
        )
        .await
    }

    /// Before a planned stop, hands leadership to the most caught-up voter (if this node leads
    /// and has one). Returns the new leader.
    pub async fn step_down(&self) -> Result<Option<NodeId>, TransferError> {
        crate::transfer::step_down(
            &self.raft,
            &self.pause,
            &self.channels,
            &self.contact,
            self.node_id,
        )
        .await
    }

    /// Figures about this node's snapshots (size, builds, installs, chunks).
    pub fn snapshot_report(&self) -> SnapshotReport {
        self.snapshots.report()
    }

    /// Local reads of the applied index.
    pub fn reader(&self) -> IndexReader {
        self.reader.clone()
    }

    /// Watch of Raft metrics (state, leader, term, applied index, quorum freshness).
    pub fn metrics(&self) -> tokio::sync::watch::Receiver<RaftMetrics> {
        self.raft.metrics()
    }

    /// Resolves when the Raft member stops on its own, with the reason: a storage error (a full
    /// disk, an I/O error) or a panic in its core. openraft does not restart a stopped member,
    /// so the node must exit and let its supervisor start it again. Pending forever while Raft
    /// runs.
    ///
    /// A core stuck inside a storage call (sled can block forever after an I/O error such as
    /// ENOSPC) counts too: it is asked a trivial question every few seconds and must answer
    /// within [`CORE_ANSWER_BOUND`].
    pub async fn stopped(&self) -> String {
        let fatal = async {
            let mut metrics = self.raft.metrics();
            loop {
                if let Err(fatal) = &metrics.borrow_and_update().running_state {
                    return fatal.to_string();
                }
                if metrics.changed().await.is_err() {
                    return "the raft core exited".to_string();
                }
            }
        };
        let stuck = async {
            loop {
                tokio::time::sleep(CORE_CHECK_PERIOD).await;
                let answer = self.raft.with_raft_state(|_| ());
                match tokio::time::timeout(CORE_ANSWER_BOUND, answer).await {
                    Ok(Ok(())) => {}
                    Ok(Err(fatal)) => return fatal.to_string(),
                    Err(_) => return stuck_reason(),
                }
            }
        };
        tokio::select! {
            reason = fatal => reason,
            reason = stuck => reason,
        }
    }

    /// This member's Raft state now, in the node's terms.
    pub fn view(&self) -> RaftView {
        RaftView::of(&self.raft.metrics().borrow())
    }

    /// A watch of [`Consensus::view`]: the leadership, term, log and membership as they change.
    pub fn watch(&self) -> RaftWatch {
        RaftWatch::new(self.raft.metrics())
    }

    /// True while this node believes it leads.
    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.node_id)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The current leader as this node knows it: `None` when unknown.
    pub fn leader(&self) -> Option<(NodeId, PeerNode)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, node))
    }

    /// Every member except this node (voters and learners).
    pub fn peers(&self) -> Vec<(NodeId, PeerNode)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != self.node_id)
            .map(|(id, node)| (*id, node.clone()))
            .collect()
    }

    /// The gRPC services (Raft, admin) to mount on this node's node-to-node listener, which
    /// must use the transport of the channels this member was opened with.
    pub fn grpc_routes(&self) -> tonic::service::Routes {
        let service = RaftServiceServer::new(RaftGrpc::new(
            self.raft.clone(),
            self.node_id,
            self.foreign.clone(),
            self.vouching.clone(),
            self.snapshots.clone(),
            self.pause.clone(),
            self.after_install,
        ))
        .max_decoding_message_size(self.max_message)
        .max_encoding_message_size(self.max_message);
        let admin = crate::wire::admin::admin_service_server::AdminServiceServer::new(
            crate::admin::AdminGrpc {
                raft: self.raft.clone(),
                pause: self.pause.clone(),
                membership: self.membership.clone(),
                retirement: self.retirement.clone(),
                channels: self.channels.clone(),
                contact: self.contact.clone(),
                me: self.node_id,
                reader: self.reader(),
            },
        )
        .max_decoding_message_size(ADMIN_MAX_MESSAGE);
        tonic::service::Routes::new(service).add_service(admin)
    }

    /// The node-to-node channel pool (blob replication dials peers through it too).
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Why this node stopped campaigning, while it is not a voter of the cluster.
    pub fn retired(&self) -> Option<String> {
        self.retirement.reason()
    }

    /// The leader lease (`election_timeout_max`): a leader whose last quorum acknowledgement is
    /// older has lost its majority, as far as anyone can tell.
    pub fn leader_lease(&self) -> Duration {
        Duration::from_millis(self.raft.config().election_timeout_max)
    }

    /// Until when another leader's VIP lease may still run: `election_timeout_max` after this
    /// member last acknowledged another leader ([`crate::foreign_lease`]). A new leader does
    /// not claim the VIP before then.
    pub fn others_lease_until(&self) -> Option<std::time::Instant> {
        let lease = Duration::from_millis(self.raft.config().election_timeout_max);
        self.foreign.until(lease)
    }

    /// Stops the Raft member.
    pub async fn shutdown(&self) -> Result<(), ConsensusError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| ConsensusError::Raft(e.to_string()))?;
        self.state_db.flush_async().await?;
        Ok(())
    }
}

/// A failed client write as this crate reports it: "not leader" is typed (callers redirect).
pub(crate) fn write_error(
    e: RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>,
) -> ConsensusError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            ConsensusError::NotLeader {
                leader_id: forward.leader_id,
                leader: forward.leader_node,
            }
        }
        e => ConsensusError::Raft(e.to_string()),
    }
}
