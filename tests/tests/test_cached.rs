//! Cache-aside (`asynq_sources::Cached`) over real servers: two memcached servers, a Redis
//! server and a 3-node Redis Cluster that the tests start on free 127.0.0.1 ports, in front of
//! FEED-1 in SQLite.
//!
//! Each page must be the reference page whatever the cache does: cold (one cache multi-get
//! and one SQL query per round), warm (no query at all), a cache server killed mid-run (its
//! keys read from SQLite, the outage counted), a cache that lost everything (refilled, no
//! error), and a row changed and invalidated (its old value never served again).
//!
//! Without the servers installed these tests print a line and pass, unless
//! `ASYNQ_REQUIRE_MEMCACHED` / `ASYNQ_REQUIRE_REDIS` is set (as in CI): then they fail.

use std::collections::BTreeMap;
use std::time::Duration;

use asynq_core::Runtime;
use asynq_examples::feed::{self, Params};
use asynq_examples::local_memcached;
use asynq_examples::local_redis;
use asynq_examples::sql_kv::SqlKv;
use asynq_examples::sqlite::{Db, fill_kv};
use asynq_sources::Cached;
use asynq_sources::cache::{Backoff, Cache, Entry, StoreMode, Utf8};
use asynq_sources::memcached::MemcachedClient;
use asynq_sources::redis::{RedisClient, RedisCluster, RedisError, slot};
use futures::executor::block_on;

/// FEED-1 Q=10 A=5: 195 keys over 3 rounds.
const P: Params = Params {
    questions: 10,
    answers: 5,
};
const KEYS: u64 = 195;
const FNV: u64 = 0xac26a36b50baee7b;

/// A failed server is tried again after 50 ms (not 1 s), to keep the tests short.
const QUICK: Backoff = Backoff {
    first: Duration::from_millis(50),
    max: Duration::from_millis(200),
};

/// FEED-1 in an SQLite database in memory, and the database (to change rows in).
fn origin() -> (SqlKv, Db) {
    let db = Db::open_in_memory().unwrap();
    db.with_conn(|c| fill_kv(c, feed::dataset(P))).unwrap();
    (SqlKv::sqlite(db.clone()).unwrap(), db)
}

type Source<C> = Cached<C, SqlKv, Utf8>;

/// A runtime with `cache` in front of FEED-1 in SQLite, and the database.
fn runtime<C: Cache>(cache: C) -> (Runtime, Db) {
    let (store, db) = origin();
    let source = Cached::new(cache, store, Utf8).with_prefix("feed1-q10-a5:");
    (Runtime::new().with_source(source), db)
}

fn source<C: Cache>(rt: &Runtime) -> &Source<C> {
    rt.source::<Source<C>>().expect("registered")
}

/// Render the page, wait for the write-backs, and return the page and its counts (since the
/// previous call).
fn render<C: Cache>(rt: &Runtime) -> (String, asynq_sources::CacheStats) {
    let page = rt
        .run(feed::feed::<Source<C>>(P))
        .expect("the page renders");
    let s = source::<C>(rt);
    block_on(s.write_backs_done());
    let stats = s.stats();
    s.reset_stats();
    (page, stats)
}

fn assert_reference(page: &str) {
    assert_eq!(page.len(), 2152);
    assert_eq!(feed::fnv1a64(page.as_bytes()), FNV);
}

/// Cold: one multi-get and one query per round, everything written back; warm: no query.
fn cold_then_warm<C: Cache>(rt: &Runtime) {
    let (page, st) = render::<C>(rt);
    assert_reference(&page);
    assert_eq!(
        (st.cache_calls, st.cache_hits, st.cache_misses),
        (3, 0, KEYS)
    );
    assert_eq!((st.origin_calls, st.origin_keys), (3, KEYS));
    assert_eq!((st.written_back, st.write_back_failures), (KEYS, 0));
    let (page, st) = render::<C>(rt);
    assert_reference(&page);
    assert_eq!(
        (st.cache_calls, st.cache_hits, st.cache_misses),
        (3, KEYS, 0)
    );
    assert_eq!(st.origin_calls, 0, "a warm cache makes no origin call");
}

