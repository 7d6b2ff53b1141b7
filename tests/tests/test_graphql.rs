//! GraphQL requests (async-graphql) executed inside asynq runs (`asynq_graphql`): nested
//! lists in one call per level, partial results, failed runs as error responses, batches,
//! asynq tasks in resolvers, many requests at once on one runtime. The FEED-1 query:
//! test_graphql_feed.rs.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{
    BatchRequest, BatchResponse, EmptyMutation, EmptySubscription, Object, Request, Schema,
};
use asynq_core::{DataSource, Error, Runtime, Yieldable as _, asynq};
use serde_json::{Value, json};

/// Users: the key is a user id, the value its name; ids at or above 1000 fail on their own
/// (a shard that is down), and the calls are recorded.
#[derive(Default)]
struct Users {
    calls: Mutex<Vec<Vec<u64>>>,
}

impl DataSource for Users {
    type Key = u64;
    type Value = String;
    type Error = String;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, String)>, String> {
        let each = self.fetch_each(keys).await?;
        each.into_iter().map(|(k, v)| Ok((k, v?))).collect()
    }

    async fn fetch_each(&self, keys: &[u64]) -> Result<Vec<(u64, Result<String, String>)>, String> {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        self.calls.lock().unwrap().push(sorted);
        Ok(keys
            .iter()
            .map(|&k| match k {
                k if k >= 1000 => (k, Err(format!("the shard of user {k} is down"))),
                k => (k, Ok(format!("user{k}"))),
            })
            .collect())
    }
}

/// Friends of a user: `k -> [k + 1, k + 2]`, counting calls.
#[derive(Default)]
struct Friends {
    calls: AtomicUsize,
}

impl DataSource for Friends {
    type Key = u64;
    type Value = Vec<u64>;
    type Error = std::convert::Infallible;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, Vec<u64>)>, Self::Error> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(keys.iter().map(|&k| (k, vec![k + 1, k + 2])).collect())
    }
}

/// The name, shouted: an asynq function, awaited by a resolver.
#[asynq]
fn shout(id: u64) -> Result<String, Error> {
    Ok(Users::load(id).await?.to_uppercase())
}

struct User(u64);

#[Object]
impl User {
    async fn id(&self) -> u64 {
        self.0
    }

    /// Nullable: a failed fetch is a field error and a `null`, its siblings unharmed.
    async fn name(&self) -> async_graphql::Result<Option<String>> {
        Ok(Some(Users::load(self.0).await?))
    }

    async fn shouted(&self) -> async_graphql::Result<String> {
        Ok(shout(self.0).into_future().await?)
    }

    async fn friends(&self) -> async_graphql::Result<Vec<User>> {
        Ok(Friends::load(self.0).await?.into_iter().map(User).collect())
    }

    async fn boom(&self) -> u64 {
        let id = self.0;
        // Every id panics (an `assert!` rather than `panic!`, so that the macro's code after
        // the call is not unreachable).
        assert!(id == u64::MAX, "user {id} cannot be resolved");
        id
    }

    async fn forever(&self) -> u64 {
        std::future::pending().await
    }
}

struct Query;

#[Object]
impl Query {
    async fn users(&self, ids: Vec<u64>) -> Vec<User> {
        ids.into_iter().map(User).collect()
    }

    async fn user(&self, id: u64) -> User {
        User(id)
    }
}

type TestSchema = Schema<Query, EmptyMutation, EmptySubscription>;

fn setup() -> (Runtime, TestSchema) {
    let rt = Runtime::new()
        .with_source(Users::default())
        .with_source(Friends::default());
    (rt, Schema::new(Query, EmptyMutation, EmptySubscription))
}

fn users_calls(rt: &Runtime) -> Vec<Vec<u64>> {
    rt.source::<Users>().unwrap().calls.lock().unwrap().clone()
}

fn execute(
    rt: &Runtime,
    schema: &TestSchema,
    request: impl Into<Request>,
) -> async_graphql::Response {
    futures::executor::block_on(asynq_graphql::execute(rt, schema, request)).0
}

