//! The `server` program's `POST /graphql`, started in this process on a free port of
//! 127.0.0.1 and asked through a real HTTP client: the FEED-1 query in 3 calls rendering the
//! reference page, concurrent requests, a batch in one run, and what a bad or hostile body
//! gets.

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
    body: String,
}

async fn post(client: &HttpClient, server: &Running, path: &str, body: String) -> Reply {
    let request = axum::http::Request::post(format!("http://{}{path}", server.addr()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
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

#[test]
fn the_feed_query_over_http_is_three_calls_and_the_reference_page() {
    let dir = TempDir::new("feed");
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
