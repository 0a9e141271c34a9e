//! Operating the cache: prefetch jobs, purges, block rules, the disk bound and the
//! dashboard, wired over the replicated state ([`goproxy_consensus::ops`]) and the front end.
//!
//! # Layout
//! - [`policy`]: block rules on the request path, served versions noted ([`ReplicatedPolicy`]).
//! - [`runner`]: the leader runs prefetch jobs (`goproxy-warm`) and checkpoints them.
//! - [`reclaim`]: every node drops purged and evicted blobs.
//! - [`evict`]: the leader keeps the cache under `cache.max_bytes`; nodes share access times.
//! - [`api`]: `/admin/warm…` for operators and CI, `/cluster/access-times` for members.
//! - [`dashboard`]: `/ui` (`goproxy-dashboard`) and the JSON it renders, `/ui/data`.
//! - [`StorageGauges`]: cache size and disk, measured in the background (see
//!   [`MEASURE_INTERVAL`]) for `/metrics`, `/cluster/status` and the dashboard.

pub mod api;
pub mod dashboard;
pub mod evict;
pub mod policy;
pub mod reclaim;
pub mod runner;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use goproxy_consensus::ops::JobState;
use goproxy_consensus::Consensus;
use goproxy_http::Frontend;
use goproxy_status::StorageStatus;
use goproxy_store::BlobStore;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use policy::ReplicatedPolicy;

use crate::config::Config;
use crate::vip::HoldingWatch;

/// How often the disk is measured, and the cache size and job counts when the applied index
/// moved (they only change then).
pub const MEASURE_INTERVAL: Duration = Duration::from_millis(500);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What the operating routes work with.
#[derive(Clone)]
pub struct OpsState {
    /// This node's member.
    pub consensus: Consensus,
    /// Its front end.
    pub frontend: Arc<Frontend>,
    /// Its block rules and access times.
    pub policy: Arc<ReplicatedPolicy>,
    /// Its storage, as last measured.
    pub storage: Arc<StorageGauges>,
    /// Whether it holds the VIP.
    pub vip: Option<HoldingWatch>,
    /// Its blob replication (backlog, missing blobs).
    pub replication: Arc<goproxy_replicate::Replication>,
}

/// Labels of the job gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    state: &'static str,
}

/// The storage figures, measured in the background (never on a request).
#[derive(Debug, Default)]
pub struct StorageGauges {
    cache_bytes: AtomicU64,
    max_bytes: Option<u64>,
    disk_free: AtomicU64,
    disk_total: AtomicU64,
    evicted: AtomicU64,
    pinned: AtomicU64,
}

impl StorageGauges {
    /// The last measurement.
    pub fn status(&self) -> StorageStatus {
        StorageStatus {
            cache_bytes: self.cache_bytes.load(Ordering::Relaxed),
            max_bytes: self.max_bytes,
            disk_free_bytes: self.disk_free.load(Ordering::Relaxed),
            disk_total_bytes: self.disk_total.load(Ordering::Relaxed),
            evicted_versions: self.evicted.load(Ordering::Relaxed),
            pinned_versions: self.pinned.load(Ordering::Relaxed),
        }
    }
}

/// The operating parts that exist before the front end: its policy.
pub fn policy(consensus: &Consensus) -> Arc<ReplicatedPolicy> {
    Arc::new(ReplicatedPolicy::new(
        consensus.clone(),
        Arc::new(goproxy_cachepolicy::AccessTimes::new()),
    ))
}

/// What [`start`] needs.
pub struct Parts<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// This node's member.
    pub consensus: Consensus,
    /// Its front end.
    pub frontend: Arc<Frontend>,
    /// Its blob store.
    pub store: BlobStore,
    /// Its policy (from [`policy`]).
    pub policy: Arc<ReplicatedPolicy>,
    /// Whether it holds the VIP.
    pub vip: Option<HoldingWatch>,
    /// Its blob replication.
    pub replication: Arc<goproxy_replicate::Replication>,
}

