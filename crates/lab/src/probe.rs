//! The client: from inside the client namespace, one HTTP request on a new TCP connection
//! every interval, on a fixed schedule (a slow request never delays the next one), each
//! recorded with when it started, when it ended and whether it got a `200`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::analysis::ProbeRecord;
use crate::netns::Netns;

/// What to probe and how often.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// The address requests go to (the VIP and port).
    pub target: SocketAddr,
    /// Request path, e.g. `/github.com/gin-gonic/gin/@v/v1.8.1.info`.
    pub path: String,
    /// Time between request starts.
    pub interval: Duration,
    /// Bound on one request (connect, send, read the whole answer).
    pub timeout: Duration,
}

/// A running prober; its records are shared so a benchmark can watch recovery live.
pub struct Prober {
    stop: Arc<AtomicBool>,
    records: Arc<Mutex<Vec<ProbeRecord>>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Prober {
    /// Starts probing from inside `client`; times are offsets from `epoch`.
    pub fn start(client: &Netns, spec: ProbeSpec, epoch: Instant) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let records = Arc::new(Mutex::new(Vec::new()));
        let (client, thread_stop, sink) = (client.clone(), stop.clone(), records.clone());
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            client.enter()?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(run(spec, epoch, thread_stop, sink));
            Ok(())
        });
        Prober {
            stop,
            records,
            thread: Some(thread),
        }
    }

    /// A copy of every record whose request started at or after `from`.
    pub fn since(&self, from: Duration) -> Vec<ProbeRecord> {
        let records = self.records.lock().expect("probe records");
        let first = records.partition_point(|r| r.started < from);
        records[first..].to_vec()
    }

    /// Stops probing (waiting out requests in flight) and returns every record.
    pub fn stop(mut self) -> anyhow::Result<Vec<ProbeRecord>> {
        self.halt()?;
        let records = std::mem::take(&mut *self.records.lock().expect("probe records"));
        Ok(records)
    }

    fn halt(&mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("prober panicked"))??;
        }
        Ok(())
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

async fn run(
    spec: ProbeSpec,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    sink: Arc<Mutex<Vec<ProbeRecord>>>,
) {
    let request = Arc::new(format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: goproxy-lab-probe\r\nConnection: close\r\n\r\n",
        spec.path, spec.target
    ));
    let mut ticks = tokio::time::interval(spec.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut in_flight = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let (request, sink, target, timeout) =
            (request.clone(), sink.clone(), spec.target, spec.timeout);
        in_flight.spawn(async move {
            let started = epoch.elapsed();
            let ok = tokio::time::timeout(timeout, get(target, &request))
                .await
                .unwrap_or(false);
            let finished = epoch.elapsed();
            let mut records = sink.lock().expect("probe records");
            // Keep the vector ordered by start time: late finishers go back to their place.
            let at = records.partition_point(|r| r.started <= started);
            records.insert(
                at,
                ProbeRecord {
                    started,
                    finished,
                    ok,
                },
            );
        });
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

/// One request on a fresh connection; true when the answer's status is 200.
async fn get(target: SocketAddr, request: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(target).await else {
        return false;
    };
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    if stream.read_to_end(&mut answer).await.is_err() {
        return false;
    }
    answer.starts_with(b"HTTP/1.1 200 ")
}
