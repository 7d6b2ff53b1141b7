//! Render the FEED-1 page (`shared/bench/FEED.md`) with asynq and print its figures.
//!
//! `cargo run --release -p asynq-examples --bin feed -- --questions 1000 --answers 10`
//! prints the first 200 characters of the page, then one summary line:
//! `calls=3 keys=34000 rounds=3 out_len=420354 fnv=f4d5a1d76cc5dc31 ms=<time>`.

use std::process::ExitCode;
use std::time::Instant;

use asynq_core::Runtime;
use asynq_examples::feed::{self, Params};
use asynq_examples::memory::MemoryStore;
use clap::Parser;

/// Render one page of a Q&A site (FEED-1) as nested asynq functions over a key-value store,
/// and print the round trips it took.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Questions on the page (Q).
    #[arg(long, short = 'q', default_value_t = 1000)]
    questions: u64,
    /// Answers per question (A).
    #[arg(long, short = 'a', default_value_t = 10)]
    answers: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let params = Params {
        questions: args.questions,
        answers: args.answers,
    };
    let rt = Runtime::new().with_source(feed::memory_store(params));
    let start = Instant::now();
    let page = match rt.run(feed::feed::<MemoryStore>(params)) {
        Ok(page) => page,
        Err(error) => {
            eprintln!("feed: {error}");
            return ExitCode::FAILURE;
        }
    };
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let store = rt.source::<MemoryStore>().expect("the store is registered");
    let stats = rt.last_stats();
    let head: String = page.chars().take(200).collect();
    println!("{head}");
    println!(
        "calls={} keys={} rounds={} out_len={} fnv={:016x} ms={ms:.3}",
        store.calls(),
        store.keys(),
        stats.rounds,
        page.len(),
        feed::fnv1a64(page.as_bytes())
    );
    ExitCode::SUCCESS
}
