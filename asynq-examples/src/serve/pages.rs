//! The pages: `/profile/{uid}`, `/feed`, `/stats`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asynq_core::{DataSource as _, Stats};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{App, CALLS_HEADER, Failure, MAX_FEED, RING, ROUNDS_HEADER, RunRecord, page_keys};
use crate::async_kv::{BoxError, ReadThrough};
use crate::feed::{self, Params};

/// What a response reports of its run.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Figures {
    rounds: usize,
    calls: usize,
    keys: usize,
    elapsed: Duration,
}

impl From<&Stats> for Figures {
    fn from(s: &Stats) -> Self {
        Figures {
            rounds: s.rounds,
            calls: s.calls(),
            keys: s.keys(),
            elapsed: s.elapsed,
        }
    }
}

/// A response with a `text/plain` body.
pub(super) fn plain(status: StatusCode, body: String) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    (status, headers, body).into_response()
}

impl App {
    /// Record a page's run and make its response, with the run's figures in the headers.
    fn respond(
        &self,
        request: String,
        result: Result<String, Failure>,
        stats: Figures,
        heavy: bool,
    ) -> Response {
        let (status, body) = match result {
            Ok(page) => (StatusCode::OK, page),
            Err((status, message)) => (status, format!("{message}\n")),
        };
        self.record(RunRecord {
            request,
            status: status.as_u16(),
            rounds: stats.rounds,
            calls: stats.calls,
            keys: stats.keys,
            elapsed: stats.elapsed,
            heavy,
        });
        let mut headers = HeaderMap::new();
        let content_type = if status.is_success() {
            "text/html; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(ROUNDS_HEADER.clone(), HeaderValue::from(stats.rounds));
        headers.insert(CALLS_HEADER.clone(), HeaderValue::from(stats.calls));
        (status, headers, body).into_response()
    }
}

/// The status of a page whose run failed: 404 for an absent user, 500 for the rest (a store
/// failed, or the data is inconsistent).
fn failure(error: &(dyn std::error::Error + 'static)) -> Failure {
    let status = match error.downcast_ref::<crate::profile::ProfileError>() {
        Some(crate::profile::ProfileError::NoSuchUser(_)) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, error.to_string())
}

/// The message of a run that failed because its data set's file is damaged.
fn damaged(failure: Failure) -> Failure {
    noted(
        failure,
        Some("the data set's file is damaged: it is rebuilt for the next request"),
    )
}

/// A failure's message with `note` (what is done about it) in parentheses.
fn noted(mut failure: Failure, note: Option<&str>) -> Failure {
    if let Some(note) = note {
        failure.1.push_str(&format!(" ({note})"));
    }
    failure
}

pub(super) async fn profile_page(
    State(app): State<Arc<App>>,
    UrlPath(uid): UrlPath<String>,
) -> Response {
    let request = format!("/profile/{uid}");
    let Ok(uid) = uid.parse::<i64>() else {
        let msg = format!("not a user id: {uid:?}");
        let failed = Err((StatusCode::BAD_REQUEST, msg));
        return app.respond(request, failed, Figures::default(), false);
    };
    let set = match app.profile.get(&app).await {
        Ok(set) => set,
        Err(e) => return app.respond(request, Err(e), Figures::default(), false),
    };
    let (page, stats) = set
        .rt
        .run_async(crate::profile::render_profile(uid))
        .with_stats()
        .await;
    let page = page.map_err(|e| match failure(&e) {
        f if set.damaged() => damaged(f),
        f => f,
    });
    app.respond(request, page, (&stats).into(), false)
}

/// `/feed`'s query: `questions=Q&answers=A`, each optional, percent-decoded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FeedQuery {
    pub(super) questions: Option<String>,
    pub(super) answers: Option<String>,
}

/// The page size asked for, within the limits of `app`.
pub(super) fn feed_params(
    app: &App,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Params, Failure> {
    let bad = |msg: String| (StatusCode::BAD_REQUEST, msg);
    let Query(query) =
        query.map_err(|e| bad(format!("{}; expected questions and answers", e.body_text())))?;
    let number = |name: &str, value: Option<String>, default: u64| match value {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| bad(format!("{name} must be a whole number, not {v:?}"))),
    };
    let p = Params {
        questions: number("questions", query.questions, 100)?,
        answers: number("answers", query.answers, 10)?,
    };
    if p.questions == 0 || p.questions > MAX_FEED.0 || p.answers > MAX_FEED.1 {
        let msg = format!(
            "questions must be 1 to {}, answers 0 to {}",
            MAX_FEED.0, MAX_FEED.1
        );
        return Err(bad(msg));
    }
    let (keys, max) = (page_keys(p), app.config.max_page_keys);
    if keys > max {
        return Err(bad(format!(
            "a page of {} questions with {} answers each asks for up to {keys} keys, more \
             than this server's limit of {max} (max_page_keys): at most {} questions with {} \
             answers",
            p.questions,
            p.answers,
            max / (5 + 3 * p.answers),
            p.answers
        )));
    }
    Ok(p)
}

pub(super) async fn feed_page(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Response {
    let request = uri
        .path_and_query()
        .map_or_else(|| "/feed".to_string(), |pq| pq.to_string());
    let p = match feed_params(&app, query) {
        Ok(p) => p,
        Err(e) => return app.respond(request, Err(e), Figures::default(), false),
    };
    if method == Method::HEAD {
        // The page's headers without its render: the status and type it would have.
        let mut headers = HeaderMap::new();
        let html = HeaderValue::from_static("text/html; charset=utf-8");
        headers.insert(header::CONTENT_TYPE, html);
        return (StatusCode::OK, headers).into_response();
    }
    let heavy = page_keys(p) > app.config.heavy_keys;
    let render = {
        let app = Arc::clone(&app);
        async move {
            let (page, figures) = render_feed(&app, p).await;
            app.respond(request, page, figures, heavy)
        }
    };
    if !heavy {
        return render.await;
    }
    let job: super::http::Job = Box::pin(render);
    match app.renderer.get() {
        Some(renderer) => renderer.render(&app, job).await,
        None => job.await, // not served by `serve` (a test of the handlers alone)
    }
}

/// Render the FEED-1 page of size `p`: its data set (made, or rebuilt, as needed), then the
/// run.
async fn render_feed(app: &App, p: Params) -> (Result<String, Failure>, Figures) {
    let set = match app.feeds.get(app, p).await {
        Ok(set) => set,
        Err(e) => return (Err(e), Figures::default()),
    };
    let (page, figures) = if app.config.naive {
        let store = set
            .rt
            .source::<ReadThrough>()
            .expect("a feed runtime has its store");
        let (page, figures) = naive_feed(store, p).await;
        let page = page.map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
        (page, figures)
    } else {
        let (page, stats) = set
            .rt
            .run_async(feed::feed::<ReadThrough>(p))
            .with_stats()
            .await;
        (page.map_err(|e| failure(&e)), (&stats).into())
    };
    let page = page.map_err(|f| noted(f, app.feeds.forget_if_damaged(app, p, &set)));
    (page, figures)
}

/// FEED-1 without asynq: one call of `store` per key, in the order the page needs them, as
/// [`feed::naive_on`] does over a blocking store.
async fn naive_feed(store: &ReadThrough, p: Params) -> (Result<String, BoxError>, Figures) {
    let start = Instant::now();
    let calls = AtomicUsize::new(0);
    let get = |key: String| get_one(store, &calls, key);
    let page = async {
        let mut out = String::new();
        for q in 0..p.questions {
            let author = get(format!("q:{q}:author")).await?;
            let _ = write!(
                out,
                "<q><h>{}</h><by>{}<img {}></by>",
                get(format!("q:{q}:title")).await?,
                get(format!("u:{author}:name")).await?,
                get(format!("u:{author}:photo")).await?
            );
            for a in get(format!("q:{q}:answers"))
                .await?
                .split(',')
                .filter(|s| !s.is_empty())
            {
                let author = get(format!("a:{a}:author")).await?;
                let _ = write!(
                    out,
                    "<a>{}<by>{}</by></a>",
                    get(format!("a:{a}:text")).await?,
                    get(format!("u:{author}:name")).await?
                );
            }
            out.push_str("</q>");
        }
        Ok(out)
    }
    .await;
    let calls = calls.load(Ordering::Relaxed);
    let figures = Figures {
        rounds: calls,
        calls,
        keys: calls,
        elapsed: start.elapsed(),
    };
    (page, figures)
}

/// One key's value from `store` in a call of its own, counted in `calls`; "" when absent.
async fn get_one(
    store: &ReadThrough,
    calls: &AtomicUsize,
    key: String,
) -> Result<String, BoxError> {
    calls.fetch_add(1, Ordering::Relaxed);
    let mut got = store.fetch(std::slice::from_ref(&key)).await?;
    Ok(got.pop().map(|(_, v)| v).unwrap_or_default())
}

pub(super) async fn stats_page(State(app): State<Arc<App>>) -> Response {
    let runs = app.last_runs();
    let mut out = format!(
        "pages served: {}; the last {} runs, newest first:\n",
        app.served(),
        runs.len()
    );
    debug_assert!(runs.len() <= RING);
    for r in runs {
        let _ = writeln!(
            out,
            "{} {} rounds={} calls={} keys={} ms={:.3} lane={}",
            r.status,
            r.request,
            r.rounds,
            r.calls,
            r.keys,
            r.elapsed.as_secs_f64() * 1e3,
            if r.heavy { "render" } else { "io" }
        );
    }
    let sizes: Vec<String> = app
        .feed_sizes()
        .iter()
        .map(|p| format!("q{}-a{}", p.questions, p.answers))
        .collect();
    let _ = write!(
        out,
        "\nrefused (503, overloaded): {}\ntimed out (503): {}\ndata sets rebuilt: {}\n\
         FEED-1 data sets held: {} of {} [{}]\n",
        app.refused(),
        app.timed_out(),
        app.rebuilt(),
        sizes.len(),
        app.config.max_feed_sizes,
        sizes.join(" ")
    );
    for h in app.memcached_health() {
        let _ = writeln!(
            out,
            "memcached {}: {} failures={} skipped={}{}",
            h.server,
            if h.backed_off { "backed off" } else { "up" },
            h.failures,
            h.skipped,
            h.last_error
                .map(|e| format!(" last error: {e}"))
                .unwrap_or_default()
        );
    }
    plain(StatusCode::OK, out)
}
