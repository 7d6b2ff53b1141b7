//! Serve pages rendered with asynq over HTTP: the FEED-1 page and a user's profile page.
//!
//! `cargo run --release -p asynq-examples --bin server -- --port 8080` prints
//! `server: listening on http://127.0.0.1:8080` and serves, on 127.0.0.1 only:
//!
//! - `GET /profile/{uid}`: `render_profile(uid)` over SQLite (or `--backend postgres|mysql
//!   --url URL`: over that database);
//! - `GET /feed?questions=Q&answers=A`: FEED-1 over the same backend (memcached in front with
//!   `--memcached HOST:PORT,...`);
//! - `GET /stats`: the last runs' rounds, calls and keys.
//!
//! Every page response carries `X-Asynq-Rounds` and `X-Asynq-Calls`. `--naive` renders `/feed`
//! with one call per key instead, for the load comparison; `--eager` runs pages with eager
//! resume.
//!
//! The limits of a production service are flags, each with its default shown by `--help`
//! (`docs/serving.md` explains them): pages rendered at once and waiting (then `503` with
//! `Retry-After`), heavy pages on threads of their own, a request deadline, the largest page,
//! header-read and idle timeouts, connections, data sets held, the shutdown grace.
//!
//! Ctrl-C (or SIGTERM) stops accepting and lets the requests in progress finish, for at most
//! the shutdown grace; a second Ctrl-C exits at once (exit code 130).

use std::error::Error;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use asynq_examples::serve::{self, Backend, Config};
use clap::Parser;

/// The library's defaults: where every default of a flag comes from.
fn defaults() -> Config {
    Config::new("")
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Serve the FEED-1 and profile pages, rendered with asynq, on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "server", version)]
struct Args {
    /// The port to listen on [default: a free port, printed at start].
    #[arg(long)]
    port: Option<u16>,
    /// Where the profile site and the FEED-1 data sets are: SQLite files (`--db`), or the
    /// PostgreSQL or MySQL/MariaDB database of `--url`.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// The profile site's SQLite file, made on first use; FEED-1 data sets go beside it. A
    /// file this program did not make is refused and left untouched [default:
    /// asynq-data/server-profile.sqlite in the target directory].
    #[arg(long, conflicts_with = "url")]
    db: Option<PathBuf>,
    /// The database of the postgres and mysql backends (`postgres://user@host:port/db`,
    /// `mysql://user@host:port/db`): the data goes into tables named asynq_profile_* and
    /// asynq_feed1_*, made when missing; tables of those names this program did not make are
    /// refused and left untouched.
    #[arg(long, value_name = "URL", required_if_eq_any([("backend", "postgres"), ("backend", "mysql")]))]
    url: Option<String>,
    /// Users in the profile site, at most 10000000.
    #[arg(long, default_value_t = defaults().users,
          value_parser = clap::value_parser!(i64).range(1..=asynq_examples::serve::MAX_USERS))]
    users: i64,
    /// memcached servers in front of the FEED-1 store, comma-separated.
    #[arg(long, value_delimiter = ',')]
    memcached: Vec<String>,
    /// Render `/feed` without asynq, one call per key.
    #[arg(long)]
    naive: bool,
    /// Resume tasks as soon as their keys are answered (Runtime::eager_resume), without
    /// waiting for the round's slower calls.
    #[arg(long)]
    eager: bool,
    /// Pages rendered at once.
    #[arg(long, default_value_t = defaults().max_renders, help_heading = "Limits")]
    max_renders: usize,
    /// Pages waiting for a render; more get 503 with Retry-After.
    #[arg(long, default_value_t = defaults().max_queued, help_heading = "Limits")]
    max_queued: usize,
    /// Pages asking for more keys than this (5 per question, 3 per answer) render on the
    /// render threads, never on the threads serving connections.
    #[arg(long, default_value_t = defaults().heavy_keys, help_heading = "Limits")]
    heavy_keys: u64,
    /// Threads rendering heavy pages, and heavy pages rendered at once [default: half the
    /// cores, at least 1].
    #[arg(long, help_heading = "Limits")]
    render_threads: Option<usize>,
    /// Heavy pages waiting for a render thread; more get 503 with Retry-After.
    #[arg(long, default_value_t = defaults().heavy_queued, help_heading = "Limits")]
    heavy_queued: usize,
    /// The most keys a /feed page may ask for; larger pages get 400.
    #[arg(long, default_value_t = defaults().max_page_keys, help_heading = "Limits")]
    max_page_keys: u64,
    /// A request not answered by then (queueing included) is dropped and answered 503.
    #[arg(long, default_value_t = ms(defaults().request_timeout), help_heading = "Limits")]
    request_timeout_ms: u64,
    /// A request's headers, and a kept-alive connection's next request, must arrive within
    /// this (slow or idle clients are closed).
    #[arg(long, default_value_t = ms(defaults().header_read_timeout), help_heading = "Limits")]
    header_read_timeout_ms: u64,
    /// A connection that neither reads nor writes for this long is closed (a client that
    /// stops reading); longer than the request timeout.
    #[arg(long, default_value_t = ms(defaults().idle_timeout), help_heading = "Limits")]
    idle_timeout_ms: u64,
    /// Connections open at once; more wait in the listen backlog.
    #[arg(long, default_value_t = defaults().max_connections, help_heading = "Limits")]
    max_connections: usize,
    /// FEED-1 data sets (page sizes) held; the least recently used makes room for a new one.
    #[arg(long, default_value_t = defaults().max_feed_sizes, help_heading = "Limits")]
    max_feed_sizes: usize,
    /// How long Ctrl-C waits for the requests in progress.
    #[arg(long, default_value_t = ms(defaults().shutdown_grace), help_heading = "Limits")]
    shutdown_grace_ms: u64,
    /// One exchange with a memcached server, connecting included.
    #[arg(long, default_value_t = ms(defaults().memcached_timeout), help_heading = "Limits")]
    memcached_timeout_ms: u64,
    /// The largest value accepted from memcached (its item size limit, `memcached -I`).
    #[arg(long, default_value_t = defaults().memcached_max_value, help_heading = "Limits")]
    memcached_max_value: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    asynq_examples::logging::to_stderr();
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(tokio) => tokio,
        Err(error) => {
            eprintln!("server: cannot start tokio: {error}");
            return ExitCode::FAILURE;
        }
    };
    match tokio.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server: {error}");
            ExitCode::FAILURE
        }
    }
}

