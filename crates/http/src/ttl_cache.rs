//! A small bounded map of recent answers with their age, for mutable upstream answers
//! (`list`, `@latest`, version queries) and remembered "not found" results.

use std::collections::HashMap;
use std::sync::Mutex;
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
#[derive(Debug)]
pub struct TtlCache<V> {
    entries: Mutex<HashMap<String, Aged<V>>>,
    capacity: usize,
    max_age: Duration,
}

impl<V: Clone> TtlCache<V> {
    /// A cache keeping at most `capacity` entries for at most `max_age`.
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            max_age,
        }
    }

    /// The entry for `key`, if younger than the cache's maximum age.
    pub fn get(&self, key: &str) -> Option<Aged<V>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|aged| aged.age() <= self.max_age)
            .cloned()
    }

    /// Stores `value` under `key`, evicting expired (then the oldest) entries when full.
    pub fn insert(&self, key: String, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, aged| aged.age() <= self.max_age);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, aged)| aged.stored)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        let stored = Instant::now();
        entries.insert(key, Aged { value, stored });
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_bounded_and_oldest_goes_first() {
        let cache = TtlCache::new(2, Duration::from_secs(60));
        cache.insert("a".into(), 1);
        std::thread::sleep(Duration::from_millis(2));
        cache.insert("b".into(), 2);
        cache.insert("c".into(), 3);
        assert!(cache.get("a").is_none());
        assert_eq!(cache.get("b").unwrap().value, 2);
        assert_eq!(cache.get("c").unwrap().value, 3);
    }

    #[test]
    fn expired_entries_are_not_returned() {
        let cache = TtlCache::new(4, Duration::from_millis(1));
        cache.insert("a".into(), 1);
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get("a").is_none());
    }
}
