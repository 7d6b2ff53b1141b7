//! Render the FEED-1 page (`docs/feed1.md`) with asynq and print its figures.
//!
//! `cargo run --release -p asynq-examples --bin feed -- --questions 1000 --answers 10`
//! prints the first 200 characters of the page, then one summary line:
//! `calls=3 keys=34000 rounds=3 out_len=420354 fnv=f4d5a1d76cc5dc31 ms=<time>`.
//!
//! `--backend memory|sqlite|memcached|postgres|mysql` chooses the store (SQLite by default, in
//! a file under the target directory made on first use; PostgreSQL or MySQL/MariaDB at
//! `--url`, the data set loaded there when missing); `calls` counts the store's real round
//! trips.
//! `--latency-ms N` adds a fixed delay per round trip and `--naive` renders with one round
//! trip per key, so that the batching factor shows directly. `--via graphql` runs the FEED-1
//! GraphQL query (`asynq_examples::graphql`) inside a run instead of the nested asynq
//! functions, and renders the same page from the response.
//!
//! `--cache memcached|redis|redis-cluster --cache-servers ADDR[,ADDR..]` puts a cache in
//! front of the store (cache-aside, `asynq_sources::Cached`): each round makes one multi-get
//! to the cache (one exchange per server or cluster node) and one call to the store for its
//! misses, written back in the background. The page and
//! its summary line are the same (there `calls` and `keys` are the store's); the line before
//! it reads `cache_hits=.. cache_misses=.. origin_calls=.. cache_calls=..`. A second run
//! against the warm cache makes no call to the store.
//!
//! Sizes are checked before anything is allocated: at most [`MAX_QUESTIONS`] questions,
//! [`MAX_ANSWERS`] answers each, and [`MAX_DATASET_KEYS`] keys in the data set; a larger size
//! is a usage error (exit code 2) naming the largest accepted value.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use asynq_core::{DataSource, Runtime};
use asynq_examples::feed::{self, Params};
use asynq_examples::graphql::{self, ViaAsynq};
use asynq_examples::kv::KvStore;
use asynq_examples::memcached::{MemcachedClient, MemcachedKv};
use asynq_examples::memory::MemoryStore;
use asynq_examples::sql_kv::{SqlKv, servers};
use asynq_sources::cache::{Cache, Utf8};
use asynq_sources::redis::{RedisClient, RedisCluster};
use asynq_sources::{Cached, mysql, postgres};
use clap::{CommandFactory as _, Parser, ValueEnum};

/// The most questions a page may have.
const MAX_QUESTIONS: u64 = 100_000;
/// The most answers a question may have.
const MAX_ANSWERS: u64 = 1_000;
/// The most keys the data set may hold (23 + 2A per question). Q=100,000 with A=10 (4.3M keys)
/// peaks at 1.8 GB with `--backend memory`.
const MAX_DATASET_KEYS: u64 = 5_000_000;

