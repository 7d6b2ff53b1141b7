//! The performance table of asynq: FEED-1 next to its hand-primed baseline, and micro figures.
//!
//! `cargo run --release -p asynq-examples --bin bench` prints a markdown table; `--quick` runs a
//! reduced set in well under 30 s. Every figure is the median of at least 5 runs after a
//! warm-up, all measured in this one process one after another, so that ratios hold on a noisy
//! machine. The program exits non-zero when the three FEED-1 renderers disagree on the page.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asynq_core::{DataSource, Runtime, Yieldable, asynq};
use asynq_examples::feed::{self, Params};
use asynq_examples::memory::MemoryStore;
use clap::Parser;

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
    /// (`--tasks` tasks each).
    #[arg(long, value_name = "WORKLOAD")]
    only: Option<String>,
    /// Tasks of the `trivial` and `waiting` workloads of `--only`.
    #[arg(long, default_value_t = 100_000)]
    tasks: u64,
    /// Repetitions of `--only`.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
}

// ---------------------------------------------------------------------------------------------
// A global allocator that counts live heap bytes, for the memory row.

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Allocations made so far (`alloc`, `alloc_zeroed` and `realloc` calls).
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments, so `System`'s
// guarantees hold; the counter is bookkeeping only and never affects the returned memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout, which meets `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`; `new_size` meets the caller's
        // contract for `realloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---------------------------------------------------------------------------------------------
// Measuring.

