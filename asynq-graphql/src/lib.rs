//! GraphQL requests of [async-graphql] executed inside an asynq run: every level of a query
//! is one call per data source, with no DataLoader, no delay timer and no `yield_now`.
//!
//! async-graphql resolves the fields of a query concurrently, level after level. With a
//! DataLoader, each level's fetches are collected for a fixed delay (1 ms by default) and
//! sent when the timer fires: a guess, which either splits a level into several calls (34
//! calls instead of 3 for the FEED-1 page of `docs/feed1.md`) or adds latency. Executed
//! inside an asynq run ([`execute`]), a resolver simply awaits a fetch request
//! (`Users::load(id).await`) or an asynq task (through
//! [`Yieldable::into_future`](asynq_core::Yieldable::into_future)); the run sends a round
//! exactly when every resolver of the request waits, so that each level of the query is one
//! call per source, however the executor nests its futures. The fetches of sibling fields,
//! of the items of lists and of the requests of a batch ([`execute_batch`]) all share rounds,
//! and each key is fetched once per request (the run's cache).
//!
//! The mechanism underneath is [`asynq_core::any`]: a request's future is the root of a run.
//! This crate adds what a server needs around it: a failed run (a resolver that panicked or
//! waits on something that can never happen) becomes a GraphQL error response rather than a
//! lost request, and the run's [`Stats`] come back with the response; and one complexity
//! budget for all the requests of a batch ([`ComplexityBudget`], charged by the
//! [`ChargeComplexity`] extension), since async-graphql bounds each request's alone.
//!
//! # Examples
//!
//! ```
//! use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};
//! use asynq_core::{DataSource, Runtime};
//!
//! /// Users by id: one call answers a whole level of the query.
//! struct Names;
//! impl DataSource for Names {
//!     type Key = u32;
//!     type Value = String;
//!     type Error = std::io::Error;
//!     async fn fetch(&self, ids: &[u32]) -> Result<Vec<(u32, String)>, Self::Error> {
//!         Ok(ids.iter().map(|&id| (id, format!("user {id}"))).collect())
//!     }
//! }
//!
//! struct User(u32);
//!
//! #[Object]
//! impl User {
//!     async fn name(&self) -> async_graphql::Result<String> {
//!         Ok(Names::load(self.0).await?) // waits for the round, with every other name
//!     }
//!     async fn friends(&self) -> Vec<User> {
//!         vec![User(self.0 + 1), User(self.0 + 2)]
//!     }
//! }
//!
//! struct Query;
//!
//! #[Object]
//! impl Query {
//!     async fn users(&self, ids: Vec<u32>) -> Vec<User> {
//!         ids.into_iter().map(User).collect()
//!     }
//! }
//!
//! let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
//! let rt = Runtime::new().with_source(Names);
//! let query = "{ users(ids: [1, 2, 3]) { name friends { name } } }";
//! // Any executor: `.await` it in an axum handler (the future is `Send`).
//! let (response, stats) = futures::executor::block_on(asynq_graphql::execute(&rt, &schema, query));
//! assert!(response.errors.is_empty(), "{:?}", response.errors);
//! let json = response.data.into_json()?;
//! assert_eq!(json["users"][2]["friends"][1]["name"], "user 5");
//! // `friends` fetches nothing, so every name resolver of the query waits at once: the names
//! // of users 1 to 3 and of their friends 2 to 5 in one call, each key once.
//! assert_eq!((stats.rounds, stats.calls(), stats.keys()), (1, 1, 5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # From an axum handler
//!
//! The runtime is built once and shared (it is `Send + Sync`); each request is one run. The
//! FEED-1 example of the repository (`asynq-examples/src/graphql.rs`) serves a schema this
//! way at `/graphql`, with the run's figures in response headers.
//!
//! ```
//! use std::sync::Arc;
//! use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
//! use asynq_core::Runtime;
//! use axum::extract::State;
//! use axum::routing::post;
//!
//! struct Query;
//! #[Object]
//! impl Query {
//!     async fn hello(&self) -> &str {
//!         "world"
//!     }
//! }
//! type AppSchema = Schema<Query, EmptyMutation, EmptySubscription>;
//!
//! async fn graphql(
//!     State((rt, schema)): State<(Arc<Runtime>, AppSchema)>,
//!     axum::Json(request): axum::Json<async_graphql::Request>,
//! ) -> axum::Json<async_graphql::Response> {
//!     let (response, _stats) = asynq_graphql::execute(&rt, &schema, request).await;
//!     axum::Json(response)
//! }
//!
//! let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
//! let app: axum::Router = axum::Router::new()
//!     .route("/graphql", post(graphql))
//!     .with_state((Arc::new(Runtime::new()), schema));
//! # drop(app);
//! ```
//!
//! # What runs where
//!
//! Parsing, validation and every resolver run inside the run, on the thread polling it.
//! Resolvers may await anything: fetch requests and asynq tasks batch, and futures that
//! wait on the outside world (a tokio timer, a channel, a client of a store that asynq does
//! not know) keep the run's waker and wake it when they can go on. A resolver must not start a
//! run of its own with `Runtime::run` (it would wait for the thread that has to run it: the
//! run fails with `Error::NestedRun`, and the request with it).
//!
//! [async-graphql]: https://docs.rs/async-graphql

