//! The memcached client and sources against real memcached servers that the tests start
//! themselves on 127.0.0.1: sharding over two servers, one multi-get per server per round,
//! values that round-trip, a server killed mid-test, invalid keys, timeouts.
//!
//! Without a `memcached` binary these tests print a notice and pass, unless
//! `ASYNQ_REQUIRE_MEMCACHED` is set (as in CI): then they fail.

use std::io::Read as _;
use std::net::TcpListener;
use std::time::Duration;

use asynq_core::{DataSource as _, Error, Runtime, asynq};
use asynq_examples::local_memcached::start_or_skip;
use asynq_examples::memcached::{Lookup, McError, Memcached, MemcachedKv};

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
fn lookups(keys: Vec<String>) -> Vec<Result<Lookup, Error>> {
    Memcached::load_many(keys).await
}

#[test]
fn values_round_trip_over_two_sharded_servers_with_one_get_per_server() {
    let Some(servers) = start_or_skip(2, "memcached sharding") else {
        return;
    };
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr()).collect();
    let mc = Memcached::new(&addrs).unwrap();
    let pairs = pairs(200);
    mc.set_multi(pairs.iter().map(|(k, v)| (k, v))).unwrap();

    let rt = Runtime::new().with_source(mc);
    let mut keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    keys.push("never set".replace(' ', "-"));
    let got = rt.run(lookups(keys)).unwrap();
    for ((key, want), got) in pairs.iter().zip(&got) {
        assert_eq!(got.as_ref().unwrap(), &Ok(Some(want.clone())), "{key}");
    }
    assert_eq!(got.last().unwrap().as_ref().unwrap(), &Ok(None), "a miss");
    let mc = rt.source::<Memcached>().unwrap();
    assert_eq!(rt.last_stats().rounds, 1);
    assert_eq!(rt.last_stats().calls(), 1, "one call of the source");
    assert_eq!(mc.calls(), 2, "one multi-get per server");
    assert_eq!(mc.keys(), pairs.len() + 1);

    // Each key lives on exactly the server its hash names, and both servers hold some.
    let mut per_server = [0, 0];
    for (i, addr) in addrs.iter().enumerate() {
        let single = Memcached::new([addr]).unwrap();
        let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
        for (key, got) in keys.iter().zip(single.get_multi(&keys)) {
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
    let mc = Memcached::new(&addrs)
        .unwrap()
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(2));
    let pairs = pairs(100);
    mc.set_multi(pairs.iter().map(|(k, v)| (k, v))).unwrap();
    let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    let rt = Runtime::new().with_source(mc);
    // Before: everything answers (and the connections are now pooled).
    let got = rt.run(lookups(keys.clone())).unwrap();
    assert!(got.iter().all(|g| matches!(g, Ok(Ok(Some(_))))));

    // Kill the second server mid-test.
    servers[1].stop();
    let dead = &addrs[1];
    let got = rt.run(lookups(keys.clone())).unwrap();
    let mc = rt.source::<Memcached>().unwrap();
    let (mut ok, mut failed) = (0, 0);
    for ((key, want), got) in pairs.iter().zip(got) {
        let got = got.unwrap();
        if mc.server_of(key) == dead {
            let err = got.unwrap_err();
            assert!(
                matches!(&err, McError::Server { server, .. } if server == dead),
                "{err}"
            );
            assert!(
                err.to_string()
                    .starts_with(&format!("memcached server {dead}: "))
            );
            failed += 1;
        } else {
            assert_eq!(got, Ok(Some(want.clone())), "{key} on the live server");
            ok += 1;
        }
    }
    assert!(ok > 0 && failed > 0, "ok={ok} failed={failed}");

    // The FEED-style source (`Value = String`) fails the dead server's keys too, and only
    // those (through `DataSource::fetch_each`), in the same single call.
    let kv = MemcachedKv::new(Memcached::new(&addrs).unwrap());
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
    let mc = Memcached::new([format!("127.0.0.1:{port}")]).unwrap();
    let bad = [
        String::new(),
        "k".repeat(251),
        "two words".into(),
        "tab\there".into(),
        "new\nline".into(),
        "bell\u{7}".into(),
        "del\u{7f}".into(),
    ];
    let got = mc.get_multi(&bad);
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
    assert!(mc.set_multi([("a b", "x")]).is_err());
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
    let mc = Memcached::new([&addr])
        .unwrap()
        .with_timeouts(Duration::from_millis(500), Duration::from_millis(200));
    let got = mc.get_multi(&["some:key".to_string()]);
    let err = got[0].as_ref().unwrap_err();
    assert!(
        matches!(err, McError::Server { server, message } if *server == addr && message.contains("no answer within 200ms")),
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
    let mc = Memcached::new([servers[0].addr()]).unwrap();
    let keys = vec!["a".to_string(), "b".to_string()];
    mc.set_multi([("a", "1"), ("b", "2")]).unwrap();
    let got = mc.get_multi(&keys);
    assert_eq!(got, [Ok(Some("1".into())), Ok(Some("2".into()))]);

    // The pooled connection now leads to a dead process; the new server is empty.
    servers[0].restart().unwrap();
    let got = mc.get_multi(&keys);
    assert_eq!(got, [Ok(None), Ok(None)], "reconnected, not an error");
    mc.set_multi([("a", "one")]).unwrap();
    assert_eq!(mc.get_multi(&keys)[0], Ok(Some("one".into())));
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
    let client = || Memcached::new([servers[0].addr()]).unwrap();
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
    let origin_calls = kv.round_trips() - kv.client().calls();
    assert!((1..=3).contains(&origin_calls), "{origin_calls}");
    let back = client().get_multi(&lost);
    assert!(back.iter().all(|l| matches!(l, Ok(Some(_)))), "{back:?}");
    let before = kv.round_trips() - kv.client().calls();
    let page = rt.run(feed::feed::<MemcachedKv>(p)).unwrap();
    assert_eq!(feed::fnv1a64(page.as_bytes()), 0xac26a36b50baee7b);
    assert_eq!(kv.round_trips() - kv.client().calls(), before, "all hits");
}