/// Render one page of a Q&A site (FEED-1) as nested asynq functions over a key-value store,
/// and print the round trips it took.
#[derive(Debug, Parser)]
#[command(name = "feed", version)]
struct Args {
    /// Questions on the page (Q), at most 100000.
    #[arg(long, short = 'q', default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(0..=MAX_QUESTIONS))]
    questions: u64,
    /// Answers per question (A), at most 1000; the data set (Q * (23 + 2A) keys) may hold at
    /// most 5000000 keys.
    #[arg(long, short = 'a', default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=MAX_ANSWERS))]
    answers: u64,
    /// The store the page's data lives in.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// The SQLite file of the `sqlite` backend, created with the data on first use
    /// [default: asynq-data/feed1-qQ-aA.sqlite in the target directory].
    #[arg(long)]
    db: Option<PathBuf>,
    /// The memcached servers of the `memcached` backend, comma-separated; the data is loaded
    /// into them when missing, and keys they lose are refilled from the data set.
    #[arg(long, default_value = "127.0.0.1:11211", value_delimiter = ',')]
    servers: Vec<String>,
    /// The database of the `postgres` and `mysql` backends (`postgres://user@host:port/db`,
    /// `mysql://user@host:port/db`). The data set goes into its tables `asynq_feed1_kv` and
    /// `asynq_feed1_datasets`, made when missing and loaded when the data set is not there;
    /// tables of those names that this program did not make are left untouched.
    #[arg(long, value_name = "URL", required_if_eq_any([("backend", "postgres"), ("backend", "mysql")]))]
    url: Option<String>,
    /// A cache in front of the store: memcached, Redis or a Redis Cluster at
    /// `--cache-servers`.
    #[arg(long, value_enum)]
    cache: Option<CacheKind>,
    /// The servers of `--cache`, comma-separated (memcached: keys spread over them by
    /// rendezvous hashing; Redis: one server; Redis Cluster: some of its nodes, the others
    /// are found from them).
    #[arg(long, value_delimiter = ',', value_name = "ADDR", requires = "cache")]
    cache_servers: Vec<String>,
    /// A fixed delay added to every round trip (to the cache too), in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Render without asynq, one round trip per key.
    #[arg(long)]
    naive: bool,
    /// How asynq renders the page: its nested asynq functions, or the FEED-1 GraphQL query
    /// (async-graphql) executed inside a run and the page made from the response.
    #[arg(long, value_enum, default_value_t = Via::Asynq, conflicts_with = "naive")]
    via: Via,
    /// Write a Chrome trace-event file of the run (rounds, calls, task polls) to open in
    /// Perfetto or chrome://tracing; needs a build with `--features trace`.
    #[arg(long, value_name = "PATH")]
    trace: Option<PathBuf>,
}

/// How asynq renders the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Via {
    /// The nested asynq functions of `asynq_examples::feed`.
    Asynq,
    /// The GraphQL schema of `asynq_examples::graphql`, queried with its FEED query.
    Graphql,
}

/// Where the page's data lives.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    /// A map in this process.
    Memory,
    /// A table in an SQLite file.
    Sqlite,
    /// memcached servers, keys sharded across them.
    Memcached,
    /// A PostgreSQL database (`--url`).
    Postgres,
    /// A MySQL or MariaDB database (`--url`).
    Mysql,
}

/// The cache of `--cache`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum CacheKind {
    /// memcached servers.
    Memcached,
    /// A Redis server.
    Redis,
    /// A Redis Cluster, reached through some of its nodes (`--cache-servers`): each round
    /// asks each node holding some of its keys once, the nodes at once.
    RedisCluster,
}

fn main() -> ExitCode {
    let args = Args::parse();
    asynq_examples::logging::to_stderr();
    if let Err(message) = check_size(args.questions, args.answers) {
        Args::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit();
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("feed: {}", chain(&*error));
            ExitCode::FAILURE
        }
    }
}

/// Whether the data set of Q questions with A answers each fits [`MAX_DATASET_KEYS`]; if
/// not, what to ask for instead. Both are already within their own bounds.
fn check_size(questions: u64, answers: u64) -> Result<(), String> {
    let per_question = 23 + 2 * answers;
    if questions * per_question <= MAX_DATASET_KEYS {
        return Ok(());
    }
    Err(format!(
        "--questions {questions} with --answers {answers} makes a data set of {} keys, more \
         than the {MAX_DATASET_KEYS} this program builds: the largest accepted is --questions {} \
         with --answers {answers}",
        questions * per_question,
        MAX_DATASET_KEYS / per_question
    ))
}

/// An error and its causes, `: `-separated.
fn chain(error: &(dyn Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cause = e.source();
    }
    out
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    // Kept to the end of `run`: the file is complete when the guard drops.
    let _trace = match &args.trace {
        Some(path) => Some(asynq_examples::trace::chrome(path)?),
        None => None,
    };
    let p = Params {
        questions: args.questions,
        answers: args.answers,
    };
    if args.url.is_some() && !matches!(args.backend, Backend::Postgres | Backend::Mysql) {
        return Err("--url is the database of --backend postgres or mysql".into());
    }
    // The database servers' drivers do their I/O on tokio: a runtime for them, whose threads
    // run the queries while this thread renders.
    let io = match args.backend {
        Backend::Postgres | Backend::Mysql => Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?,
        ),
        _ => None,
    };
    let latency = Duration::from_millis(args.latency_ms);
    if let Some(kind) = args.cache {
        return cached(args, kind, p, io.as_ref(), latency);
    }
    match origin(args, p, io.as_ref())? {
        Origin::Memory(store) => render(store.with_latency(latency), p, args.naive, args.via),
        Origin::Sql(store) => render(store.with_latency(latency), p, args.naive, args.via),
        Origin::Memcached(store) => render(store.with_latency(latency), p, args.naive, args.via),
    }
}

