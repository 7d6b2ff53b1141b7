//! Unit tests of [`Cached`] over an in-memory cache whose background tasks run when the test
//! says, and an origin that counts its calls. The tests over real memcached and Redis servers
//! are in the workspace's `tests/` crate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use asynq_core::DataSource;
use futures::executor::block_on;

use super::{ABSENT, Cached, CachedError};
use crate::cache::{Background, Cache, CodecError, Entry, StoreMode, Utf8};

/// Why the test cache failed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("test cache is down")
    }
}

impl std::error::Error for Down {}

#[derive(Default)]
struct MemCache {
    entries: Mutex<HashMap<String, Vec<u8>>>,
    down: Mutex<bool>,
    tasks: Mutex<Vec<Background>>,
    gets: Mutex<usize>,
}

impl std::fmt::Debug for MemCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemCache").finish_non_exhaustive()
    }
}

impl MemCache {
    /// Run the background tasks spawned so far.
    fn run_tasks(&self) {
        let tasks: Vec<Background> = std::mem::take(&mut *self.tasks.lock().unwrap());
        for task in tasks {
            block_on(task);
        }
    }

    fn set_down(&self, down: bool) {
        *self.down.lock().unwrap() = down;
    }

    fn put(&self, key: &str, value: &[u8]) {
        self.entries
            .lock()
            .unwrap()
            .insert(key.into(), value.to_vec());
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.entries.lock().unwrap().get(key).cloned()
    }
}

impl Cache for MemCache {
    type Error = Down;

    fn name(&self) -> &str {
        "mem"
    }

    fn max_key_len(&self) -> usize {
        40
    }

    fn max_value_len(&self) -> usize {
        100
    }

    fn get_many(
        &self,
        keys: Vec<String>,
    ) -> impl Future<Output = Vec<Result<Option<Vec<u8>>, Down>>> + Send + use<> {
        *self.gets.lock().unwrap() += 1;
        let down = *self.down.lock().unwrap();
        let entries = self.entries.lock().unwrap();
        let out: Vec<_> = keys
            .iter()
            .map(|k| {
                if down {
                    Err(Down)
                } else {
                    Ok(entries.get(k).cloned())
                }
            })
            .collect();
        async move { out }
    }

    fn store_many(
        &self,
        entries: Vec<Entry>,
        mode: StoreMode,
    ) -> impl Future<Output = Result<(), Down>> + Send + use<> {
        let result = if *self.down.lock().unwrap() {
            Err(Down)
        } else {
            let mut map = self.entries.lock().unwrap();
            for e in entries {
                if mode == StoreMode::Set || !map.contains_key(&e.key) {
                    map.insert(e.key, e.value);
                }
            }
            Ok(())
        };
        async move { result }
    }

    fn delete_many(
        &self,
        keys: Vec<String>,
    ) -> impl Future<Output = Result<(), Down>> + Send + use<> {
        let result = if *self.down.lock().unwrap() {
            Err(Down)
        } else {
            let mut map = self.entries.lock().unwrap();
            keys.iter().for_each(|k| drop(map.remove(k)));
            Ok(())
        };
        async move { result }
    }

    fn decode_error(&self, _key: &str, _error: CodecError) -> Down {
        Down
    }

    fn spawn(&self, task: Background) {
        self.tasks.lock().unwrap().push(task);
    }
}

/// The origin: rows by key; the key `bad` fails on its own; counts calls and keys.
#[derive(Debug, Default)]
struct Origin {
    rows: Mutex<HashMap<String, String>>,
    calls: Mutex<Vec<Vec<String>>>,
}

impl Origin {
    fn with(rows: &[(&str, &str)]) -> Origin {
        let origin = Origin::default();
        for (k, v) in rows {
            origin
                .rows
                .lock()
                .unwrap()
                .insert(k.to_string(), v.to_string());
        }
        origin
    }

    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }
}

impl DataSource for Origin {
    type Key = String;
    type Value = String;
    type Error = String;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, String> {
        self.fetch_each(keys)
            .await?
            .into_iter()
            .map(|(k, v)| Ok((k, v?)))
            .collect()
    }

