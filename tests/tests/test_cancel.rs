//! Cancellation: dropping a `run_async` future mid-run drops every task of the run and every
//! source future in flight, and the next run on the same runtime is correct.
//!
//! Tasks hold a `Live` guard each and the sources are `Faulty` wrappers that count their live
//! `fetch` futures, so "dropped" is counted, not assumed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::sync::Arc;

use asynq_core::{DataSource, Error, Runtime, asynq};
use asynq_tests::faults::{Fault, Faulty, Live, LiveCounter};
use asynq_tests::program::{self, SrcA, SrcB, SrcC, healthy, reference, root_task};
use proptest::prelude::*;

struct Kv;

impl DataSource for Kv {
    type Key = u32;
    type Value = u32;
    type Error = std::convert::Infallible;
    async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, u32)>, Self::Error> {
        Ok(keys.iter().map(|&k| (k, 10 * k)).collect())
    }
}

struct Names;

impl DataSource for Names {
    type Key = u32;
    type Value = String;
    type Error = std::convert::Infallible;
    async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, String)>, Self::Error> {
        Ok(keys.iter().map(|&k| (k, format!("n{k}"))).collect())
    }
}

type A = Faulty<Kv>;
type B = Faulty<Names>;

/// Round 1: `A[k]` and `B[k]` together; round 2: `A[A[k]]`.
#[asynq]
fn item(k: u32, live: Live) -> Result<String, Error> {
    let _live = live;
    let (a, name) = (A::load(k), B::load(k)).await;
    let deeper = A::load(a?).await?;
    Ok(format!("{}={deeper}", name?))
}

#[asynq]
fn page(n: u32, counter: LiveCounter) -> Result<Vec<String>, Error> {
    let _live = counter.guard();
    let items: Vec<_> = (1..=n).map(|k| item(k, counter.guard())).collect();
    items.await.into_iter().collect()
}

fn expected(n: u32) -> Vec<String> {
    (1..=n).map(|k| format!("n{k}={}", 100 * k)).collect()
}

fn runtime() -> Runtime {
    Runtime::new()
        .with_source(Faulty::new(Kv))
        .with_source(Faulty::new(Names))
}

fn a(rt: &Runtime) -> &A {
    rt.source::<A>().unwrap()
}

fn b(rt: &Runtime) -> &B {
    rt.source::<B>().unwrap()
}

/// Poll `future` once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    Pin::new(future).poll(&mut cx)
}

fn check_next_run_is_correct(rt: &Runtime, counter: &LiveCounter) {
    a(rt).clear();
    b(rt).clear();
    assert_eq!(rt.run(page(4, counter.clone())).unwrap(), expected(4));
    assert_eq!(rt.last_stats().rounds, 2);
    assert_eq!(
        a(rt).calls().len(),
        2,
        "a fresh cache: both rounds sent again"
    );
    assert_eq!(counter.live(), 0);
    assert_eq!((a(rt).live_fetches(), b(rt).live_fetches()), (0, 0));
}

#[test]
fn dropping_a_run_in_its_first_round_drops_tasks_and_calls() {
    let rt = runtime();
    let counter = LiveCounter::new();
    // Names never answers; Kv answers at once: one call finished, one in flight.
    b(&rt).inject(Fault::Hang(vec![1]));
    let mut run = rt.run_async(page(4, counter.clone()));
    assert!(poll_once(&mut run).is_pending());
    assert_eq!(counter.live(), 5, "the page and its four items are alive");
    assert_eq!(b(&rt).live_fetches(), 1, "the hung call is in flight");
    assert!(poll_once(&mut run).is_pending());
    drop(run);
    assert_eq!(counter.live(), 0, "every task was dropped");
    assert_eq!((a(&rt).live_fetches(), b(&rt).live_fetches()), (0, 0));
    check_next_run_is_correct(&rt, &counter);
}