#[test]
fn nested_lists_are_one_call_per_level() {
    let (rt, schema) = setup();
    // 40 users (more than futures' `join_all` polls inline), each with 2 friends, each with 2
    // friends: the names of every level, and the friends lists of two levels.
    let ids: Vec<u64> = (0..40).map(|i| i * 10).collect();
    let query =
        format!("{{ users(ids: {ids:?}) {{ id name friends {{ name friends {{ id name }} }} }} }}");
    let (response, stats) =
        futures::executor::block_on(asynq_graphql::execute(&rt, &schema, query));
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let json = response.data.into_json().unwrap();
    let users = json["users"].as_array().unwrap();
    assert_eq!(users.len(), 40);
    for (user, &id) in users.iter().zip(&ids) {
        assert_eq!(user["id"], json!(id));
        assert_eq!(user["name"], json!(format!("user{id}")));
        let friends = user["friends"].as_array().unwrap();
        for (friend, fid) in friends.iter().zip([id + 1, id + 2]) {
            assert_eq!(friend["name"], json!(format!("user{fid}")));
            let theirs: Vec<_> = friend["friends"].as_array().unwrap().iter().collect();
            assert_eq!(
                theirs[0],
                &json!({"id": fid + 1, "name": format!("user{}", fid + 1)})
            );
            assert_eq!(
                theirs[1],
                &json!({"id": fid + 2, "name": format!("user{}", fid + 2)})
            );
        }
    }
    // Round 1: the 40 names and friends lists. Round 2: the friends' names and lists. Round 3:
    // their friends' names not fetched yet.
    assert_eq!(stats.rounds, 3);
    assert_eq!(
        rt.source::<Friends>()
            .unwrap()
            .calls
            .load(Ordering::Relaxed),
        2
    );
    let calls = users_calls(&rt);
    assert_eq!(calls.len(), 3, "{calls:?}");
    let level = |offsets: &[u64]| -> BTreeSet<u64> {
        ids.iter()
            .flat_map(|id| offsets.iter().map(move |o| id + o))
            .collect()
    };
    assert_eq!(calls[0], level(&[0]).into_iter().collect::<Vec<_>>());
    assert_eq!(calls[1], level(&[1, 2]).into_iter().collect::<Vec<_>>());
    // Friends of friends: id + 2 (already fetched as a friend), id + 3, id + 4.
    assert_eq!(calls[2], level(&[3, 4]).into_iter().collect::<Vec<_>>());
    assert_eq!((stats.calls(), stats.keys()), (5, 40 + 80 + 80 + 40 + 80));
}

#[test]
fn a_failing_field_is_null_with_an_error_and_its_siblings_resolve() {
    let (rt, schema) = setup();
    let response = execute(&rt, &schema, "{ users(ids: [1, 1001, 2]) { id name } }");
    let json = response.data.clone().into_json().unwrap();
    let users = json["users"].as_array().unwrap();
    assert_eq!(users.len(), 3);
    assert_eq!(users[0], json!({"id": 1, "name": "user1"}));
    assert_eq!(users[2], json!({"id": 2, "name": "user2"}));
    // The failed field has no value (async-graphql leaves it out of the object).
    assert_eq!(users[1]["id"], json!(1001));
    assert_eq!(users[1]["name"], Value::Null);
    assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
    let error = &response.errors[0];
    assert!(
        error.message.ends_with("the shard of user 1001 is down"),
        "{}",
        error.message
    );
    assert!(error.message.contains("key 1001"), "{}", error.message);
    let path = serde_json::to_value(&error.path).unwrap();
    assert_eq!(path, json!(["users", 1, "name"]));
    // One call for the three keys: the failure of one key did not split the batch.
    assert_eq!(users_calls(&rt), vec![vec![1, 2, 1001]]);
}

#[test]
fn a_panicking_resolver_fails_its_request_only() {
    let (rt, schema) = setup();
    let response = execute(&rt, &schema, "{ users(ids: [1, 2]) { name boom } }");
    assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
    let message = &response.errors[0].message;
    assert!(
        message.starts_with("the request's asynq run failed: "),
        "{message}"
    );
    assert!(
        message.ends_with("panicked: user 1 cannot be resolved"),
        "{message}"
    );
    assert_eq!(response.data, async_graphql::Value::Null);
    // The runtime serves the next request.
    let response = execute(&rt, &schema, "{ user(id: 3) { name } }");
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert_eq!(
        response.data.into_json().unwrap(),
        json!({"user": {"name": "user3"}})
    );
}

/// A resolver waiting on something nothing will ever wake: async-graphql's combinators hold
/// clones of the run's waker, so the run cannot tell it from a resolver waiting on a timer and
/// waits (see `asynq_core::any`). The caller's deadline ends the request; the run is dropped
/// with it, and the runtime serves the next request.
#[test]
fn a_resolver_that_never_finishes_holds_its_request_until_the_callers_deadline() {
    let (rt, schema) = setup();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let request = asynq_graphql::execute(&rt, &schema, "{ user(id: 1) { name forever } }");
    let outcome =
        tokio.block_on(async { tokio::time::timeout(Duration::from_millis(200), request).await });
    assert!(outcome.is_err(), "the request cannot finish");
    assert_eq!(users_calls(&rt), vec![vec![1]], "its fetches were made");
    let response = execute(&rt, &schema, "{ user(id: 2) { name } }");
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert_eq!(
        response.data.into_json().unwrap(),
        json!({"user": {"name": "user2"}})
    );
}