    async fn fetch_each(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, Result<String, String>)>, String> {
        self.calls.lock().unwrap().push(keys.to_vec());
        let rows = self.rows.lock().unwrap();
        Ok(keys
            .iter()
            .filter_map(|k| match k.as_str() {
                "bad" => Some((k.clone(), Err("row bad is corrupt".to_string()))),
                _ => rows.get(k).map(|v| (k.clone(), Ok(v.clone()))),
            })
            .collect())
    }

    fn name(&self) -> &str {
        "rows"
    }
}

type Source = Cached<MemCache, Origin, Utf8>;

fn source(rows: &[(&str, &str)]) -> Source {
    Cached::new(MemCache::default(), Origin::with(rows), Utf8)
}

fn keys(ks: &[&str]) -> Vec<String> {
    ks.iter().map(|k| k.to_string()).collect()
}

/// One round: each answered key with its value or error text, in order.
fn round(s: &Source, ks: &[&str]) -> Vec<(String, Result<String, String>)> {
    block_on(s.fetch_each(&keys(ks)))
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.map_err(|e| e.to_string())))
        .collect()
}

fn ok(k: &str, v: &str) -> (String, Result<String, String>) {
    (k.to_string(), Ok(v.to_string()))
}

#[test]
fn a_cold_round_makes_one_cache_call_and_one_origin_call_and_a_warm_one_no_origin_call() {
    let s = source(&[("a", "1"), ("b", "2"), ("c", "3")]);
    assert_eq!(
        round(&s, &["a", "b", "c", "d"]),
        [ok("a", "1"), ok("b", "2"), ok("c", "3")]
    );
    assert_eq!(s.origin().calls(), [keys(&["a", "b", "c", "d"])]);
    let st = s.stats();
    assert_eq!((st.cache_calls, st.cache_hits, st.cache_misses), (1, 0, 4));
    assert_eq!(
        (st.origin_calls, st.origin_keys, st.written_back),
        (1, 4, 0)
    );
    assert_eq!(
        s.cache().get("rows:a"),
        None,
        "written back in the background"
    );
    s.cache().run_tasks();
    block_on(s.write_backs_done());
    assert_eq!(s.stats().written_back, 3);
    assert_eq!(s.cache().get("rows:a").as_deref(), Some(&b"1"[..]));
    assert_eq!(
        s.cache().get("rows:d"),
        None,
        "no negative caching unless asked"
    );

    assert_eq!(
        round(&s, &["a", "b", "c"]),
        [ok("a", "1"), ok("b", "2"), ok("c", "3")]
    );
    assert_eq!(
        s.origin().calls().len(),
        1,
        "a warm round makes no origin call"
    );
    let st = s.stats();
    assert_eq!((st.cache_calls, st.cache_hits, st.origin_calls), (2, 3, 1));
}

#[test]
fn a_cache_that_is_down_degrades_to_the_origin_once_counted() {
    let s = source(&[("a", "1"), ("b", "2")]);
    s.cache().set_down(true);
    for _ in 0..3 {
        assert_eq!(round(&s, &["a", "b"]), [ok("a", "1"), ok("b", "2")]);
    }
    s.cache().run_tasks();
    let st = s.stats();
    assert_eq!((st.outages, st.cache_errors, st.origin_calls), (1, 6, 3));
    assert_eq!(
        st.written_back + st.not_written_back,
        0,
        "no write-back to a failed cache"
    );
    s.cache().set_down(false);
    assert_eq!(round(&s, &["a"]), [ok("a", "1")]);
    s.cache().run_tasks();
    assert_eq!(s.cache().get("rows:a").as_deref(), Some(&b"1"[..]));
    s.cache().set_down(true);
    round(&s, &["b"]);
    assert_eq!(s.stats().outages, 2, "a new outage is counted again");
}

