//! The performance table of asynq: FEED-1 next to its hand-primed baseline, and micro figures.
//!
//! `cargo run --release -p asynq-examples --bin bench` prints a markdown table; `--quick` runs a
//! reduced set in well under 30 s. Every figure is the median of at least 5 runs after a
//! warm-up, all measured in this one process one after another, so that ratios hold on a noisy
//! machine. The program exits non-zero when the three FEED-1 renderers disagree on the page.

use std::process::ExitCode;
use std::time::Instant;

use asynq_core::Runtime;
use asynq_examples::feed::Params;
use asynq_examples::memory::MemoryStore;
use clap::Parser;

mod alloc;
mod batch;
mod deep;
mod feed;
mod graphql;
mod measure;
mod sched;

use sched::{Numbers, fetching_tasks, tree_tasks, trivial_tasks};

/// Print asynq's performance table (FEED-1 against hand-primed code, scheduler micro figures,
/// scaling and memory).
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// A reduced set (smaller sizes, 5 runs each), in well under 30 s.
    #[arg(long)]
    quick: bool,
    /// Run one workload `--repeat` times and print nothing else, for profilers (perf,
    /// valgrind): `feed-asynq`, `feed-hand`, `feed-naive` (Q = 1000), `trivial`, `tree`, `waiting`
    /// (`--tasks` tasks each), `deep-chain`, `deep-tree` and their baselines `deep-chain-hand`,
    /// `deep-tree-hand` (`--tasks`: the chain's depth, the tree's levels), `graphql-asynq`,
    /// `graphql-loader`, `graphql-loader-0`, `graphql-ready`, `graphql-wait-once` (the FEED-1
    /// GraphQL query, Q = 1000).
    #[arg(long, value_name = "WORKLOAD")]
    only: Option<String>,
    /// Tasks of the `trivial` and `waiting` workloads of `--only`.
    #[arg(long, default_value_t = 100_000)]
    tasks: u64,
    /// Repetitions of `--only`.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// The tables to print, comma-separated: `feed`, `scheduler`, `deep`, `batch`, `graphql`;
    /// all by default.
    #[arg(long, value_delimiter = ',')]
    sections: Vec<String>,
}

// ---------------------------------------------------------------------------------------------

/// `--only`: one workload, repeated, for a profiler.
fn only(workload: &str, repeat: usize, tasks: u64) -> ExitCode {
    if let Some(done) = graphql::only(workload, repeat) {
        return done.map_or_else(
            |e| {
                eprintln!("bench: {e}");
                ExitCode::FAILURE
            },
            |()| ExitCode::SUCCESS,
        );
    }
    if let Some(out) = deep::only(workload, repeat, tasks) {
        std::hint::black_box(out);
        return ExitCode::SUCCESS;
    }
    let p = Params {
        questions: 1000,
        answers: 10,
    };
    let rt = Runtime::new()
        .with_source(asynq_examples::feed::memory_store(p))
        .with_source(Numbers);
    let store = rt.source::<MemoryStore>().expect("the store is registered");
    for _ in 0..repeat {
        let out = match workload {
            "feed-asynq" => rt
                .run(asynq_examples::feed::feed::<MemoryStore>(p))
                .map(|s| s.len() as u64)
                .map_err(asynq_core::Error::other),
            "feed-hand" => Ok(asynq_examples::feed::hand_primed(store, p).len() as u64),
            "feed-naive" => Ok(asynq_examples::feed::naive(store, p).len() as u64),
            "trivial" => rt.run(trivial_tasks(tasks)),
            "tree" => rt.run(tree_tasks(tasks)),
            "waiting" => rt.run(fetching_tasks(tasks)),
            _ => {
                eprintln!("bench: unknown workload {workload:?}");
                return ExitCode::FAILURE;
            }
        };
        std::hint::black_box(out.expect("the run succeeds"));
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(workload) = &args.only {
        return only(workload, args.repeat, args.tasks);
    }
    let started = Instant::now();
    let wants =
        |section: &str| args.sections.is_empty() || args.sections.iter().any(|s| s == section);
    if wants("feed")
        && let Err(e) = feed::tables(args.quick)
    {
        eprintln!("bench: {e}");
        return ExitCode::FAILURE;
    }
    if wants("scheduler") {
        sched::tables(args.quick);
    }
    if wants("deep")
        && let Err(e) = deep::tables(args.quick)
    {
        eprintln!("bench: {e}");
        return ExitCode::FAILURE;
    }
    if wants("batch")
        && let Err(e) = batch::tables(args.quick)
    {
        eprintln!("bench: {e}");
        return ExitCode::FAILURE;
    }
    if wants("graphql")
        && let Err(e) = graphql::tables(args.quick)
    {
        eprintln!("bench: {e}");
        return ExitCode::FAILURE;
    }
    println!();
    println!(
        "(all outputs checked equal; {:.1} s in all)",
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
