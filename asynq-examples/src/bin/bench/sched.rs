//! Micro benchmarks of the scheduler: trivial tasks, cache hits, coalesced fetches, scaling
//! and memory per waiting task.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

use asynq_core::{DataSource, Runtime, Yieldable, asynq};

use crate::alloc::LIVE_BYTES;
use crate::measure::{Clock, median, median_of, ns_per, ns_per_pair, page_faults};

/// A source of numbers that answers instantly: `k -> 2k`.
pub(crate) struct Numbers;

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
pub(crate) fn trivial_tasks(n: u64) -> u64 {
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
pub(crate) fn tree_tasks(n: u64) -> u64 {
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
pub(crate) fn fetching_tasks(n: u64) -> u64 {
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
    let start = Clock::start();
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
pub(crate) fn hand_fetching(n: u64) -> u64 {
    let keys: Vec<u64> = (0..n).collect();
    let mut seen = HashSet::new();
    let unique: Vec<u64> = keys.iter().copied().filter(|&k| seen.insert(k)).collect();
    let answers = futures::executor::block_on(Numbers.fetch(&unique)).unwrap_or_default();
    let values: HashMap<u64, u64> = answers.into_iter().collect();
    keys.iter()
        .map(|k| values.get(k).copied().unwrap_or(0))
        .sum()
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

/// Measure and print the scheduler's micro figures and the scaling table.
pub(crate) fn tables(quick: bool) {
    let rt = Runtime::new().with_source(Numbers);
    let (runs, big) = if quick { (5, 100_000) } else { (9, 1_000_000) };
    let trivial_ns = ns_per(&rt, runs, big, || trivial_tasks(big));
    let cache_hit_ns = median_of(runs, || {
        rt.run(cache_hits(1000, 100)).expect("the run succeeds")
    });
    let coalesced_ns = ns_per(&rt, runs.max(21), 1000, || coalesced_loads(1000));
    let sizes: &[u64] = if quick {
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
}
