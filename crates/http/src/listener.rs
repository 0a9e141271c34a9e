//! The client-facing HTTP listener: accept loop, connection cap, optional HTTPS, header and
//! idle timeouts, graceful drain.
//!
//! axum's `serve` has no limits, so a client could hold a connection forever with a partial
//! request head (slowloris) or a silent keep-alive, and enough of them exhaust the node's file
//! descriptors until `/healthz` stops answering. Here every connection:
//! - counts against `max_connections`, and against `max_connections_per_client` for its
//!   client address; beyond either a connection is answered `503` and closed at once (so
//!   accepting never stalls and the descriptor is released; over HTTPS it is just closed, a
//!   plaintext answer being useless to a TLS client);
//! - with HTTPS ([`ServerTls`]), must complete its TLS handshake within
//!   `header_read_timeout`, or is closed (counted as a failed handshake). The handshake runs
//!   in the connection's own task, so slow handshakes never stall accepting. The timeouts
//!   below then apply to the decrypted stream, i.e. to the HTTP request heads;
//! - must deliver a complete request head within `header_read_timeout` of its first byte, or
//!   is answered `408` and closed ([`conn`]);
//! - is closed after `idle_timeout` without a request in flight, and when a response makes no
//!   progress (the client stopped reading) for `idle_timeout`.
//!
//! Malformed heads get hyper's `400` (`431` for oversized ones). On shutdown the listener
//! closes, handshakes in progress are abandoned and connections drain gracefully.
//!
//! The HTTPS certificate and key are reloadable: [`ServerTls::reload`] reads the files again
//! and new handshakes use them, while open connections keep theirs; a bad file leaves the old
//! certificate in use ([`tls`]).
//!
//! HTTP/1.1 only, over TLS too (ALPN offers only `http/1.1`): the go command speaks HTTP/1.1
//! to an `http://` proxy, and HTTP/2 (h2c, or h2 over TLS) would let a client hold hundreds
//! of streams per connection, each an open blob file, stalled by a zero flow-control window
//! that never blocks the socket (so no write timeout sees it).

mod conn;
mod tls;
mod tracked;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use conn::{Activity, TimedIo};
use prometheus_client::registry::Registry;
pub use tls::{ServerTls, TlsError, TlsFiles};
pub use tracked::ClientAddr;
use tracked::Tracked;

/// Limits of the client listener (`[http]` in the node's configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerConfig {
    /// Time a client has, from the first byte of a request, to send the whole request head.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection with no request in flight, or whose response has made no progress, is
    /// closed after this long.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most client connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Most connections open at once from one client address, so that one client cannot
    /// take every slot; more are answered 503 and closed.
    pub max_connections_per_client: usize,
    /// HTTPS: the certificate chain and key files (`[http.tls]`; re-read on SIGHUP). None:
    /// plain HTTP, for a trusted network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_connections_per_client: 1024,
            tls: None,
        }
    }
}

impl ListenerConfig {
    /// Every problem with these limits.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                problems.push(format!("{name}: must be greater than zero"));
            }
        }
        if self.max_connections == 0 {
            problems.push("max_connections: must be at least 1".into());
        }
        if self.max_connections_per_client == 0
            || self.max_connections_per_client > self.max_connections
        {
            problems
                .push("max_connections_per_client: must be between 1 and max_connections".into());
        }
        problems
    }
}

/// How long a connection refused for the cap may take to be told so.
const REJECT_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after an accept error (e.g. out of descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Counters of the listener.
#[derive(Clone, Default)]
pub struct ListenerMetrics {
    open: Gauge,
    rejected: Counter,
    header_timeouts: Counter,
    idle_closed: Counter,
    tls_handshake_failures: Counter,
}

impl ListenerMetrics {
    /// Creates the listener's metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self::default();
        {
            registry.register(
                "http_connections_open",
                "Client connections open now",
                this.open.clone(),
            );
            registry.register(
                "http_connections_rejected",
                "Client connections answered 503 because max_connections were open",
                this.rejected.clone(),
            );
            registry.register(
                "http_header_timeouts",
                "Connections answered 408: no complete request head within header_read_timeout",
                this.header_timeouts.clone(),
            );
            registry.register(
                "http_idle_closed",
                "Connections closed after idle_timeout without a request or progress",
                this.idle_closed.clone(),
            );
            registry.register(
                "http_tls_handshake_failures",
                "HTTPS connections closed because their TLS handshake failed or did not \
                 complete within header_read_timeout",
                this.tls_handshake_failures.clone(),
            );
        }
        this
    }
}

/// Open connections by client address.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

