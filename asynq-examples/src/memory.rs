//! An in-memory key-value store with `get_multi` semantics, counting its calls.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asynq_core::DataSource;

/// A key-value store held in memory, answering `get_multi` like memcached would.
///
/// Every call and every key asked is counted, so that a program can print the round trips it
/// made. An optional fixed latency per call (a blocking sleep) imitates a remote store.
///
/// # Examples
///
/// ```
/// use asynq_examples::memory::MemoryStore;
///
/// let store = MemoryStore::from_pairs([("a", "1"), ("b", "2")]);
/// let got = store.get_multi(&["a".to_string(), "zz".to_string()]);
/// assert_eq!(got, vec![("a".to_string(), "1".to_string())]);
/// assert_eq!((store.calls(), store.keys()), (1, 2));
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: HashMap<String, String>,
    latency: Option<Duration>,
    calls: AtomicUsize,
    keys: AtomicUsize,
}

impl MemoryStore {
    /// A store holding `pairs`.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        MemoryStore {
            map: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            ..Default::default()
        }
    }

    /// The same store, sleeping `latency` in every call.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency).filter(|l| !l.is_zero());
        self
    }

    /// One round trip: the values of the keys present, in the order asked.
    pub fn get_multi(&self, keys: &[String]) -> Vec<(String, String)> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.keys.fetch_add(keys.len(), Ordering::Relaxed);
        if let Some(latency) = self.latency {
            std::thread::sleep(latency);
        }
        keys.iter()
            .filter_map(|k| self.map.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// One value, borrowed, without counting a call (for building pages from primed maps).
    pub fn peek(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Calls of `get_multi` so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Keys asked for so far, over all calls.
    pub fn keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// Start counting from zero again.
    pub fn reset_counters(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.keys.store(0, Ordering::Relaxed);
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl DataSource for MemoryStore {
    type Key = String;
    type Value = String;
    type Error = Infallible;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, Infallible> {
        Ok(self.get_multi(keys))
    }

    fn name(&self) -> &str {
        "memory"
    }
}

impl crate::kv::KvStore for MemoryStore {
    type Error = Infallible;

    fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, Infallible> {
        Ok(MemoryStore::get_multi(self, keys))
    }

    fn round_trips(&self) -> usize {
        self.calls()
    }

    fn keys_sent(&self) -> usize {
        self.keys()
    }
}
