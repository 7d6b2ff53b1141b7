//! `feed --cache memcached|redis|redis-cluster` as a user runs it: the reference page cold
//! and warm, one multi-get and one store call per round when cold, no store call when warm.
//! The servers (two memcached, a Redis server, a 3-node Redis Cluster) are started by the
//! test on free 127.0.0.1 ports; without them installed it skips with a notice, unless
//! `ASYNQ_REQUIRE_MEMCACHED` / `ASYNQ_REQUIRE_REDIS` is set (as in CI).

use std::process::{Command, Stdio};

use asynq_examples::{local_memcached, local_redis};

/// The tiers' line and the summary line of `feed -q 10 -a 5 --cache KIND --cache-servers ..`
/// over an SQLite data set in `db`.
fn feed(db: &str, kind: &str, servers: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_feed"))
        .args(["-q", "10", "-a", "5", "--db", db, "--cache", kind])
        .args(["--cache-servers", servers])
        .stdin(Stdio::null())
        .output()
        .expect("the feed program runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{kind}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines().rev();
    let last = lines.next().unwrap_or_default().to_string();
    let tiers = lines.next().unwrap_or_default().to_string();
    (tiers, last)
}

#[test]
fn every_cache_kind_gives_the_reference_page_and_a_warm_run_makes_no_store_call() {
    let dir = std::env::temp_dir().join(format!("asynq-feed-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("feed.sqlite").to_string_lossy().into_owned();
    let memcached = local_memcached::start_or_skip(2, "feed --cache memcached");
    let redis = local_redis::start_or_skip("feed --cache redis");
    let cluster = local_redis::start_cluster_or_skip(3, "feed --cache redis-cluster");
    let mut kinds = Vec::new();
    if let Some(servers) = &memcached {
        let addrs: Vec<&str> = servers.iter().map(|s| s.addr()).collect();
        kinds.push(("memcached", addrs.join(",")));
    }
    if let Some(server) = &redis {
        kinds.push(("redis", server.addr().to_string()));
    }
    if let Some(cluster) = &cluster {
        // One seed is enough: the other nodes are found from it.
        kinds.push(("redis-cluster", cluster.addrs()[0].clone()));
    }
    for (kind, servers) in kinds {
        let (tiers, last) = feed(&db, kind, &servers);
        assert!(
            tiers.starts_with("cache_hits=0 cache_misses=195 origin_calls=3 cache_calls=3"),
            "{kind} cold: {tiers}"
        );
        assert!(
            last.starts_with("calls=3 keys=195 rounds=3 out_len=2152 fnv=ac26a36b50baee7b "),
            "{kind} cold: {last}"
        );
        let (tiers, last) = feed(&db, kind, &servers);
        assert!(
            tiers.starts_with("cache_hits=195 cache_misses=0 origin_calls=0 cache_calls=3"),
            "{kind} warm: {tiers}"
        );
        assert!(
            last.contains(" out_len=2152 fnv=ac26a36b50baee7b "),
            "{kind} warm: {last}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
