//! The memcached client and sources against real memcached servers that the tests start
//! themselves on 127.0.0.1: sharding over two servers, one multi-get per server per round,
//! values that round-trip, a server killed mid-test, invalid keys, timeouts, consistent
//! hashing when a server is added, time to live, `add` and `delete`.
//!
//! Without a `memcached` binary these tests print a notice and pass, unless
//! `ASYNQ_REQUIRE_MEMCACHED` is set (as in CI): then they fail.

use std::io::Read as _;
use std::net::TcpListener;
use std::time::Duration;

use asynq_core::{DataSource as _, Error, Runtime, asynq};
use asynq_examples::local_memcached::start_or_skip;
use asynq_examples::memcached::{McError, Memcached, MemcachedClient, MemcachedKv};
use asynq_sources::cache::{Entry, Raw, StoreMode};
use futures::executor::block_on;

/// `pairs` as the client stores them.
fn bytes(pairs: &[(String, String)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect()
}

/// The memcached error a task got for a key.
fn mc_error(got: &Result<Option<String>, Error>) -> &McError {
    match got {
        Err(Error::Source { error, .. }) => error.downcast_ref().expect("an McError"),
        other => panic!("not a source error: {other:?}"),
    }
}

/// Keys and values of every awkward kind.
fn pairs(n: usize) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = (0..n)
        .map(|i| (format!("key:{i}"), format!("value {i}")))
        .collect();
    pairs.extend([
        ("unicode".into(), "héllo wörld ✓ 日本語 🦀".into()),
        ("spaces".into(), "  with  spaces  ".into()),
        ("empty".into(), String::new()),
        ("crlf".into(), "line 1\r\nEND\r\nline 3".into()),
        ("k".repeat(250), "the longest key".into()),
    ]);
    pairs
}

#[asynq]
fn lookups(keys: Vec<String>) -> Vec<Result<Option<String>, Error>> {
    <Memcached>::load_many(keys).await
}

#[test]
fn values_round_trip_over_two_sharded_servers_with_one_get_per_server() {
    let Some(servers) = start_or_skip(2, "memcached sharding") else {
        return;
    };
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr()).collect();
    let mc = MemcachedClient::new(&addrs).unwrap();
    let pairs = pairs(200);
    block_on(mc.set_multi(bytes(&pairs), None)).unwrap();

    let rt = Runtime::new().with_source(Memcached::new(mc.clone()));
    let mut keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    keys.push("never set".replace(' ', "-"));
    let got = rt.run(lookups(keys)).unwrap();
    for ((key, want), got) in pairs.iter().zip(&got) {
        assert_eq!(got.as_ref().unwrap(), &Some(want.clone()), "{key}");
    }
    assert_eq!(got.last().unwrap().as_ref().unwrap(), &None, "a miss");
    assert_eq!(rt.last_stats().rounds, 1);
    assert_eq!(rt.last_stats().calls(), 1, "one call of the source");
    assert_eq!(mc.calls(), 2, "one multi-get per server");
    assert_eq!(mc.keys(), pairs.len() + 1);

    // Each key lives on exactly the server its hash names, and both servers hold some.
    let mut per_server = [0, 0];
    for (i, addr) in addrs.iter().enumerate() {
        let single = MemcachedClient::new([addr]).unwrap();
        let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
        for (key, got) in keys.iter().zip(block_on(single.get_multi(&keys))) {
            let here = got.unwrap().is_some();
            assert_eq!(here, mc.server_of(key) == *addr, "{key} on {addr}");
            per_server[i] += usize::from(here);
        }
    }
    assert!(per_server.iter().all(|&n| n > 50), "{per_server:?}");
    assert_eq!(per_server.iter().sum::<usize>(), pairs.len());
}

