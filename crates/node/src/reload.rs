//! What changes while the node runs: on SIGHUP the configuration is read again, the rate
//! limits are replaced (buckets start full, fills in flight still count) and the HTTPS
//! certificate and key files are read again (new handshakes use them; open connections are
//! not dropped). Other settings need a restart. Idle rate-limit buckets are dropped on a timer.

use std::sync::Arc;
use std::time::Duration;

use goproxy_access::limits::Limits;
use tokio_util::sync::CancellationToken;

use crate::server::Reload;

/// How often idle rate-limit buckets are dropped.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(30);

/// What SIGHUP renews.
pub struct Reloadable {
    /// The rate limits.
    pub limits: Arc<Limits>,
    /// The client listener's certificate, when it serves HTTPS.
    pub tls: Option<goproxy_http::listener::ServerTls>,
}

/// Re-reads the configuration on every SIGHUP until `drain`.
pub async fn on_sighup(reload: Reload, what: Reloadable, drain: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(e) => {
            tracing::warn!("SIGHUP will not reload the configuration: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            () = drain.cancelled() => return,
            received = hangup.recv() => if received.is_none() { return },
        }
        match reload() {
            Ok(config) => {
                what.limits.reload(&config.limits);
                tracing::info!(limits = ?config.limits, "SIGHUP: rate limits reloaded (other settings than limits and the HTTPS files need a restart)");
            }
            Err(e) => tracing::error!("SIGHUP: the configuration was not reloaded: {e}"),
        }
        if let Some(tls) = &what.tls {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: HTTPS certificate reloaded"),
                Err(e) => tracing::error!("SIGHUP: keeping the previous HTTPS certificate: {e}"),
            }
        }
    }
}

/// Drops idle rate-limit buckets every [`HOUSEKEEPING_INTERVAL`] until `drain`.
pub async fn housekeep_limits(limits: Arc<Limits>, drain: CancellationToken) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = drain.cancelled() => return,
            _ = tick.tick() => limits.housekeep(),
        }
    }
}
