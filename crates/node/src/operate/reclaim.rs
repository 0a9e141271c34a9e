//! Every node drops the blobs the log says are no longer kept: the bytes of purged versions
//! and the zips of evicted ones ([`goproxy_consensus::ops::Reclaim`] records). A blob that a
//! kept entry still references (the same bytes under another version, a refill after a
//! purge) stays. The front end forgets purged versions at the same moment, so the next
//! request fills them again.

use std::sync::Arc;
use std::time::Duration;

use goproxy_cachepolicy::AccessTimes;
use goproxy_consensus::Consensus;
use goproxy_http::Frontend;
use goproxy_store::BlobStore;
use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;

/// How often the applied state is checked for new reclaim records (one small read).
const POLL: Duration = Duration::from_millis(200);
/// How often evicted zips that arrived after their reclaim record are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Runs until `drain`.
pub async fn run(
    consensus: Consensus,
    store: BlobStore,
    frontend: Arc<Frontend>,
    access: Arc<AccessTimes>,
    reclaimed: Counter,
    drain: CancellationToken,
) {
    let reader = consensus.reader();
    // Records still in the log are processed once at start too: a node that was down
    // during a purge drops the bytes when it comes back.
    let mut seen_ops_at = u64::MAX;
    let mut last_index = 0;
    let mut sweep_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = drain.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
        let ops_at = match reader.ops_at() {
            Ok(at) => at,
            Err(e) => {
                tracing::warn!("reading the index: {e}");
                continue;
            }
        };
        if sweep_at.elapsed() >= SWEEP_INTERVAL {
            sweep_at = tokio::time::Instant::now();
            match sweep(&reader, &store, &frontend, &access).await {
                Ok(0) => {}
                Ok(removed) => {
                    reclaimed.inc_by(removed);
                    tracing::info!(blobs = removed, "dropped evicted zips that arrived late");
                }
                Err(e) => tracing::warn!("sweeping evicted blobs: {e}"),
            }
        }
        if ops_at == seen_ops_at {
            continue;
        }
        match pass(&reader, &store, &frontend, last_index).await {
            Ok((index, removed)) => {
                last_index = last_index.max(index);
                seen_ops_at = ops_at;
                if removed > 0 {
                    reclaimed.inc_by(removed);
                    tracing::info!(blobs = removed, "dropped purged or evicted blobs");
                }
            }
            Err(e) => tracing::warn!("reclaiming blobs: {e}"),
        }
    }
}

/// Deletes the zips of evicted versions that are on this node anyway: a catch-up fetch or a
/// push that was under way when the eviction applied lands after the reclaim record was
/// processed. One read per evicted version.
///
/// A zip served since its eviction (fetched again for a client) stays: the leader's next pass
/// restores it.
async fn sweep(
    reader: &goproxy_consensus::IndexReader,
    store: &BlobStore,
    frontend: &Frontend,
    access: &AccessTimes,
) -> Result<u64, String> {
    let mut removed = 0;
    for (version, evicted_at) in reader.evicted().map_err(|e| e.to_string())? {
        if access
            .get(&version.module, &version.version)
            .is_some_and(|used| used > evicted_at)
        {
            continue;
        }
        let key = goproxy_protocol::index::ArtifactKey {
            module: version.module,
            version: version.version,
            kind: goproxy_protocol::index::ArtifactKind::Zip,
        };
        let Some(entry) = reader.get(&key).map_err(|e| e.to_string())? else {
            continue;
        };
        let sha256 = &entry.blob.sha256;
        if reader.is_blob_kept(sha256).map_err(|e| e.to_string())? {
            continue;
        }
        if store
            .contains(&entry.blob)
            .await
            .map_err(|e| e.to_string())?
        {
            frontend.forget_blob(sha256);
            if store.remove(sha256).await.map_err(|e| e.to_string())? {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Processes the records after `after`: the last record's index and the blobs removed.
async fn pass(
    reader: &goproxy_consensus::IndexReader,
    store: &BlobStore,
    frontend: &Frontend,
    after: u64,
) -> Result<(u64, u64), String> {
    let records = reader.reclaims_after(after).map_err(|e| e.to_string())?;
    let Some(last) = records.last().map(|r| r.index) else {
        return Ok((after, 0));
    };
    let mut removed = 0;
    for record in records {
        for version in &record.purged {
            frontend.forget_version(&version.module, &version.version);
        }
        for sha256 in &record.blobs {
            // Checked just before deleting (one key read): a kept entry referencing the
            // same bytes (another version, a refill after a purge) keeps them.
            if reader.is_blob_kept(sha256).map_err(|e| e.to_string())? {
                continue;
            }
            frontend.forget_blob(sha256);
            if store.remove(sha256).await.map_err(|e| e.to_string())? {
                removed += 1;
            }
        }
    }
    Ok((last, removed))
}