impl Args {
    fn config(self) -> Config {
        let db = self.db.unwrap_or_else(|| {
            let exe = std::env::current_exe().ok();
            let target = exe.as_deref().and_then(|e| e.parent()?.parent());
            serve::default_db(target.unwrap_or_else(|| "target".as_ref()))
        });
        let defaults = Config::new(db);
        Config {
            backend: self.backend,
            url: self.url,
            users: self.users,
            memcached: self.memcached,
            naive: self.naive,
            eager: self.eager,
            max_renders: self.max_renders,
            max_queued: self.max_queued,
            heavy_keys: self.heavy_keys,
            render_threads: self.render_threads.unwrap_or(defaults.render_threads),
            heavy_queued: self.heavy_queued,
            max_page_keys: self.max_page_keys,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            max_connections: self.max_connections,
            max_feed_sizes: self.max_feed_sizes,
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
            memcached_timeout: Duration::from_millis(self.memcached_timeout_ms),
            memcached_max_value: self.memcached_max_value,
            ..defaults
        }
    }
}

/// Ctrl-C (and, on Unix, SIGTERM) as a stream of stop requests, listened to from start-up
/// so that none is missed between the first and the second.
struct Stops {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Stops {
    fn listen() -> std::io::Result<Stops> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Stops {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Stops {})
    }

    /// The next Ctrl-C or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let port = args.port.unwrap_or(0);
    let config = args.config();
    let grace = config.shutdown_grace;
    let mut stops = Stops::listen()?;
    match config.backend {
        Backend::Sqlite => eprintln!("server: opening {}", config.db.display()),
        backend => eprintln!("server: opening the {backend:?} database"),
    }
    let running = serve::start(config, port).await?;
    println!("server: listening on http://{}", running.addr());
    std::io::stdout().flush()?;
    stops.next().await;
    eprintln!(
        "server: stopping: finishing the requests in progress (at most {grace:?}); Ctrl-C \
         again to exit at once"
    );
    tokio::select! {
        stopped = running.shutdown() => stopped?,
        () = stops.next() => {
            eprintln!("server: stopping now");
            std::process::exit(130);
        }
    }
    Ok(())
}
