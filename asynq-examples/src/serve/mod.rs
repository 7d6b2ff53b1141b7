//! The `server` program's library: an axum web service rendering pages with asynq, with the
//! limits a production service sets.
//!
//! One [`App`] holds the runtimes (built once, shared by every request); each request is one
//! run, awaited with [`Runtime::run_async`], whose figures go into the response's
//! `X-Asynq-Rounds` and `X-Asynq-Calls` headers and into a ring buffer of the last runs that
//! `GET /stats` lists.
//!
//! - `GET /profile/{uid}`: the profile page of [`crate::profile`] (`render_profile(uid)`,
//!   the example of Quora's asynq talk) over the SQLite file of [`Config::db`] (made and
//!   filled on first use), or over the database of [`Config::url`] on the `postgres` and
//!   `mysql` [`Backend`]s: 3 rounds, 5 queries.
//! - `GET /feed?questions=Q&answers=A` (defaults 100 and 10, percent-encoded or not): the
//!   FEED-1 page ([`crate::feed`]) over the [`ReadThrough`](crate::async_kv::ReadThrough)
//!   source: SQLite queried on tokio's blocking pool, or PostgreSQL or MySQL/MariaDB, with
//!   memcached in front when [`Config::memcached`] names servers. Each page size has its data
//!   set, made on the first request for that size: on SQLite in a file of its own beside the
//!   profile database, on a server under a prefix of its own in the table `asynq_feed1_kv`
//!   ([`crate::sql_kv::servers`]). `HEAD` answers from the parameters alone, without
//!   rendering.
//! - `POST /graphql?questions=Q&answers=A` (and `GET`, the query in the URL): the FEED-1
//!   GraphQL schema ([`crate::graphql`]) over the same data sets, each request (or batch) one
//!   run; see `docs/from-dataloader.md`.
//! - `GET /stats`: the last [`RING`] runs, newest first, then the server's counters.
//!
//! # Limits
//!
//! Every limit is a field of [`Config`] (and a flag of the `server` program), with the default
//! [`Config::new`] gives; `docs/serving.md` explains them:
//! - [`Config::max_renders`] pages render at once and [`Config::max_queued`] more wait; the
//!   rest get `503` with `Retry-After` (tower's `ConcurrencyLimit`, `Buffer` and `LoadShed`).
//! - Pages of more than [`Config::heavy_keys`] keys render on [`Config::render_threads`]
//!   threads of their own (at most that many at once, [`Config::heavy_queued`] waiting), so
//!   CPU-heavy pages never occupy the threads that serve connections and small pages.
//! - [`Config::request_timeout`]: a page not done by then is dropped (its run cancelled) and
//!   answered `503`.
//! - [`Config::max_page_keys`]: a larger `/feed` is refused with `400`.
//! - [`Config::header_read_timeout`] (hyper's: a request's headers, and a kept-alive
//!   connection's next request, must arrive within it), [`Config::idle_timeout`] (no byte
//!   read or written for that long closes a connection), [`Config::max_connections`].
//! - [`Config::max_feed_sizes`] data sets are held; the least recently used one is closed and
//!   its file removed (on a server: its rows deleted, once the requests using it are done) to
//!   make room for another.
//! - [`Running::shutdown`] stops accepting, lets requests finish for at most
//!   [`Config::shutdown_grace`], then closes what is left.
//!
//! A data set file damaged while the server runs (truncated, replaced, corrupt) is noticed
//! and rebuilt: by its size and identity before each request, and by the SQLite errors of a
//! failed run (that request fails, the next is served from the rebuilt file).
//!
//! [`start`] binds 127.0.0.1 (port 0 picks a free port) and serves until the returned
//! [`Running`] is shut down or dropped: tests start the server in their own process.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use asynq_core::Runtime;
use axum::http::HeaderName;

use crate::feed::Params;
use crate::memcached::ServerHealth;
use crate::profile::SiteDb;
use asynq_sources::memcached::MemcachedClient;