#[test]
fn a_killed_server_fails_only_its_own_keys_naming_it() {
    let Some(mut servers) = start_or_skip(2, "memcached dead server") else {
        return;
    };
    let addrs: Vec<String> = servers.iter().map(|s| s.addr().to_string()).collect();
    let mc = MemcachedClient::new(&addrs)
        .unwrap()
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(2));
    let pairs = pairs(100);
    block_on(mc.set_multi(bytes(&pairs), None)).unwrap();
    let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    let rt = Runtime::new().with_source(Memcached::new(mc.clone()));
    // Before: everything answers (and the connections are now pooled).
    let got = rt.run(lookups(keys.clone())).unwrap();
    assert!(got.iter().all(|g| matches!(g, Ok(Some(_)))));

    // Kill the second server mid-test.
    servers[1].stop();
    let dead = &addrs[1];
    let got = rt.run(lookups(keys.clone())).unwrap();
    let (mut ok, mut failed) = (0, 0);
    for ((key, want), got) in pairs.iter().zip(got) {
        if mc.server_of(key) == dead {
            let err = mc_error(&got);
            assert!(
                matches!(err, McError::Server { server, .. } if server == dead),
                "{err}"
            );
            assert!(
                err.to_string()
                    .starts_with(&format!("memcached server {dead}: "))
            );
            failed += 1;
        } else {
            assert_eq!(got.unwrap(), Some(want.clone()), "{key} on the live server");
            ok += 1;
        }
    }
    assert!(ok > 0 && failed > 0, "ok={ok} failed={failed}");

    // The FEED-style source (`Value = String`) fails the dead server's keys too, and only
    // those (through `DataSource::fetch_each`), in the same single call.
    let kv = MemcachedKv::new(MemcachedClient::new(&addrs).unwrap());
    let rt = Runtime::new().with_source(kv);

    #[asynq]
    fn get(keys: Vec<String>) -> Vec<Result<String, Error>> {
        MemcachedKv::load_many(keys).await
    }

    let got = rt.run(get(keys)).unwrap();
    let (mut ok, mut failed) = (0, 0);
    for ((key, want), got) in pairs.iter().zip(got) {
        if mc.server_of(key) == dead {
            let err = got.unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("memcached server {dead}")),
                "{err}"
            );
            failed += 1;
        } else {
            assert_eq!(&got.unwrap(), want, "{key} on the live server");
            ok += 1;
        }
    }
    assert!(ok > 0 && failed > 0, "ok={ok} failed={failed}");
}

#[test]
fn invalid_keys_fail_before_any_io() {
    // Nothing needs to listen: invalid keys never reach the network.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mc = MemcachedClient::new([format!("127.0.0.1:{port}")]).unwrap();
    let bad = [
        String::new(),
        "k".repeat(251),
        "two words".into(),
        "tab\there".into(),
        "new\nline".into(),
        "bell\u{7}".into(),
        "del\u{7f}".into(),
    ];
    let got = block_on(mc.get_multi(&bad));
    for (key, got) in bad.iter().zip(&got) {
        assert!(
            matches!(got, Err(McError::InvalidKey { .. })),
            "{key:?}: {got:?}"
        );
    }
    assert_eq!(mc.calls(), 0, "no I/O for invalid keys");
    assert_eq!(
        got[1].as_ref().unwrap_err().to_string(),
        format!(
            "invalid memcached key {:?}: is 251 bytes long, more than 250",
            "k".repeat(60)
        )
    );
    let err = block_on(mc.set_multi(vec![("a b".into(), b"x".to_vec())], None)).unwrap_err();
    assert!(matches!(err, McError::InvalidKey { .. }), "{err}");
    let err = block_on(mc.delete_multi(&["a\tb".to_string()])).unwrap_err();
    assert!(matches!(err, McError::InvalidKey { .. }), "{err}");
    // A value over the item size limit is refused before it is sent, naming its key.
    let small = mc.clone().with_max_value(4);
    let err = block_on(small.set_multi(vec![("big".into(), b"12345".to_vec())], None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid memcached key \"big\": its value is 5 bytes, more than the item size limit of 4"
    );
    assert_eq!(mc.calls(), 0, "nothing was sent");
}

#[test]
fn a_server_that_never_answers_times_out_instead_of_hanging() {
    // A local listener that accepts connections and never says anything.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let silent = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0; 1024];
        // Read the request, answer nothing; return when the client hangs up.
        while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
    });
    let mc = MemcachedClient::new([&addr])
        .unwrap()
        .with_timeouts(Duration::from_millis(500), Duration::from_millis(200));
    let got = block_on(mc.get_multi(&["some:key".to_string()]));
    let err = got[0].as_ref().unwrap_err();
    assert!(
        matches!(err, McError::Server { store: "memcached", server, message } if *server == addr && message.contains("no answer within 200ms")),
        "{err}"
    );
    drop(mc); // closes the connection: the silent server's thread ends
    silent.join().unwrap();
}

