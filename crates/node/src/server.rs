//! Running one node: open storage under the data directory, start the Raft member and the
//! node-to-node gRPC listener (Raft, admin and blob services), start the HTTP front end, and
//! drain everything on shutdown.
//!
//! The caller binds the sockets ([`Listeners`], port 0 in tests) and owns the one shutdown
//! token; [`run`] returns once the node has stopped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use goproxy_consensus::{Consensus, ConsensusConfig, PeerNode};
use goproxy_http::listener::ListenerMetrics;
use goproxy_http::{Frontend, Metrics};
use goproxy_replicate::{
    BlobGrpc, CommittedOrLeader, Replication, ReplicationConfig, ReplicationMetrics,
    ReplicatorConfig,
};
use goproxy_rpc::{Channels, Transport};
use goproxy_store::BlobStore;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::raft_index::RaftIndex;
use crate::replication::{Peers, RaftCluster};

/// Sub-directory of the data directory holding the sled index (Raft log + state machine).
const INDEX_DIR: &str = "index";
/// Sub-directory of the data directory holding module blobs.
const BLOBS_DIR: &str = "blobs";
/// Longest a shutting-down leader spends handing leadership over.
const STEP_DOWN_BOUND: Duration = Duration::from_secs(3);
/// File in the data directory holding this node's download counts.
const DOWNLOADS_FILE: &str = "downloads.json";
/// How often the download counts are saved.
const DOWNLOADS_SAVE_INTERVAL: Duration = Duration::from_secs(30);
/// How often a node checks whether the members' secret is set (setting it if it leads).
const MEMBER_SECRET_RETRY: Duration = Duration::from_millis(500);
/// How often the audit gauges are refreshed.
const AUDIT_GAUGES_INTERVAL: Duration = Duration::from_secs(5);
/// How long the audit log may take to write and sync its last lines at shutdown.
const AUDIT_BOUND: Duration = Duration::from_secs(10);
/// How long background tasks may take to stop once drained.
const TASKS_BOUND: Duration = Duration::from_secs(5);

/// The sockets a node serves on, bound before it starts (with port 0 their real addresses
/// are what peers and tests need).
pub struct Listeners {
    /// The GOPROXY front end.
    pub http: TcpListener,
    /// The node-to-node listener; `None` for a single node without `[cluster.tls]`.
    pub raft: Option<TcpListener>,
}

impl Listeners {
    /// Binds `listen`, and `raft_listen` when the configuration has a node-to-node transport.
    pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
        let http = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding HTTP listener {}", config.listen))?;
        let raft = if config.serves_node_to_node() {
            let listener = TcpListener::bind(config.raft_listen)
                .await
                .with_context(|| format!("binding raft listener {}", config.raft_listen))?;
            Some(listener)
        } else {
            None
        };
        Ok(Listeners { http, raft })
    }
}

/// While leading, verifies the fills accepted while the checksum database was unreachable
/// (`sumdb_unreachable = "accept"`), every `sumdb_recheck_interval`.
async fn recheck_unverified(frontend: Arc<Frontend>, drain: CancellationToken) {
    let mut tick = tokio::time::interval(frontend.recheck_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = drain.cancelled() => return,
            _ = tick.tick() => {}
        }
        for (database, report) in frontend.recheck_unverified().await {
            if report.verified > 0 || !report.refused.is_empty() {
                tracing::info!(%database, verified = report.verified, pending = report.pending, refused = report.refused.len(), "rechecked fills accepted unverified");
            }
        }
    }
}

/// Reads the configuration again (on SIGHUP): what may change while running (rate limits)
/// is applied, the rest is reported as needing a restart.
pub type Reload = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// Saves the download counts every [`DOWNLOADS_SAVE_INTERVAL`] and once more at `drain`.
async fn save_downloads(
    downloads: Arc<goproxy_audit::downloads::Downloads>,
    path: std::path::PathBuf,
    drain: CancellationToken,
) {
    let mut tick = tokio::time::interval(DOWNLOADS_SAVE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            () = drain.cancelled() => true,
            _ = tick.tick() => false,
        };
        let (counts, file) = (downloads.clone(), path.clone());
        match tokio::task::spawn_blocking(move || counts.save(&file)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("saving the download counts: {e}"),
            Err(e) => tracing::warn!("saving the download counts: {e}"),
        }
        if last {
            return;
        }
    }
}