/// Render from the store of `--backend` with the cache of `--cache` in front.
fn cached(
    args: &Args,
    kind: CacheKind,
    p: Params,
    io: Option<&tokio::runtime::Runtime>,
    latency: Duration,
) -> Result<(), Box<dyn Error>> {
    if args.naive {
        return Err("--naive renders without asynq, and --cache is asynq's cache-aside".into());
    }
    if args.cache_servers.is_empty() {
        return Err("--cache needs --cache-servers ADDR[,ADDR..]".into());
    }
    let store = match origin(args, p, io)? {
        Origin::Memory(store) => OriginStore::Memory(store.with_latency(latency)),
        Origin::Sql(store) => OriginStore::Sql(store.with_latency(latency)),
        Origin::Memcached(_) => {
            return Err("--cache goes in front of a store: not of --backend memcached".into());
        }
    };
    match kind {
        CacheKind::Memcached => {
            let cache = MemcachedClient::new(&args.cache_servers)?.with_latency(latency);
            store.render_behind(cache, p)
        }
        CacheKind::Redis => {
            let [server] = args.cache_servers.as_slice() else {
                return Err("--cache redis takes one server in --cache-servers".into());
            };
            let cache = RedisClient::new(server)?.with_latency(latency);
            store.render_behind(cache, p)
        }
        CacheKind::RedisCluster => {
            let cache = RedisCluster::new(&args.cache_servers)?.with_latency(latency);
            store.render_behind(cache, p)
        }
    }
}

/// A store that a cache can go in front of.
enum OriginStore {
    Memory(MemoryStore),
    Sql(SqlKv),
}

impl OriginStore {
    fn render_behind<C: Cache>(self, cache: C, p: Params) -> Result<(), Box<dyn Error>> {
        match self {
            OriginStore::Memory(store) => render_cached(cache, store, p),
            OriginStore::Sql(store) => render_cached(cache, store, p),
        }
    }
}

/// Render the page from `store` with `cache` in front (its keys under a prefix naming the
/// data set), and print its head, the tiers' line and the summary line. Waits for the
/// write-backs before returning, so that the next run finds the cache warm.
fn render_cached<C, S>(cache: C, store: S, p: Params) -> Result<(), Box<dyn Error>>
where
    C: Cache,
    S: DataSource<Key = String, Value = String> + KvStore,
{
    let prefix = format!("feed1-q{}-a{}:", p.questions, p.answers);
    let source = Cached::new(cache, store, Utf8).with_prefix(&prefix);
    let start = Instant::now();
    let rt = Runtime::new().with_source(source);
    let page = rt.run(feed::feed::<Cached<C, S, Utf8>>(p))?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let rounds = rt.last_stats().rounds;
    let source = rt
        .source::<Cached<C, S, Utf8>>()
        .expect("the source is registered");
    futures::executor::block_on(source.write_backs_done());
    let tiers = source.stats();
    let store = source.origin();
    let head: String = page.chars().take(200).collect();
    println!("{head}");
    println!(
        "cache_hits={} cache_misses={} origin_calls={} cache_calls={}",
        tiers.cache_hits, tiers.cache_misses, tiers.origin_calls, tiers.cache_calls
    );
    println!(
        "calls={} keys={} rounds={rounds} out_len={} fnv={:016x} ms={ms:.3}",
        store.round_trips(),
        store.keys_sent(),
        page.len(),
        feed::fnv1a64(page.as_bytes())
    );
    Ok(())
}

/// The store the page reads from, as the flags say, with the page's data in it.
enum Origin {
    Memory(MemoryStore),
    /// SQLite, PostgreSQL or MySQL.
    Sql(SqlKv),
    Memcached(MemcachedKv),
}