mod datasets;
mod graphql;
mod http;
mod pages;

use datasets::{FeedSets, Profile};
pub use http::{Running, serve, start};

/// Runs kept for `GET /stats`.
pub const RING: usize = 64;

/// The largest page `/feed` accepts at all: questions, answers per question (a page must also
/// be within [`Config::max_page_keys`]).
pub const MAX_FEED: (u64, u64) = (10_000, 100);

/// The most users a generated profile site may have (the `server` and `profile` programs'
/// `--users`): checked before anything is made, since each user is rows in the file.
pub const MAX_USERS: i64 = 10_000_000;

/// The header holding a page's rounds.
pub static ROUNDS_HEADER: HeaderName = HeaderName::from_static("x-asynq-rounds");
/// The header holding a page's calls to its sources.
pub static CALLS_HEADER: HeaderName = HeaderName::from_static("x-asynq-calls");

/// The keys a FEED-1 page of size `p` asks for, at most (5 per question, 3 per answer): its
/// cost, compared with [`Config::max_page_keys`] and [`Config::heavy_keys`].
pub fn page_keys(p: Params) -> u64 {
    p.questions
        .saturating_mul(5u64.saturating_add(p.answers.saturating_mul(3)))
}

/// Where a server's data is: SQLite files, or a database server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Backend {
    /// SQLite files: the profile site at [`Config::db`], the FEED-1 data sets beside it.
    #[default]
    Sqlite,
    /// The PostgreSQL database of [`Config::url`].
    Postgres,
    /// The MySQL or MariaDB database of [`Config::url`].
    Mysql,
}

/// How the server is set up: its data, its stores, and its limits.
#[derive(Clone, Debug)]
pub struct Config {
    /// The profile site's SQLite file, made and filled on first use; FEED-1 data sets are
    /// kept in files beside it (`<stem>-feed1-q<Q>-a<A>.sqlite`). A file there that this
    /// program did not make is refused and left untouched. Unused on a server backend.
    pub db: PathBuf,
    /// Where the profile site and the FEED-1 data sets are: SQLite files (the default), or
    /// the database of [`url`](Config::url).
    pub backend: Backend,
    /// The database of the `postgres` and `mysql` backends (`postgres://user@host:port/db`,
    /// `mysql://user@host:port/db`): the profile site goes into its tables `asynq_profile_*`,
    /// the FEED-1 data sets into `asynq_feed1_kv` and `asynq_feed1_datasets`, made when
    /// missing. Tables of those names that this program did not make are refused and left
    /// untouched.
    pub url: Option<String>,
    /// Users in the profile site.
    pub users: i64,
    /// memcached servers (`host:port`) in front of the FEED-1 store; none for SQLite alone.
    pub memcached: Vec<String>,
    /// Render `/feed` with one call per key instead of asynq.
    pub naive: bool,
    /// Run pages with [`Runtime::eager_resume`]: tasks resume as soon as their keys are
    /// answered, without waiting for the round's slower calls.
    pub eager: bool,
    /// Pages rendered at once. Default 64.
    pub max_renders: usize,
    /// Pages waiting for a render beyond those; more get `503` with `Retry-After`.
    /// Default 256.
    pub max_queued: usize,
    /// Pages of more keys than this ([`page_keys`]) render on the render threads. Default
    /// 10,000 (a FEED-1 page of Q=100, A=10 has 3,500).
    pub heavy_keys: u64,
    /// Threads rendering heavy pages, and heavy pages rendered at once. Default: half the
    /// cores, at least 1.
    pub render_threads: usize,
    /// Heavy pages waiting for a render thread; more get `503` with `Retry-After`.
    /// Default 16.
    pub heavy_queued: usize,
    /// The most keys a `/feed` page may ask for ([`page_keys`]); larger pages get `400`.
    /// Default 400,000 (Q=10,000 with A=10 is 350,000).
    pub max_page_keys: u64,
    /// A request not answered by then (queueing included) is dropped and answered `503`.
    /// Default 30 s.
    pub request_timeout: Duration,
    /// A request's headers (and a kept-alive connection's next request) must arrive within
    /// it. Default 10 s.
    pub header_read_timeout: Duration,
    /// A connection that reads nor writes a byte for that long is closed (a client that stops
    /// reading its response). Must be longer than `request_timeout`. Default 60 s.
    pub idle_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog. Default 4,096.
    pub max_connections: usize,
    /// FEED-1 data sets held (files and open connections); the least recently used one makes
    /// room for a new size. Default 16.
    pub max_feed_sizes: usize,
    /// How long a shutdown waits for requests in progress. Default 10 s.
    pub shutdown_grace: Duration,
    /// One exchange with a memcached server (connecting included). Default 1 s.
    pub memcached_timeout: Duration,
    /// The largest value accepted from memcached (its item size limit). Default 1 MiB.
    pub memcached_max_value: usize,
}

