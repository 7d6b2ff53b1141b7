//! The `server` program's service, started in this process on a free port of 127.0.0.1 and
//! asked through a real HTTP client (hyper's): 200 concurrent requests with every page checked
//! against the page rendered in-process and every run's calls optimal, memcached in front,
//! the naive mode, and store failures that fail only the requests they touch.
//!
//! The memcached test prints a notice and passes without a `memcached` binary, unless
//! `ASYNQ_REQUIRE_MEMCACHED` is set (as in CI): then it fails.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use asynq_core::Runtime;
use asynq_examples::async_kv::ReadThrough;
use asynq_examples::feed::{self, Params};
use asynq_examples::local_memcached::start_or_skip;
use asynq_examples::memcached::MemcachedClient;
use asynq_examples::memory::MemoryStore;
use asynq_examples::profile::{self, SiteDb};
use asynq_examples::serve::{self, Config, RING, Running};
use asynq_examples::sqlite::Db;
use axum::body::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A directory of its own for a test's databases, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("asynq-server-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn config(&self) -> Config {
        Config {
            users: 200,
            ..Config::new(self.0.join("profile.sqlite"))
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// What came back for one request.
#[derive(Debug)]
struct Reply {
    status: u16,
    rounds: usize,
    calls: usize,
    body: String,
}

async fn fetch(client: &HttpClient, server: &Running, path: &str) -> Reply {
    let uri = format!("http://{}{path}", server.addr()).parse().unwrap();
    let response = client.get(uri).await.unwrap();
    let figure = |name: &str| -> usize {
        let value = response.headers().get(name);
        let value = value.unwrap_or_else(|| panic!("{path}: no {name} header"));
        value.to_str().unwrap().parse().unwrap()
    };
    let (rounds, calls) = (figure("x-asynq-rounds"), figure("x-asynq-calls"));
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        rounds,
        calls,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// Every request at once.
async fn fetch_all(client: &HttpClient, server: &Running, paths: &[String]) -> Vec<Reply> {
    futures::future::join_all(paths.iter().map(|path| fetch(client, server, path))).await
}

fn feed_path(p: Params) -> String {
    format!("/feed?questions={}&answers={}", p.questions, p.answers)
}

/// The FEED-1 page of size `p`, rendered in this process over the in-memory store.
fn feed_page(p: Params) -> String {
    let rt = Runtime::new().with_source(feed::memory_store(p));
    rt.run(feed::feed::<MemoryStore>(p)).unwrap()
}

/// The profile page of `uid`, rendered in this process over the server's database.
fn profile_page(db: &SiteDb, uid: i64) -> String {
    profile::runtime(db)
        .run(profile::render_profile(uid))
        .unwrap()
}

const SIZES: [Params; 3] = [
    Params {
        questions: 10,
        answers: 5,
    },
    Params {
        questions: 20,
        answers: 3,
    },
    Params {
        questions: 7,
        answers: 0,
    },
];

/// The optimal run of a page: FEED-1 takes 3 rounds of one call each (2 without answers), a
/// profile 3 rounds and 5 queries.
fn optimal(path: &str) -> (usize, usize) {
    match path {
        p if p.starts_with("/profile/") => (3, 5),
        p if p.ends_with("answers=0") => (2, 2),
        _ => (3, 3),
    }
}

/// 200 requests: the three feed sizes and 40 profiles, interleaved, with their pages.
fn mixed_requests(db: &SiteDb) -> Vec<(String, Arc<String>)> {
    let feeds: Vec<Arc<String>> = SIZES.iter().map(|&p| Arc::new(feed_page(p))).collect();
    let mut profiles: HashMap<i64, Arc<String>> = HashMap::new();
    (0..200_usize)
        .map(|i| match i % 4 {
            3 => {
                let uid = ((i / 4) % 40) as i64;
                let page = profiles
                    .entry(uid)
                    .or_insert_with(|| Arc::new(profile_page(db, uid)));
                (format!("/profile/{uid}"), Arc::clone(page))
            }
            k => (feed_path(SIZES[k]), Arc::clone(&feeds[k])),
        })
        .collect()
}

#[test]
fn two_hundred_concurrent_requests_get_their_pages_with_optimal_calls() {
    let dir = TempDir::new("concurrent");
    let tokio = tokio();
    let server = tokio.block_on(serve::start(dir.config(), 0)).unwrap();
    assert!(server.addr().ip().is_loopback());
    let requests = mixed_requests(&server.app().profile_db());
    let paths: Vec<String> = requests.iter().map(|(path, _)| path.clone()).collect();

    let client = client();
    let replies = tokio.block_on(fetch_all(&client, &server, &paths));
    for ((path, page), reply) in requests.iter().zip(&replies) {
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert!(
            reply.body == **page,
            "{path}: not the page rendered in-process"
        );
        assert_eq!((reply.rounds, reply.calls), optimal(path), "{path}");
    }
    assert_eq!(server.app().served(), 200);

    // /stats lists the last runs, newest first, with the same figures.
    let stats = tokio.block_on(fetch_stats(&client, &server));
    let mut lines = stats.lines();
    assert_eq!(
        lines.next(),
        Some(format!("pages served: 200; the last {RING} runs, newest first:").as_str())
    );
    let runs: Vec<&str> = lines.take_while(|l| !l.is_empty()).collect();
    assert_eq!(runs.len(), RING);
    for run in runs {
        let path = run.split(' ').nth(1).unwrap();
        let (rounds, calls) = optimal(path);
        let figures = format!(" rounds={rounds} calls={calls} ");
        assert!(run.starts_with("200 /") && run.contains(&figures), "{run}");
    }
    tokio.block_on(server.shutdown()).unwrap();
}

async fn fetch_stats(client: &HttpClient, server: &Running) -> String {
    let uri = format!("http://{}/stats", server.addr()).parse().unwrap();
    let response = client.get(uri).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[test]
fn a_store_failure_fails_only_the_requests_that_touch_it() {
    let dir = TempDir::new("failure");
    let tokio = tokio();
    let server = tokio.block_on(serve::start(dir.config(), 0)).unwrap();
    let db = server.app().profile_db();
    let requests = mixed_requests(&db);
    let page_13 = profile_page(&db, 13);
    let client = client();
    // Make every feed size's data set first.
    for &p in &SIZES {
        assert_eq!(
            tokio
                .block_on(fetch(&client, &server, &feed_path(p)))
                .status,
            200
        );
    }

    // User 13's row now holds a blob where its name should be text: the users query of any
    // run asking for user 13 fails. And one key of the smallest feed is gone from its table.
    db.sqlite()
        .unwrap()
        .with_conn(|c| {
            c.execute(
                "UPDATE asynq_profile_users SET name = X'00ff' WHERE id = 13",
                [],
            )
        })
        .unwrap();
    let small = Db::open(server.app().config().feed_db(SIZES[2])).unwrap();
    let deleted = small
        .with_conn(|c| c.execute("DELETE FROM kv WHERE key = 'q:4:title'", []))
        .unwrap();
    assert_eq!(deleted, 1);

    let mut paths: Vec<String> = requests.iter().map(|(path, _)| path.clone()).collect();
    paths.extend((0..20).map(|_| "/profile/13".to_string()));
    let replies = tokio.block_on(fetch_all(&client, &server, &paths));
    let (mut failed, mut ok) = (0, 0);
    for (path, reply) in paths.iter().zip(&replies) {
        if path == "/profile/13" {
            assert_eq!(reply.status, 500, "{path}: {}", reply.body);
            assert!(
                reply.body.contains("source `users` failed"),
                "{}",
                reply.body
            );
            failed += 1;
        } else if *path == feed_path(SIZES[2]) {
            assert_eq!(reply.status, 500, "{path}: {}", reply.body);
            assert!(reply.body.contains("\"q:4:title\""), "{}", reply.body);
            failed += 1;
        } else {
            let (_, page) = requests.iter().find(|(p, _)| p == path).unwrap();
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            assert!(
                reply.body == **page,
                "{path}: not the page rendered in-process"
            );
            assert_eq!((reply.rounds, reply.calls), optimal(path), "{path}");
            ok += 1;
        }
    }
    // 21 asked for user 13 (one of them among the mixed 200), 50 for the broken feed.
    assert_eq!((failed, ok), (21 + 50, 149));

    // Repaired, the same pages are served again by the same server.
    db.sqlite()
        .unwrap()
        .with_conn(|c| {
            c.execute(
                "UPDATE asynq_profile_users SET name = 'User 13' WHERE id = 13",
                [],
            )
        })
        .unwrap();
    let reply = tokio.block_on(fetch(&client, &server, "/profile/13"));
    assert_eq!((reply.status, &reply.body), (200, &page_13));
    tokio.block_on(server.shutdown()).unwrap();
}

#[test]
fn eager_resume_serves_the_same_pages() {
    let dir = TempDir::new("eager");
    let tokio = tokio();
    let config = Config {
        eager: true,
        ..dir.config()
    };
    let server = tokio.block_on(serve::start(config, 0)).unwrap();
    let requests = mixed_requests(&server.app().profile_db());
    let paths: Vec<String> = requests.iter().map(|(path, _)| path.clone()).collect();
    let replies = tokio.block_on(fetch_all(&client(), &server, &paths));
    for ((path, page), reply) in requests.iter().zip(&replies) {
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert!(
            reply.body == **page,
            "{path}: not the page rendered in-process"
        );
        // Answers may come back at different times; the batching never gets worse than
        // one call per source per dependency level.
        let (rounds, calls) = optimal(path);
        assert!(
            reply.rounds >= 1 && reply.calls >= rounds,
            "{path}: {reply:?}"
        );
        assert!(reply.calls <= calls * 2, "{path}: {} calls", reply.calls);
    }
    tokio.block_on(server.shutdown()).unwrap();
}

#[test]
fn naive_pages_are_the_same_bytes_with_one_call_per_key() {
    let dir = TempDir::new("naive");
    let tokio = tokio();
    let config = Config {
        naive: true,
        ..dir.config()
    };
    let server = tokio.block_on(serve::start(config, 0)).unwrap();
    let client = client();
    let p = SIZES[0];
    let paths: Vec<String> = (0..20).map(|_| feed_path(p)).collect();
    let page = feed_page(p);
    for reply in tokio.block_on(fetch_all(&client, &server, &paths)) {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.body == page, "not the page rendered in-process");
        // As feed::naive_on counts them: 195 keys, some asked for twice.
        assert_eq!((reply.rounds, reply.calls), (200, 200));
    }
    tokio.block_on(server.shutdown()).unwrap();
}

#[test]
fn memcached_in_front_answers_warm_pages_and_outlives_a_dead_server() {
    let Some(mut servers) = start_or_skip(2, "server with memcached") else {
        return;
    };
    let dir = TempDir::new("memcached");
    let tokio = tokio();
    let config = Config {
        memcached: servers.iter().map(|s| s.addr().to_string()).collect(),
        ..dir.config()
    };
    let server = tokio.block_on(serve::start(config, 0)).unwrap();
    let client = client();
    let sizes = &SIZES[..2];
    let pages: Vec<String> = sizes.iter().map(|&p| feed_page(p)).collect();
    let paths: Vec<String> = (0..100).map(|i| feed_path(sizes[i % 2])).collect();
    let check = |replies: Vec<Reply>| {
        for (i, reply) in replies.iter().enumerate() {
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert!(
                reply.body == pages[i % 2],
                "not the page rendered in-process"
            );
            assert_eq!((reply.rounds, reply.calls), (3, 3));
        }
    };

    // Cold: SQLite answers, and its answers are written to memcached under the size's prefix.
    check(tokio.block_on(fetch_all(&client, &server, &paths)));
    let mc = MemcachedClient::new(servers.iter().map(|s| s.addr())).unwrap();
    let got = futures::executor::block_on(mc.get_multi(&["feed1-q10-a5:q:3:title".to_string()]));
    assert_eq!(got[0], Ok(Some(b"Question 3".to_vec())));

    // Warm: memcached answers everything, SQLite is not asked.
    let rt = tokio.block_on(server.app().feed_runtime(sizes[0])).unwrap();
    let store = rt.source::<ReadThrough>().unwrap();
    let queries = store.store().queries();
    let multi_gets = store.cache().unwrap().calls();
    check(tokio.block_on(fetch_all(&client, &server, &paths)));
    assert_eq!(
        store.store().queries(),
        queries,
        "SQLite asked for warm pages"
    );
    assert!(store.cache().unwrap().calls() > multi_gets);

    // One memcached server dies: its keys come from SQLite, and every page is still served.
    servers[0].stop();
    check(tokio.block_on(fetch_all(&client, &server, &paths)));
    assert!(
        store.store().queries() > queries,
        "SQLite answered the dead server's keys"
    );
    tokio.block_on(server.shutdown()).unwrap();
}
