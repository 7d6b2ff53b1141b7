//! FEED-1 (docs/feed1.md): asynq next to the hand-primed and naive renderers.

use std::sync::atomic::Ordering;
use std::time::Duration;

use asynq_core::Runtime;
use asynq_examples::feed::{self, Params};
use asynq_examples::memory::MemoryStore;

use crate::alloc::ALLOCATIONS;
use crate::measure::{Stopwatch, median};

/// One FEED-1 row: medians over interleaved runs of the three renderers.
struct FeedRow {
    q: u64,
    asynq_ms: f64,
    hand_ms: f64,
    /// Median of the per-run ratios asynq / hand-primed (robust to drift between runs).
    ratio: f64,
    /// Not measured when every call sleeps (thousands of round trips per page).
    naive_ms: Option<f64>,
    /// asynq, hand-primed, naive (0 when not measured).
    calls: [usize; 3],
    /// Heap allocations of one page, asynq and hand-primed.
    allocations: [usize; 2],
    out_len: usize,
    fnv: u64,
}

/// The round trip of the latency-bound FEED-1 rows.
const FEED_LATENCY: Duration = Duration::from_millis(1);

/// A markdown table of FEED-1 rows.
fn print_feed_rows(rows: &[FeedRow]) {
    println!();
    println!(
        "| Q | asynq ms | hand-primed ms | asynq / hand-primed | naive ms | calls (asynq / hand / naive) | allocations (asynq / hand) | out_len | fnv |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for r in rows {
        let (naive_ms, naive_calls) = match r.naive_ms {
            Some(ms) => (format!("{ms:.2}"), r.calls[2].to_string()),
            None => ("–".to_owned(), "–".to_owned()),
        };
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {naive_ms} | {} / {} / {naive_calls} | {} / {} | {} | {:016x} |",
            r.q,
            r.asynq_ms,
            r.hand_ms,
            r.ratio,
            r.calls[0],
            r.calls[1],
            r.allocations[0],
            r.allocations[1],
            r.out_len,
            r.fnv
        );
    }
}

/// Reference figures of `docs/feed1.md` (A = 10): `(Q, out_len, fnv)`.
const FEED_REFERENCE: [(u64, usize, u64); 3] = [
    (100, 39740, 0x56dc_3f44_6f2c_5f61),
    (1000, 420_354, 0xf4d5_a1d7_6cc5_dc31),
    (10000, 4_433_496, 0x9434_45dd_fa0e_7305),
];

/// FEED-1 at `q` questions over the in-memory store, each call sleeping `latency`; naive
/// rendering only when the latency is zero.
fn feed_row(q: u64, runs: usize, latency: Duration) -> Result<FeedRow, String> {
    let p = Params {
        questions: q,
        answers: 10,
    };
    let rt = Runtime::new().with_source(feed::memory_store(p).with_latency(latency));
    let renderers = if latency.is_zero() { 3 } else { 2 };
    let store = rt.source::<MemoryStore>().expect("the store is registered");

    // One checked run of each: same page, and the calls each made.
    let mut pages = Vec::new();
    let mut calls = [0; 3];
    let mut allocations = [0; 2];
    for (i, calls) in calls.iter_mut().enumerate().take(renderers) {
        store.reset_counters();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let page = match i {
            0 => rt
                .run(feed::feed::<MemoryStore>(p))
                .map_err(|e| format!("FEED-1 Q={q} failed: {e}"))?,
            1 => feed::hand_primed(store, p),
            _ => feed::naive(store, p),
        };
        *calls = store.calls();
        if let Some(count) = allocations.get_mut(i) {
            *count = ALLOCATIONS.load(Ordering::Relaxed) - before;
        }
        pages.push((page.len(), feed::fnv1a64(page.as_bytes())));
    }
    let names = ["asynq", "hand-primed", "naive"];
    for (name, page) in names.iter().zip(&pages) {
        if *page != pages[0] {
            return Err(format!(
                "FEED-1 Q={q}: {name} rendered out_len={} fnv={:016x}, asynq out_len={} fnv={:016x}",
                page.0, page.1, pages[0].0, pages[0].1
            ));
        }
    }
    if let Some(&(_, len, fnv)) = FEED_REFERENCE.iter().find(|r| r.0 == q)
        && (len, fnv) != pages[0]
    {
        return Err(format!(
            "FEED-1 Q={q}: rendered out_len={} fnv={:016x}, docs/feed1.md says out_len={len} fnv={fnv:016x}",
            pages[0].0, pages[0].1
        ));
    }

    // Timed runs, interleaved so that noise hits all three alike, in an order that rotates
    // from run to run so that none always follows the same one; the first is a warm-up.
    let (mut a, mut h, mut n, mut ratios) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..=runs {
        let mut ms = [0.0; 3];
        for i in 0..renderers {
            let which = (run + i) % renderers;
            let start = Stopwatch::start(!latency.is_zero());
            let page = match which {
                0 => rt.run(feed::feed::<MemoryStore>(p)).expect("checked above"),
                1 => feed::hand_primed(store, p),
                _ => feed::naive(store, p),
            };
            drop(page);
            ms[which] = start.ms();
        }
        if run > 0 {
            a.push(ms[0]);
            h.push(ms[1]);
            n.push(ms[2]);
            ratios.push(ms[0] / ms[1]);
        }
    }
    Ok(FeedRow {
        q,
        asynq_ms: median(a),
        hand_ms: median(h),
        ratio: median(ratios),
        naive_ms: (renderers == 3).then(|| median(n)),
        calls,
        allocations,
        out_len: pages[0].0,
        fnv: pages[0].1,
    })
}

/// Measure and print the FEED-1 tables (CPU-bound and latency-bound).
pub(crate) fn tables(quick: bool) -> Result<(), String> {
    let (feed_sizes, feed_runs): (&[(u64, usize)], _) = if quick {
        (&[(100, 0), (1000, 0)], 5)
    } else {
        (&[(100, 0), (1000, 0), (10000, 0)], 0)
    };

    let mut rows = Vec::new();
    for &(q, _) in feed_sizes {
        let runs = match (quick, q) {
            (true, _) => feed_runs,
            (false, 100) => 41,
            (false, 1000) => 15,
            (false, _) => 5,
        };
        match feed_row(q, runs, Duration::ZERO) {
            Ok(row) => rows.push(row),
            Err(e) => return Err(e),
        }
    }
    // Latency-bound: every call sleeps 1 ms, as a remote store's round trip would.
    let latency_sizes: &[u64] = if quick { &[100] } else { &[100, 1000] };
    let mut latency_rows = Vec::new();
    for &q in latency_sizes {
        match feed_row(q, if quick { 5 } else { 9 }, FEED_LATENCY) {
            Ok(row) => latency_rows.push(row),
            Err(e) => return Err(e),
        }
    }

    println!("FEED-1 (A = 10, CPU-bound, in-memory store); medians of interleaved runs");
    print_feed_rows(&rows);
    println!();
    println!(
        "FEED-1 latency-bound: the same store sleeping {} ms in every call (naive rendering, \
         thousands of calls per page, not run)",
        FEED_LATENCY.as_millis()
    );
    print_feed_rows(&latency_rows);
    println!();
    Ok(())
}
