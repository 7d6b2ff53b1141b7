//! Render user profiles, `render_profile(uid)` of Quora's asynq talk, from SQLite, PostgreSQL
//! or MySQL/MariaDB.
//!
//! `cargo run --release -p asynq-examples --bin profile -- 4 7` prints each profile's HTML,
//! the run's statistics, and a last line `rounds=3 queries=5`: 3 rounds and 5 queries
//! however many profiles are rendered together. The database (users, follows, questions,
//! answers) is made on first use in an SQLite file under the target directory, or at
//! `--db PATH`; with `--backend postgres|mysql --url URL` it is loaded into that database
//! (tables `asynq_profile_*`, made when missing; tables of those names that this program did
//! not make are refused and left untouched). Every backend renders the same pages in the same
//! queries.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use asynq_examples::profile::{self, SiteDb};
use asynq_sources::{mysql, postgres};
use clap::{Parser, ValueEnum};

/// Render user profiles as nested asynq functions over SQLite, and print the run's stats.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The users whose profiles to render, together.
    #[arg(default_values_t = [4])]
    uids: Vec<i64>,
    /// Users in the generated site, at most 10000000 (checked before anything is made).
    #[arg(long, default_value_t = 1000,
          value_parser = clap::value_parser!(i64).range(1..=asynq_examples::serve::MAX_USERS))]
    users: i64,
    /// Where the site is.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// The SQLite file of the `sqlite` backend, created with the site's data on first use
    /// [default: asynq-data/profile-uUSERS.sqlite in the target directory].
    #[arg(long)]
    db: Option<PathBuf>,
    /// The database of the `postgres` and `mysql` backends (`postgres://user@host:port/db`,
    /// `mysql://user@host:port/db`); the site is loaded there when it is missing.
    #[arg(long, value_name = "URL", required_if_eq_any([("backend", "postgres"), ("backend", "mysql")]))]
    url: Option<String>,
    /// A fixed delay added to every query, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Write a Chrome trace-event file of the run (rounds, calls, task polls) to open in
    /// Perfetto or chrome://tracing; needs a build with `--features trace`.
    #[arg(long, value_name = "PATH")]
    trace: Option<PathBuf>,
}

/// The database holding the site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// An SQLite file (`--db`).
    Sqlite,
    /// A PostgreSQL database (`--url`).
    Postgres,
    /// A MySQL or MariaDB database (`--url`).
    Mysql,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("profile: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    // Kept to the end of `run`: the file is complete when the guard drops.
    let _trace = match &args.trace {
        Some(path) => Some(asynq_examples::trace::chrome(path)?),
        None => None,
    };
    if args.url.is_some() && args.backend == Backend::Sqlite {
        return Err("--url is the database of --backend postgres or mysql".into());
    }
    if args.db.is_some() && args.backend != Backend::Sqlite {
        return Err("--db is the file of --backend sqlite".into());
    }
    // The database servers' drivers do their I/O on tokio: a runtime for them, whose threads
    // go on serving the queries while this thread waits for the run.
    let io = match args.backend {
        Backend::Sqlite => None,
        Backend::Postgres | Backend::Mysql => Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?,
        ),
    };
    let url = args.url.as_deref().unwrap_or_default();
    let (db, created, place) = match (args.backend, &io) {
        (Backend::Postgres, Some(io)) => io.block_on(async {
            let db = postgres::Db::connect(url).await?;
            let loaded = profile::servers::open_postgres(&db, args.users).await?;
            Ok::<_, Box<dyn Error>>((
                SiteDb::Postgres(db),
                loaded,
                "the postgres database".to_owned(),
            ))
        })?,
        (Backend::Mysql, Some(io)) => io.block_on(async {
            let db = mysql::Db::connect(url).await?;
            let loaded = profile::servers::open_mysql(&db, args.users).await?;
            Ok::<_, Box<dyn Error>>((SiteDb::Mysql(db), loaded, "the mysql database".to_owned()))
        })?,
        _ => {
            let path = args.db.clone().unwrap_or_else(|| {
                let exe = std::env::current_exe().ok();
                let target = exe.as_deref().and_then(|e| e.parent()?.parent());
                target
                    .map_or_else(|| PathBuf::from("target"), PathBuf::from)
                    .join("asynq-data")
                    .join(format!("profile-u{}.sqlite", args.users))
            });
            let (db, created) = profile::open(&path, args.users)?;
            (SiteDb::Sqlite(db), created, path.display().to_string())
        }
    };
    let what = if created { "created" } else { "reused" };
    eprintln!("profile: {what} the site's data in {place}");
    let rt = profile::runtime_with_latency(&db, Duration::from_millis(args.latency_ms));
    let pages = rt.run(profile::render_profiles(args.uids.clone()))?;
    for page in pages {
        println!("{page}");
    }
    let stats = rt.last_stats();
    println!("{stats}");
    println!("rounds={} queries={}", stats.rounds, db.queries());
    Ok(())
}
