//! Running one node: open storage under the data directory, start the Raft member and
//! its gRPC listener, start the HTTP front end, and drain everything on shutdown.

use std::sync::Arc;

use anyhow::Context;
use axum::serve::ListenerExt;
use goproxy_consensus::{Consensus, ConsensusConfig};
use goproxy_http::{Frontend, Metrics};
use goproxy_store::BlobStore;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::raft_index::RaftIndex;
use crate::shutdown::Shutdown;

/// Sub-directory of the data directory holding the sled index (Raft log + state machine).
const INDEX_DIR: &str = "index";
/// Sub-directory of the data directory holding module blobs.
const BLOBS_DIR: &str = "blobs";

/// Runs the node until SIGTERM/SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = Shutdown::default();
    shutdown
        .trigger_on_signals()
        .context("installing signal handlers")?;

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let (store, removed) =
        BlobStore::open(config.data_dir.join(BLOBS_DIR)).context("opening the blob store")?;
    if removed > 0 {
        tracing::info!(removed, "removed leftovers of interrupted writes");
    }
    let db = sled::open(config.data_dir.join(INDEX_DIR)).context("opening the index database")?;

    let raft_listener = TcpListener::bind(config.raft_listen)
        .await
        .with_context(|| format!("binding raft listener {}", config.raft_listen))?;
    let raft_addr = raft_listener.local_addr()?;
    let advertise = config
        .raft_advertise
        .clone()
        .unwrap_or_else(|| raft_addr.to_string());
    let consensus = Consensus::open(db.clone(), consensus_config(&config, advertise))
        .await
        .context("starting the raft member")?;
    let grpc = tokio::spawn(serve_grpc(
        consensus.clone(),
        raft_listener,
        shutdown.clone(),
    ));
    consensus
        .initialize_single()
        .await
        .context("initialising the raft group")?;

    let metrics = Arc::new(Metrics::default());
    let index = Arc::new(RaftIndex::new(consensus.clone()));
    let frontend = Frontend::new(config.proxy.clone(), index, store, metrics)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding HTTP listener {}", config.listen))?;
    let http_addr = listener.local_addr()?;
    tracing::info!(http = %http_addr, raft = %raft_addr, node_id = config.node_id, "goproxy-ha serving");
    // A machine-readable line on stdout for supervisors and tests (addresses may be port 0).
    println!("listening http={http_addr} raft={raft_addr}");

    let drained = shutdown.clone();
    let grace = config.shutdown_grace;
    // Small answers (.info, .mod) are written as headers then body; without NODELAY,
    // Nagle's algorithm and delayed ACKs add ~40 ms to each of them.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    });
    let server = axum::serve(listener, frontend.router())
        .with_graceful_shutdown(async move { drained.wait().await });
    let serving = tokio::spawn(async move { server.await });
    shutdown.wait().await;
    match tokio::time::timeout(grace, serving).await {
        Ok(result) => result.context("HTTP server task")?.context("HTTP server")?,
        Err(_) => tracing::warn!(
            ?grace,
            "in-flight requests did not finish within the grace period"
        ),
    }
    consensus
        .shutdown()
        .await
        .context("stopping the raft member")?;
    let _ = grpc.await;
    db.flush_async().await.context("flushing the index")?;
    tracing::info!("shut down cleanly");
    Ok(())
}

fn consensus_config(config: &Config, advertise: String) -> ConsensusConfig {
    let raft = &config.raft;
    ConsensusConfig {
        node_id: config.node_id,
        raft_addr: advertise,
        heartbeat_interval_ms: raft.heartbeat_interval.as_millis() as u64,
        election_timeout_min_ms: raft.election_timeout_min.as_millis() as u64,
        election_timeout_max_ms: raft.election_timeout_max.as_millis() as u64,
        snapshot_logs_since_last: raft.snapshot_logs_since_last,
        max_in_snapshot_log_to_keep: raft.max_in_snapshot_log_to_keep,
    }
}

async fn serve_grpc(consensus: Consensus, listener: TcpListener, shutdown: Shutdown) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let result = tonic::transport::Server::builder()
        .add_routes(consensus.grpc_routes())
        .serve_with_incoming_shutdown(incoming, shutdown.wait())
        .await;
    if let Err(e) = result {
        tracing::error!("raft gRPC server failed: {e}");
    }
}
