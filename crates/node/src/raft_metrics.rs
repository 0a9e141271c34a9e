//! Raft state as Prometheus gauges, refreshed from openraft's metrics watch.

use goproxy_consensus::Consensus;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::shutdown::Shutdown;

/// Registers the gauges and keeps them current until shutdown.
pub fn spawn(
    consensus: Consensus,
    registry: &mut Registry,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    let is_leader = Gauge::<i64>::default();
    let term = Gauge::<i64>::default();
    let last_log = Gauge::<i64>::default();
    let applied = Gauge::<i64>::default();
    let lag = Gauge::<i64>::default();
    let quorum_ack = Gauge::<i64>::default();
    registry.register(
        "raft_is_leader",
        "1 while this node leads",
        is_leader.clone(),
    );
    registry.register("raft_term", "Current Raft term", term.clone());
    registry.register(
        "raft_last_log_index",
        "Index of the last log entry",
        last_log.clone(),
    );
    registry.register(
        "raft_last_applied_index",
        "Index of the last applied entry",
        applied.clone(),
    );
    registry.register(
        "raft_max_follower_lag_entries",
        "Leader only: entries the slowest follower is behind",
        lag.clone(),
    );
    registry.register(
        "raft_millis_since_quorum_ack",
        "Leader only: ms since a quorum acknowledged it (-1 elsewhere)",
        quorum_ack.clone(),
    );
    let mut watch = consensus.watch();
    tokio::spawn(async move {
        loop {
            let view = watch.view();
            let last = view.last_log_index.unwrap_or(0);
            is_leader.set(i64::from(view.is_leader));
            term.set(view.current_term as i64);
            last_log.set(last as i64);
            applied.set(view.last_applied.unwrap_or(0) as i64);
            let slowest = view.slowest_follower_matched;
            lag.set(slowest.map_or(0, |matched| last.saturating_sub(matched)) as i64);
            quorum_ack.set(view.quorum_ack_age.map_or(-1, |age| age.as_millis() as i64));
            tokio::select! {
                _ = shutdown.wait() => return,
                changed = watch.changed() => if !changed { return },
            }
        }
    })
}
