//! Deep data: recursion through boxed tasks runs in constant stack and linear time, however
//! deep the data goes, and everything around it (scopes, hooks, memo, cancellation, panics,
//! stalls) holds at depth.
//!
//! The depth tests run on threads with a 256 KiB stack: a runtime that polled recursion from
//! inside each level (as before boxed tasks became roots of their own) overflows such a stack
//! after a few hundred levels, which aborts the process.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};

use asynq_core::{
    BoxFuture, DataSource, Error, Runtime, Task, Timer, asynq, scoped_value, with_hooks,
};

/// The stack of the threads that run deep data.
const SMALL_STACK: usize = 256 * 1024;

/// `n` levels, or a few hundred under Miri (which interprets every level, a thousand times
/// slower): Miri checks the `unsafe` code of boxed tasks, not the depth.
const fn levels(n: u64) -> u64 {
    if cfg!(miri) && n > 300 { 300 } else { n }
}

/// Run `f` on a new thread with a 256 KiB stack.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .expect("spawn a thread")
        .join()
        .expect("the thread does not panic")
}

/// Comments: comment `id` has text `id * 3` and the children `children(id)`; comments at or
/// past `end` have none. Counts calls.
struct Comments {
    /// Children per comment: 1 for a chain, more for a tree.
    branching: u64,
    end: u64,
    calls: AtomicUsize,
}

impl Comments {
    fn chain(depth: u64) -> Self {
        Comments {
            branching: 1,
            end: depth,
            calls: AtomicUsize::new(0),
        }
    }

    fn tree(branching: u64, end: u64) -> Self {
        Comments {
            branching,
            end,
            calls: AtomicUsize::new(0),
        }
    }

    fn children(&self, id: u64) -> Vec<u64> {
        let first = id * self.branching + 1;
        (first..first + self.branching)
            .filter(|&c| c < self.end)
            .collect()
    }
}

#[derive(Clone, Debug)]
struct Comment {
    text: u64,
    children: Vec<u64>,
}

impl DataSource for Comments {
    type Key = u64;
    type Value = Comment;
    type Error = std::convert::Infallible;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, Comment)>, Self::Error> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(keys
            .iter()
            .map(|&id| {
                let comment = Comment {
                    text: id * 3,
                    children: self.children(id),
                };
                (id, comment)
            })
            .collect())
    }
}

/// A comment and its replies, as a checksum: the sum of every text in the subtree plus the
/// number of comments.
#[asynq(boxed)]
fn thread_sum(id: u64) -> Result<u64, Error> {
    let comment = Comments::load(id).await?;
    let replies = comment
        .children
        .into_iter()
        .map(thread_sum)
        .collect::<Vec<_>>()
        .await;
    let mut sum = comment.text + 1;
    for reply in replies {
        sum += reply?;
    }
    Ok(sum)
}

/// What [`thread_sum`] must give for the comments `0..end`.
fn expected_sum(end: u64) -> u64 {
    (0..end).map(|id| id * 3 + 1).sum()
}

#[test]
fn a_chain_of_depth_100_000_runs_on_a_256_kib_stack() {
    let depth = levels(100_000);
    let (result, stats, calls) = on_small_stack(move || {
        let rt = Runtime::new().with_source(Comments::chain(depth));
        let result = rt.run(thread_sum(0));
        let calls = rt
            .source::<Comments>()
            .unwrap()
            .calls
            .load(Ordering::Relaxed);
        (result, rt.last_stats(), calls)
    });
    assert_eq!(result.unwrap(), expected_sum(depth));
    // One level per round: the chain's data dependencies are its depth.
    assert_eq!((stats.rounds, calls), (depth as usize, depth as usize));
    assert_eq!(stats.tasks, depth as usize);
}

#[test]
fn a_tree_makes_one_call_per_level() {
    // Branching 4, depth 7 (levels 0..=6): 5461 comments.
    let height = if cfg!(miri) { 4 } else { 7 };
    let end = (0..height).map(|level| 4u64.pow(level)).sum::<u64>();
    let rt = Runtime::new().with_source(Comments::tree(4, end));
    assert_eq!(rt.run(thread_sum(0)).unwrap(), expected_sum(end));
    let stats = rt.last_stats();
    assert_eq!(
        (stats.rounds, stats.calls(), stats.keys()),
        (height as usize, height as usize, end as usize)
    );
}