#[test]
fn an_invalid_request_is_answered_without_fetching() {
    let (rt, schema) = setup();
    let (response, stats) = futures::executor::block_on(asynq_graphql::execute(
        &rt,
        &schema,
        "{ users(ids: [1]) { nosuchfield } }",
    ));
    assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
    assert!(response.errors[0].message.contains("nosuchfield"));
    assert_eq!((stats.rounds, stats.calls()), (0, 0));
}

#[test]
fn asynq_tasks_in_resolvers_batch_with_plain_fetches() {
    let (rt, schema) = setup();
    let query = "{ users(ids: [1, 2, 3]) { name shouted friends { shouted } } }";
    let (response, stats) =
        futures::executor::block_on(asynq_graphql::execute(&rt, &schema, query));
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let json = response.data.into_json().unwrap();
    assert_eq!(json["users"][2]["shouted"], "USER3");
    assert_eq!(json["users"][2]["friends"][1]["shouted"], "USER5");
    // Names and shouted names of 1..3 in one call, with the friends lists; then 2..5.
    assert_eq!(users_calls(&rt), vec![vec![1, 2, 3], vec![4, 5]]);
    assert_eq!(stats.rounds, 2);
}

#[test]
fn a_batch_of_requests_shares_its_calls() {
    let (rt, schema) = setup();
    let batch = BatchRequest::Batch(vec![
        Request::new("{ users(ids: [1, 2]) { name friends { name } } }"),
        Request::new("{ users(ids: [2, 7]) { name friends { name } } }"),
        Request::new("{ user(id: 1001) { name } }"),
    ]);
    let (response, stats) =
        futures::executor::block_on(asynq_graphql::execute_batch(&rt, &schema, batch));
    let BatchResponse::Batch(responses) = response else {
        panic!("a batch answers a batch")
    };
    assert_eq!(responses.len(), 3);
    assert!(responses[0].errors.is_empty() && responses[1].errors.is_empty());
    let second = responses[1].data.clone().into_json().unwrap();
    assert_eq!(second["users"][1]["friends"][1]["name"], "user9");
    assert_eq!(responses[2].errors.len(), 1); // its own failure only
    assert_eq!(
        users_calls(&rt),
        vec![vec![1, 2, 7, 1001], vec![3, 4, 8, 9]],
        "each level of the three requests in one call"
    );
    assert_eq!((stats.rounds, stats.calls()), (2, 2 + 1));
}

#[test]
fn many_requests_at_once_on_one_runtime() {
    const REQUESTS: u64 = 64;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let (rt, schema) = setup();
    let (rt, schema) = (Arc::new(rt), schema);
    let results = tokio.block_on(async {
        let requests = (0..REQUESTS).map(|i| {
            let (rt, schema) = (Arc::clone(&rt), schema.clone());
            tokio::spawn(async move {
                let ids: Vec<u64> = (0..20).map(|k| i * 10 + k).collect();
                let query = format!("{{ users(ids: {ids:?}) {{ name friends {{ name }} }} }}");
                let (response, stats) = asynq_graphql::execute(&rt, &schema, query).await;
                (i, response, stats)
            })
        });
        let all = futures::future::join_all(requests);
        tokio::time::timeout(Duration::from_secs(120), all)
            .await
            .expect("64 small requests finish within 2 minutes")
    });
    assert_eq!(results.len(), REQUESTS as usize);
    for joined in results {
        let (i, response, stats) = joined.unwrap();
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let json = response.data.into_json().unwrap();
        let users = json["users"].as_array().unwrap();
        assert_eq!(users.len(), 20);
        assert_eq!(users[19]["name"], json!(format!("user{}", i * 10 + 19)));
        assert_eq!(
            users[19]["friends"][1]["name"],
            json!(format!("user{}", i * 10 + 21))
        );
        // Each request is a run of its own: its own rounds and calls, none shared.
        assert_eq!(
            (stats.rounds, stats.calls(), stats.keys()),
            (2, 3, 20 + 20 + 2)
        );
    }
    assert_eq!(users_calls(&rt).len(), 2 * REQUESTS as usize);
}

#[test]
fn a_query_nested_as_deep_as_a_body_allows_is_an_error_not_a_crash() {
    // 20,000 nested selections: about the 64 KiB the server accepts in a body, parsed on a
    // thread with the 2 MiB stack of tokio's workers.
    let depth = 20_000;
    let query = format!(
        "{{ users(ids: [1]) {}{} }}",
        "{ friends ".repeat(depth),
        "}".repeat(depth)
    );
    let errors = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let (rt, schema) = setup();
            execute(&rt, &schema, query).errors
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    // async-graphql's parser stops at its own nesting limit, before anything is resolved.
    assert!(
        errors[0].message.contains("stack limit reached"),
        "{}",
        errors[0].message
    );
}
