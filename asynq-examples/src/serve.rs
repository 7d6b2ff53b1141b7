//! The `server` program's library: an axum web service rendering pages with asynq.
//!
//! One [`App`] holds the runtimes (built once, shared by every request); each request is one
//! run, awaited by its axum handler with [`Runtime::run_async`], whose figures go into the
//! response's `X-Asynq-Rounds` and `X-Asynq-Calls` headers and into a ring buffer of the last
//! runs that `GET /stats` lists.
//!
//! - `GET /profile/{uid}`: the profile page of Quora's asynq talk ([`crate::profile`]) over the
//!   SQLite file of [`Config::db`] (made and filled on first use): 3 rounds, 5 queries.
//! - `GET /feed?questions=Q&answers=A` (defaults 100 and 10): the FEED-1 page
//!   ([`crate::feed`]) over the [`ReadThrough`] source: SQLite queried on tokio's blocking
//!   pool, with memcached in front when [`Config::memcached`] names servers. Each page size
//!   has its data set in a file of its own beside the profile database, made on the first
//!   request for that size. The page is the response's body, byte for byte.
//! - `GET /stats`: the last [`RING`] runs, newest first, one line each.
//!
//! With [`Config::eager`], runs resume tasks as soon as their own keys are answered
//! ([`Runtime::eager_resume`]). With [`Config::naive`], `/feed` is rendered without asynq, one call of the same source per
//! key in the order the page needs them (the load comparison's baseline); its headers then
//! count those calls, and rounds equal calls.
//!
//! [`start`] binds 127.0.0.1 (port 0 picks a free port) and serves until the returned
//! [`Running`] is shut down or dropped: tests start the server in their own process.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asynq_core::{DataSource as _, Runtime, Stats};
use axum::Router;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::OnceCell;

use crate::async_kv::{AsyncMemcached, AsyncSqliteKv, ReadThrough};
use crate::feed::{self, Params};
use crate::profile;
use crate::sqlite::{Db, SqliteKv};

/// Runs kept for `GET /stats`.
pub const RING: usize = 64;

/// The largest page `/feed` renders: questions, answers per question.
pub const MAX_FEED: (u64, u64) = (10_000, 100);

/// Distinct page sizes `/feed` keeps data sets for.
pub const MAX_FEED_SIZES: usize = 16;

/// The header holding a page's rounds.
pub static ROUNDS_HEADER: HeaderName = HeaderName::from_static("x-asynq-rounds");
/// The header holding a page's calls to its sources.
pub static CALLS_HEADER: HeaderName = HeaderName::from_static("x-asynq-calls");

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// The profile site's SQLite file, made and filled on first use; FEED-1 data sets are
    /// kept in files beside it (`<stem>-feed1-q<Q>-a<A>.sqlite`).
    pub db: PathBuf,
    /// Users in the profile site.
    pub users: i64,
    /// memcached servers (`host:port`) in front of the FEED-1 store; none for SQLite alone.
    pub memcached: Vec<String>,
    /// Render `/feed` with one call per key instead of asynq.
    pub naive: bool,
    /// Run pages with [`Runtime::eager_resume`]: tasks resume as soon as their keys are
    /// answered, without waiting for the round's slower calls.
    pub eager: bool,
}

impl Config {
    /// SQLite alone, 1000 users, asynq.
    pub fn new(db: impl Into<PathBuf>) -> Self {
        Config {
            db: db.into(),
            users: 1000,
            memcached: Vec::new(),
            naive: false,
            eager: false,
        }
    }

    /// The FEED-1 data set's file for page size `p`.
    pub fn feed_db(&self, p: Params) -> PathBuf {
        let stem = self
            .db
            .file_stem()
            .map_or_else(|| "server".into(), |s| s.to_string_lossy().into_owned());
        let file = format!("{stem}-feed1-q{}-a{}.sqlite", p.questions, p.answers);
        self.db.with_file_name(file)
    }
}

/// One run, as `GET /stats` lists it.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// The request's path and query.
    pub request: String,
    /// The response's status.
    pub status: u16,
    /// Rounds of the run (for a naive page: its calls, each a round of its own).
    pub rounds: usize,
    /// Calls to sources.
    pub calls: usize,
    /// Keys sent.
    pub keys: usize,
    /// Wall time of the render.
    pub elapsed: Duration,
}