#[test]
fn pooled_connections_to_a_restarted_server_are_replaced() {
    let Some(mut servers) = start_or_skip(1, "memcached restart") else {
        return;
    };
    let mc = MemcachedClient::new([servers[0].addr()]).unwrap();
    let keys = vec!["a".to_string(), "b".to_string()];
    let pair = |k: &str, v: &str| (k.to_string(), v.as_bytes().to_vec());
    block_on(mc.set_multi(vec![pair("a", "1"), pair("b", "2")], None)).unwrap();
    let got = block_on(mc.get_multi(&keys));
    assert_eq!(got, [Ok(Some(b"1".to_vec())), Ok(Some(b"2".to_vec()))]);

    // The pooled connection now leads to a dead process; the new server is empty.
    servers[0].restart().unwrap();
    let got = block_on(mc.get_multi(&keys));
    assert_eq!(got, [Ok(None), Ok(None)], "reconnected, not an error");
    block_on(mc.set_multi(vec![pair("a", "one")], None)).unwrap();
    assert_eq!(block_on(mc.get_multi(&keys))[0], Ok(Some(b"one".to_vec())));
    assert_eq!(mc.calls(), 3);
}

/// Delete `keys` from the memcached server at `addr`, as an eviction would.
fn evict(addr: &str, keys: &[String]) {
    use std::io::{BufRead as _, Write as _};
    let conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
    for key in keys {
        (&conn)
            .write_all(format!("delete {key}\r\n").as_bytes())
            .unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "DELETED\r\n", "{key}");
    }
}

#[test]
fn keys_the_servers_lost_are_refilled_from_the_origin() {
    use asynq_examples::feed::{self, Params};
    use asynq_examples::kv::KvStore as _;

    let Some(servers) = start_or_skip(1, "memcached refill") else {
        return;
    };
    let p = Params {
        questions: 10,
        answers: 5,
    };
    let client = || MemcachedClient::new([servers[0].addr()]).unwrap();
    let kv = MemcachedKv::new(client()).with_origin(feed::memory_store(p));
    assert_eq!(kv.load_feed(p).unwrap(), 1);
    // memcached evicts some of the page's keys; the data set's tag survives.
    let lost: Vec<String> = ["q:3:title", "u:5:name", "a:7:text", "q:0:answers"]
        .map(String::from)
        .to_vec();
    evict(servers[0].addr(), &lost);
    assert_eq!(kv.load_feed(p).unwrap(), 0, "the tag still says loaded");

    // Without an origin the page cannot be made: a miss is a missing key.
    let rt = Runtime::new().with_source(MemcachedKv::new(client()));
    let err = rt.run(feed::feed::<MemcachedKv>(p)).unwrap_err();
    assert!(
        matches!(err, feed::FeedError::Fetch(Error::MissingKey { .. })),
        "{err}"
    );

    // With one, the lost keys come from the origin (one call per round that missed) and
    // are written back: the next page is all hits.
    let rt = Runtime::new().with_source(kv);
    let page = rt.run(feed::feed::<MemcachedKv>(p)).unwrap();
    assert_eq!(feed::fnv1a64(page.as_bytes()), 0xac26a36b50baee7b);
    let kv = rt.source::<MemcachedKv>().unwrap();
    let origin_calls = kv.origin_round_trips();
    assert!((1..=3).contains(&origin_calls), "{origin_calls}");
    let back = block_on(client().get_multi(&lost));
    assert!(back.iter().all(|l| matches!(l, Ok(Some(_)))), "{back:?}");
    let before = kv.origin_round_trips();
    let page = rt.run(feed::feed::<MemcachedKv>(p)).unwrap();
    assert_eq!(feed::fnv1a64(page.as_bytes()), 0xac26a36b50baee7b);
    assert_eq!(kv.origin_round_trips(), before, "all hits");
    // The page's round trips do not count the data set's tag reads: 3 rounds of one
    // multi-get (one server) and the origin's calls.
    assert_eq!(kv.round_trips(), 2 * 3 + origin_calls);
}

