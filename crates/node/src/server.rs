//! Running one node: open storage under the data directory, start the Raft member and
//! the node-to-node gRPC listener (Raft + blob services), start the HTTP front end, and
//! drain everything on shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use goproxy_consensus::{Consensus, ConsensusConfig, PeerNode};
use goproxy_http::{Frontend, Metrics};
use goproxy_replicate::{BlobGrpc, ReplicatorConfig};
use goproxy_rpc::{Channels, Transport};
use goproxy_store::BlobStore;
use tokio::net::TcpListener;

use crate::backlog::Backlog;
use crate::config::Config;
use crate::peers::{IndexGate, RaftPeers};
use crate::raft_index::RaftIndex;
use crate::shutdown::Shutdown;

/// Sub-directory of the data directory holding the sled index (Raft log + state machine).
const INDEX_DIR: &str = "index";
/// Longest a shutting-down leader spends handing leadership over.
const STEP_DOWN_BOUND: Duration = Duration::from_secs(3);
/// Sub-directory of the data directory holding module blobs.
const BLOBS_DIR: &str = "blobs";
/// How long a node whose Raft member stopped by itself waits for its tasks before exiting.
const STUCK_SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

/// Runs the node until SIGTERM/SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = Shutdown::default();
    shutdown
        .trigger_on_signals()
        .context("installing signal handlers")?;
    // Every task stops on `drain`, which follows the signal once a leader has handed over:
    // Raft, the VIP and the front end keep working during the handover.
    let drain = Shutdown::default();

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let (store, removed) =
        BlobStore::open(config.data_dir.join(BLOBS_DIR)).context("opening the blob store")?;
    if removed > 0 {
        tracing::info!(removed, "removed leftovers of interrupted writes");
    }

    let transport = config.transport().map_err(anyhow::Error::msg)?;
    match &transport {
        Some(Transport::Plaintext) => tracing::warn!(
            "cluster.insecure_plaintext: node-to-node traffic is NOT authenticated; anyone who reaches {} can act as any member",
            config.raft_listen
        ),
        Some(Transport::Tls(_)) => {
            tracing::info!("node-to-node traffic: mutual TLS against the cluster CA")
        }
        None => tracing::info!(
            "single node without cluster.tls: no node-to-node listener is opened"
        ),
    }

    // Bind the listeners first: with port 0 their real addresses are what peers need.
    let http_listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding HTTP listener {}", config.listen))?;
    let http_addr = http_listener.local_addr()?;
    let raft_listener = match &transport {
        Some(_) => Some(
            TcpListener::bind(config.raft_listen)
                .await
                .with_context(|| format!("binding raft listener {}", config.raft_listen))?,
        ),
        None => None,
    };
    let raft_addr = match &raft_listener {
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
    let grpc = match (raft_listener, &transport) {
        (Some(listener), Some(transport)) => {
            let routes = consensus.grpc_routes().add_service(
                BlobGrpc::new(store.clone(), Arc::new(IndexGate::new(consensus.clone())))
                    .into_service(),
            );
            let server = transport.server().context("node-to-node TLS")?;
            Some(tokio::spawn(serve_grpc(
                server,
                routes,
                listener,
                drain.clone(),
            )))
        }
        _ => None,
    };
    bootstrap(&config, &consensus).await?;

    let metrics = Arc::new(Metrics::default());
    let index = Arc::new(RaftIndex::new(consensus.clone()));
    let replication = ReplicatorConfig {
        sync_replicas: config.replication.sync_replicas,
        sync_timeout: config.replication.sync_timeout,
    };
    let limits = &config.replication;
    let backlog = Arc::new(Backlog::new(
        limits.max_unreplicated_count,
        limits.max_unreplicated_bytes,
    ));
    let (backlog_blobs, backlog_bytes) = backlog.gauges();
    metrics.with_registry(|registry| {
        registry.register(
            "replication_backlog_blobs",
            "Blobs acknowledged but short of sync replicas",
            backlog_blobs,
        );
        registry.register(
            "replication_backlog_bytes",
            "Bytes acknowledged but short of sync replicas",
            backlog_bytes,
        );
    });
    let peers = Arc::new(RaftPeers::new(
        store.clone(),
        consensus.clone(),
        replication,
        backlog.clone(),
    ));
    let repair = peers.spawn_repair(drain.clone());
    let missing = crate::catch_up::Missing::default();
    metrics.with_registry(|registry| {
        registry.register(
            "missing_blobs",
            "Committed blobs this node does not hold yet (fetched from peers in the background)",
            missing.gauge(),
        );
    });
    let catch_up = crate::catch_up::spawn(
        consensus.clone(),
        store.clone(),
        peers.clone(),
        missing.clone(),
        drain.clone(),
    );
    let raft_gauges = metrics.with_registry(|registry| {
        crate::raft_metrics::spawn(consensus.clone(), registry, drain.clone())
    });
    let vip = match crate::vip::settings(&config)? {
        Some(settings) => {
            let (task, holding) = crate::vip::spawn(consensus.clone(), settings, drain.clone());
            Some((task, holding))
        }
        None => None,
    };
    let vip_holding = vip.as_ref().map(|(_, holding)| holding.clone());
    let frontend = Frontend::new(config.proxy.clone(), index, peers, store, metrics.clone())?;
    // "off": a single node without TLS opens no node-to-node listener.
    let raft_shown = if grpc.is_some() {
        raft_addr.to_string()
    } else {
        "off".to_string()
    };
    tracing::info!(http = %http_addr, raft = %raft_shown, node_id = config.node_id, "goproxy-ha serving");
    // A machine-readable line on stdout for supervisors and tests (addresses may be port 0).
    println!("listening http={http_addr} raft={raft_shown}");

    // Small answers (.info, .mod) are written as headers then body; without NODELAY,
    // Nagle's algorithm and delayed ACKs add ~40 ms to each of them.
    let drained = drain.clone();
    let grace = config.shutdown_grace;
    let router = frontend.router().merge(crate::status::router(
        consensus.clone(),
        backlog,
        missing,
        vip_holding,
    ));
    let limits = config.http.clone();
    let serving = tokio::spawn(async move {
        goproxy_http::listener::serve(http_listener, router, limits, &metrics, drained.wait()).await
    });
    let raft_stopped = tokio::select! {
        () = shutdown.wait() => None,
        reason = consensus.stopped() => Some(reason),
    };
    if let Some(reason) = &raft_stopped {
        // E.g. the disk filled up under the Raft log: this member cannot go on, and serving
        // from a frozen index would hide it. Exit non-zero so systemd (Restart=on-failure)
        // starts it again; at start it recovers from its log and catches up.
        tracing::error!(%reason, "raft stopped; shutting the node down");
    }
    // A leader hands over first (its VIP lease ends with its heartbeats), so clients move to
    // the next leader while requests still drain here.
    match tokio::time::timeout(STEP_DOWN_BOUND, consensus.step_down()).await {
        Ok(Ok(Some(next))) => tracing::info!(next, "leadership handed over for shutdown"),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::warn!("no leadership handover before shutdown: {e}"),
        Err(_) => tracing::warn!(?STEP_DOWN_BOUND, "leadership handover timed out"),
    }
    drain.trigger();
    if let Some((task, _)) = vip {
        let _ = task.await;
    }
    match tokio::time::timeout(grace, serving).await {
        Ok(result) => result.context("HTTP server task")?,
        Err(_) => tracing::warn!(
            ?grace,
            "in-flight requests did not finish within the grace period"
        ),
    }
    let tail = async {
        let stopped = consensus.shutdown().await;
        if let Some(grpc) = grpc {
            let _ = grpc.await;
        }
        let _ = repair.await;
        let _ = catch_up.await;
        let _ = raft_gauges.await;
        stopped
    };
    if let Some(reason) = raft_stopped {
        // A stuck core never finishes shutting down, nor do RPCs waiting on it: give the
        // rest a moment, then exit anyway (the VIP guard drops the address when we do).
        let _ = tokio::time::timeout(STUCK_SHUTDOWN_BOUND, tail).await;
        anyhow::bail!("raft stopped: {reason}");
    }
    tail.await.context("stopping the raft member")?;
    tracing::info!("shut down cleanly");
    Ok(())
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
        snapshot_chunk_bytes: goproxy_consensus::node::DEFAULT_SNAPSHOT_CHUNK_BYTES,
    }
}

async fn serve_grpc(
    mut server: tonic::transport::Server,
    routes: tonic::service::Routes,
    listener: TcpListener,
    shutdown: Shutdown,
) {
    let incoming = goproxy_rpc::incoming::limited(listener, goproxy_rpc::incoming::MAX_CONNECTIONS);
    let result = server
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown.wait())
        .await;
    if let Err(e) = result {
        tracing::error!("node gRPC server failed: {e}");
    }
}
