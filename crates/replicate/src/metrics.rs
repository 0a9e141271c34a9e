//! Replication's metrics, registered into the registry the node exposes at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a push or fetch outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Always `blob`.
    pub kind: &'static str,
    /// `synced`/`degraded` for pushes; `fetched`/`absent`/`error` for fetches.
    pub outcome: &'static str,
}

/// Replication's counters and gauges. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ReplicationMetrics {
    pushes: Family<OutcomeLabels, Counter>,
    fetches: Family<OutcomeLabels, Counter>,
    pub(crate) backlog_blobs: Gauge,
    pub(crate) backlog_bytes: Gauge,
    pub(crate) missing_blobs: Gauge,
}

impl ReplicationMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self::default();
        registry.register(
            "blob_replications",
            "Semi-synchronous blob pushes: synced, or degraded to asynchronous",
            this.pushes.clone(),
        );
        registry.register(
            "peer_fetches",
            "Committed blobs missing locally, fetched from a peer (or not found on any)",
            this.fetches.clone(),
        );
        registry.register(
            "replication_backlog_blobs",
            "Blobs acknowledged but short of sync replicas",
            this.backlog_blobs.clone(),
        );
        registry.register(
            "replication_backlog_bytes",
            "Bytes acknowledged but short of sync replicas",
            this.backlog_bytes.clone(),
        );
        registry.register(
            "missing_blobs",
            "Committed blobs this node does not hold yet (fetched from peers in the background)",
            this.missing_blobs.clone(),
        );
        this
    }

    pub(crate) fn push(&self, synced: bool) {
        let outcome = if synced { "synced" } else { "degraded" };
        self.pushes
            .get_or_create(&OutcomeLabels {
                kind: "blob",
                outcome,
            })
            .inc();
    }

    pub(crate) fn fetch(&self, outcome: &'static str) {
        self.fetches
            .get_or_create(&OutcomeLabels {
                kind: "blob",
                outcome,
            })
            .inc();
    }
}