mod budget;

use std::fmt::Display;

pub use budget::{ChargeComplexity, ComplexityBudget};

use async_graphql::{
    BatchRequest, BatchResponse, ObjectType, Request, Response, Schema, ServerError,
    SubscriptionType,
};
use asynq_core::{Runtime, Stats, any};

/// Execute one GraphQL request on `schema` as one asynq run on `runtime`: the response, and
/// the run's statistics (rounds, calls per source, keys).
///
/// Resolvers await fetch requests of `runtime`'s sources and asynq tasks; each level of the
/// query is then one call per source (see the crate docs). The future is `Send` (an axum
/// handler awaits it) and runs under any executor.
///
/// A run that fails as a whole (a resolver panicked, or waits on something nothing can
/// ever wake) answers a response with one error saying so and no data; the errors of single
/// fields stay those fields' errors, as GraphQL's partial results want.
pub async fn execute<Query, Mutation, Subscription>(
    runtime: &Runtime,
    schema: &Schema<Query, Mutation, Subscription>,
    request: impl Into<Request>,
) -> (Response, Stats)
where
    Query: ObjectType + 'static,
    Mutation: ObjectType + 'static,
    Subscription: SubscriptionType + 'static,
{
    let request = request.into();
    let root = any(async move { Ok::<_, asynq_core::Error>(schema.execute(request).await) });
    let (result, stats) = runtime.run_async(root).with_stats().await;
    (result.unwrap_or_else(|error| failed(&error)), stats)
}

/// Execute a batch of GraphQL requests (or a single one) as one asynq run: the fetches of all
/// the requests share rounds, and each key is fetched once for the whole batch.
///
/// async-graphql executes the requests of a batch concurrently; inside one run their
/// resolvers' fetches are batched together, so that a batch of `n` similar queries costs the
/// calls of one. A run that fails as a whole fails every request of the batch, each with the
/// same error (see [`execute`]).
///
/// async-graphql bounds the complexity of each request of the batch; to bound the batch's
/// total, put a [`ComplexityBudget`] into its data and register [`ChargeComplexity`] with the
/// schema.
pub async fn execute_batch<Query, Mutation, Subscription>(
    runtime: &Runtime,
    schema: &Schema<Query, Mutation, Subscription>,
    batch: BatchRequest,
) -> (BatchResponse, Stats)
where
    Query: ObjectType + 'static,
    Mutation: ObjectType + 'static,
    Subscription: SubscriptionType + 'static,
{
    let count = match &batch {
        BatchRequest::Single(_) => None,
        BatchRequest::Batch(requests) => Some(requests.len()),
    };
    let root = any(async move { Ok::<_, asynq_core::Error>(schema.execute_batch(batch).await) });
    let (result, stats) = runtime.run_async(root).with_stats().await;
    let response = result.unwrap_or_else(|error| match count {
        None => BatchResponse::Single(failed(&error)),
        Some(n) => BatchResponse::Batch((0..n).map(|_| failed(&error)).collect()),
    });
    (response, stats)
}

/// The response of a request whose run failed as a whole.
fn failed(error: &impl Display) -> Response {
    let message = format!("the request's asynq run failed: {error}");
    Response::from_errors(vec![ServerError::new(message, None)])
}