/// A chain whose comments past `stuck_from` are never answered.
struct Stuck {
    stuck_from: u64,
}

impl DataSource for Stuck {
    type Key = u64;
    type Value = u64;
    type Error = std::convert::Infallible;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Self::Error> {
        if keys.iter().any(|&k| k >= self.stuck_from) {
            std::future::pending::<()>().await;
        }
        Ok(keys.iter().map(|&k| (k, k + 1)).collect())
    }
}

/// Counts the levels alive: each level holds a guard while its task exists.
static LEVELS_ALIVE: AtomicUsize = AtomicUsize::new(0);

struct Alive;

impl Alive {
    fn new() -> Self {
        LEVELS_ALIVE.fetch_add(1, Ordering::Relaxed);
        Alive
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        LEVELS_ALIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[asynq(boxed)]
fn descend(id: u64) -> Result<u64, Error> {
    let _alive = Alive::new();
    let next = Stuck::load(id).await?;
    Ok(descend(next).await? + 1)
}

#[test]
fn dropping_a_run_half_way_down_a_deep_chain_drops_every_level_iteratively() {
    let depth = levels(100_000);
    let alive_after = on_small_stack(move || {
        let rt = Runtime::new().with_source(Stuck { stuck_from: depth });
        let mut run = rt.run_async(descend(0));
        let mut cx = Context::from_waker(Waker::noop());
        // The chain grows one level per round until the call for `depth` hangs.
        for _ in 0..10 {
            assert!(std::pin::Pin::new(&mut run).poll(&mut cx).is_pending());
        }
        let alive = LEVELS_ALIVE.load(Ordering::Relaxed);
        drop(run);
        (alive, LEVELS_ALIVE.load(Ordering::Relaxed))
    });
    assert_eq!(
        alive_after,
        (depth as usize + 1, 0),
        "(levels alive before the drop, after)"
    );
}

#[asynq(boxed)]
fn dive(id: u64, bottom: u64) -> Result<u64, Error> {
    let v = Stuck::load(id).await?;
    if id == bottom {
        panic!("the bottom at {id}");
    }
    dive(v, bottom).await
}

#[test]
fn a_panic_deep_down_ends_the_run_with_its_function_named() {
    let err = on_small_stack(|| {
        let rt = Runtime::new().with_source(Stuck {
            stuck_from: u64::MAX,
        });
        rt.run(dive(0, levels(50_000))).unwrap_err()
    });
    match &err {
        Error::TaskPanicked { task, message } => {
            assert!(task.ends_with("::dive"), "{task}");
            assert_eq!(message, &format!("the bottom at {}", levels(50_000)));
        }
        other => panic!("{other}"),
    }
}

/// A task that waits on a future nothing wakes, at the bottom of a chain.
#[asynq(boxed)]
fn sink(depth: u64) -> u64 {
    if depth == 0 {
        return never().await;
    }
    sink(depth - 1).await + 1
}

#[asynq]
fn never() -> u64 {
    Never.await
}

/// A yieldable that never finishes and records nothing.
struct Never;

impl asynq_core::Yieldable for Never {
    type Output = u64;
    type Future = std::future::Pending<u64>;
    fn into_future(self) -> Self::Future {
        std::future::pending()
    }
}

#[test]
fn a_stall_deep_down_names_the_chain_shortened() {
    let err = on_small_stack(|| Runtime::new().run(sink(levels(20_000))).unwrap_err());
    let Error::Stall { waiting } = &err else {
        panic!("{err}");
    };
    // Only the innermost waiting task is described, with the boxed tasks above it shortened.
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(
        waiting[0].starts_with("sink > sink > sink > ... > sink > sink > sink > never: "),
        "{}",
        waiting[0]
    );
    assert!(err.to_string().len() < 1000, "{err}");
}

scoped_value!(static LOCALE: &'static str);

/// The locale seen at each level going down, then coming back up.
#[asynq(boxed)]
fn locales(depth: u64) -> Vec<(u64, Option<&'static str>)> {
    let here = LOCALE.get();
    let mut below = match depth {
        0 => Vec::new(),
        // A scope in the middle: the levels under it see it, those above do not.
        5 => LOCALE.scope("fr", locales(depth - 1)).await,
        _ => locales(depth - 1).await,
    };
    below.push((depth, here));
    below.push((depth, LOCALE.get()));
    below
}

#[test]
fn scoped_values_reach_boxed_tasks_at_any_depth() {
    let rt = Runtime::new();
    let seen = rt.run(LOCALE.scope("en", locales(8))).unwrap();
    for (depth, locale) in seen {
        let expected = if depth < 5 { "fr" } else { "en" };
        assert_eq!(locale, Some(expected), "depth {depth}");
    }
    assert_eq!(LOCALE.get(), None, "nothing leaks out of the run");
}

#[asynq(boxed)]
fn busy_levels(depth: u64) -> Result<u64, Error> {
    let v = Stuck::load(depth).await?;
    std::hint::black_box((0..1000u64).sum::<u64>());
    if depth == 0 {
        return Ok(v);
    }
    Ok(busy_levels(depth - 1).await? + v)
}

#[test]
fn hooks_around_a_recursion_see_every_level() {
    let rt = Runtime::new().with_source(Stuck {
        stuck_from: u64::MAX,
    });
    let timer = Timer::new();
    let total = rt.run(timer.time(busy_levels(99))).unwrap();
    assert_eq!(total, (1..=100).sum::<u64>());
    // Each level is resumed twice (its start, then after its fetch) and once more after
    // its child, but the deepest: all of them under the timer's hooks. The root task's own
    // future is polled twice more (it hands the top level to the scheduler, then takes its
    // output).
    assert_eq!(timer.resumptions(), (100 * 3 - 1) + 2);
    let log = Arc::new(Mutex::new(Vec::new()));
    let hooks = Recorder(Arc::clone(&log), 0);
    rt.run(with_hooks(hooks, busy_levels(2))).unwrap();
    let log = log.lock().unwrap();
    assert!(log.chunks(2).all(|p| p == ["resume", "pause"]), "{log:?}");
}

struct Recorder(Arc<Mutex<Vec<&'static str>>>, u32);

impl asynq_core::TaskHooks for Recorder {
    fn resume(&mut self) {
        self.1 += 1;
        self.0.lock().unwrap().push("resume");
    }
    fn pause(&mut self) {
        self.0.lock().unwrap().push("pause");
    }
}

/// Fibonacci numbers fetched through a memoized, boxed recursion: each `n` runs once.
#[asynq(boxed, memo)]
fn fib(n: u64) -> Result<u64, Error> {
    if n < 2 {
        return Stuck::load(n).await.map(|v| v - 1);
    }
    let (a, b) = (fib(n - 1), fib(n - 2)).await;
    Ok(a? + b?)
}

#[test]
fn memoized_boxed_recursion_runs_each_call_once() {
    let rt = Runtime::new().with_source(Stuck {
        stuck_from: u64::MAX,
    });
    assert_eq!(rt.run(fib(90)).unwrap(), 2_880_067_194_370_816_120);
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls(), stats.keys()), (1, 1, 2));
}

/// A recursion through `boxed_local`, holding an `Rc` across its awaits.
#[asynq]
fn local_chain(depth: u64) -> u64 {
    let mine = std::rc::Rc::new(depth);
    if depth == 0 {
        return Stuck::load(0).await.unwrap();
    }
    let below = local_chain(depth - 1).boxed_local().await;
    below + *mine
}

#[test]
fn boxed_local_recursion_runs_at_depth_too() {
    let got = on_small_stack(|| {
        let rt = Runtime::new().with_source(Stuck {
            stuck_from: u64::MAX,
        });
        rt.run(local_chain(levels(50_000))).unwrap()
    });
    assert_eq!(got, (1..=levels(50_000)).sum::<u64>() + 1);
}

/// Boxed tasks of different functions in one collection, each a root of its own.
#[asynq]
fn two_kinds() -> Vec<u64> {
    let tasks: Vec<Task<BoxFuture<'static, u64>>> =
        vec![constant(1).boxed(), doubled(2).boxed(), constant(3).boxed()];
    tasks.await
}

#[asynq]
fn constant(v: u64) -> u64 {
    v
}

#[asynq]
fn doubled(v: u64) -> u64 {
    Stuck::load(v).await.unwrap() * 2
}

#[test]
fn boxed_tasks_in_a_collection_keep_their_order_and_counts() {
    let rt = Runtime::new()
        .with_source(Stuck {
            stuck_from: u64::MAX,
        })
        .with_function_stats(true);
    assert_eq!(rt.run(two_kinds()).unwrap(), [1, 6, 3]);
    let stats = rt.last_stats();
    let polls: HashMap<_, _> = stats
        .functions
        .iter()
        .map(|f| (f.name.rsplit("::").next().unwrap(), (f.tasks, f.polls)))
        .collect();
    assert_eq!(polls["constant"], (2, 2));
    assert_eq!(polls["doubled"], (1, 2));
    // Started; woken when the two constants finished (takes their outputs); woken when
    // `doubled` finished.
    assert_eq!(polls["two_kinds"], (1, 3));
    assert_eq!(stats.tasks, 4);
}

/// A root task that awaits a boxed task, then a fetch of its own, then a join.
#[asynq]
fn after_a_boxed_task() -> Result<u64, Error> {
    let a = descend_to(3).await?;
    let b = Stuck::load(a).await?;
    let (c, d) = (descend_to(2), Stuck::load(b)).await;
    Ok(a + b + c? + d?)
}

#[asynq(boxed)]
fn descend_to(depth: u64) -> Result<u64, Error> {
    if depth == 0 {
        return Stuck::load(100).await;
    }
    descend_to(depth - 1).await
}

#[test]
fn the_root_task_waits_in_its_own_node_after_boxed_tasks_ran() {
    let rt = Runtime::new().with_source(Stuck {
        stuck_from: u64::MAX,
    });
    assert_eq!(rt.run(after_a_boxed_task()).unwrap(), 101 + 102 + 101 + 103);
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls()), (3, 3));
}

