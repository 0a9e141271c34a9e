//! An HTTP server on `127.0.0.1:0` running on its own thread and runtime, stoppable: the
//! corpus as a static GOPROXY tree, or any router (hostile or failing upstreams).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// How long the server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server; stopped on drop.
pub struct HttpServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `dir` as a static GOPROXY tree.
    pub fn serve_dir(dir: &Path) -> Self {
        Self::serve(axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir)))
    }

    /// Serves an arbitrary router.
    pub fn serve(router: axum::Router) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        Self::serve_on(listener, router)
    }

    /// Serves `router` on an already bound listener (one bound in a network namespace, say).
    pub fn serve_on(listener: std::net::TcpListener, router: axum::Router) -> Self {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx.recv_timeout(START_TIMEOUT).expect("server start");
        Self {
            url: format!("http://{addr}"),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stops serving; later connections are refused.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
