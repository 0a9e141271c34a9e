//! Single-flight execution: concurrent callers for one key share one run.
//!
//! The work runs in its own task, so a caller that goes away (a client disconnect)
//! neither cancels the shared work nor wastes what it already fetched.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared};

type SharedRun<V> = Shared<BoxFuture<'static, V>>;
type Runs<K, V> = Arc<Mutex<HashMap<K, (u64, SharedRun<V>)>>>;

/// Deduplicates concurrent work by key.
pub struct SingleFlight<K, V: Clone> {
    inflight: Runs<K, V>,
    next: AtomicU64,
}

impl<K, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            inflight: Arc::new(Mutex::new(HashMap::new())),
            next: AtomicU64::new(0),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Runs `work` for `key` unless a run is already in flight, then waits for the result.
    /// `on_panic` turns a panicked run into a value every waiter receives. The run removes
    /// itself when it ends, whether or not anyone still waits for it: a caller that went
    /// away leaves nothing behind, and a later caller starts a new run.
    pub async fn run<F>(&self, key: K, work: F, on_panic: fn() -> V) -> V
    where
        F: Future<Output = V> + Send + 'static,
    {
        let run = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match inflight.get(&key) {
                Some((_, run)) => run.clone(),
                None => {
                    let id = self.next.fetch_add(1, Ordering::Relaxed);
                    let (runs, owned) = (self.inflight.clone(), key.clone());
                    // The removal below waits for this lock, so it cannot run before the
                    // insert that follows.
                    let task = tokio::spawn(async move {
                        let value = AssertUnwindSafe(work)
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|_| on_panic());
                        let mut inflight = runs.lock().unwrap_or_else(|p| p.into_inner());
                        if inflight
                            .get(&owned)
                            .is_some_and(|(current, _)| *current == id)
                        {
                            inflight.remove(&owned);
                        }
                        value
                    });
                    let run = async move { task.await.unwrap_or_else(|_| on_panic()) }
                        .boxed()
                        .shared();
                    inflight.insert(key, (id, run.clone()));
                    run
                }
            }
        };
        run.await
    }

    /// Number of runs in flight (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flights = Arc::new(SingleFlight::<&str, usize>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut waiters = Vec::new();
        for _ in 0..16 {
            let (flights, runs) = (flights.clone(), runs.clone());
            waiters.push(tokio::spawn(async move {
                let work = async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    runs.fetch_add(1, Ordering::SeqCst) + 1
                };
                flights.run("k", work, || 0).await
            }));
        }
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), 1);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0);
    }

    /// Review finding: callers that disconnect mid-run left their entry (and its result)
    /// in the map for good, and a much later caller got that old result.
    #[tokio::test]
    async fn runs_whose_callers_went_away_leave_nothing_behind() {
        let flights = Arc::new(SingleFlight::<u32, u32>::default());
        let mut callers = Vec::new();
        for key in 0..200u32 {
            let flights = flights.clone();
            callers.push(tokio::spawn(async move {
                let work = async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    key
                };
                flights.run(key, work, || 0).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        for caller in callers {
            caller.abort();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while flights.in_flight() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} runs left",
                flights.in_flight()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let fresh = flights.run(7, async { 700 }, || 0).await;
        assert_eq!(fresh, 700, "a finished run's result was served again");
    }

    #[tokio::test]
    async fn a_panicking_run_yields_the_fallback_value() {
        let flights = SingleFlight::<u8, &'static str>::default();
        let value = flights
            .run(1, async { panic!("boom") }, || "panicked")
            .await;
        assert_eq!(value, "panicked");
    }
}
