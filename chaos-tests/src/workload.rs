//! The workload: client threads in the lab's client namespace request artifacts through the
//! VIP, each on a new connection, a mix of fills (versions never requested before) and hits
//! (versions already acknowledged). Every response is recorded; a `200` is an acknowledgement,
//! kept with the sha256 of its body.
//!
//! Bounded: each worker stops at the stop flag, after `max_requests`, or after `max_time`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use goproxy_lab::netns::Netns;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// One response (or failure) seen by the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Request path.
    pub path: String,
    /// When it started and ended (offsets from the workload's epoch).
    pub started: Duration,
    /// When it ended.
    pub finished: Duration,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// sha256 of the body of a `200`.
    pub sha256: Option<String>,
    /// Whether the path had never been requested before (a fill).
    pub fill: bool,
}

impl Read {
    /// A `200` with its body: the proxy acknowledged this artifact.
    pub fn acknowledged(&self) -> bool {
        self.status == Some(200) && self.sha256.is_some()
    }
}

/// How the workload behaves.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    /// The VIP's front end.
    pub target: SocketAddr,
    /// Client threads.
    pub workers: usize,
    /// Pause between one worker's requests.
    pub pace: Duration,
    /// Share of requests that ask for a never-requested artifact.
    pub fill_share: f64,
    /// Bound on one request.
    pub timeout: Duration,
    /// Bound on requests per worker.
    pub max_requests: usize,
    /// Bound on the workload's duration.
    pub max_time: Duration,
}

/// Which artifacts are still unrequested and which were acknowledged (shared across scenarios
/// so later scenarios hit what earlier ones filled).
#[derive(Debug, Default)]
pub struct Pools {
    fresh: Vec<String>,
    acked: Vec<String>,
}

impl Pools {
    /// Every artifact starts unrequested, in a seeded order.
    pub fn new(mut artifacts: Vec<String>, rng: &mut impl Rng) -> Pools {
        artifacts.shuffle(rng);
        Pools {
            fresh: artifacts,
            acked: Vec::new(),
        }
    }

    fn pick(&mut self, fill: bool, rng: &mut impl Rng) -> Option<(String, bool)> {
        if (fill || self.acked.is_empty()) && !self.fresh.is_empty() {
            return self.fresh.pop().map(|p| (p, true));
        }
        if self.acked.is_empty() {
            return None;
        }
        let i = rng.random_range(0..self.acked.len());
        Some((self.acked[i].clone(), false))
    }

    fn acknowledge(&mut self, path: &str, fill: bool) {
        if fill {
            self.acked.push(path.to_string());
        }
    }

    /// A fill that failed goes back to the unrequested pool (a later scenario retries it).
    fn give_back(&mut self, path: String) {
        self.fresh.insert(0, path);
    }

    /// Artifacts not requested yet.
    pub fn fresh_left(&self) -> usize {
        self.fresh.len()
    }
}

/// A running workload.
pub struct Workload {
    stop: Arc<AtomicBool>,
    reads: Arc<Mutex<Vec<Read>>>,
    workers: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts `spec.workers` threads in `client`, seeded from `seed`.
    pub fn start(
        client: &Netns,
        spec: &WorkloadSpec,
        pools: Arc<Mutex<Pools>>,
        seed: u64,
        epoch: Instant,
    ) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(Mutex::new(Vec::new()));
        let workers = (0..spec.workers)
            .map(|w| {
                let (client, spec, pools) = (client.clone(), spec.clone(), pools.clone());
                let (stop, reads) = (stop.clone(), reads.clone());
                let rng = StdRng::seed_from_u64(seed.wrapping_add(w as u64));
                std::thread::spawn(move || {
                    if let Err(e) = worker(&client, &spec, &pools, &stop, &reads, rng, epoch) {
                        eprintln!("chaos workload worker {w}: {e:#}");
                    }
                })
            })
            .collect();
        Workload {
            stop,
            reads,
            workers,
        }
    }

    /// Stops every worker and returns what they saw, by start time.
    pub fn stop(self) -> Vec<Read> {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers {
            let _ = worker.join();
        }
        let mut reads = std::mem::take(&mut *lock(&self.reads));
        reads.sort_by_key(|r| r.started);
        reads
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn worker(
    client: &Netns,
    spec: &WorkloadSpec,
    pools: &Mutex<Pools>,
    stop: &AtomicBool,
    reads: &Mutex<Vec<Read>>,
    mut rng: StdRng,
    epoch: Instant,
) -> anyhow::Result<()> {
    client.enter()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::builder()
        .timeout(spec.timeout)
        .pool_max_idle_per_host(0)
        .build()?;
    let started = Instant::now();
    for _ in 0..spec.max_requests {
        if stop.load(Ordering::SeqCst) || started.elapsed() > spec.max_time {
            break;
        }
        let fill = rng.random_bool(spec.fill_share);
        let Some((path, fill)) = lock(pools).pick(fill, &mut rng) else {
            break;
        };
        let url = format!("http://{}{path}", spec.target);
        let begun = epoch.elapsed();
        let (status, sha256) = runtime.block_on(async {
            match http.get(&url).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Ok(body) if status == 200 => {
                            (Some(status), Some(hex::encode(Sha256::digest(&body))))
                        }
                        Ok(_) => (Some(status), None),
                        Err(_) => (None, None),
                    }
                }
                Err(_) => (None, None),
            }
        });
        let read = Read {
            path: path.clone(),
            started: begun,
            finished: epoch.elapsed(),
            status,
            sha256,
            fill,
        };
        {
            let mut pools = lock(pools);
            if read.acknowledged() {
                pools.acknowledge(&path, fill);
            } else if fill {
                pools.give_back(path);
            }
        }
        lock(reads).push(read);
        std::thread::sleep(spec.pace);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_come_first_then_hits_repeat_acknowledged_paths() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut pools = Pools::new(vec!["/a".into(), "/b".into()], &mut rng);
        let (first, fill) = pools.pick(false, &mut rng).unwrap();
        assert!(fill, "nothing acknowledged yet: a fill");
        pools.acknowledge(&first, true);
        let (hit, fill) = pools.pick(false, &mut rng).unwrap();
        assert_eq!((hit.as_str(), fill), (first.as_str(), false));
        let (second, fill) = pools.pick(true, &mut rng).unwrap();
        assert!(fill && second != first);
        pools.give_back(second.clone());
        assert_eq!(pools.fresh_left(), 1);
        assert_eq!(pools.pick(true, &mut rng).unwrap().0, second);
        assert_eq!(pools.pick(true, &mut rng).unwrap(), (first, false));
    }
}