impl Config {
    /// SQLite alone, 1000 users, asynq, and the default limits.
    pub fn new(db: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Config {
            db: db.into(),
            backend: Backend::Sqlite,
            url: None,
            users: 1000,
            memcached: Vec::new(),
            naive: false,
            eager: false,
            max_renders: 64,
            max_queued: 256,
            heavy_keys: 10_000,
            render_threads: (cores / 2).max(1),
            heavy_queued: 16,
            max_page_keys: 400_000,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_feed_sizes: 16,
            shutdown_grace: Duration::from_secs(10),
            memcached_timeout: Duration::from_secs(1),
            memcached_max_value: crate::memcached::DEFAULT_MAX_VALUE,
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

    /// Check that the limits make sense together.
    pub fn check(&self) -> Result<(), String> {
        let counts = [
            ("max_renders", self.max_renders),
            ("render_threads", self.render_threads),
            ("max_connections", self.max_connections),
            ("max_feed_sizes", self.max_feed_sizes),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        match (self.backend, self.url.as_deref()) {
            (Backend::Sqlite, Some(_)) => {
                return Err(
                    "url is the database of the postgres and mysql backends; the \
                            sqlite backend's file is db"
                        .to_owned(),
                );
            }
            (Backend::Postgres | Backend::Mysql, None) => {
                return Err(
                    format!("the {:?} backend needs the database's url", self.backend)
                        .to_lowercase(),
                );
            }
            (Backend::Postgres | Backend::Mysql, Some(url)) if url.trim().is_empty() => {
                return Err("url is empty".to_owned());
            }
            _ => {}
        }
        if self.idle_timeout <= self.request_timeout {
            return Err(format!(
                "the idle timeout ({:?}) must be longer than the request timeout ({:?})",
                self.idle_timeout, self.request_timeout
            ));
        }
        Ok(())
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
    /// Whether it rendered on the render threads (a heavy page).
    pub heavy: bool,
}

/// What every request shares: the runtimes, the data sets and the statistics of the last
/// runs.
#[derive(Debug)]
pub struct App {
    config: Config,
    /// The database of a server backend (never [`SiteDb::Sqlite`]).
    server: Option<SiteDb>,
    profile: Profile,
    cache: Option<MemcachedClient>,
    feeds: FeedSets,
    runs: Mutex<VecDeque<RunRecord>>,
    served: AtomicUsize,
    refused: AtomicUsize,
    timed_out: AtomicUsize,
    rebuilt: AtomicUsize,
    /// The render threads, made when serving starts (they need a tokio context).
    renderer: OnceLock<http::Renderer>,
}

impl App {
    /// Open the profile database (made and filled if needed) and the memcached client.
    /// Blocks while it makes the database: call it before serving, or on a blocking thread.
    /// On the `postgres` and `mysql` backends, call it on a thread of a tokio runtime's
    /// blocking pool (`spawn_blocking`, as [`start`] does): the database's connections are
    /// that runtime's.
    pub fn open(config: Config) -> Result<App, Box<dyn std::error::Error + Send + Sync>> {
        config.check()?;
        let server = connect(&config)?;
        let profile = Profile::open(&config, server.as_ref())?;
        let cache = match config.memcached.as_slice() {
            [] => None,
            servers => Some(
                MemcachedClient::new(servers)?
                    .with_timeouts(config.memcached_timeout, config.memcached_timeout)
                    .with_max_value(config.memcached_max_value),
            ),
        };
        Ok(App {
            server,
            feeds: FeedSets::new(config.max_feed_sizes),
            profile,
            cache,
            runs: Mutex::new(VecDeque::with_capacity(RING)),
            served: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            timed_out: AtomicUsize::new(0),
            rebuilt: AtomicUsize::new(0),
            renderer: OnceLock::new(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The profile site's database: the file in use (a damaged file is replaced), or the
    /// database server's.
    pub fn profile_db(&self) -> SiteDb {
        match &self.server {
            Some(server) => server.clone(),
            None => SiteDb::Sqlite(self.profile.current().sqlite_db().clone()),
        }
    }

    /// The runtime of FEED-1 pages of size `p`, its data set made on first use (blocking
    /// the calling task's thread while it is made: call it from tokio).
    pub async fn feed_runtime(&self, p: Params) -> Result<Arc<Runtime>, (u16, String)> {
        self.feeds
            .get(self, p)
            .await
            .map(|set| Arc::clone(&set.rt))
            .map_err(|(status, message)| (status.as_u16(), message))
    }

    /// The FEED-1 page sizes whose data sets are held now.
    pub fn feed_sizes(&self) -> Vec<Params> {
        self.feeds.sizes()
    }

    /// The last runs, newest first.
    pub fn last_runs(&self) -> Vec<RunRecord> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.iter().rev().cloned().collect()
    }

    /// Pages served so far (any status but the ones refused by the limits).
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }

    /// Requests refused with `503` because every render slot and queue place was taken.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Requests dropped at [`Config::request_timeout`].
    pub fn timed_out(&self) -> usize {
        self.timed_out.load(Ordering::Relaxed)
    }

    /// Data set files found damaged and rebuilt.
    pub fn rebuilt(&self) -> usize {
        self.rebuilt.load(Ordering::Relaxed)
    }

    /// The memcached servers' health, when there are any.
    pub fn memcached_health(&self) -> Vec<ServerHealth> {
        self.cache.as_ref().map_or_else(Vec::new, |mc| mc.health())
    }

    fn record(&self, record: RunRecord) {
        self.served.fetch_add(1, Ordering::Relaxed);
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if runs.len() == RING {
            runs.pop_front();
        }
        runs.push_back(record);
    }
}

/// The database of a server backend, connected in the tokio runtime of the calling thread.
fn connect(config: &Config) -> Result<Option<SiteDb>, Box<dyn std::error::Error + Send + Sync>> {
    let url = config.url.as_deref().unwrap_or_default();
    if config.backend == Backend::Sqlite {
        return Ok(None);
    }
    let tokio = tokio::runtime::Handle::try_current().map_err(|_| {
        "the postgres and mysql backends open their database inside a tokio runtime: call \
         App::open on its blocking pool (serve::start does)"
    })?;
    Ok(Some(match config.backend {
        Backend::Postgres => {
            SiteDb::Postgres(tokio.block_on(asynq_sources::postgres::Db::connect(url))?)
        }
        _ => SiteDb::Mysql(tokio.block_on(asynq_sources::mysql::Db::connect(url))?),
    }))
}

/// The default database of the `server` program: `asynq-data/server-profile.sqlite` under
/// `target`.
pub fn default_db(target: &Path) -> PathBuf {
    target.join("asynq-data").join("server-profile.sqlite")
}

/// What [`App::feed_runtime`] and the pages give back on failure: status and message.
type Failure = (axum::http::StatusCode, String);

/// The address a [`Running`] server was asked to bind.
fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