#[test]
fn a_third_server_takes_about_a_third_of_the_keys_and_the_rest_stay_hits() {
    let Some(servers) = start_or_skip(3, "memcached consistent hashing") else {
        return;
    };
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr()).collect();
    let two = MemcachedClient::new(&addrs[..2]).unwrap();
    let pairs: Vec<(String, String)> = (0..3000)
        .map(|i| (format!("item:{i}"), format!("v{i}")))
        .collect();
    block_on(two.set_multi(bytes(&pairs), None)).unwrap();
    let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();

    // The same servers plus a third (listed first: the order does not matter).
    let three = MemcachedClient::new([addrs[2], addrs[0], addrs[1]]).unwrap();
    let got = block_on(three.get_multi(&keys));
    let (mut hits, mut moved) = (0, 0);
    for ((key, want), got) in pairs.iter().zip(got) {
        match got.unwrap() {
            Some(value) => {
                assert_eq!(value, want.as_bytes(), "{key}");
                assert_eq!(three.server_of(key), two.server_of(key), "{key}");
                hits += 1;
            }
            None => {
                // Only keys now placed on the new server miss.
                assert_eq!(three.server_of(key), addrs[2], "{key}");
                moved += 1;
            }
        }
    }
    assert_eq!(hits + moved, pairs.len());
    let share = moved as f64 / pairs.len() as f64;
    assert!(
        (0.28..0.39).contains(&share),
        "{moved} of {} moved",
        pairs.len()
    );
    assert_eq!(three.calls(), 3, "one multi-get per server");
}

#[test]
fn values_expire_add_keeps_what_is_there_and_delete_removes() {
    let Some(servers) = start_or_skip(2, "memcached ttl, add, delete") else {
        return;
    };
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr()).collect();
    let mc = MemcachedClient::new(&addrs).unwrap();
    let entry = |key: &str, value: &[u8], ttl: Option<Duration>| Entry {
        key: key.to_string(),
        value: value.to_vec(),
        ttl,
    };
    let keys: Vec<String> = ["short", "long", "kept", "binary"]
        .map(String::from)
        .to_vec();
    let binary: Vec<u8> = (0..=255).collect();
    block_on(mc.store_multi(
        vec![
            entry("short", b"1", Some(Duration::from_secs(1))),
            entry("long", b"2", Some(Duration::from_secs(3600))),
            entry("kept", b"3", None),
            entry("binary", &binary, None),
        ],
        StoreMode::Set,
    ))
    .unwrap();
    // `add` stores only where nothing is.
    block_on(mc.store_multi(
        vec![entry("kept", b"other", None), entry("new", b"4", None)],
        StoreMode::Add,
    ))
    .unwrap();
    let got = block_on(mc.get_multi(&[keys.clone(), vec!["new".into()]].concat()));
    let want: Vec<Option<&[u8]>> = vec![
        Some(b"1"),
        Some(b"2"),
        Some(b"3"),
        Some(&binary),
        Some(b"4"),
    ];
    assert_eq!(
        got.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        want.iter()
            .map(|v| v.map(<[u8]>::to_vec))
            .collect::<Vec<_>>()
    );

    // A second later the short-lived entry is gone; delete removes the others it names.
    std::thread::sleep(Duration::from_millis(2100));
    block_on(mc.delete_multi(&["long".to_string(), "never-set".to_string()])).unwrap();
    let got = block_on(mc.get_multi(&keys));
    let present: Vec<bool> = got.iter().map(|g| g.as_ref().unwrap().is_some()).collect();
    assert_eq!(present, [false, false, true, true]);

    // The source reads bytes with `Raw`, and a value its codec cannot read fails that key only.
    #[asynq]
    fn raw(keys: Vec<String>) -> Vec<Result<Option<Vec<u8>>, Error>> {
        Memcached::<Raw>::load_many(keys).await
    }
    let rt = Runtime::new()
        .with_source(Memcached::with_codec(mc.clone(), Raw))
        .with_source(Memcached::new(mc.clone()));
    let got = rt.run(raw(vec!["binary".into(), "kept".into()])).unwrap();
    assert_eq!(got[0].as_ref().unwrap().as_deref(), Some(&binary[..]));
    let got = rt
        .run(lookups(vec!["binary".into(), "kept".into()]))
        .unwrap();
    assert!(
        matches!(mc_error(&got[0]), McError::Decode { store: "memcached", key, message } if key == "binary" && message.contains("not UTF-8")),
        "{:?}",
        got[0]
    );
    assert_eq!(got[1].as_ref().unwrap().as_deref(), Some("3"));
}