/// The median of `runs` measurements taken after one warm-up call.
fn median_of(runs: usize, mut measure: impl FnMut() -> f64) -> f64 {
    measure();
    median((0..runs).map(|_| measure()).collect())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// Minor page faults of this process so far (field 10 of `/proc/self/stat`); 0 where there is
/// no such file.
fn page_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name, field 2, is in parentheses and may hold spaces: count after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// FEED-1.

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

/// Reference figures of FEED.md (A = 10): `(Q, out_len, fnv)`.
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
            "FEED-1 Q={q}: rendered out_len={} fnv={:016x}, FEED.md says out_len={len} fnv={fnv:016x}",
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
            let start = Instant::now();
            let page = match which {
                0 => rt.run(feed::feed::<MemoryStore>(p)).expect("checked above"),
                1 => feed::hand_primed(store, p),
                _ => feed::naive(store, p),
            };
            drop(page);
            ms[which] = ms_since(start);
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

// ---------------------------------------------------------------------------------------------
// Micro benchmarks of the scheduler.

/// A source of numbers that answers instantly: `k -> 2k`.
struct Numbers;

/// Live heap bytes seen by the last `fetch` of [`Numbers`] (for the memory row).
static BYTES_IN_FETCH: AtomicUsize = AtomicUsize::new(0);

impl DataSource for Numbers {
    type Key = u64;
    type Value = u64;
    type Error = Infallible;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Infallible> {
        BYTES_IN_FETCH.store(LIVE_BYTES.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(keys.iter().map(|&k| (k, 2 * k)).collect())
    }
}

/// The smallest task: no fetch, no await.
#[asynq]
fn trivial(i: u64) -> u64 {
    i
}

/// `n` trivial tasks awaited together.
#[asynq]
fn trivial_tasks(n: u64) -> u64 {
    (0..n).map(trivial).collect::<Vec<_>>().await.iter().sum()
}

/// A branch of `leaves` trivial tasks awaited together.
#[asynq]
fn branch(leaves: u64) -> u64 {
    trivial_tasks(leaves).await
}

/// `n` trivial tasks as a two-level tree: `sqrt(n)` branches of `sqrt(n)` leaves. The leaves
/// of a branch are made when it runs and are gone when it finishes, so memory stays small
/// and the figure is the scheduler's own cost per task at any size.
#[asynq]
fn tree_tasks(n: u64) -> u64 {
    let k = n.isqrt();
    (0..k)
        .map(|_| branch(n / k))
        .collect::<Vec<_>>()
        .await
        .iter()
        .sum()
}

/// A task that waits for one fetch.
#[asynq]
fn fetching(k: u64) -> u64 {
    Numbers::load(k).await.unwrap_or(0)
}

/// `n` fetching tasks awaited together: one call with `n` keys.
#[asynq]
fn fetching_tasks(n: u64) -> u64 {
    (0..n).map(fetching).collect::<Vec<_>>().await.iter().sum()
}

/// `n` fetch requests awaited together (no task around each): one call with `n` keys.
#[asynq]
fn coalesced_loads(n: u64) -> u64 {
    Numbers::load_many(0..n)
        .await
        .into_iter()
        .map(|v| v.unwrap_or(0))
        .sum()
}

/// Nanoseconds per fetch answered from the run's cache: `keys` keys are fetched once, then
/// requested `rounds` more times one after another. Returns the time of the cached part.
#[asynq]
fn cache_hits(keys: u64, rounds: u64) -> f64 {
    let first = Numbers::load_many(0..keys).await;
    assert!(first.iter().all(Result::is_ok));
    let start = Instant::now();
    let mut sum = 0;
    for _ in 0..rounds {
        for k in 0..keys {
            sum += Numbers::load(k).await.unwrap_or(0);
        }
    }
    std::hint::black_box(sum);
    start.elapsed().as_secs_f64() * 1e9 / (keys * rounds) as f64
}

/// A flat join of `n` trivial tasks without asynq, for its memory alone: a `Vec` of `n` values
/// of a task's size (`WORDS` words) written, then each read into a `Vec` of outputs, which is
/// summed. What the machine charges for this memory at each size is what any flat join of
/// that many tasks pays before any scheduling.
fn plain_flat<const WORDS: usize>(n: u64) -> u64 {
    let tasks: Vec<[u64; WORDS]> = (0..n)
        .map(|i| {
            let mut task = [0; WORDS];
            task[0] = i;
            task
        })
        .collect();
    let outputs: Vec<u64> = tasks.iter().map(|t| std::hint::black_box(t)[0]).collect();
    drop(tasks);
    outputs.iter().sum()
}

/// [`plain_flat`] for values the size of a `trivial` task.
fn plain_flat_like_tasks(n: u64) -> u64 {
    match size_of_val(&trivial(0)).div_ceil(8) {
        0 | 1 => plain_flat::<1>(n),
        2 => plain_flat::<2>(n),
        3 => plain_flat::<3>(n),
        4 => plain_flat::<4>(n),
        5 => plain_flat::<5>(n),
        6 => plain_flat::<6>(n),
        _ => plain_flat::<8>(n),
    }
}

/// `n` fetches batched by hand, as straightforward Rust does it: the keys gathered and
/// deduplicated in a `HashSet`, one `fetch`, the answers put in a `HashMap`, each key's value
/// read back from it. The baseline of [`fetching_tasks`].
fn hand_fetching(n: u64) -> u64 {
    let keys: Vec<u64> = (0..n).collect();
    let mut seen = HashSet::new();
    let unique: Vec<u64> = keys.iter().copied().filter(|&k| seen.insert(k)).collect();
    let answers = futures::executor::block_on(Numbers.fetch(&unique)).unwrap_or_default();
    let values: HashMap<u64, u64> = answers.into_iter().collect();
    keys.iter()
        .map(|k| values.get(k).copied().unwrap_or(0))
        .sum()
}

/// Nanoseconds per unit of `asynq` and of `baseline`: medians over `runs` runs (after a
/// warm-up) in which the two take turns, so that noise hits both alike.
fn ns_per_pair(
    runs: usize,
    units: u64,
    mut asynq: impl FnMut() -> u64,
    mut baseline: impl FnMut() -> u64,
) -> (f64, f64) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for run in 0..=runs {
        let mut ns = [0.0; 2];
        for i in 0..2 {
            let which = (run + i) % 2;
            let start = Instant::now();
            let out = if which == 0 { asynq() } else { baseline() };
            ns[which] = start.elapsed().as_secs_f64() * 1e9 / units as f64;
            std::hint::black_box(out);
        }
        if run > 0 {
            a.push(ns[0]);
            b.push(ns[1]);
        }
    }
    (median(a), median(b))
}

/// Nanoseconds per unit of one run of `task`, `units` units per run.
fn ns_per<Y>(rt: &Runtime, runs: usize, units: u64, task: impl Fn() -> Y) -> f64
where
    Y: Yieldable<Output = u64>,
{
    median_of(runs, || {
        let start = Instant::now();
        let out = rt.run(task()).expect("the run succeeds");
        let ns = start.elapsed().as_secs_f64() * 1e9;
        std::hint::black_box(out);
        ns / units as f64
    })
}

/// One row of the scaling table.
struct Scaling {
    n: u64,
    tree: f64,
    flat: f64,
    /// [`plain_flat_like_tasks`], measured in turns with `flat`.
    flat_plain: f64,
    waiting: f64,
    /// [`hand_fetching`], measured in turns with `waiting`.
    waiting_hand: f64,
    faults_per_1k: f64,
}

/// Heap bytes per waiting task beyond its future's own state, with `n` tasks waiting.
///
/// Each measurement uses a new runtime, so that no buffers kept from an earlier run are
/// counted as already there.
fn bytes_per_waiting_task(n: u64) -> f64 {
    let future_state = std::mem::size_of_val(&fetching(0).into_future());
    let rt = Runtime::new().with_source(Numbers);
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    rt.run(fetching_tasks(n)).expect("the run succeeds");
    let during = BYTES_IN_FETCH.load(Ordering::Relaxed);
    let scheduler = during.saturating_sub(before) as f64 - (n as usize * future_state) as f64;
    scheduler / n as f64
}

// ---------------------------------------------------------------------------------------------

/// `--only`: one workload, repeated, for a profiler.
fn only(workload: &str, repeat: usize, tasks: u64) -> ExitCode {
    let p = Params {
        questions: 1000,
        answers: 10,
    };
    let rt = Runtime::new()
        .with_source(feed::memory_store(p))
        .with_source(Numbers);
    let store = rt.source::<MemoryStore>().expect("the store is registered");
    for _ in 0..repeat {
        let out = match workload {
            "feed-asynq" => rt.run(feed::feed::<MemoryStore>(p)).map(|s| s.len() as u64),
            "feed-hand" => Ok(feed::hand_primed(store, p).len() as u64),
            "feed-naive" => Ok(feed::naive(store, p).len() as u64),
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
    let (feed_sizes, feed_runs): (&[(u64, usize)], _) = if args.quick {
        (&[(100, 0), (1000, 0)], 5)
    } else {
        (&[(100, 0), (1000, 0), (10000, 0)], 0)
    };

    let mut rows = Vec::new();
    for &(q, _) in feed_sizes {
        let runs = match (args.quick, q) {
            (true, _) => feed_runs,
            (false, 100) => 41,
            (false, 1000) => 15,
            (false, _) => 5,
        };
        match feed_row(q, runs, Duration::ZERO) {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Latency-bound: every call sleeps 1 ms, as a remote store's round trip would.
    let latency_sizes: &[u64] = if args.quick { &[100] } else { &[100, 1000] };
    let mut latency_rows = Vec::new();
    for &q in latency_sizes {
        match feed_row(q, if args.quick { 5 } else { 9 }, FEED_LATENCY) {
            Ok(row) => latency_rows.push(row),
            Err(e) => {
                eprintln!("bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    }

    let rt = Runtime::new().with_source(Numbers);
    let (runs, big) = if args.quick {
        (5, 100_000)
    } else {
        (9, 1_000_000)
    };
    let trivial_ns = ns_per(&rt, runs, big, || trivial_tasks(big));
    let cache_hit_ns = median_of(runs, || {
        rt.run(cache_hits(1000, 100)).expect("the run succeeds")
    });
    let coalesced_ns = ns_per(&rt, runs.max(21), 1000, || coalesced_loads(1000));
    let sizes: &[u64] = if args.quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    let scaling: Vec<Scaling> = sizes
        .iter()
        .map(|&n| {
            let runs = if n <= 10_000 { runs * 3 } else { runs };
            // The tree first: the flat joins' large blocks, once freed, leave the allocator
            // handing out fresh pages for a while.
            let tree = ns_per(&rt, runs * 3, n, || tree_tasks(n));
            let (flat, flat_plain) = ns_per_pair(
                runs,
                n,
                || rt.run(trivial_tasks(n)).expect("the run succeeds"),
                || plain_flat_like_tasks(n),
            );
            let mut faults = 0;
            let waiting_run = || {
                let before = page_faults();
                let out = rt.run(fetching_tasks(n)).expect("the run succeeds");
                faults += page_faults() - before;
                out
            };
            let (waiting, waiting_hand) = ns_per_pair(runs, n, waiting_run, || hand_fetching(n));
            let faults = faults as f64 / ((runs + 1) as u64 * n) as f64;
            Scaling {
                n,
                tree,
                flat,
                flat_plain,
                waiting,
                waiting_hand,
                faults_per_1k: faults * 1000.0,
            }
        })
        .collect();
    let waiting = 100_000;
    bytes_per_waiting_task(waiting); // warm-up
    let bytes = median((0..5).map(|_| bytes_per_waiting_task(waiting)).collect());

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
    println!("Scheduler (medians)");
    println!();
    println!("| measure | value |");
    println!("| --- | ---: |");
    println!("| ns per trivial task ({big} tasks) | {trivial_ns:.1} |");
    println!("| ns per fetch answered from the run's cache | {cache_hit_ns:.1} |");
    println!("| ns per fetch coalesced with 999 siblings (one call) | {coalesced_ns:.1} |");
    println!("| heap bytes per waiting task ({waiting} waiting) | {bytes:.0} |");
    println!();
    println!("Scaling: ns per task (medians)");
    println!();
    println!(
        "| tasks | trivial, in a tree | trivial, one flat join | its memory alone, plain Rust | waiting on a fetch, one flat join | the same fetches batched by hand | page faults per 1k waiting tasks |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for s in &scaling {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            s.n, s.tree, s.flat, s.flat_plain, s.waiting, s.waiting_hand, s.faults_per_1k
        );
    }
    if let (Some(small), Some(large)) = (scaling.first(), scaling.last()) {
        let growth = |f: fn(&Scaling) -> f64| f(large) / f(small);
        println!();
        println!(
            "Growth from {} to {} tasks (target <= 1.25): in a tree {:.2}; flat join {:.2}, \
             its memory alone {:.2}, the flat join above its memory ({:.1} -> {:.1} ns) {:.2}; \
             waiting {:.2}, batched by hand {:.2}",
            small.n,
            large.n,
            growth(|s| s.tree),
            growth(|s| s.flat),
            growth(|s| s.flat_plain),
            small.flat - small.flat_plain,
            large.flat - large.flat_plain,
            growth(|s| s.flat - s.flat_plain),
            growth(|s| s.waiting),
            growth(|s| s.waiting_hand),
        );
    }
    println!();
    println!(
        "(all outputs checked equal; {:.1} s in all)",
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