/// A row changes in SQLite: the warm cache still serves the old value (cache-aside), and once
/// invalidated, never again.
fn invalidation<C: Cache>(rt: &Runtime, db: &Db) {
    let key = "u:3:name".to_string();
    db.with_conn(|c| fill_kv(c, [(key.as_str(), "Renamed User")]))
        .unwrap();
    let (page, st) = render::<C>(rt);
    assert_reference(&page);
    assert_eq!(st.origin_calls, 0);
    block_on(source::<C>(rt).invalidate(std::slice::from_ref(&key))).unwrap();
    for _ in 0..2 {
        let (page, _) = render::<C>(rt);
        assert!(page.contains("Renamed User"), "the new value");
        assert!(!page.contains("User 3<"), "never the old one");
    }
    let (_, st) = render::<C>(rt);
    assert_eq!(st.origin_calls, 0, "the new value was written back");
}

#[test]
fn memcached_in_front_of_sqlite_cold_warm_and_invalidated() {
    let Some(servers) = local_memcached::start_or_skip(2, "memcached_in_front_of_sqlite") else {
        return;
    };
    let cache = MemcachedClient::new(servers.iter().map(|s| s.addr())).unwrap();
    let (rt, db) = runtime(cache.clone());
    cold_then_warm::<MemcachedClient>(&rt);
    assert_eq!(
        cache.calls(),
        12,
        "one multi-get per server per round, 4 runs of 3 rounds"
    );
    invalidation::<MemcachedClient>(&rt, &db);
}

#[test]
fn redis_in_front_of_sqlite_cold_warm_and_invalidated() {
    let Some(server) = local_redis::start_or_skip("redis_in_front_of_sqlite") else {
        return;
    };
    let cache = RedisClient::new(server.addr()).unwrap();
    let (rt, db) = runtime(cache.clone());
    cold_then_warm::<RedisClient>(&rt);
    assert_eq!(cache.calls(), 6, "one MGET per round");
    invalidation::<RedisClient>(&rt, &db);
}

#[test]
fn a_memcached_server_killed_mid_run_costs_its_keys_a_query_and_no_error() {
    let Some(mut servers) = local_memcached::start_or_skip(2, "memcached_killed_mid_run") else {
        return;
    };
    let addrs: Vec<String> = servers.iter().map(|s| s.addr().to_string()).collect();
    let cache = MemcachedClient::with_backoff(&addrs, QUICK)
        .unwrap()
        .with_timeouts(Duration::from_millis(500), Duration::from_millis(500));
    let (store, _db) = origin();
    // Each query takes 100 ms: the kill below lands inside the run.
    let store = store.with_latency(Duration::from_millis(100));
    let rt = Runtime::new()
        .with_source(Cached::new(cache.clone(), store, Utf8).with_prefix("feed1-q10-a5:"));
    let mut dead = servers.remove(1);
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        dead.stop();
        dead
    });
    let (page, _) = render::<MemcachedClient>(&rt);
    assert_reference(&page);
    let mut dead = killer.join().unwrap();

    // With server 1 down, its keys (and only those) are read from SQLite, every run: the
    // page's keys that server 0 holds are hits.
    let (page, st) = render::<MemcachedClient>(&rt);
    assert_reference(&page);
    let on_dead = st.cache_errors;
    assert!(on_dead > 0 && on_dead < KEYS, "{on_dead} keys on server 1");
    assert_eq!((st.origin_keys, st.cache_hits), (on_dead, KEYS - on_dead));
    assert!(cache.health()[1].failures >= 1);

    // Restarted empty: once the back-off ends its keys are refilled, then served.
    dead.restart().unwrap();
    std::thread::sleep(Duration::from_millis(250));
    let (page, st) = render::<MemcachedClient>(&rt);
    assert_reference(&page);
    assert_eq!((st.cache_errors, st.origin_keys), (0, on_dead));
    let (page, st) = render::<MemcachedClient>(&rt);
    assert_reference(&page);
    assert_eq!((st.cache_hits, st.origin_calls), (KEYS, 0));
}

