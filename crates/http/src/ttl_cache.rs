//! A bounded map of recent answers with their age, for mutable upstream answers (`list`,
//! `@latest`, version queries) and remembered "not found" results: a `moka` cache (bounded,
//! concurrent, evicting without a full scan) whose values remember when they were stored, so
//! callers can tell fresh from stale.

use std::time::{Duration, Instant};

/// A value and when it was stored.
#[derive(Debug, Clone)]
pub struct Aged<V> {
    /// The stored value.
    pub value: V,
    /// When it was stored.
    pub stored: Instant,
}

impl<V> Aged<V> {
    /// Time since the value was stored.
    pub fn age(&self) -> Duration {
        self.stored.elapsed()
    }
}

/// Bounded map; values older than `max_age` are never returned.
pub struct TtlCache<V> {
    entries: moka::sync::Cache<String, Aged<V>>,
}

impl<V: Clone + Send + Sync + 'static> TtlCache<V> {
    /// A cache keeping at most `capacity` entries for at most `max_age`.
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity.max(1) as u64)
                .time_to_live(max_age)
                .build(),
        }
    }

    /// A cache holding at most `max_weight` in total, each entry weighing `weigh(key, value)`
    /// (bytes, say), for at most `max_age`.
    pub fn weighted(max_weight: u64, max_age: Duration, weigh: fn(&str, &V) -> u32) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_weight.max(1))
                .weigher(move |key: &String, aged: &Aged<V>| weigh(key, &aged.value))
                .time_to_live(max_age)
                .build(),
        }
    }

    /// The entry for `key`, if younger than the cache's maximum age.
    pub fn get(&self, key: &str) -> Option<Aged<V>> {
        self.entries.get(key)
    }

    /// Stores `value` under `key` (the least useful entry goes when full).
    pub fn insert(&self, key: String, value: V) {
        let stored = Instant::now();
        self.entries.insert(key, Aged { value, stored });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_bounded() {
        let cache = TtlCache::new(2, Duration::from_secs(60));
        for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
            cache.insert(key.into(), i);
        }
        cache.entries.run_pending_tasks();
        assert!(cache.entries.entry_count() <= 2);
        let kept = ["a", "b", "c", "d"]
            .into_iter()
            .filter_map(|k| cache.get(k))
            .count();
        assert!(kept <= 2, "{kept} kept");
    }

    #[test]
    fn expired_entries_are_not_returned_and_ages_grow() {
        let cache = TtlCache::new(4, Duration::from_millis(20));
        cache.insert("a".into(), 1);
        let fresh = cache.get("a").unwrap();
        assert_eq!(fresh.value, 1);
        assert!(fresh.age() < Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("a").is_none());
    }
}
