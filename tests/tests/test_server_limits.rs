//! The server's limits, tried as an attacker or an unlucky operator would, every case on
//! 127.0.0.1: percent-encoded parameters, a page over the size limit, HEAD without a render,
//! more page sizes than data sets held, overload (503 with Retry-After), a request deadline,
//! slow and idle clients, a shutdown with a partial request open, heavy pages on the render
//! threads, a silent memcached, and data set files damaged or replaced while serving.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use asynq_core::Runtime;
use asynq_examples::async_kv::ReadThrough;
use asynq_examples::feed::{self, Params};
use asynq_examples::memory::MemoryStore;
use asynq_examples::serve::{self, Config, Running};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A directory of its own for a test's databases, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("asynq-limits-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn config(&self) -> Config {
        Config {
            users: 100,
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
    headers: HeaderMap,
    body: String,
}

async fn send(client: &HttpClient, server: &Running, method: Method, path: &str) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", server.addr()))
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get(client: &HttpClient, server: &Running, path: &str) -> Reply {
    send(client, server, Method::GET, path).await
}

/// The FEED-1 page of size `p`, rendered in this process over the in-memory store.
fn feed_page(p: Params) -> String {
    let rt = Runtime::new().with_source(feed::memory_store(p));
    rt.run(feed::feed::<MemoryStore>(p)).unwrap()
}

fn size(questions: u64, answers: u64) -> Params {
    Params { questions, answers }
}

#[test]
fn percent_encoded_parameters_are_decoded_and_unknown_ones_refused() {
    let dir = TempDir::new("percent");
    let tokio = tokio();
    let server = tokio.block_on(serve::start(dir.config(), 0)).unwrap();
    let client = client();
    let page = feed_page(size(10, 10));
    for path in [
        "/feed?questions=%31%30",
        "/feed?questions=10&answers=%31%30",
        "/feed?%71uestions=10",
        "/feed?questions=+10",
    ] {
        let reply = tokio.block_on(get(&client, &server, path));
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert!(reply.body == page, "{path}: not the page of Q=10 A=10");
    }
    let reply = tokio.block_on(get(&client, &server, "/feed?questions=10&colour=red"));
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.contains("unknown field `colour`"),
        "{}",
        reply.body
    );
    let reply = tokio.block_on(get(&client, &server, "/feed?questions=%FF"));
    assert_eq!(reply.status, 400, "{}", reply.body);
    let reply = tokio.block_on(get(&client, &server, "/feed?questions=ten"));
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .body
            .contains("questions must be a whole number, not \"ten\"")
    );
    tokio.block_on(server.shutdown()).unwrap();
}

#[test]
fn a_page_over_the_size_limit_is_refused_naming_the_limit_and_head_does_not_render() {
    let dir = TempDir::new("size");
    let tokio = tokio();
    let server = tokio.block_on(serve::start(dir.config(), 0)).unwrap();
    let client = client();
    let reply = tokio.block_on(get(&client, &server, "/feed?questions=10000&answers=100"));
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply
            .body
            .contains("up to 3050000 keys, more than this server's limit of 400000")
            && reply
                .body
                .contains("at most 1311 questions with 100 answers"),
        "{}",
        reply.body
    );
    assert!(server.app().feed_sizes().is_empty(), "no data set made");

    // HEAD answers from the parameters: no data set, no run.
    let served = server.app().served();
    let reply = tokio.block_on(send(&client, &server, Method::HEAD, "/feed?questions=50"));
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(reply.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(server.app().served(), served, "HEAD rendered a page");
    assert!(server.app().feed_sizes().is_empty(), "HEAD made a data set");
    let reply = tokio.block_on(send(&client, &server, Method::HEAD, "/feed?questions=0"));
    assert_eq!(reply.status, 400);
    tokio.block_on(server.shutdown()).unwrap();
}

#[test]
fn more_page_sizes_than_data_sets_held_are_all_served() {
    let dir = TempDir::new("sizes");
    let tokio = tokio();
    let config = dir.config();
    assert_eq!(config.max_feed_sizes, 16);
    let server = tokio.block_on(serve::start(config, 0)).unwrap();
    let client = client();
    for round in 0..2 {
        for q in 1..=24 {
            let p = size(q, q % 3);
            let path = format!("/feed?questions={q}&answers={}", p.answers);
            let reply = tokio.block_on(get(&client, &server, &path));
            assert_eq!(reply.status, 200, "round {round}, {path}: {}", reply.body);
            assert!(reply.body == feed_page(p), "{path}");
        }
    }
    assert_eq!(server.app().feed_sizes().len(), 16);
    let files = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.contains("-feed1-"))
        .count();
    assert_eq!(files, 16, "evicted data sets' files are removed");
    tokio.block_on(server.shutdown()).unwrap();
}

/// Make size `p`'s data set, then slow its every query down by `latency`.
fn slow_down(tokio: &tokio::runtime::Runtime, server: &Running, p: Params, latency: Duration) {
    let rt = tokio.block_on(server.app().feed_runtime(p)).unwrap();
    let store = rt.source::<ReadThrough>().unwrap();
    store.store().set_latency(latency);
}

