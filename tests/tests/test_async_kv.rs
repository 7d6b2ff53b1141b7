//! The memcached client used from inside tokio (made in the caller's runtime, awaited there)
//! against real servers started on 127.0.0.1 (the same placement as a client made outside
//! tokio, one multi-get per server, a dead server failing only its keys, a silent one timing
//! out), and the SQLite source of `asynq_examples::async_kv` on tokio's blocking pool.
//!
//! Without a `memcached` binary the memcached tests print a notice and pass, unless
//! `ASYNQ_REQUIRE_MEMCACHED` is set (as in CI): then they fail.

use std::net::TcpListener;
use std::time::Duration;

use asynq_core::{DataSource as _, Error, Runtime, asynq};
use asynq_examples::feed::{self, Params};
use asynq_examples::local_memcached::start_or_skip;
use asynq_examples::memcached::{McError, Memcached, MemcachedClient};
use asynq_examples::sql_kv::SqlKv;
use asynq_examples::sqlite::{Db, fill_kv};

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[asynq]
fn lookups(keys: Vec<String>) -> Vec<Result<Option<String>, Error>> {
    <Memcached>::load_many(keys).await
}

#[test]
fn values_set_by_a_client_outside_tokio_are_found_by_one_inside_on_the_same_shards() {
    let Some(servers) = start_or_skip(2, "async memcached sharding") else {
        return;
    };
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr()).collect();
    let pairs: Vec<(String, String)> = (0..300)
        .map(|i| (format!("key:{i}"), format!("value {i}")))
        .chain([("crlf".to_string(), "a\r\nEND\r\nb".to_string())])
        .collect();
    // A client made outside tokio (on a runtime of its own, awaited by a plain executor)
    // stores each key on the server its hash names; one made inside a tokio runtime finds
    // every one, so both place keys alike.
    let outside = MemcachedClient::new(&addrs).unwrap();
    let values = pairs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    futures::executor::block_on(outside.set_multi(values, None)).unwrap();
    let tokio = tokio();
    let mc = tokio
        .block_on(async { MemcachedClient::new(&addrs) })
        .unwrap();
    for (key, _) in &pairs {
        assert_eq!(mc.server_index(key), outside.server_index(key));
    }

    let rt = Runtime::new().with_source(Memcached::new(mc.clone()));
    let mut keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    keys.push("never-set".to_string());
    let got = tokio.block_on(rt.run_async(lookups(keys))).unwrap();
    for ((key, want), got) in pairs.iter().zip(&got) {
        assert_eq!(got.as_ref().unwrap(), &Some(want.clone()), "{key}");
    }
    assert_eq!(got.last().unwrap().as_ref().unwrap(), &None, "a miss");
    assert_eq!(rt.last_stats().calls(), 1, "one call of the source");
    assert_eq!(mc.calls(), 2, "one multi-get per server");
    assert_eq!(mc.keys(), pairs.len() + 1);
}

#[test]
fn a_dead_server_fails_only_its_own_keys_with_an_error_naming_it() {
    let Some(mut servers) = start_or_skip(2, "async memcached dead server") else {
        return;
    };
    let addrs: Vec<String> = servers.iter().map(|s| s.addr().to_string()).collect();
    let tokio = tokio();
    let mc = tokio
        .block_on(async { MemcachedClient::new(&addrs) })
        .unwrap();
    let pairs: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| (format!("k{i}"), format!("v{i}").into_bytes()))
        .collect();
    tokio.block_on(mc.set_multi(pairs.clone(), None)).unwrap();
    let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    assert!(
        tokio
            .block_on(mc.get_multi(&keys))
            .iter()
            .all(|l| l.is_ok())
    );

    servers[0].stop(); // its pooled connection is now closed, and new ones are refused
    let got = tokio.block_on(mc.get_multi(&keys));
    let mut dead = 0;
    for ((key, value), lookup) in pairs.iter().zip(got) {
        if mc.server_index(key) == 0 {
            match lookup {
                Err(McError::Server {
                    store: "memcached",
                    server,
                    message,
                }) => {
                    assert_eq!(server, addrs[0]);
                    assert!(message.starts_with("connect: "), "{message}");
                }
                other => panic!("{key}: {other:?}"),
            }
            dead += 1;
        } else {
            assert_eq!(lookup, Ok(Some(value.clone())), "{key}");
        }
    }
    assert!(dead > 0 && dead < pairs.len());
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Connections to this listener are accepted by the kernel; nothing ever replies.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let tokio = tokio();
    let mc = tokio
        .block_on(async { MemcachedClient::new([&addr]) })
        .unwrap()
        .with_timeouts(Duration::from_millis(500), Duration::from_millis(100));
    let got = tokio.block_on(mc.get_multi(&["k".to_string()]));
    match &got[0] {
        Err(McError::Server {
            store: "memcached",
            server,
            message,
        }) => {
            assert_eq!(server, &addr);
            assert_eq!(message, "request: no answer within 100ms");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sqlite_on_the_blocking_pool_renders_feed1_in_three_queries() {
    let p = Params {
        questions: 10,
        answers: 5,
    };
    let db = Db::open_in_memory().unwrap();
    db.with_conn(|c| fill_kv(c, feed::dataset(p))).unwrap();
    let rt = Runtime::new().with_source(SqlKv::sqlite(db.clone()).unwrap());
    let (page, stats) = tokio().block_on(rt.run_async(feed::feed::<SqlKv>(p)).with_stats());
    assert_eq!(feed::fnv1a64(page.unwrap().as_bytes()), 0xac26a36b50baee7b);
    assert_eq!((stats.rounds, stats.calls(), db.queries()), (3, 3, 3));

    // Outside tokio each query runs on a thread of its own: the same page.
    let page = rt.run(feed::feed::<SqlKv>(p)).unwrap();
    assert_eq!(feed::fnv1a64(page.as_bytes()), 0xac26a36b50baee7b);
    assert_eq!(db.queries(), 6);
}
