//! Render user profiles, `render_profile(uid)` of Quora's asynq talk, from an SQLite database.
//!
//! `cargo run --release -p asynq-examples --bin profile -- 4 7` prints each profile's HTML,
//! the run's statistics, and a last line `rounds=3 queries=5`: 3 rounds and 5 queries
//! however many profiles are rendered together. The database (users, follows, questions,
//! answers) is made on first use in a file under the target directory, or at `--db PATH`.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use asynq_examples::profile;
use clap::Parser;

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
    /// The SQLite file, created with the site's data on first use
    /// [default: asynq-data/profile-uUSERS.sqlite in the target directory].
    #[arg(long)]
    db: Option<PathBuf>,
    /// A fixed delay added to every query, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Write a Chrome trace-event file of the run (rounds, calls, task polls) to open in
    /// Perfetto or chrome://tracing; needs a build with `--features trace`.
    #[arg(long, value_name = "PATH")]
    trace: Option<PathBuf>,
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
    let path = args.db.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().ok();
        let target = exe.as_deref().and_then(|e| e.parent()?.parent());
        target
            .map_or_else(|| PathBuf::from("target"), PathBuf::from)
            .join("asynq-data")
            .join(format!("profile-u{}.sqlite", args.users))
    });
    let (db, created) = profile::open(&path, args.users)?;
    let what = if created { "created" } else { "reused" };
    eprintln!("profile: {what} the site's data in {}", path.display());
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
