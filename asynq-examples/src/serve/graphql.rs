//! `/graphql?questions=Q&answers=A`: the FEED-1 GraphQL schema ([`crate::graphql`]) over the
//! FEED-1 data set of that size (the one `/feed` renders; defaults 100 and 10), each request
//! (or batch) executed inside one asynq run ([`asynq_graphql::execute_batch`]).
//!
//! - `POST`: the body is a GraphQL request in JSON (`{"query": "...", "variables": {...}}`) or
//!   a batch of them (a JSON array: one run for the batch); a body that is not one gets `400`.
//! - `GET` (GraphQL over HTTP's form for queries): the request in the URL, beside the page
//!   size: `query`, and optionally `variables` and `extensions` (JSON) and `operationName`,
//!   percent-encoded. A mutation gets `405` with `Allow: POST`; a URL without `query`, with
//!   a parameter it does not know or with variables that are not JSON gets `400`.
//!
//! The answer is the GraphQL response in JSON, status 200 even when it holds field errors
//! (GraphQL's partial results), with the run's rounds and calls in `X-Asynq-Rounds` and
//! `X-Asynq-Calls`. Requests pass the same limits as `/feed` (renders at once, the request
//! timeout, the largest page; heavy pages on the render threads); the body is at most
//! [`MAX_BODY`] bytes (`413` beyond), a GET's query string at most [`MAX_GET_QUERY`] (`414`),
//! a batch at most [`MAX_BATCH`] requests (`400` beyond). The schema bounds each query's depth and complexity
//! ([`crate::graphql::schema`]), and a batch's queries share one complexity budget
//! ([`crate::graphql::MAX_BATCH_COMPLEXITY`]: the query that would go over it gets an error
//! of its own and runs nothing), so that what one request can cost is bounded by the page size
//! the server accepts, batch or not.

use std::sync::{Arc, OnceLock};

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, BatchResponse};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use asynq_core::Stats;
use serde::Deserialize;

use super::pages::{FeedQuery, feed_params, plain};
use super::{App, CALLS_HEADER, ROUNDS_HEADER, RunRecord, page_keys};
use crate::async_kv::ReadThrough;
use crate::feed::Params;
use crate::graphql::{FeedSchema, ViaAsynq};

/// The largest body accepted, in bytes: ample for any query the schema accepts (the FEED-1
/// query is 75 bytes); a larger body is refused with `413` before it is read in full.
pub(super) const MAX_BODY: usize = 64 * 1024;

/// The longest query string a GET may have, in bytes (URLs of more than 8 KiB are often cut by
/// proxies; larger queries go by POST); longer gets `414`.
pub(super) const MAX_GET_QUERY: usize = 8 * 1024;

/// The most requests a batch may hold (the batch is one run; its queries together cost at most
/// [`crate::graphql::MAX_BATCH_COMPLEXITY`]).
pub(super) const MAX_BATCH: usize = 8;

/// The schemas, built once (their registry is the same for every request): one for single
/// requests, and one that charges the queries of a batch to the batch's budget.
fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| Schemas {
        single: crate::graphql::schema(),
        batch: crate::graphql::batch_schema(),
    })
}

struct Schemas {
    single: FeedSchema<ViaAsynq<ReadThrough>>,
    batch: FeedSchema<ViaAsynq<ReadThrough>>,
}

/// The request line kept in `/stats`.
fn request_line(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| "/graphql".to_string(), |pq| pq.to_string())
}

/// A request refused before its run: recorded, and answered with `message`.
fn refuse(app: &App, request: String, status: StatusCode, message: String) -> Response {
    record(app, request, status, None, false);
    plain(status, format!("{message}\n"))
}

/// `POST /graphql`: check the page size and the body, then execute (see the module docs).
pub(super) async fn graphql_post(
    State(app): State<Arc<App>>,
    uri: Uri,
    query: Result<Query<FeedQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    let request = request_line(&uri);
    let p = match feed_params(&app, query) {
        Ok(p) => p,
        Err((status, message)) => return refuse(&app, request, status, message),
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => {
            let message = format!("the body is not a GraphQL request in JSON: {e}");
            return refuse(&app, request, StatusCode::BAD_REQUEST, message);
        }
    };
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > MAX_BATCH
    {
        let message = format!(
            "a batch holds at most {MAX_BATCH} requests; this one holds {}",
            requests.len()
        );
        return refuse(&app, request, StatusCode::BAD_REQUEST, message);
    }
    serve(app, request, p, batch).await
}

/// A GET's query string: the page size and the GraphQL request, each percent-decoded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetQuery {
    questions: Option<String>,
    answers: Option<String>,
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