/// Exports the audit log's counters (lines written, records dropped, write errors) as
/// gauges, refreshed every few seconds.
fn audit_gauges(
    stats: goproxy_audit::StatsHandle,
    registry: &mut Registry,
    drain: CancellationToken,
) -> impl std::future::Future<Output = ()> {
    use prometheus_client::metrics::gauge::Gauge;
    let (lines, dropped, errors) = (
        Gauge::<i64>::default(),
        Gauge::<i64>::default(),
        Gauge::<i64>::default(),
    );
    registry.register("audit_lines", "Audit lines written", lines.clone());
    registry.register(
        "audit_dropped",
        "Audit records dropped because the audit log could not keep up (alert on any)",
        dropped.clone(),
    );
    registry.register(
        "audit_write_errors",
        "Failed audit writes, retried",
        errors.clone(),
    );
    async move {
        let mut tick = tokio::time::interval(AUDIT_GAUGES_INTERVAL);
        loop {
            let now = stats.snapshot();
            let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            lines.set(gauge(now.lines));
            dropped.set(gauge(now.dropped));
            errors.set(gauge(now.write_errors));
            tokio::select! {
                () = drain.cancelled() => return,
                _ = tick.tick() => {}
            }
        }
    }
}

/// The first leader sets the members' shared secret (members prove themselves to each other
/// on the client port with a key derived from it) as soon as it leads; every node waits
/// until it is applied.
async fn member_secret(consensus: Consensus, drain: CancellationToken) {
    let mut metrics = consensus.metrics();
    loop {
        match consensus.ensure_member_secret().await {
            Ok(true) => {
                tracing::info!("the members' secret is set");
                return;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!("setting the members' secret: {e}"),
        }
        // Leadership or the applied log changed, or a bounded retry after an error.
        tokio::select! {
            () = drain.cancelled() => return,
            _ = metrics.changed() => {}
            () = tokio::time::sleep(MEMBER_SECRET_RETRY) => {}
        }
    }
}

/// Runs the node until `shutdown` is cancelled (a leader hands over first), or until its Raft
/// member stops on its own (an error then, so a supervisor restarts the node).
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_reload(config, listeners, shutdown, None).await
}