#[test]
fn caches_that_lost_everything_are_refilled_without_an_error() {
    if let Some(mut servers) = local_memcached::start_or_skip(2, "memcached_lost_everything") {
        let addrs: Vec<&str> = servers.iter().map(|s| s.addr()).collect();
        let cache = MemcachedClient::new(addrs).unwrap();
        let (rt, _db) = runtime(cache);
        cold_then_warm::<MemcachedClient>(&rt);
        for server in &mut servers {
            server.restart().unwrap();
        }
        // Stale pooled connections are replaced within the exchange: no failure, a cold page.
        cold_then_warm::<MemcachedClient>(&rt);
    }
    if let Some(mut server) = local_redis::start_or_skip("redis_lost_everything") {
        let cache = RedisClient::with_backoff(server.addr(), QUICK).unwrap();
        let (rt, _db) = runtime(cache);
        cold_then_warm::<RedisClient>(&rt);
        server.restart().unwrap();
        // The multiplexed connection broke with the restart: the first call after it may
        // fail (and its keys go to SQLite); the page is right either way.
        let (page, _) = render::<RedisClient>(&rt);
        assert_reference(&page);
        std::thread::sleep(Duration::from_millis(250));
        let (page, st) = render::<RedisClient>(&rt);
        assert_reference(&page);
        assert_eq!(st.cache_errors, 0, "reconnected");
        let (_, st) = render::<RedisClient>(&rt);
        assert_eq!((st.cache_hits, st.origin_calls), (KEYS, 0));
    }
}

#[test]
fn a_redis_server_killed_degrades_to_the_origin_logged_once() {
    let Some(mut server) = local_redis::start_or_skip("redis_killed") else {
        return;
    };
    let cache = RedisClient::with_backoff(server.addr(), QUICK)
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let (rt, _db) = runtime(cache.clone());
    cold_then_warm::<RedisClient>(&rt);
    server.stop();
    let mut outages = Vec::new();
    for _ in 0..3 {
        let (page, st) = render::<RedisClient>(&rt);
        assert_reference(&page);
        assert_eq!((st.cache_hits, st.origin_keys), (0, KEYS));
        assert_eq!(st.cache_errors, KEYS);
        outages.push(st.outages);
    }
    assert_eq!(outages, [1, 0, 0], "one outage, counted (and logged) once");
    assert!(cache.health().failures >= 1);
    assert!(cache.health().last_error.is_some());
}

/// The node of each key (by the client's slot map), and how many keys each node holds.
fn spread(cache: &RedisCluster, keys: &[String]) -> BTreeMap<String, usize> {
    let mut per_node = BTreeMap::new();
    for key in keys {
        *per_node
            .entry(cache.node_of(key).expect("mapped"))
            .or_insert(0) += 1;
    }
    per_node
}

#[test]
fn a_redis_cluster_is_asked_once_per_node_per_round_and_a_dead_node_fails_its_keys_alone() {
    let Some(mut cluster) = local_redis::start_cluster_or_skip(3, "redis_cluster_client") else {
        return;
    };
    let cache = RedisCluster::with_backoff(cluster.addrs(), QUICK)
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let keys: Vec<String> = (0..300).map(|i| format!("k:{i}")).collect();
    let entries = keys
        .iter()
        .map(|k| Entry {
            key: k.clone(),
            value: format!("value of {k}").into_bytes(),
            ttl: Some(Duration::from_secs(60)),
        })
        .collect();
    block_on(cache.store(entries, StoreMode::Set)).unwrap();

    // The keys are spread over the three nodes, each where its slot says.
    let per_node = spread(&cache, &keys);
    assert_eq!(per_node.keys().cloned().collect::<Vec<_>>(), {
        let mut addrs = cluster.addrs();
        addrs.sort();
        addrs
    });
    for (i, node) in cluster.nodes().iter().enumerate() {
        let (first, last) = local_redis::LocalRedisCluster::slots_of(3, i);
        let alone = RedisClient::new(node.addr()).unwrap();
        let mine: Vec<&String> = keys
            .iter()
            .filter(|k| (first..=last).contains(&slot(k.as_bytes())))
            .collect();
        assert_eq!(mine.len(), per_node[node.addr()]);
        for key in mine {
            let got = block_on(alone.mget(vec![key.clone()]));
            assert_eq!(got[0], Ok(Some(format!("value of {key}").into_bytes())));
        }
    }

    // One round: one pipelined exchange per node, every value right.
    cache.reset_counters();
    let mut asked = keys.clone();
    asked.extend(["missing:1".to_string(), String::new()]);
    let got = block_on(cache.mget(asked));
    for (key, got) in keys.iter().zip(&got) {
        assert_eq!(
            *got,
            Ok(Some(format!("value of {key}").into_bytes())),
            "{key}"
        );
    }
    assert_eq!(got[300], Ok(None));
    assert!(matches!(&got[301], Err(RedisError::InvalidKey { .. })));
    for node in cache.nodes() {
        assert_eq!(node.calls(), 1, "one exchange with {}", node.server());
    }
    assert_eq!((cache.calls(), cache.keys()), (3, 301));

    // Deletes reach every node.
    block_on(cache.delete(keys[..150].to_vec())).unwrap();
    let got = block_on(cache.mget(keys.clone()));
    assert!(got[..150].iter().all(|g| *g == Ok(None)));
    assert!(got[150..].iter().all(|g| matches!(g, Ok(Some(_)))));

    // A node killed: its keys fail naming it, the others' are answered.
    let dead = cluster.nodes()[1].addr().to_string();
    cluster.nodes_mut()[1].stop();
    for _ in 0..2 {
        let got = block_on(cache.mget(keys[150..].to_vec()));
        for (key, got) in keys[150..].iter().zip(&got) {
            if cache.node_of(key).as_deref() == Some(&dead) {
                let e = got.as_ref().expect_err(key);
                assert_eq!(e.server(), Some(dead.as_str()), "{e}");
                assert!(
                    e.to_string().starts_with(&format!("Redis server {dead}: ")),
                    "{e}"
                );
            } else {
                assert_eq!(*got, Ok(Some(format!("value of {key}").into_bytes())));
            }
        }
    }
}