/// Starts the operating tasks on `tasks` (they stop with `drain`) and returns the routes
/// and the storage gauges (for `/cluster/status`).
pub fn start(
    parts: Parts<'_>,
    registry: &mut Registry,
    tasks: &TaskTracker,
    drain: &CancellationToken,
) -> (axum::Router, Arc<StorageGauges>) {
    let Parts {
        config,
        consensus,
        frontend,
        store,
        policy,
        vip,
        replication,
    } = parts;
    let storage = Arc::new(StorageGauges {
        max_bytes: config.cache.max_bytes,
        ..Default::default()
    });
    let evictions = Counter::default();
    registry.register(
        "cache_evictions",
        "Versions whose zips the leader evicted (cache.max_bytes, cache.evict_unused_after)",
        evictions.clone(),
    );
    let reclaimed = Counter::default();
    registry.register(
        "reclaimed_blobs",
        "Blobs this node deleted after a purge or an eviction",
        reclaimed.clone(),
    );
    tasks.spawn(measure(
        consensus.clone(),
        store.clone(),
        storage.clone(),
        vip.clone(),
        registry,
        drain.clone(),
    ));
    tasks.spawn(reclaim::run(
        consensus.clone(),
        store,
        frontend.clone(),
        policy.access.clone(),
        reclaimed,
        drain.clone(),
    ));
    tasks.spawn(
        evict::Evictor {
            consensus: consensus.clone(),
            frontend: frontend.clone(),
            access: policy.access.clone(),
            config: config.cache.clone(),
            data_dir: config.data_dir.clone(),
            evictions,
        }
        .run(drain.clone()),
    );
    tasks.spawn(runner::run(
        consensus.clone(),
        frontend.clone(),
        config.warm.concurrency,
        drain.clone(),
    ));
    let state = OpsState {
        consensus,
        frontend,
        policy,
        storage: storage.clone(),
        vip,
        replication,
    };
    let router = api::router(state.clone()).merge(dashboard::router(state));
    (router, storage)
}

/// Measures the storage and counts jobs every [`MEASURE_INTERVAL`], into `storage` and
/// the registry's gauges.
fn measure(
    consensus: Consensus,
    store: BlobStore,
    storage: Arc<StorageGauges>,
    vip: Option<HoldingWatch>,
    registry: &mut Registry,
    drain: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let cache_bytes = Gauge::<i64>::default();
    let max_bytes = Gauge::<i64>::default();
    let disk_free = Gauge::<i64>::default();
    let disk_total = Gauge::<i64>::default();
    let jobs = Family::<JobLabels, Gauge>::default();
    let vip_held = Gauge::<i64>::default();
    registry.register(
        "cache_bytes",
        "Bytes of the blobs the cluster keeps",
        cache_bytes.clone(),
    );
    registry.register(
        "cache_max_bytes",
        "cache.max_bytes (0: unbounded)",
        max_bytes.clone(),
    );
    registry.register(
        "blob_disk_free_bytes",
        "Free bytes on the blob store's filesystem",
        disk_free.clone(),
    );
    registry.register(
        "blob_disk_total_bytes",
        "Size of the blob store's filesystem",
        disk_total.clone(),
    );
    registry.register("warm_jobs", "Prefetch jobs by state", jobs.clone());
    if vip.is_some() {
        registry.register(
            "vip_held",
            "1 while this node holds the virtual IP",
            vip_held.clone(),
        );
    }
    max_bytes.set(
        storage
            .max_bytes
            .map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)),
    );
    async move {
        let reader = consensus.reader();
        let metrics = consensus.metrics();
        let mut measured_at = None;
        loop {
            let applied = metrics.borrow().last_applied.map(|id| id.index);
            if measured_at != Some(applied) {
                measured_at = Some(applied);
                index_figures(&reader, &storage, &cache_bytes, &jobs);
            }
            if let Ok((total, free)) = store.filesystem() {
                storage.disk_total.store(total, Ordering::Relaxed);
                storage.disk_free.store(free, Ordering::Relaxed);
                disk_total.set(as_i64(total));
                disk_free.set(as_i64(free));
            }
            if let Some(vip) = &vip {
                vip_held.set(i64::from(*vip.borrow()));
            }
            tokio::select! {
                () = drain.cancelled() => return,
                () = tokio::time::sleep(MEASURE_INTERVAL) => {}
            }
        }
    }
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What the applied index says: the cache's size (a count the state machine keeps),
/// evictions, pins, jobs by state.
fn index_figures(
    reader: &goproxy_consensus::IndexReader,
    storage: &StorageGauges,
    cache_bytes: &Gauge<i64>,
    jobs: &Family<JobLabels, Gauge>,
) {
    if let Ok((bytes, _)) = reader.kept() {
        storage.cache_bytes.store(bytes, Ordering::Relaxed);
        cache_bytes.set(as_i64(bytes));
    }
    if let Ok(evicted) = reader.evicted() {
        storage
            .evicted
            .store(evicted.len() as u64, Ordering::Relaxed);
    }
    if let Ok(pins) = reader.pins() {
        storage.pinned.store(pins.len() as u64, Ordering::Relaxed);
    }
    if let Ok(all) = reader.warm_jobs() {
        for state in [
            JobState::Receiving,
            JobState::Queued,
            JobState::Running,
            JobState::Done,
            JobState::Failed,
            JobState::Cancelled,
        ] {
            let n = all.iter().filter(|job| job.state == state).count();
            jobs.get_or_create(&JobLabels {
                state: state.as_str(),
            })
            .set(as_i64(n as u64));
        }
    }
}