/// [`run`], re-reading the configuration with `reload` on SIGHUP.
pub async fn run_with_reload(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
    reload: Option<Reload>,
) -> anyhow::Result<()> {
    // Every task stops on `drain`, which follows `shutdown` once a leader has handed over:
    // Raft, the VIP and the front end keep working during the handover.
    let drain = CancellationToken::new();
    let tasks = TaskTracker::new();

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let (store, removed) =
        BlobStore::open(config.data_dir.join(BLOBS_DIR)).context("opening the blob store")?;
    if removed > 0 {
        tracing::info!(removed, "removed leftovers of interrupted writes");
    }
    let transport = config.transport().map_err(anyhow::Error::msg)?;
    log_transport(&config, transport.as_ref());

    let http_addr = listeners.http.local_addr()?;
    let raft_addr = match &listeners.raft {
        Some(listener) => listener.local_addr()?,
        None => config.raft_listen,
    };
    let channels = Channels::new(transport.clone().unwrap_or(Transport::Plaintext));
    let consensus = Consensus::open(
        config.data_dir.join(INDEX_DIR),
        consensus_config(&config, raft_addr, http_addr),
        channels,
    )
    .await
    .context("starting the raft member")?;

    let mut registry = Registry::with_prefix("goproxy");
    let cluster = Arc::new(RaftCluster(consensus.clone()));
    let replication = Replication::new(
        store.clone(),
        replication_config(&config),
        cluster.clone(),
        consensus.channels().clone(),
        ReplicationMetrics::register(&mut registry),
    );
    let serving_raft = match (listeners.raft, &transport) {
        (Some(listener), Some(transport)) => {
            let gate = Arc::new(CommittedOrLeader::new(cluster));
            let routes = consensus
                .grpc_routes()
                .add_service(BlobGrpc::new(store.clone(), gate).into_service());
            let server = transport.server().context("node-to-node TLS")?;
            tasks.spawn(serve_grpc(server, routes, listener, drain.clone()));
            true
        }
        _ => false,
    };
    bootstrap(&config, &consensus).await?;

    for task in replication.spawn(drain.clone()) {
        tasks.spawn(async move {
            let _ = task.await;
        });
    }
    tasks.spawn(crate::raft_metrics::run(
        consensus.clone(),
        crate::raft_metrics::RaftGauges::register(&mut registry),
        drain.clone(),
    ));
    let vip_holding = match crate::vip::settings(&config)? {
        Some(settings) => {
            let (holding_tx, holding) = tokio::sync::watch::channel(false);
            tasks.spawn(crate::vip::run(
                consensus.clone(),
                settings,
                drain.clone(),
                holding_tx,
            ));
            Some(holding)
        }
        None => None,
    };
    let index = Arc::new(RaftIndex::new(consensus.clone()));
    let metrics = Arc::new(Metrics::register(&mut registry));
    let peers = Arc::new(Peers(replication.clone()));
    let blob_store = store.clone();
    let routes = config
        .route_table()
        .map_err(|problems| anyhow::anyhow!("invalid routes: {}", problems.join("; ")))?;
    let direct = crate::direct::start(&config, &routes).await?;
    let client_tls = match &config.http.tls {
        Some(files) => Some(
            goproxy_http::listener::ServerTls::load(files)
                .context("loading the HTTPS certificate")?,
        ),
        None => None,
    };
    let limits = Arc::new(goproxy_access::limits::Limits::new(&config.limits));
    let downloads = Arc::new(goproxy_audit::downloads::Downloads::new(config.node_id));
    let downloads_file = config.data_dir.join(DOWNLOADS_FILE);
    if let Err(e) = downloads.load(&downloads_file) {
        tracing::warn!("download counts of the last run not restored: {e}");
    }
    let policy = crate::operate::policy(&consensus);
    let access = goproxy_http::access::Access {
        anonymous: config.auth.anonymous,
        tokens: Arc::new(crate::tokens::ReplicatedTokens::new(consensus.clone())),
        limits: limits.clone(),
        downloads: downloads.clone(),
        policy: policy.clone(),
    };
    tasks.spawn(save_downloads(downloads, downloads_file, drain.clone()));
    tasks.spawn(member_secret(consensus.clone(), drain.clone()));
    let mut proxy = config.proxy.clone();
    if let Some(files) = &config.http.tls {
        let ca_pem = match &files.peer_ca {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("reading http.tls.ca_file {}", path.display()))?,
            ),
            None => None,
        };
        proxy.peer_https = Some(goproxy_http::config::PeerHttps { ca_pem });
    }
    let frontend = Frontend::new(
        proxy,
        Arc::new(routes),
        direct,
        index,
        peers,
        store,
        metrics,
        access,
    )?;
    tasks.spawn(crate::reload::housekeep_limits(
        limits.clone(),
        drain.clone(),
    ));
    if let Some(reload) = reload {
        let reloadable = crate::reload::Reloadable {
            limits,
            tls: client_tls.clone(),
        };
        tasks.spawn(crate::reload::on_sighup(reload, reloadable, drain.clone()));
    }
    tasks.spawn(recheck_unverified(frontend.clone(), drain.clone()));
    let listener_metrics = ListenerMetrics::register(&mut registry);
    let (audit, audit_task) = match &config.audit.path {
        Some(_) => {
            let (log, task) =
                goproxy_audit::open(&config.audit).context("opening the audit log")?;
            tasks.spawn(audit_gauges(
                log.stats_handle(),
                &mut registry,
                drain.clone(),
            ));
            (Some(log), Some(tokio::spawn(task.run())))
        }
        None => (None, None),
    };
    let (operating, storage) = crate::operate::start(
        crate::operate::Parts {
            config: &config,
            consensus: consensus.clone(),
            frontend: frontend.clone(),
            store: blob_store,
            policy,
            vip: vip_holding.clone(),
            replication: replication.clone(),
        },
        &mut registry,
        &tasks,
        &drain,
    );
    let mut router = frontend
        .router(Arc::new(registry))
        .merge(crate::status::router(
            consensus.clone(),
            replication,
            vip_holding,
            frontend.clone(),
            storage,
        ))
        .merge(operating);
    if let Some(log) = audit {
        // The router's clones hold the only handles: the task ends once the listener drained.
        router = goproxy_http::audited::layer(router, log, config.node_id);
    }

    // "off": a single node without TLS opens no node-to-node listener.
    let raft_shown = if serving_raft {
        raft_addr.to_string()
    } else {
        "off".to_string()
    };
    tracing::info!(http = %http_addr, raft = %raft_shown, node_id = config.node_id, "goproxy-ha serving");
    // A machine-readable line on stdout for supervisors and tests (addresses may be port 0).
    println!("listening http={http_addr} raft={raft_shown}");

    let limits = config.http.clone();
    let drained = drain.clone();
    let serving = tokio::spawn(async move {
        goproxy_http::listener::serve(
            listeners.http,
            router,
            client_tls,
            limits,
            listener_metrics,
            drained.cancelled_owned(),
        )
        .await
    });
    let raft_stopped = tokio::select! {
        () = shutdown.cancelled() => None,
        reason = consensus.stopped() => Some(reason),
    };
    if let Some(reason) = &raft_stopped {
        // E.g. the disk filled up under the Raft log: this member cannot go on, and serving
        // from a frozen index would hide it. Exit non-zero so systemd (Restart=on-failure)
        // starts it again; at start it recovers from its log and catches up.
        tracing::error!(%reason, "raft stopped; shutting the node down");
    }
    hand_over(&consensus).await;
    drain.cancel();
    tasks.close();
    let grace = config.shutdown_grace;
    if tokio::time::timeout(grace, serving).await.is_err() {
        tracing::warn!(
            ?grace,
            "in-flight requests did not finish within the grace period"
        );
    }
    if let Some(task) = audit_task {
        // Every answered request's line is written and synced before the node exits.
        if tokio::time::timeout(AUDIT_BOUND, task).await.is_err() {
            tracing::warn!(?AUDIT_BOUND, "the audit log did not finish writing in time");
        }
    }
    let stopping = consensus.shutdown();
    if let Some(reason) = raft_stopped {
        // A stuck core never finishes shutting down, nor do RPCs waiting on it: give the
        // rest a moment, then exit anyway (the VIP guard drops the address when we do).
        let _ = tokio::time::timeout(TASKS_BOUND, async {
            let _ = stopping.await;
            tasks.wait().await;
        })
        .await;
        anyhow::bail!("raft stopped: {reason}");
    }
    stopping.await.context("stopping the raft member")?;
    if tokio::time::timeout(TASKS_BOUND, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(?TASKS_BOUND, "background tasks did not stop in time");
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

/// A leader hands over before the node stops (its VIP lease ends with its heartbeats), so
/// clients move to the next leader while requests still drain here.
async fn hand_over(consensus: &Consensus) {
    match tokio::time::timeout(STEP_DOWN_BOUND, consensus.step_down()).await {
        Ok(Ok(Some(next))) => tracing::info!(next, "leadership handed over for shutdown"),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::warn!("no leadership handover before shutdown: {e}"),
        Err(_) => tracing::warn!(?STEP_DOWN_BOUND, "leadership handover timed out"),
    }
}

fn log_transport(config: &Config, transport: Option<&Transport>) {
    match transport {
        Some(Transport::Plaintext) => tracing::warn!(
            "cluster.insecure_plaintext: node-to-node traffic is NOT authenticated; anyone who reaches {} can act as any member",
            config.raft_listen
        ),
        Some(Transport::Tls(_)) => {
            tracing::info!("node-to-node traffic: mutual TLS against the cluster CA")
        }
        None => {
            tracing::info!("single node without cluster.tls: no node-to-node listener is opened")
        }
    }
}

fn replication_config(config: &Config) -> ReplicationConfig {
    let replication = &config.replication;
    ReplicationConfig {
        push: ReplicatorConfig {
            sync_replicas: replication.sync_replicas,
            sync_timeout: replication.sync_timeout,
        },
        max_unreplicated_count: replication.max_unreplicated_count,
        max_unreplicated_bytes: replication.max_unreplicated_bytes,
    }
}

/// First start: a single node initialises a one-member group; in a static cluster the
/// member with the lowest id initialises the group with every configured peer.
async fn bootstrap(config: &Config, consensus: &Consensus) -> anyhow::Result<()> {
    let peers = &config.cluster.peers;
    if peers.is_empty() {
        return consensus
            .initialize_single()
            .await
            .context("initialising the raft group");
    }
    let lowest = peers.iter().map(|p| p.id).min();
    if lowest == Some(config.node_id) {
        let members: BTreeMap<u64, PeerNode> = peers
            .iter()
            .map(|p| {
                (
                    p.id,
                    PeerNode {
                        raft_addr: p.raft.clone(),
                        http_addr: p.http.clone(),
                    },
                )
            })
            .collect();
        consensus
            .initialize(members)
            .await
            .context("initialising the raft group")?;
    }
    Ok(())
}

fn consensus_config(
    config: &Config,
    raft_addr: SocketAddr,
    http_addr: SocketAddr,
) -> ConsensusConfig {
    let raft = &config.raft;
    let me = config.cluster.peers.iter().find(|p| p.id == config.node_id);
    ConsensusConfig {
        node_id: config.node_id,
        raft_addr: config
            .raft_advertise
            .clone()
            .or_else(|| me.map(|p| p.raft.clone()))
            .unwrap_or_else(|| raft_addr.to_string()),
        http_addr: config
            .cluster
            .http_advertise
            .clone()
            .or_else(|| me.map(|p| p.http.clone()))
            .unwrap_or_else(|| http_addr.to_string()),
        heartbeat_interval_ms: raft.heartbeat_interval.as_millis() as u64,
        election_timeout_min_ms: raft.election_timeout_min.as_millis() as u64,
        election_timeout_max_ms: raft.election_timeout_max.as_millis() as u64,
        snapshot_logs_since_last: raft.snapshot_logs_since_last,
        max_in_snapshot_log_to_keep: raft.max_in_snapshot_log_to_keep,
        snapshot_chunk_bytes: raft.snapshot_chunk_bytes,
    }
}

async fn serve_grpc(
    mut server: tonic::transport::Server,
    routes: tonic::service::Routes,
    listener: TcpListener,
    drain: CancellationToken,
) {
    let incoming = goproxy_rpc::incoming::limited(listener, goproxy_rpc::incoming::MAX_CONNECTIONS);
    let result = server
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, drain.cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::error!("node gRPC server failed: {e}");
    }
}
