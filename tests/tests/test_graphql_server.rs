//! The `server` program's `/graphql` (POST, and GET with the query in the URL), started in
//! this process on a free port of 127.0.0.1 and asked through a real HTTP client: the FEED-1
//! query in 3 calls rendering the reference page, concurrent requests, a batch in one run
//! within one complexity budget, and what a bad or hostile body or URL gets.

use std::path::PathBuf;

use asynq_examples::feed::{self, Params};
use asynq_examples::graphql::{self, FEED_QUERY};
use asynq_examples::serve::{Config, Running, start};
use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A directory of its own for the server's databases, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("asynq-graphql-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What came back for one request.
#[derive(Debug)]
struct Reply {
    status: u16,
    rounds: Option<usize>,
    calls: Option<usize>,
    /// The `Allow` header, if any.
    allow: Option<String>,
    body: String,
}

async fn post(client: &HttpClient, server: &Running, path: &str, body: String) -> Reply {
    let request = axum::http::Request::post(format!("http://{}{path}", server.addr()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    send(client, request).await
}

/// `method path` with no body.
async fn bodiless(client: &HttpClient, server: &Running, method: &str, path: &str) -> Reply {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", server.addr()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(client, request).await
}

async fn send(client: &HttpClient, request: axum::http::Request<Full<Bytes>>) -> Reply {
    let response = client.request(request).await.unwrap();
    let allow = response.headers().get("allow");
    let allow = allow.map(|value| value.to_str().unwrap().to_string());
    let figure = |name: &str| -> Option<usize> {
        let value = response.headers().get(name)?;
        Some(value.to_str().unwrap().parse().unwrap())
    };
    let (rounds, calls) = (figure("x-asynq-rounds"), figure("x-asynq-calls"));
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        rounds,
        calls,
        allow,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// The FEED-1 page made from a JSON response of [`FEED_QUERY`].
fn page(body: &str) -> String {
    let json: Value = serde_json::from_str(body).unwrap();
    let data = async_graphql::Value::from_json(json["data"].clone()).unwrap();
    let mut response = async_graphql::Response::new(data);
    if let Some(errors) = json.get("errors") {
        panic!("the response has errors: {errors}");
    }
    response.errors.clear();
    graphql::render(response).unwrap()
}

fn query(q: &str) -> String {
    json!({ "query": q }).to_string()
}

/// `text` percent-encoded for a URL's query string (every byte but the unreserved ones).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A running server of its own (FEED-1 data sets in `dir`), on a runtime of the test's.
fn with_server<F: std::future::Future<Output = ()>>(
    dir: &TempDir,
    test: impl FnOnce(HttpClient, Running) -> F,
) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let config = Config {
            users: 50,
            ..Config::new(dir.0.join("profile.sqlite"))
        };
        let server = start(config, 0).await.unwrap();
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        test(client, server).await;
    });
}

/// The reference page of Q = 10, A = 5.
fn assert_reference_page(body: &str) {
    let page = page(body);
    let p = Params {
        questions: 10,
        answers: 5,
    };
    assert_eq!(page, feed::hand_primed(&feed::memory_store(p), p));
    assert_eq!(feed::fnv1a64(page.as_bytes()), 0xac26_a36b_50ba_ee7b);
}