/// The store of `--backend`, the data set of `p` loaded into it when missing. `io` is the
/// tokio runtime of the database servers' drivers (for `postgres` and `mysql`).
fn origin(
    args: &Args,
    p: Params,
    io: Option<&tokio::runtime::Runtime>,
) -> Result<Origin, Box<dyn Error>> {
    let url = args.url.as_deref().unwrap_or_default();
    let loaded = |backend: &str, loaded: bool| {
        let what = if loaded { "loaded" } else { "reused" };
        eprintln!(
            "feed: {what} the FEED-1 data set Q={} A={} in the {backend} database (table {})",
            p.questions,
            p.answers,
            servers::KV_TABLE
        );
    };
    Ok(match args.backend {
        Backend::Memory => Origin::Memory(feed::memory_store(p)),
        Backend::Sqlite => {
            let path = args.db.clone().unwrap_or_else(|| default_db(p));
            let (store, created) = asynq_examples::sqlite::open_feed(&path, p)?;
            let what = if created { "created" } else { "reused" };
            eprintln!("feed: {what} the FEED-1 data in {}", path.display());
            Origin::Sql(store)
        }
        Backend::Memcached => {
            // The data set in memory is the origin: keys the servers lost are read from it.
            let store = MemcachedKv::new(MemcachedClient::new(&args.servers)?)
                .with_origin(feed::memory_store(p));
            let loaded = store.load_feed(p)?;
            eprintln!(
                "feed: FEED-1 data on {} (loaded into {loaded} of them now)",
                args.servers.join(",")
            );
            Origin::Memcached(store)
        }
        Backend::Postgres => {
            let io = io.expect("a tokio runtime for the database servers");
            let (store, now) = io.block_on(async {
                let db = postgres::Db::connect(url).await?;
                Ok::<_, Box<dyn Error>>(servers::open_postgres(&db, p).await?)
            })?;
            loaded("postgres", now);
            Origin::Sql(store)
        }
        Backend::Mysql => {
            let io = io.expect("a tokio runtime for the database servers");
            let (store, now) = io.block_on(async {
                let db = mysql::Db::connect(url).await?;
                Ok::<_, Box<dyn Error>>(servers::open_mysql(&db, p).await?)
            })?;
            loaded("mysql", now);
            Origin::Sql(store)
        }
    })
}

/// `asynq-data/feed1-qQ-aA.sqlite` in the target directory this program was built in.
fn default_db(p: Params) -> PathBuf {
    let file = format!("feed1-q{}-a{}.sqlite", p.questions, p.answers);
    let exe = std::env::current_exe().ok();
    // <target>/<profile>/feed, or <target>/<profile>/deps/feed-<hash>.
    let target = exe.as_deref().and_then(|exe| {
        let mut dir = exe.parent()?;
        if dir.ends_with("deps") || dir.ends_with("examples") {
            dir = dir.parent()?;
        }
        dir.parent()
    });
    target
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("asynq-data")
        .join(file)
}

/// Render the page from `store` and print its head and the summary line.
fn render<S>(store: S, p: Params, naive: bool, via: Via) -> Result<(), Box<dyn Error>>
where
    S: DataSource<Key = String, Value = String> + KvStore,
{
    let start = Instant::now();
    let (page, calls, keys, rounds) = if naive {
        let page = feed::naive_on(&store, p)?;
        let calls = store.round_trips();
        (page, calls, store.keys_sent(), calls)
    } else if via == Via::Graphql {
        let rt = Runtime::new().with_source(store);
        let schema = graphql::schema::<ViaAsynq<S>>();
        let (page, stats) = futures::executor::block_on(graphql::feed_page(&rt, &schema, p))?;
        let store = rt.source::<S>().expect("the store is registered");
        (page, store.round_trips(), store.keys_sent(), stats.rounds)
    } else {
        let rt = Runtime::new().with_source(store);
        let page = rt.run(feed::feed::<S>(p))?;
        let store = rt.source::<S>().expect("the store is registered");
        let rounds = rt.last_stats().rounds;
        (page, store.round_trips(), store.keys_sent(), rounds)
    };
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let head: String = page.chars().take(200).collect();
    println!("{head}");
    println!(
        "calls={calls} keys={keys} rounds={rounds} out_len={} fnv={:016x} ms={ms:.3}",
        page.len(),
        feed::fnv1a64(page.as_bytes())
    );
    Ok(())
}
