//! One `Runtime` shared by many runs at once: 8 threads doing 10,000 blocking runs in total,
//! and 10,000 `run_async` runs on a multi-threaded tokio runtime (4 per task, interleaved on
//! each worker). Every run's result and statistics are checked against the reference: runs
//! never share a cache, a statistic or a wake-up.

use std::sync::{Arc, Barrier};

use asynq_tests::faults::Fault;
use asynq_tests::program::{self, Expected, Program, SrcA, SrcB, SrcC, reference, root_task};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

const RUNS: usize = 10_000;
const PROGRAMS: usize = 250;
const MAX_BATCH: [Option<usize>; 3] = [None, Some(2), Some(1)];

/// `PROGRAMS` generated programs (the same every time) with what each run of them must give.
fn programs() -> Vec<(Arc<Program>, Expected)> {
    let mut runner = TestRunner::deterministic();
    let strategy = program::program(12);
    (0..PROGRAMS)
        .map(|_| {
            let program = strategy.new_tree(&mut runner).unwrap().current();
            let expected = reference(&program, &program::healthy);
            (Arc::new(program), expected)
        })
        .collect()
}

/// Run program `i` on `rt` and check its result and its own statistics.
async fn run_and_check(rt: &asynq_core::Runtime, cases: &[(Arc<Program>, Expected)], i: usize) {
    let (program, expected) = &cases[i % cases.len()];
    let (result, stats) = rt.run_async(root_task(program)).with_stats().await;
    assert_eq!(result, expected.result, "run {i} of {program:?}");
    assert_eq!(stats.rounds, expected.rounds, "run {i} of {program:?}");
    for (src, name) in program::SOURCE_NAMES.iter().enumerate() {
        let keys = stats.source(name).map_or(0, |s| s.keys);
        assert_eq!(
            keys,
            expected.keys_sent(src as u8),
            "run {i}, source {name}"
        );
    }
}

/// Every key any run sent, over all sources: the sum of what each run must send.
fn check_totals(rt: &asynq_core::Runtime, cases: &[(Arc<Program>, Expected)]) {
    let sent: usize = program::sent(rt).iter().flatten().map(Vec::len).sum();
    let expected: usize = (0..RUNS)
        .map(|i| {
            let e = &cases[i % cases.len()].1;
            (0..3).map(|s| e.keys_sent(s)).sum::<usize>()
        })
        .sum();
    assert_eq!(sent, expected);
}

/// Every call pends a poll before it answers, so that runs sharing a thread interleave.
fn slow_runtime() -> asynq_core::Runtime {
    let rt = program::runtime(MAX_BATCH);
    rt.source::<SrcA>().unwrap().inject(Fault::Slow(1));
    rt.source::<SrcB>().unwrap().inject(Fault::Slow(2));
    rt.source::<SrcC>().unwrap().inject(Fault::Slow(1));
    rt
}

#[test]
fn eight_threads_share_one_runtime() {
    let cases = programs();
    let rt = slow_runtime();
    let threads = 8;
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (rt, cases, start) = (&rt, &cases, &start);
            s.spawn(move || {
                start.wait();
                for i in (t..RUNS).step_by(threads) {
                    futures::executor::block_on(run_and_check(rt, cases, i));
                }
            });
        }
    });
    check_totals(&rt, &cases);
}

#[test]
fn a_multi_threaded_tokio_runtime_shares_one_runtime() {
    let cases = Arc::new(programs());
    let rt = Arc::new(slow_runtime());
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    tokio.block_on(async {
        let tasks: Vec<_> = (0..RUNS / 4)
            .map(|t| {
                let (rt, cases) = (Arc::clone(&rt), Arc::clone(&cases));
                tokio::spawn(async move {
                    // Four runs polled by one task: they interleave on whichever worker runs it.
                    let runs = (0..4).map(|j| run_and_check(&rt, &cases, 4 * t + j));
                    futures::future::join_all(runs).await;
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("every run checks out");
        }
    });
    check_totals(&rt, &cases);
}