#[test]
fn a_slot_moved_to_another_node_is_followed_in_the_same_call() {
    let Some(cluster) = local_redis::start_cluster_or_skip(3, "redis_cluster_moved") else {
        return;
    };
    let addrs = cluster.addrs();
    let cache = RedisCluster::new(&addrs).unwrap();
    let key = "moving:1".to_string();
    assert_eq!(block_on(cache.mget(vec![key.clone()]))[0], Ok(None));
    let from = cache.node_of(&key).expect("the map was read");
    let to = (addrs.iter().position(|a| *a == from).unwrap() + 1) % 3;
    cluster.move_slot(slot(key.as_bytes()), to).unwrap();

    // The client's map is old: the store meets MOVED, the map is read again, and the SET is
    // sent to the new owner, all in the one call.
    let entry = Entry {
        key: key.clone(),
        value: b"moved".to_vec(),
        ttl: Some(Duration::from_secs(60)),
    };
    block_on(cache.store(vec![entry], StoreMode::Set)).unwrap();
    assert_eq!(cache.node_of(&key).as_deref(), Some(addrs[to].as_str()));
    let alone = RedisClient::new(&addrs[to]).unwrap();
    assert_eq!(
        block_on(alone.mget(vec![key.clone()]))[0],
        Ok(Some(b"moved".to_vec()))
    );
    assert_eq!(
        block_on(cache.mget(vec![key]))[0],
        Ok(Some(b"moved".to_vec()))
    );
}

#[test]
fn a_redis_cluster_in_front_of_sqlite_cold_warm_invalidated_and_a_node_killed_mid_run() {
    let Some(mut cluster) = local_redis::start_cluster_or_skip(3, "redis_cluster_cached") else {
        return;
    };
    let cache = RedisCluster::with_backoff(cluster.addrs(), QUICK)
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let (rt, db) = runtime(cache.clone());
    cold_then_warm::<RedisCluster>(&rt);
    // Each round asks each node holding some of its keys once: at most 3 nodes x 3 rounds x 2
    // runs, and every node some.
    for node in cache.nodes() {
        assert!(
            (1..=6).contains(&node.calls()),
            "{}: {}",
            node.server(),
            node.calls()
        );
    }
    assert_eq!(cache.keys(), 2 * KEYS as usize);
    invalidation::<RedisCluster>(&rt, &db);

    // A fresh page (another prefix) over a slow origin, a node killed while it renders.
    let (store, _db) = origin();
    let store = store.with_latency(Duration::from_millis(100));
    let rt =
        Runtime::new().with_source(Cached::new(cache.clone(), store, Utf8).with_prefix("killed:"));
    let page = std::thread::scope(|s| {
        let nodes = cluster.nodes_mut();
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(150));
            nodes[2].stop();
        });
        render::<RedisCluster>(&rt).0
    });
    assert_reference(&page);
    // With node 2 down, its keys (and only those) are read from SQLite.
    let (page, st) = render::<RedisCluster>(&rt);
    assert_reference(&page);
    let on_dead = st.cache_errors;
    assert!(on_dead > 0 && on_dead < KEYS, "{on_dead} keys on node 2");
    assert_eq!((st.origin_keys, st.cache_hits), (on_dead, KEYS - on_dead));
}
