//! Serve pages rendered with asynq over HTTP: the FEED-1 page and a user's profile page.
//!
//! `cargo run --release -p asynq-examples --bin server -- --port 8080` prints
//! `server: listening on http://127.0.0.1:8080` and serves, on 127.0.0.1 only:
//!
//! - `GET /profile/{uid}`: `render_profile(uid)` over SQLite;
//! - `GET /feed?questions=Q&answers=A`: FEED-1 over SQLite (memcached in front with
//!   `--memcached HOST:PORT,...`);
//! - `GET /stats`: the last runs' rounds, calls and keys.
//!
//! Every page response carries `X-Asynq-Rounds` and `X-Asynq-Calls`. `--naive` renders `/feed`
//! with one call per key instead, for the load comparison; `--eager` runs pages with eager
//! resume. Ctrl-C stops it.

use std::error::Error;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use asynq_examples::serve::{self, Config};
use clap::Parser;

/// Serve the FEED-1 and profile pages, rendered with asynq, on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The port to listen on [default: a free port, printed at start].
    #[arg(long)]
    port: Option<u16>,
    /// The profile site's SQLite file, made on first use; FEED-1 data sets go beside it
    /// [default: asynq-data/server-profile.sqlite in the target directory].
    #[arg(long)]
    db: Option<PathBuf>,
    /// Users in the profile site.
    #[arg(long, default_value_t = 1000)]
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
}

fn main() -> ExitCode {
    let args = Args::parse();
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

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let db = args.db.unwrap_or_else(|| {
        let exe = std::env::current_exe().ok();
        let target = exe.as_deref().and_then(|e| e.parent()?.parent());
        serve::default_db(target.unwrap_or_else(|| "target".as_ref()))
    });
    let config = Config {
        db,
        users: args.users,
        memcached: args.memcached,
        naive: args.naive,
        eager: args.eager,
    };
    eprintln!("server: opening {}", config.db.display());
    let running = serve::start(config, args.port.unwrap_or(0)).await?;
    println!("server: listening on http://{}", running.addr());
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    eprintln!("server: stopping after the requests in progress");
    running.shutdown().await?;
    Ok(())
}