#[test]
fn overload_is_refused_with_503_and_retry_after() {
    let dir = TempDir::new("overload");
    let tokio = tokio();
    for heavy in [false, true] {
        let config = Config {
            max_renders: 1,
            max_queued: 1,
            render_threads: 1,
            heavy_queued: 1,
            heavy_keys: if heavy { 0 } else { 1_000_000 },
            ..dir.config()
        };
        let server = tokio.block_on(serve::start(config, 0)).unwrap();
        let p = size(10, 5);
        slow_down(&tokio, &server, p, Duration::from_millis(300));
        let client = client();
        let path = "/feed?questions=10&answers=5";
        let replies = tokio.block_on(futures::future::join_all(
            (0..6).map(|_| get(&client, &server, path)),
        ));
        let ok = replies.iter().filter(|r| r.status == 200).count();
        let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
        assert_eq!((ok, refused.len()), (2, 4), "heavy={heavy}: {replies:?}");
        for r in refused {
            assert_eq!(r.headers["retry-after"], "1");
            assert!(r.body.starts_with("overloaded: "), "{}", r.body);
        }
        assert_eq!(server.app().refused(), 4);
        // /stats is outside the limits, and shows which threads rendered.
        let stats = tokio.block_on(get(&client, &server, "/stats")).body;
        let lane = if heavy { "lane=render" } else { "lane=io" };
        assert!(stats.contains(lane), "{stats}");
        assert!(stats.contains("refused (503, overloaded): 4"), "{stats}");
        tokio.block_on(server.shutdown()).unwrap();
    }
}

#[test]
fn a_request_past_its_deadline_gets_503_and_the_server_goes_on() {
    let dir = TempDir::new("deadline");
    let tokio = tokio();
    for heavy in [false, true] {
        let config = Config {
            request_timeout: Duration::from_millis(200),
            heavy_keys: if heavy { 0 } else { 1_000_000 },
            ..dir.config()
        };
        let server = tokio.block_on(serve::start(config, 0)).unwrap();
        let p = size(10, 5);
        slow_down(&tokio, &server, p, Duration::from_millis(300));
        let client = client();
        let reply = tokio.block_on(get(&client, &server, "/feed?questions=10&answers=5"));
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert!(
            reply
                .body
                .contains("not ready within the request timeout of 200ms"),
            "{}",
            reply.body
        );
        assert_eq!(server.app().timed_out(), 1);
        slow_down(&tokio, &server, p, Duration::ZERO);
        let reply = tokio.block_on(get(&client, &server, "/feed?questions=10&answers=5"));
        assert_eq!(reply.status, 200, "heavy={heavy}");
        tokio.block_on(server.shutdown()).unwrap();
    }
}

/// A connection that sent `partial` and nothing more: whether the server closed it within
/// `within` (EOF or a reset), reading whatever it sent first.
fn closed_by_server(addr: std::net::SocketAddr, partial: &[u8], within: Duration) -> bool {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(partial).unwrap();
    conn.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0; 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 response before the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false, // still open when `within` ran out
        }
    }
}

#[test]
fn slow_and_idle_clients_are_disconnected() {
    let dir = TempDir::new("slowloris");
    let tokio = tokio();
    let config = Config {
        header_read_timeout: Duration::from_millis(300),
        ..dir.config()
    };
    let server = tokio.block_on(serve::start(config, 0)).unwrap();
    let addr = server.addr();
    let within = Duration::from_secs(20);
    let partial = b"GET /feed?questions=10 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    let cases: [(&str, &[u8]); 3] = [
        ("a partial request", partial),
        ("a connection that sends nothing", b""),
        (
            "a kept-alive connection after its request",
            b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ),
    ];
    for (case, sent) in cases {
        assert!(closed_by_server(addr, sent, within), "{case}: still open");
    }
    // Meanwhile and after, pages are served.
    let reply = tokio.block_on(get(&client(), &server, "/feed?questions=10"));
    assert_eq!(reply.status, 200);
    tokio.block_on(server.shutdown()).unwrap();
}

#[test]
fn shutdown_with_a_partial_request_open_ends_within_its_grace() {
    let dir = TempDir::new("shutdown");
    let tokio = tokio();
    let config = Config {
        header_read_timeout: Duration::from_secs(600),
        shutdown_grace: Duration::from_millis(300),
        ..dir.config()
    };
    let server = tokio.block_on(serve::start(config, 0)).unwrap();
    let mut partial = TcpStream::connect(server.addr()).unwrap();
    partial
        .write_all(b"GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100)); // accepted
    let stopped = tokio
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), server.shutdown()).await });
    assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
    partial
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0; 64];
    assert!(
        matches!(partial.read(&mut buf), Ok(0) | Err(_)),
        "the partial connection was closed"
    );
}

#[test]
fn a_silent_memcached_costs_one_timeout_then_is_backed_off() {
    // The kernel accepts connections to this listener; nothing ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let dir = TempDir::new("silent-mc");
    let tokio = tokio();
    let config = Config {
        memcached: vec![addr.clone()],
        memcached_timeout: Duration::from_millis(200),
        ..dir.config()
    };
    let server = tokio.block_on(serve::start(config, 0)).unwrap();
    let client = client();
    let page = feed_page(size(10, 5));
    for _ in 0..5 {
        let reply = tokio.block_on(get(&client, &server, "/feed?questions=10&answers=5"));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.body == page);
    }
    let health = &server.app().memcached_health()[0];
    assert!(health.backed_off, "{health:?}");
    assert_eq!(
        health.failures, 1,
        "one timeout, then backed off: {health:?}"
    );
    assert!(health.skipped >= 4, "{health:?}");
    let stats = tokio.block_on(get(&client, &server, "/stats")).body;
    assert!(
        stats.contains(&format!("memcached {addr}: backed off failures=1")),
        "{stats}"
    );
    tokio.block_on(server.shutdown()).unwrap();
}
