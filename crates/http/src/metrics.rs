//! Prometheus metrics of the front end, registered into the registry the node creates (and
//! exposes at `/metrics`, [`encode`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a served request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route name (`list`, `latest`, `info`, `mod`, `zip`, `sumdb`, `invalid`, ...).
    pub route: &'static str,
    /// HTTP status code.
    pub status: u16,
}

/// Labels for cache lookups and fills.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Artifact kind or route.
    pub kind: &'static str,
    /// `hit`/`miss`, or a fill's result.
    pub outcome: &'static str,
}

/// Labels of an upstream attempt.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// `2xx`, `4xx`, `5xx`, `timeout` or `error`.
    pub result: &'static str,
}

/// All front-end metrics.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    lookups: Family<OutcomeLabels, Counter>,
    fills: Family<OutcomeLabels, Counter>,
    upstream_seconds: Family<UpstreamLabels, Histogram>,
    bytes_served: Counter,
    forwarded: Family<OutcomeLabels, Counter>,
    commit_seconds: Histogram,
    bytes_filled: Counter,
    sumdb_checks: Family<ResultLabels, Counter>,
    checksum_mismatches: Counter,
    accepted_unverified: Counter,
    blocked: Counter,
    prepared_hits: Counter,
}

/// Labels of a checksum database verification.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `verified`, `refused`, `unreachable` or `fork`.
    pub outcome: &'static str,
}

impl Metrics {
    /// Creates the front end's metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let lookups = Family::<OutcomeLabels, Counter>::default();
        let fills = Family::<OutcomeLabels, Counter>::default();
        let upstream_seconds = Family::<UpstreamLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let bytes_served = Counter::default();
        let forwarded = Family::<OutcomeLabels, Counter>::default();
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let bytes_filled = Counter::default();
        let sumdb_checks = Family::<ResultLabels, Counter>::default();
        let checksum_mismatches = Counter::default();
        let accepted_unverified = Counter::default();
        let blocked = Counter::default();
        let prepared_hits = Counter::default();
        registry.register(
            "prepared_hits",
            "Cache hits answered from a prepared answer (no parsing, routing or header building; also counted in cache_lookups)",
            prepared_hits.clone(),
        );
        registry.register(
            "blocked_requests",
            "Requests refused by an operator's block rule (403)",
            blocked.clone(),
        );
        registry.register(
            "sumdb_accepted_unverified",
            "Fills (and hits of unproved artifacts) served unverified because the checksum database was unreachable (sumdb_unreachable = \"accept\")",
            accepted_unverified.clone(),
        );
        registry.register(
            "sumdb_checks",
            "Verifications of a module version against a checksum database, by outcome (fork: the database presented a tree inconsistent with the verified one)",
            sumdb_checks.clone(),
        );
        registry.register(
            "checksum_mismatches",
            "Fills refused because the upstream's bytes hash differently from the checksum database's record",
            checksum_mismatches.clone(),
        );
        registry.register(
            "http_requests",
            "Requests by route and status",
            requests.clone(),
        );
        registry.register(
            "cache_lookups",
            "Index lookups by kind, hit or miss",
            lookups.clone(),
        );
        registry.register("fills", "Upstream fills by kind and result", fills.clone());
        registry.register(
            "upstream_request_seconds",
            "Latency of upstream attempts until headers",
            upstream_seconds.clone(),
        );
        registry.register(
            "served_bytes",
            "Body bytes of cached artifacts served",
            bytes_served.clone(),
        );
        registry.register(
            "filled_bytes",
            "Bytes fetched from upstream into the cache",
            bytes_filled.clone(),
        );
        registry.register(
            "forwarded_fills",
            "Misses forwarded to the leader",
            forwarded.clone(),
        );
        registry.register(
            "index_commit_seconds",
            "Time for an index entry to be committed by a Raft majority and applied",
            commit_seconds.clone(),
        );
        Self {
            blocked,
            prepared_hits,
            sumdb_checks,
            checksum_mismatches,
            accepted_unverified,
            forwarded,
            commit_seconds,
            requests,
            lookups,
            fills,
            upstream_seconds,
            bytes_served,
            bytes_filled,
        }
    }

    /// Counts a served request.
    pub fn request(&self, route: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
    }

    /// Counts a request refused by a block rule.
    pub fn blocked(&self) {
        self.blocked.inc();
    }

    /// Counts a hit answered from a prepared answer.
    pub fn prepared_hit(&self) {
        self.prepared_hits.inc();
    }

    /// Hits answered from prepared answers so far.
    pub fn prepared_hits(&self) -> u64 {
        self.prepared_hits.get()
    }

    /// Counts an index lookup.
    pub fn lookup(&self, kind: &'static str, hit: bool) {
        let outcome = if hit { "hit" } else { "miss" };
        self.lookups
            .get_or_create(&OutcomeLabels { kind, outcome })
            .inc();
    }

    /// Counts a checksum database verification.
    pub fn sumdb_check(&self, outcome: &'static str) {
        self.sumdb_checks
            .get_or_create(&ResultLabels { outcome })
            .inc();
    }

    /// Counts a fill refused for a checksum mismatch.
    pub fn sumdb_mismatch(&self) {
        self.checksum_mismatches.inc();
    }

    /// Counts a fill accepted unverified.
    pub fn sumdb_accepted_unverified(&self) {
        self.accepted_unverified.inc();
    }

    /// Counts a fill's result.
    pub fn fill(&self, kind: &'static str, outcome: &'static str) {
        self.fills
            .get_or_create(&OutcomeLabels { kind, outcome })
            .inc();
    }

    /// Records one upstream attempt.
    pub fn observe_upstream(&self, result: &'static str, seconds: f64) {
        self.upstream_seconds
            .get_or_create(&UpstreamLabels { result })
            .observe(seconds);
    }

    /// Counts a miss forwarded to the leader.
    pub fn forwarded(&self, kind: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.forwarded
            .get_or_create(&OutcomeLabels { kind, outcome })
            .inc();
    }

    /// Records how long an index commit took.
    pub fn commit(&self, seconds: f64) {
        self.commit_seconds.observe(seconds);
    }

    /// Body bytes served so far.
    pub fn served_bytes(&self) -> u64 {
        self.bytes_served.get()
    }

    /// Adds served body bytes.
    pub fn served(&self, bytes: u64) {
        self.bytes_served.inc_by(bytes);
    }

    /// Adds bytes fetched from upstream.
    pub fn filled(&self, bytes: u64) {
        self.bytes_filled.inc_by(bytes);
    }
}

/// The text exposition of every metric in `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}