#[test]
fn dropping_a_run_in_a_later_round_drops_tasks_and_calls() {
    let rt = runtime();
    let counter = LiveCounter::new();
    // Round 2 asks A for 10, 20, ...: the call holding 20 never completes; the others are slow.
    a(&rt).inject(Fault::Hang(vec![20])).inject(Fault::Slow(3));
    let mut run = rt.run_async(page(4, counter.clone()));
    let mut polls = 0;
    while a(&rt).calls().len() < 2 {
        assert!(poll_once(&mut run).is_pending());
        polls += 1;
        assert!(polls < 1000, "round 2 never started");
    }
    assert_eq!(a(&rt).calls()[1].keys, [10, 20, 30, 40]);
    assert_eq!(a(&rt).live_fetches(), 1);
    assert_eq!(counter.live(), 5);
    drop(run);
    assert_eq!(counter.live(), 0);
    assert_eq!((a(&rt).live_fetches(), b(&rt).live_fetches()), (0, 0));
    check_next_run_is_correct(&rt, &counter);
}

#[test]
fn dropping_a_run_that_never_started_drops_its_tasks() {
    let rt = runtime();
    let counter = LiveCounter::new();
    let run = rt.run_async((page(3, counter.clone()), item(9, counter.guard())));
    assert_eq!(
        counter.live(),
        1,
        "a task holds its arguments before it runs"
    );
    drop(run);
    assert_eq!(counter.live(), 0);
    assert!(a(&rt).calls().is_empty(), "nothing was fetched");
    check_next_run_is_correct(&rt, &counter);
}

/// Aborting a tokio task that awaits a run, and a caller's timeout, are drops too.
#[test]
fn aborted_and_timed_out_runs_under_tokio_drop_everything() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rt = std::sync::Arc::new(runtime_with_hang());
    let counter = LiveCounter::new();
    runtime.block_on(async {
        let handle = {
            let (rt, counter) = (rt.clone(), counter.clone());
            tokio::spawn(async move { rt.run_async(page(4, counter)).await })
        };
        // Wait (a generous minute at most) until the hung call is in flight, then abort.
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            while b(&rt).live_fetches() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the run never reached its hung call");
        handle.abort();
        assert!(handle.await.unwrap_err().is_cancelled());
        assert_eq!(counter.live(), 0);
        assert_eq!(b(&rt).live_fetches(), 0);

        let timed_out = tokio::time::timeout(
            Duration::from_millis(5),
            rt.run_async(page(4, counter.clone())),
        )
        .await;
        assert!(timed_out.is_err());
        assert_eq!(counter.live(), 0);
        assert_eq!(b(&rt).live_fetches(), 0);
    });
    check_next_run_is_correct(&rt, &counter);
}

fn runtime_with_hang() -> Runtime {
    let rt = runtime();
    b(&rt).inject(Fault::Hang(vec![2]));
    rt
}

proptest! {
    #![proptest_config(program::config(500))]

    /// A random program, its calls slow, dropped after any number of polls: nothing of the
    /// run stays alive, and the same runtime then runs the program correctly.
    #[test]
    fn a_run_dropped_after_any_poll_leaves_nothing_alive(
        program in program::program(12),
        max_batch in program::batch_sizes(),
        slow in [0usize..3, 0usize..3, 0usize..3],
        polls in 0usize..30,
    ) {
        let program = Arc::new(program);
        let rt = program::runtime(max_batch);
        rt.source::<SrcA>().unwrap().inject(Fault::Slow(slow[0]));
        rt.source::<SrcB>().unwrap().inject(Fault::Slow(slow[1]));
        rt.source::<SrcC>().unwrap().inject(Fault::Slow(slow[2]));
        let live_fetches = |rt: &Runtime| {
            rt.source::<SrcA>().unwrap().live_fetches()
                + rt.source::<SrcB>().unwrap().live_fetches()
                + rt.source::<SrcC>().unwrap().live_fetches()
        };
        let mut run = rt.run_async(root_task(&program));
        for _ in 0..polls {
            if poll_once(&mut run).is_ready() {
                break;
            }
        }
        drop(run);
        prop_assert_eq!(program.live.live(), 0, "tasks alive after the drop");
        prop_assert_eq!(live_fetches(&rt), 0, "fetch futures alive after the drop");
        let expected = reference(&program, &healthy);
        prop_assert_eq!(rt.run(root_task(&program)), expected.result);
        prop_assert_eq!(rt.last_stats().rounds, expected.rounds);
        prop_assert_eq!(program.live.live(), 0);
    }
}
