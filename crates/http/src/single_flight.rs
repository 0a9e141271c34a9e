//! Single-flight execution: concurrent callers for one key share one run.
//!
//! The work runs in its own task, so a caller that goes away (a client disconnect)
//! neither cancels the shared work nor wastes what it already fetched.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use futures::future::{BoxFuture, FutureExt, Shared};

type SharedRun<V> = Shared<BoxFuture<'static, V>>;

/// Deduplicates concurrent work by key.
pub struct SingleFlight<K, V: Clone> {
    inflight: Mutex<HashMap<K, SharedRun<V>>>,
}

impl<K, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Runs `work` for `key` unless a run is already in flight, then waits for the result.
    /// `on_panic` turns a panicked run into a value every waiter receives.
    pub async fn run<F>(&self, key: K, work: F, on_panic: fn() -> V) -> V
    where
        F: Future<Output = V> + Send + 'static,
    {
        let run = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match inflight.get(&key) {
                Some(run) => run.clone(),
                None => {
                    let task = tokio::spawn(work);
                    let run = async move { task.await.unwrap_or_else(|_| on_panic()) }
                        .boxed()
                        .shared();
                    inflight.insert(key.clone(), run.clone());
                    run
                }
            }
        };
        let value = run.clone().await;
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if inflight
            .get(&key)
            .is_some_and(|current| current.ptr_eq(&run))
        {
            inflight.remove(&key);
        }
        value
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

    #[tokio::test]
    async fn a_panicking_run_yields_the_fallback_value() {
        let flights = SingleFlight::<u8, &'static str>::default();
        let value = flights
            .run(1, async { panic!("boom") }, || "panicked")
            .await;
        assert_eq!(value, "panicked");
    }
}
