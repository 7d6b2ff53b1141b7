//! `#[asynq(batch)]`: FEED-1 written the naive way (`asynq_examples::feed_naive`), batched by
//! the macro, next to the hand-joined FEED-1.

use asynq_core::Runtime;
use asynq_examples::feed::{self, Params};
use asynq_examples::feed_naive;
use asynq_examples::memory::MemoryStore;

use crate::measure::{Stopwatch, median};

/// Measure and print the table: for each size, medians over interleaved runs of the
/// hand-joined and the naive batched page, their ratio, and the calls of each (and of the
/// naive page without `batch`).
pub(crate) fn tables(quick: bool) -> Result<(), String> {
    let sizes: &[(u64, usize)] = if quick {
        &[(100, 5), (1000, 5)]
    } else {
        &[(100, 41), (1000, 15), (10000, 5)]
    };
    println!("`#[asynq(batch)]`: FEED-1 written naively (one await per line, plain loops)");
    println!();
    println!(
        "| Q | hand-joined ms | naive + batch ms | batch / hand-joined | calls (hand-joined / naive + batch / naive) |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for &(q, runs) in sizes {
        let p = Params {
            questions: q,
            answers: 10,
        };
        let rt = Runtime::new().with_source(feed::memory_store(p));
        let store = rt.source::<MemoryStore>().expect("the store is registered");
        let run = |which: usize| match which {
            0 => rt
                .run(feed::feed::<MemoryStore>(p))
                .map_err(|e| e.to_string()),
            1 => rt
                .run(feed_naive::batched::feed::<MemoryStore>(p))
                .map_err(|e| e.to_string()),
            _ => rt
                .run(feed_naive::sequential::feed::<MemoryStore>(p))
                .map_err(|e| e.to_string()),
        };
        // One checked run of each: the same page, and each one's calls.
        let mut calls = [0; 3];
        let mut pages = Vec::new();
        for (which, calls) in calls.iter_mut().enumerate() {
            store.reset_counters();
            pages.push(run(which).map_err(|e| format!("batch Q={q}: {e}"))?);
            *calls = store.calls();
        }
        if pages.iter().any(|page| *page != pages[0]) {
            return Err(format!("batch Q={q}: the naive pages differ from FEED-1's"));
        }
        let (mut hand, mut batched, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..=runs {
            let mut ms = [0.0; 2];
            for k in 0..2 {
                let which = (i + k) % 2;
                let start = Stopwatch::start(false);
                drop(run(which));
                ms[which] = start.ms();
            }
            if i > 0 {
                hand.push(ms[0]);
                batched.push(ms[1]);
                ratios.push(ms[1] / ms[0]);
            }
        }
        println!(
            "| {q} | {:.2} | {:.2} | {:.2} | {} / {} / {} |",
            median(hand),
            median(batched),
            median(ratios),
            calls[0],
            calls[1],
            calls[2]
        );
    }
    println!();
    Ok(())
}
