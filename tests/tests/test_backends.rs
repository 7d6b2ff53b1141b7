//! FEED-1 on every backend of the `feed` program (memory, an SQLite file, two memcached
//! servers): the same page (out_len and fnv of `docs/feed1.md`), 3 rounds, and the
//! store's real round trips, batched and naive.

use asynq_core::{DataSource, Runtime};
use asynq_examples::feed::{self, Params};
use asynq_examples::kv::KvStore;
use asynq_examples::local_memcached::start_or_skip;
use asynq_examples::memcached::{MemcachedClient, MemcachedKv};
use asynq_examples::sqlite::open_feed;
use asynq_tests::TempDb;

/// The reference figures of `docs/feed1.md`: (Q, A, keys, out_len, fnv).
const SIZES: [(u64, u64, usize, usize, u64); 2] = [
    (10, 5, 195, 2152, 0xac26a36b50baee7b),
    (100, 10, 3400, 39740, 0x56dc3f446f2c5f61),
];

/// What one rendering gave: (out_len, fnv, round trips, keys sent, rounds).
type Figures = (usize, u64, usize, usize, usize);

/// The asynq page over `store`.
fn batched<S>(store: S, p: Params) -> Figures
where
    S: DataSource<Key = String, Value = String> + KvStore,
{
    let rt = Runtime::new().with_source(store);
    let page = rt.run(feed::feed::<S>(p)).unwrap();
    let store = rt.source::<S>().unwrap();
    (
        page.len(),
        feed::fnv1a64(page.as_bytes()),
        store.round_trips(),
        store.keys_sent(),
        rt.last_stats().rounds,
    )
}

/// The naive page over `store`: one round trip per key.
fn naive<S: KvStore>(store: &S, p: Params) -> Figures {
    let before = store.round_trips();
    let page = feed::naive_on(store, p).unwrap();
    let calls = store.round_trips() - before;
    (
        page.len(),
        feed::fnv1a64(page.as_bytes()),
        calls,
        calls,
        calls,
    )
}

/// Round trips of the naive page: 5 keys per question, 3 per answer.
fn naive_keys(p: Params) -> usize {
    (p.questions * (5 + 3 * p.answers)) as usize
}

#[test]
fn memory_and_sqlite_render_the_same_page_in_three_round_trips() {
    for (q, a, keys, len, fnv) in SIZES {
        let p = Params {
            questions: q,
            answers: a,
        };
        let memory = batched(feed::memory_store(p), p);
        assert_eq!(memory, (len, fnv, 3, keys, 3), "memory Q={q} A={a}");

        let file = TempDb::new(&format!("q{q}-a{a}"));
        let (store, created) = open_feed(file.path(), p).unwrap();
        assert!(created);
        assert_eq!(
            batched(store, p),
            (len, fnv, 3, keys, 3),
            "sqlite Q={q} A={a}"
        );

        let (store, created) = open_feed(file.path(), p).unwrap();
        assert!(!created);
        let n = naive_keys(p);
        assert_eq!(
            naive(&store, p),
            (len, fnv, n, n, n),
            "naive sqlite Q={q} A={a}"
        );
    }
}

#[test]
fn memcached_over_two_servers_renders_the_same_page() {
    let Some(servers) = start_or_skip(2, "FEED-1 on memcached") else {
        return;
    };
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr()).collect();
    for (q, a, keys, len, fnv) in SIZES {
        let p = Params {
            questions: q,
            answers: a,
        };
        let store = MemcachedKv::new(MemcachedClient::new(&addrs).unwrap());
        assert_eq!(store.load_feed(p).unwrap(), 2, "both servers loaded");
        assert_eq!(store.load_feed(p).unwrap(), 0, "and not again");
        // 3 rounds, one multi-get per server in each.
        assert_eq!(
            batched(store, p),
            (len, fnv, 6, keys, 3),
            "memcached Q={q} A={a}"
        );

        // One server: 3 round trips, the same page (the data is loaded on it, sharded anew).
        let single = MemcachedKv::new(MemcachedClient::new([addrs[0]]).unwrap());
        assert_eq!(single.load_feed(p).unwrap(), 1);
        assert_eq!(batched(single, p), (len, fnv, 3, keys, 3));
    }
    // The same servers in the other order place every key alike (rendezvous hashing of the
    // servers' names): the second server still holds its share of the last size loaded on
    // both, so only the first (loaded alone since) is loaded again; the same page.
    let p = Params {
        questions: 100,
        answers: 10,
    };
    let swapped = MemcachedKv::new(MemcachedClient::new([addrs[1], addrs[0]]).unwrap());
    assert_eq!(swapped.load_feed(p).unwrap(), 1);
    assert_eq!(swapped.load_feed(p).unwrap(), 0, "and not again");
    assert_eq!(batched(swapped, p), (39740, 0x56dc3f446f2c5f61, 6, 3400, 3));

    // The naive page makes one round trip per key.
    let p = Params {
        questions: 10,
        answers: 5,
    };
    let store = MemcachedKv::new(MemcachedClient::new(&addrs).unwrap());
    store.load_feed(p).unwrap();
    let n = naive_keys(p);
    assert_eq!(naive(&store, p), (2152, 0xac26a36b50baee7b, n, n, n));
}
