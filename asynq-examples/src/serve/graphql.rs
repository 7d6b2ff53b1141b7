//! `POST /graphql?questions=Q&answers=A`: the FEED-1 GraphQL schema ([`crate::graphql`]) over
//! the FEED-1 data set of that size (the one `/feed` renders; defaults 100 and 10), each
//! request executed inside one asynq run ([`asynq_graphql::execute`]).
//!
//! The body is a GraphQL request in JSON (`{"query": "...", "variables": {...}}`) or a batch
//! of them (a JSON array: one run for the batch). The answer is the GraphQL response in JSON,
//! status 200 even when it holds field errors (GraphQL's partial results), with the run's
//! rounds and calls in `X-Asynq-Rounds` and `X-Asynq-Calls`; a body that is not a GraphQL
//! request gets `400`. Requests pass the same limits as `/feed` (renders at once, the
//! request timeout, the largest page; heavy pages on the render threads); the body is at most
//! [`MAX_BODY`] bytes (`413` beyond), a batch at most [`MAX_BATCH`] requests (`400` beyond),
//! and the schema bounds each query's depth and complexity ([`crate::graphql::schema`]), so
//! that what one request can cost is bounded by the page size the server accepts.

use std::sync::{Arc, OnceLock};

use async_graphql::{BatchRequest, BatchResponse};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use asynq_core::Stats;

use super::pages::{FeedQuery, feed_params, plain};
use super::{App, CALLS_HEADER, ROUNDS_HEADER, RunRecord, page_keys};
use crate::async_kv::ReadThrough;
use crate::feed::Params;
use crate::graphql::{FeedSchema, ViaAsynq};

/// The largest body accepted, in bytes: ample for any query the schema accepts (the FEED-1
/// query is 75 bytes); a larger body is refused with `413` before it is read in full.
pub(super) const MAX_BODY: usize = 64 * 1024;

/// The most requests a batch may hold: the batch is one run, and each of its queries may cost
/// up to the schema's complexity limit.
pub(super) const MAX_BATCH: usize = 8;

/// The schema, built once (its registry is the same for every request).
fn schema() -> &'static FeedSchema<ViaAsynq<ReadThrough>> {
    static SCHEMA: OnceLock<FeedSchema<ViaAsynq<ReadThrough>>> = OnceLock::new();
    SCHEMA.get_or_init(crate::graphql::schema)
}

/// `POST /graphql`: check the page size and the body, then execute (see the module docs).
pub(super) async fn graphql_page(
    State(app): State<Arc<App>>,
    uri: Uri,
    query: Result<Query<FeedQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    let request = uri
        .path_and_query()
        .map_or_else(|| "/graphql".to_string(), |pq| pq.to_string());
    let bad = |app: &App, request: String, status: StatusCode, message: String| {
        record(app, request, status, None, false);
        plain(status, format!("{message}\n"))
    };
    let p = match feed_params(&app, query) {
        Ok(p) => p,
        Err((status, message)) => return bad(&app, request, status, message),
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => {
            let message = format!("the body is not a GraphQL request in JSON: {e}");
            return bad(&app, request, StatusCode::BAD_REQUEST, message);
        }
    };
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > MAX_BATCH
    {
        let message = format!(
            "a batch holds at most {MAX_BATCH} requests; this one holds {}",
            requests.len()
        );
        return bad(&app, request, StatusCode::BAD_REQUEST, message);
    }
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
    let batch = batch.data(p);
    let (response, stats) = asynq_graphql::execute_batch(&set.rt, schema(), batch).await;
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