#[test]
fn a_get_runs_the_query_of_its_url_under_the_same_limits() {
    let dir = TempDir::new("get");
    with_server(&dir, |client, server| async move {
        let size = "questions=10&answers=5";
        let get = |params: String| {
            let path = format!("/graphql?{params}");
            let (client, server) = (&client, &server);
            async move { bodiless(client, server, "GET", &path).await }
        };

        // The FEED-1 query: 3 calls, the reference page.
        let reply = get(format!("{size}&query={}", encode(FEED_QUERY))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!((reply.rounds, reply.calls), (Some(3), Some(3)));
        assert_reference_page(&reply.body);

        // Variables and an operation's name, as GraphQL over HTTP puts them in the URL.
        let document = "query Other { user(id: 1) { name } } \
                        query Named($id: Int!) { user(id: $id) { name } }";
        let params = format!(
            "query={}&variables={}&operationName=Named",
            encode(document),
            encode(r#"{"id": 3}"#)
        );
        let reply = get(params).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let json: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json["data"]["user"]["name"], "User 3", "{}", reply.body);

        // A mutation is not run for a GET: 405, naming POST.
        let both = "query A { user(id: 1) { name } } mutation B { x }";
        let mutations = [
            format!("query={}", encode("mutation { x }")),
            format!("query={}&operationName=B", encode(both)),
        ];
        for params in mutations {
            let reply = get(params).await;
            assert_eq!(reply.status, 405, "{}", reply.body);
            assert_eq!(reply.allow.as_deref(), Some("POST"));
            assert_eq!(
                reply.body,
                "a mutation is not run for GET /graphql: send it with POST\n"
            );
            assert_eq!((reply.rounds, reply.calls), (None, None));
        }
        // The same mutation by POST reaches the schema, which has none: a GraphQL error.
        let reply = post(&client, &server, "/graphql", query("mutation { x }")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.body.contains("mutation"), "{}", reply.body);

        // What a GET must hold.
        let bad = [
            (
                size.to_string(),
                "GET /graphql needs the query in the URL (?query=...)\n",
            ),
            (
                format!("query={}&page=2", encode("{ user(id: 1) { name } }")),
                "unknown field `page`",
            ),
            (
                format!(
                    "query={}&variables=%7Bid",
                    encode("{ user(id: 1) { name } }")
                ),
                "variables is not a JSON object",
            ),
            (
                format!("questions=0&query={}", encode(FEED_QUERY)),
                "questions must be 1 to",
            ),
        ];
        for (params, message) in bad {
            let reply = get(params).await;
            assert_eq!(reply.status, 400, "{}", reply.body);
            assert!(reply.body.contains(message), "{}", reply.body);
            assert_eq!((reply.rounds, reply.calls), (None, None));
        }

        // The same complexity limit as a POST's: three aliased pages refused before any fetch.
        let selection = FEED_QUERY
            .trim_start_matches("{ feed")
            .trim_end_matches('}');
        let aliases: String = (0..3).map(|i| format!("f{i}: feed{selection} ")).collect();
        let reply = get(format!(
            "{size}&query={}",
            encode(&format!("{{ {aliases} }}"))
        ))
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!((reply.rounds, reply.calls), (Some(0), Some(0)));
        assert!(reply.body.contains("complex"), "{}", reply.body);

        // A query string over 8 KiB: 414, no run.
        let long = format!("{{ user(id: 1) {{ name }} }} #{}", "x".repeat(9 * 1024));
        let reply = get(format!("query={}", encode(&long))).await;
        assert_eq!(reply.status, 414, "{}", reply.body);
        assert!(
            reply.body.contains("send large queries with POST"),
            "{}",
            reply.body
        );
        assert_eq!((reply.rounds, reply.calls), (None, None));

        // Methods other than GET and POST: axum's 405, naming both.
        let reply = bodiless(&client, &server, "PUT", "/graphql").await;
        assert_eq!(reply.status, 405);
        let allow = reply.allow.unwrap_or_default();
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");

        server.shutdown().await.unwrap();
    });
}

#[test]
fn the_queries_of_a_batch_share_one_complexity_budget() {
    let dir = TempDir::new("budget");
    with_server(&dir, |client, server| async move {
        let path = "/graphql?questions=10&answers=5";
        let pages = |n: usize| {
            let one = json!({ "query": FEED_QUERY });
            Value::Array(vec![one; n]).to_string()
        };
        // Two pages are the budget (what one query may cost): both run, in 3 calls.
        let reply = post(&client, &server, path, pages(2)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!((reply.rounds, reply.calls), (Some(3), Some(3)));
        let json: Value = serde_json::from_str(&reply.body).unwrap();
        for response in json.as_array().unwrap() {
            assert_reference_page(&response.to_string());
        }
        // A third is refused with an error of its own; the first two are served.
        let reply = post(&client, &server, path, pages(3)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!((reply.rounds, reply.calls), (Some(3), Some(3)));
        let json: Value = serde_json::from_str(&reply.body).unwrap();
        let responses = json.as_array().unwrap();
        assert_eq!(responses.len(), 3);
        assert_reference_page(&responses[1].to_string());
        let message = responses[2]["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("complexity budget of 702"), "{message}");
        assert_eq!(responses[2]["data"], Value::Null);
        // Eight small queries fit in it together.
        let one = json!({ "query": "{ user(id: 1) { name } }" });
        let batch = Value::Array(vec![one; 8]).to_string();
        let reply = post(&client, &server, path, batch).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(!reply.body.contains("errors"), "{}", reply.body);
        assert_eq!((reply.rounds, reply.calls), (Some(1), Some(1)));
        server.shutdown().await.unwrap();
    });
}

#[test]
fn the_feed_query_over_http_is_three_calls_and_the_reference_page() {
    let dir = TempDir::new("feed");
    with_server(&dir, |client, server| async move {
        let path = "/graphql?questions=10&answers=5";

        // 16 at once, each its own run of 3 calls, each the reference page.
        let replies = futures::future::join_all(
            (0..16).map(|_| post(&client, &server, path, query(FEED_QUERY))),
        )
        .await;
        for reply in replies {
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!((reply.rounds, reply.calls), (Some(3), Some(3)));
            let page = page(&reply.body);
            let p = Params {
                questions: 10,
                answers: 5,
            };
            assert_eq!(page, feed::hand_primed(&feed::memory_store(p), p));
            assert_eq!(feed::fnv1a64(page.as_bytes()), 0xac26_a36b_50ba_ee7b);
        }

        // A batch: one run, each level of both requests in one call.
        let batch = json!([
            { "query": "{ question(id: 1) { title author { name } } }" },
            { "query": "{ question(id: 2) { title author { name } } user(id: 3) { name } }" },
        ]);
        let reply = post(&client, &server, path, batch.to_string()).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let json: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json[0]["data"]["question"]["title"], "Question 1");
        assert_eq!(json[1]["data"]["question"]["author"]["name"], "User 17");
        assert_eq!(json[1]["data"]["user"]["name"], "User 3");
        assert_eq!((reply.rounds, reply.calls), (Some(2), Some(2)));

        // A field of an absent question is an error of that field, beside its siblings.
        let reply = post(
            &client,
            &server,
            path,
            query("{ question(id: 99) { id title } user(id: 4) { name } }"),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let json: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json["data"]["user"]["name"], "User 4");
        assert_eq!(json["errors"][0]["path"], json!(["question", "title"]));

        // A body that is not a GraphQL request: 400, saying so.
        let reply = post(&client, &server, path, "query { feed { title } }".into()).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(
            reply
                .body
                .starts_with("the body is not a GraphQL request in JSON")
        );

        // The page size is checked as /feed checks it.
        let reply = post(&client, &server, "/graphql?questions=0", query(FEED_QUERY)).await;
        assert_eq!(reply.status, 400, "{}", reply.body);

        // A query asking for the page many times over under aliases is refused before it runs.
        let selection = FEED_QUERY
            .trim_start_matches("{ feed")
            .trim_end_matches('}');
        let aliases: String = (0..3).map(|i| format!("f{i}: feed{selection} ")).collect();
        let reply = post(&client, &server, path, query(&format!("{{ {aliases} }}"))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!((reply.rounds, reply.calls), (Some(0), Some(0)));
        let json: Value = serde_json::from_str(&reply.body).unwrap();
        let message = json["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("complex"), "{message}");

        // A body over the limit: 413 before it is read in full, and no run.
        let huge = query(&format!(
            "{{ user(id: 1) {{ name }} }} #{}",
            "x".repeat(100 * 1024)
        ));
        let reply = post(&client, &server, path, huge).await;
        assert_eq!(reply.status, 413, "{}", reply.body);
        assert_eq!((reply.rounds, reply.calls), (None, None));

        // A batch of more requests than the limit: 400 naming it, and no run.
        let one = json!({ "query": "{ user(id: 1) { name } }" });
        let batch = serde_json::Value::Array(vec![one; 9]);
        let reply = post(&client, &server, path, batch.to_string()).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(
            reply.body,
            "a batch holds at most 8 requests; this one holds 9\n"
        );
        assert_eq!((reply.rounds, reply.calls), (None, None));

        server.shutdown().await.unwrap();
    });
}