#[asynq(boxed)]
fn stuck_chain(id: u64) -> Result<u64, Error> {
    let next = Stuck::load(id).await?;
    Ok(stuck_chain(next).await? + 1)
}

/// A runtime keeps the emptied arenas of a run for the next (its nodes, its boxed tasks'
/// entries): runs after a run dropped half-way, one that panicked and one that stalled, all
/// deep, see nothing of them.
#[test]
fn one_runtime_serves_deep_runs_after_dropped_panicked_and_stalled_ones() {
    let depth = levels(3_000);
    let rt = Runtime::new()
        .with_source(Comments::chain(depth))
        .with_source(Stuck { stuck_from: 400 });
    let check = |rt: &Runtime| {
        assert_eq!(rt.run(thread_sum(0)).unwrap(), expected_sum(depth));
        let stats = rt.last_stats();
        let d = depth as usize;
        assert_eq!(
            (stats.rounds, stats.tasks, stats.per_round.len()),
            (d, d, d)
        );
        // One source per round, one call of one key.
        assert!(stats.per_round.iter().all(|round| {
            let figures: Vec<_> = round.sources.iter().map(|s| (s.keys, s.calls)).collect();
            figures == [(1, 1)]
        }));
    };
    check(&rt);
    let mut run = rt.run_async(stuck_chain(0));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(std::pin::Pin::new(&mut run).poll(&mut cx).is_pending());
    drop(run); // 401 levels registered
    check(&rt);
    let err = rt.run(dive(0, 300)).unwrap_err();
    assert!(matches!(err, Error::TaskPanicked { .. }), "{err}");
    check(&rt);
    let err = rt.run(sink(500)).unwrap_err();
    assert!(matches!(err, Error::Stall { .. }), "{err}");
    check(&rt);
}
