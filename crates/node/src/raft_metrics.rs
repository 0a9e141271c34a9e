//! Raft state as Prometheus gauges, refreshed from openraft's metrics watch.

use goproxy_consensus::Consensus;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// The Raft gauges.
#[derive(Clone, Default)]
pub struct RaftGauges {
    is_leader: Gauge,
    term: Gauge,
    last_log: Gauge,
    applied: Gauge,
    lag: Gauge,
    quorum_ack: Gauge,
}

impl RaftGauges {
    /// Creates the gauges and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self::default();
        let RaftGauges {
            is_leader,
            term,
            last_log,
            applied,
            lag,
            quorum_ack,
        } = this.clone();
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
            quorum_ack,
        );
        this
    }
}

/// Keeps the gauges current until `shutdown`.
pub async fn run(consensus: Consensus, gauges: RaftGauges, shutdown: CancellationToken) {
    let RaftGauges {
        is_leader,
        term,
        last_log,
        applied,
        lag,
        quorum_ack,
    } = gauges;
    let mut watch = consensus.watch();
    {
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
                _ = shutdown.cancelled() => return,
                changed = watch.changed() => if !changed { return },
            }
        }
    }
}