/// What every request shares: the runtimes and the statistics of the last runs.
#[derive(Debug)]
pub struct App {
    config: Config,
    profile: Runtime,
    profile_db: Db,
    cache: Option<Arc<AsyncMemcached>>,
    /// Per page size (questions, answers), its runtime once its data set is open.
    feeds: Mutex<HashMap<(u64, u64), FeedRuntime>>,
    runs: Mutex<VecDeque<RunRecord>>,
    served: AtomicUsize,
}

/// A page size's runtime, set once its data set is open.
type FeedRuntime = Arc<OnceCell<Arc<Runtime>>>;

/// An error page: status and text.
type Failure = (StatusCode, String);

impl App {
    /// Open the profile database (made and filled if needed) and the memcached client.
    /// Blocks while it makes the database: call it before serving, or on a blocking thread.
    pub fn open(config: Config) -> Result<App, Box<dyn std::error::Error + Send + Sync>> {
        let (profile_db, _) = profile::open(&config.db, config.users).map_err(|e| e.to_string())?;
        let cache = match config.memcached.as_slice() {
            [] => None,
            servers => Some(Arc::new(AsyncMemcached::new(servers)?)),
        };
        Ok(App {
            profile: profile::runtime(&profile_db).eager_resume(config.eager),
            profile_db,
            cache,
            feeds: Mutex::default(),
            runs: Mutex::new(VecDeque::with_capacity(RING)),
            served: AtomicUsize::new(0),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The profile site's database.
    pub fn profile_db(&self) -> &Db {
        &self.profile_db
    }

    /// The router of the service over this app.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/profile/{uid}", get(profile_page))
            .route("/feed", get(feed_page))
            .route("/stats", get(stats_page))
            .with_state(self)
    }

    /// The runtime of FEED-1 pages of size `p`, its data set made on first use.
    pub async fn feed_runtime(&self, p: Params) -> Result<Arc<Runtime>, Failure> {
        let cell = {
            let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
            let size = (p.questions, p.answers);
            if !feeds.contains_key(&size) && feeds.len() >= MAX_FEED_SIZES {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("already serving {MAX_FEED_SIZES} page sizes; use one of those"),
                ));
            }
            Arc::clone(feeds.entry(size).or_default())
        };
        let rt = cell
            .get_or_try_init(|| async {
                let path = self.config.feed_db(p);
                let made = tokio::task::spawn_blocking(move || SqliteKv::open_feed(&path, p))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                let (store, _) = made.map_err(|e| {
                    let msg = format!("cannot open the FEED-1 data set: {e}");
                    (StatusCode::INTERNAL_SERVER_ERROR, msg)
                })?;
                let mut source = ReadThrough::new(AsyncSqliteKv::new(store.db().clone()));
                if let Some(mc) = &self.cache {
                    let prefix = format!("feed1-q{}-a{}:", p.questions, p.answers);
                    source = source.with_cache(Arc::clone(mc), prefix);
                }
                let rt = Runtime::new()
                    .with_source(source)
                    .eager_resume(self.config.eager);
                Ok::<_, Failure>(Arc::new(rt))
            })
            .await?;
        Ok(Arc::clone(rt))
    }