impl PerClient {
    /// Counts a connection from `ip` unless it already has `max`.
    fn admit(&self, ip: IpAddr, max: usize) -> bool {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= max {
            return false;
        }
        *count += 1;
        true
    }

    fn release(&self, ip: IpAddr) {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits for
/// open connections to finish (the caller bounds that wait).
///
/// With `tls`, the listener speaks HTTPS only (a plaintext client fails its handshake and is
/// closed); its certificate can be replaced meanwhile with [`ServerTls::reload`] on a clone.
/// Without, it speaks plaintext HTTP.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<ServerTls>,
    limits: ListenerConfig,
    counters: ListenerMetrics,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = Arc::new(PerClient::default());
    let graceful = GracefulShutdown::new();
    // Handshakes in progress when the listener stops are abandoned, not waited for.
    let stopping = CancellationToken::new();
    let mut builder = http1::Builder::new();
    // No hyper timer: the head timeout is ours (it answers 408 instead of just closing).
    builder.keep_alive(true);
    let builder = Arc::new(builder);
    let handshake_timeout = limits.header_read_timeout;
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accepting a client connection: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Small answers (.info, .mod) are written as headers then body; without NODELAY,
        // Nagle's algorithm and delayed ACKs add ~40 ms to each of them.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            counters.rejected.inc();
            reject(tcp, tls.is_some());
            continue;
        };
        let client = peer.ip();
        if !per_client.admit(client, limits.max_connections_per_client) {
            counters.rejected.inc();
            reject(tcp, tls.is_some());
            continue;
        }
        let connection = Connection {
            router: router.clone(),
            builder: builder.clone(),
            limits: limits.clone(),
            counters: counters.clone(),
            watcher: graceful.watcher(),
            client,
        };
        let acceptor = tls.as_ref().map(ServerTls::acceptor);
        let (counters, per_client, stopping) =
            (counters.clone(), per_client.clone(), stopping.clone());
        counters.open.inc();
        tokio::spawn(async move {
            match acceptor {
                None => connection.serve(tcp).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(tcp));
                    let handshake = tokio::select! {
                        () = stopping.cancelled() => None,
                        done = handshake => Some(done),
                    };
                    match handshake {
                        None => {}
                        Some(Ok(Ok(stream))) => connection.serve(stream).await,
                        Some(Ok(Err(e))) => {
                            counters.tls_handshake_failures.inc();
                            tracing::debug!(%client, "TLS handshake failed: {e}");
                        }
                        Some(Err(_)) => {
                            counters.tls_handshake_failures.inc();
                            tracing::debug!(%client, "TLS handshake not done within header_read_timeout");
                        }
                    }
                }
            }
            counters.open.dec();
            per_client.release(client);
            drop(permit);
        });
    }
    drop(listener);
    stopping.cancel();
    graceful.shutdown().await;
}

/// What serving one admitted connection needs, moved into its task.
struct Connection {
    router: Router,
    builder: Arc<http1::Builder>,
    limits: Arc<ListenerConfig>,
    counters: ListenerMetrics,
    watcher: Watcher,
    client: IpAddr,
}

impl Connection {
    /// Serves HTTP/1.1 on `stream` (TCP, or TLS over it) under the connection's timeouts.
    async fn serve<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::default());
        let io = TimedIo::new(stream, activity.clone(), self.limits);
        let service =
            TowerToHyperService::new(Tracked::new(self.router, activity.clone(), self.client));
        let connection = self.builder.serve_connection(TokioIo::new(io), service);
        if let Err(e) = self.watcher.watch(connection).await {
            tracing::debug!("client connection ended: {e}");
        }
        match activity.closed_by() {
            Some(conn::Closed::HeaderTimeout) => self.counters.header_timeouts.inc(),
            Some(conn::Closed::Idle) => self.counters.idle_closed.inc(),
            None => 0,
        };
    }
}

/// Refuses a connection over the cap: plaintext gets a 503 (written in its own task, so
/// accepting never waits); over HTTPS the connection is just closed, since a plaintext answer
/// means nothing to a TLS client and a handshake would cost what the cap is there to save.
fn reject(tcp: TcpStream, tls: bool) {
    if !tls {
        tokio::spawn(answer_unavailable(tcp));
    }
}

/// Answers a connection over the cap with 503 and closes it.
async fn answer_unavailable(mut tcp: TcpStream) {
    const BODY: &str = "too many connections to this node; retry shortly\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n\
         Cache-Control: no-store\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let write = async {
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await
    };
    let _ = tokio::time::timeout(REJECT_WRITE_TIMEOUT, write).await;
}