#[test]
fn invalidation_deletes_and_drops_the_write_back_of_a_read_in_flight() {
    let s = source(&[("a", "old")]);
    round(&s, &["a"]);
    s.cache().run_tasks();
    assert_eq!(round(&s, &["a"]), [ok("a", "old")]);
    // The row changes; the application invalidates it.
    s.origin()
        .rows
        .lock()
        .unwrap()
        .insert("a".into(), "new".into());
    block_on(s.invalidate(&keys(&["a"]))).unwrap();
    assert_eq!(s.cache().get("rows:a"), None);
    assert_eq!(round(&s, &["a"]), [ok("a", "new")]);
    s.cache().run_tasks();
    assert_eq!(s.cache().get("rows:a").as_deref(), Some(&b"new"[..]));

    // A read of the old row in flight (its write-back not stored yet) when the row changes:
    // its write-back is dropped, and the next round reads the new row.
    block_on(s.invalidate(&keys(&["a"]))).unwrap();
    assert_eq!(round(&s, &["a"]), [ok("a", "new")]);
    s.origin()
        .rows
        .lock()
        .unwrap()
        .insert("a".into(), "newer".into());
    block_on(s.invalidate(&keys(&["a"]))).unwrap();
    s.cache().run_tasks();
    assert_eq!(
        s.cache().get("rows:a"),
        None,
        "the stale write-back was not stored"
    );
    assert_eq!(round(&s, &["a"]), [ok("a", "newer")]);
    assert!(s.stats().not_written_back >= 1);
}

#[test]
fn negative_caching_answers_absent_rows_from_the_cache() {
    let s = source(&[("a", "1")]).with_negative_ttl(Duration::from_secs(5));
    assert_eq!(round(&s, &["a", "gone"]), [ok("a", "1")]);
    s.cache().run_tasks();
    assert_eq!(s.cache().get("rows:gone").as_deref(), Some(ABSENT));
    assert_eq!(round(&s, &["a", "gone"]), [ok("a", "1")]);
    assert_eq!(s.origin().calls().len(), 1);
    assert_eq!(s.stats().negative_hits, 1);

    // Without negative caching, the stored absent entry is a miss, and is overwritten.
    let s2 = Cached::new(MemCache::default(), Origin::with(&[("gone", "back")]), Utf8);
    s2.cache().put("rows:gone", ABSENT);
    assert_eq!(round(&s2, &["gone"]), [ok("gone", "back")]);
    s2.cache().run_tasks();
    assert_eq!(s2.cache().get("rows:gone").as_deref(), Some(&b"back"[..]));
}

#[test]
fn unreadable_entries_are_misses_and_are_overwritten() {
    let s = source(&[("a", "1")]);
    s.cache().put("rows:a", &[0xff, 0xfe]);
    assert_eq!(round(&s, &["a"]), [ok("a", "1")]);
    s.cache().run_tasks();
    assert_eq!(s.cache().get("rows:a").as_deref(), Some(&b"1"[..]));
    assert_eq!(s.stats().decode_errors, 1);
}

#[test]
fn long_keys_and_large_values_bypass_the_cache_and_origin_errors_stay_per_key() {
    let long = "k".repeat(60);
    let big = "v".repeat(200);
    let s = source(&[(long.as_str(), "1"), ("big", big.as_str()), ("a", "2")]);
    let got = round(&s, &[long.as_str(), "big", "a", "bad"]);
    assert_eq!(got[..3], [ok(&long, "1"), ok("big", &big), ok("a", "2")]);
    assert_eq!(got[3].0, "bad");
    assert_eq!(
        got[3].1.as_deref().unwrap_err(),
        "origin `rows`: row bad is corrupt"
    );
    s.cache().run_tasks();
    let st = s.stats();
    assert_eq!(
        (st.uncacheable, st.cache_misses, st.origin_calls),
        (1, 3, 1)
    );
    assert_eq!((st.written_back, st.not_written_back), (1, 1));
    assert_eq!(s.cache().get("rows:big"), None);
    assert!(matches!(
        block_on(s.fetch(&keys(&["bad"]))),
        Err(CachedError::Origin { .. })
    ));
}

#[test]
fn keys_are_escaped_under_the_prefix() {
    let s = source(&[]).with_prefix("v2 users:");
    assert_eq!(
        s.cache_key(&"ann smith".to_string()).unwrap(),
        "v2%20users:ann%20smith"
    );
    assert_eq!(s.cache_key(&"x".repeat(40)), None);
}