    /// The last runs, newest first.
    pub fn last_runs(&self) -> Vec<RunRecord> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.iter().rev().cloned().collect()
    }

    /// Pages served so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }

    fn record(&self, record: RunRecord) {
        self.served.fetch_add(1, Ordering::Relaxed);
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if runs.len() == RING {
            runs.pop_front();
        }
        runs.push_back(record);
    }

    /// Record a page's run and make its response, with the run's figures in the headers.
    fn respond(
        &self,
        request: String,
        result: Result<String, Failure>,
        stats: Figures,
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

/// What a response reports of its run.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
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

/// The status of a page whose run failed: 404 for an absent user, 500 for the rest (a store
/// failed, or the data is inconsistent).
fn failure(error: &(dyn std::error::Error + 'static)) -> Failure {
    let status = match error.downcast_ref::<profile::ProfileError>() {
        Some(profile::ProfileError::NoSuchUser(_)) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, error.to_string())
}

async fn profile_page(State(app): State<Arc<App>>, UrlPath(uid): UrlPath<String>) -> Response {
    let request = format!("/profile/{uid}");
    let Ok(uid) = uid.parse::<i64>() else {
        let msg = format!("not a user id: {uid:?}");
        return app.respond(
            request,
            Err((StatusCode::BAD_REQUEST, msg)),
            Figures::default(),
        );
    };
    let (page, stats) = app
        .profile
        .run_async(profile::render_profile(uid))
        .with_stats()
        .await;
    app.respond(request, page.map_err(|e| failure(&e)), (&stats).into())
}

/// `questions=Q&answers=A`, each optional, in any order.
fn feed_params(query: Option<&str>) -> Result<Params, Failure> {
    let mut p = Params {
        questions: 100,
        answers: 10,
    };
    for pair in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "questions" => &mut p.questions,
            "answers" => &mut p.answers,
            _ => {
                let msg = format!("unknown parameter {name:?}; expected questions or answers");
                return Err((StatusCode::BAD_REQUEST, msg));
            }
        };
        *slot = value.parse().map_err(|_| {
            let msg = format!("{name} must be a whole number, not {value:?}");
            (StatusCode::BAD_REQUEST, msg)
        })?;
    }
    if p.questions == 0 || p.questions > MAX_FEED.0 || p.answers > MAX_FEED.1 {
        let msg = format!(
            "questions must be 1 to {}, answers 0 to {}",
            MAX_FEED.0, MAX_FEED.1
        );
        return Err((StatusCode::BAD_REQUEST, msg));
    }
    Ok(p)
}

async fn feed_page(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let request = match &query {
        Some(q) => format!("/feed?{q}"),
        None => "/feed".to_string(),
    };
    let rt = match feed_params(query.as_deref()) {
        Ok(p) => app.feed_runtime(p).await.map(|rt| (p, rt)),
        Err(e) => Err(e),
    };
    let (p, rt) = match rt {
        Ok(ok) => ok,
        Err(e) => return app.respond(request, Err(e), Figures::default()),
    };
    if app.config.naive {
        let store = rt
            .source::<ReadThrough>()
            .expect("a feed runtime has its store");
        let (page, figures) = naive_feed(store, p).await;
        let page = page.map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
        return app.respond(request, page, figures);
    }
    let (page, stats) = rt
        .run_async(feed::feed::<ReadThrough>(p))
        .with_stats()
        .await;
    app.respond(request, page.map_err(|e| failure(&e)), (&stats).into())
}

/// FEED-1 without asynq: one call of `store` per key, in the order the page needs them, as
/// [`feed::naive_on`] does over a blocking store.
async fn naive_feed(
    store: &ReadThrough,
    p: Params,
) -> (Result<String, crate::async_kv::BoxError>, Figures) {
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
) -> Result<String, crate::async_kv::BoxError> {
    calls.fetch_add(1, Ordering::Relaxed);
    let mut got = store.fetch(std::slice::from_ref(&key)).await?;
    Ok(got.pop().map(|(_, v)| v).unwrap_or_default())
}

async fn stats_page(State(app): State<Arc<App>>) -> Response {
    let runs = app.last_runs();
    let mut out = format!(
        "pages served: {}; the last {} runs, newest first:\n",
        app.served(),
        runs.len()
    );
    for r in runs {
        let _ = writeln!(
            out,
            "{} {} rounds={} calls={} keys={} ms={:.3}",
            r.status,
            r.request,
            r.rounds,
            r.calls,
            r.keys,
            r.elapsed.as_secs_f64() * 1e3
        );
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    (headers, out).into_response()
}

/// A server serving on a loopback port; stops when shut down or dropped.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    app: Arc<App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// The address it listens on, `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The app it serves.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Stop accepting, let the requests in progress finish, and wait for it.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Open the app for `config` and serve it on 127.0.0.1:`port` (0: a free port), on the
/// current tokio runtime. Returns once the listener is bound.
pub async fn start(config: Config, port: u16) -> std::io::Result<Running> {
    let app = tokio::task::spawn_blocking(move || App::open(config))
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
    serve(Arc::new(app), port).await
}

/// Serve `app` on 127.0.0.1:`port` (0: a free port), on the current tokio runtime.
pub async fn serve(app: Arc<App>, port: u16) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = Arc::clone(&app).router();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Running {
        addr,
        app,
        stop: Some(stop),
        task: Some(task),
    })
}

/// The default database of the `server` program: `asynq-data/server-profile.sqlite` under
/// `target`.
pub fn default_db(target: &Path) -> PathBuf {
    target.join("asynq-data").join("server-profile.sqlite")
}