/// `GET /graphql?query=...`: a query in the URL, under the same limits as a POST's (see the
/// module docs); mutations are refused with `405`.
pub(super) async fn graphql_get(State(app): State<Arc<App>>, uri: Uri) -> Response {
    let request = request_line(&uri);
    let length = uri.query().map_or(0, str::len);
    if length > MAX_GET_QUERY {
        let message = format!(
            "the query string holds {length} bytes, more than {MAX_GET_QUERY}; send large \
             queries with POST"
        );
        return refuse(&app, request, StatusCode::URI_TOO_LONG, message);
    }
    let bad = StatusCode::BAD_REQUEST;
    let get = match Query::<GetQuery>::try_from_uri(&uri) {
        Ok(Query(get)) => get,
        Err(e) => {
            let message = format!(
                "{}; expected query, and optionally variables, operationName, extensions, \
                 questions and answers",
                e.body_text()
            );
            return refuse(&app, request, bad, message);
        }
    };
    let page = Ok(Query(FeedQuery {
        questions: get.questions,
        answers: get.answers,
    }));
    let p = match feed_params(&app, page) {
        Ok(p) => p,
        Err((status, message)) => return refuse(&app, request, status, message),
    };
    let Some(query) = get.query else {
        let message = "GET /graphql needs the query in the URL (?query=...)".to_string();
        return refuse(&app, request, bad, message);
    };
    let mut graphql = async_graphql::Request::new(query);
    graphql.operation_name = get.operation_name;
    match (
        json("variables", get.variables),
        json("extensions", get.extensions),
    ) {
        (Ok(variables), Ok(extensions)) => {
            graphql.variables = variables;
            graphql.extensions = extensions;
        }
        (Err(message), _) | (_, Err(message)) => return refuse(&app, request, bad, message),
    }
    if is_mutation(&mut graphql) {
        record(&app, request, StatusCode::METHOD_NOT_ALLOWED, None, false);
        let message = "a mutation is not run for GET /graphql: send it with POST\n";
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, message.to_string());
        let allow = HeaderValue::from_static("POST");
        response.headers_mut().insert(header::ALLOW, allow);
        return response;
    }
    serve(app, request, p, BatchRequest::Single(graphql)).await
}

/// Parameter `name` of a GET, a JSON object (empty when absent).
fn json<T: serde::de::DeserializeOwned + Default>(
    name: &str,
    text: Option<String>,
) -> Result<T, String> {
    match text {
        None => Ok(T::default()),
        Some(text) => {
            serde_json::from_str(&text).map_err(|e| format!("{name} is not a JSON object: {e}"))
        }
    }
}

/// Whether the operation `request` would run is a mutation (parsed once: the executor reuses
/// the document). A query that does not parse, or names no operation among several, is left to
/// the executor, which answers its error.
fn is_mutation(request: &mut async_graphql::Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name.as_str()),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.is_some_and(|operation| operation.node.ty == OperationType::Mutation)
}

/// Execute `batch` for page size `p`: on the render threads when the page is heavy.
async fn serve(app: Arc<App>, request: String, p: Params, batch: BatchRequest) -> Response {
    let heavy = page_keys(p) > app.config.heavy_keys;
    let run = {
        let app = Arc::clone(&app);
        async move { execute(&app, request, p, batch, heavy).await }
    };
    if !heavy {
        return run.await;
    }
    let job: super::http::Job = Box::pin(run);
    match app.renderer.get() {
        Some(renderer) => renderer.render(&app, job).await,
        None => job.await,
    }
}

/// Execute `batch` on the data set of size `p`, record it and answer it.
async fn execute(
    app: &App,
    request: String,
    p: Params,
    batch: BatchRequest,
    heavy: bool,
) -> Response {
    let set = match app.feeds.get(app, p).await {
        Ok(set) => set,
        Err((status, message)) => {
            record(app, request, status, None, heavy);
            return plain(status, format!("{message}\n"));
        }
    };
    let (schema, batch) = match batch {
        BatchRequest::Single(request) => (&schemas().single, BatchRequest::Single(request)),
        batch => (&schemas().batch, batch.data(crate::graphql::batch_budget())),
    };
    let (response, stats) = asynq_graphql::execute_batch(&set.rt, schema, batch.data(p)).await;
    if failed_in_store(&response) {
        // A store error may come of a damaged data set file: have it checked and rebuilt.
        app.feeds.forget_if_damaged(app, p, &set);
    }
    record(app, request, StatusCode::OK, Some(&stats), heavy);
    let body = match serde_json::to_vec(&response) {
        Ok(body) => body,
        Err(e) => {
            let message = format!("the response could not be written as JSON: {e}\n");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, message);
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(ROUNDS_HEADER.clone(), HeaderValue::from(stats.rounds));
    headers.insert(CALLS_HEADER.clone(), HeaderValue::from(stats.calls()));
    (StatusCode::OK, headers, body).into_response()
}

/// Whether a response holds errors (a store's, possibly).
fn failed_in_store(response: &BatchResponse) -> bool {
    match response {
        BatchResponse::Single(r) => !r.errors.is_empty(),
        BatchResponse::Batch(rs) => rs.iter().any(|r| !r.errors.is_empty()),
    }
}

/// Keep the request's figures for `GET /stats` (none for a request refused before its run).
fn record(app: &App, request: String, status: StatusCode, stats: Option<&Stats>, heavy: bool) {
    app.record(RunRecord {
        request,
        status: status.as_u16(),
        rounds: stats.map_or(0, |s| s.rounds),
        calls: stats.map_or(0, Stats::calls),
        keys: stats.map_or(0, Stats::keys),
        elapsed: stats.map_or_else(Default::default, |s| s.elapsed),
        heavy,
    });
}
