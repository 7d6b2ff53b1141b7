//! Blocking runs where they cannot end: inside an async runtime (`Error::BlockingInAsync`)
//! and inside another run (`Error::NestedRun`, naming the call made). Every test that could
//! hang runs on a thread of its own and is given a bounded time.

use std::sync::mpsc;
use std::time::Duration;

use asynq_core::{DataSource, Error, Runtime, asynq};

/// Answers `10 * k` after a tokio timer: it needs a tokio runtime's time driver.
struct Timed;

impl DataSource for Timed {
    type Key = u64;
    type Value = u64;
    type Error = std::convert::Infallible;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Self::Error> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(keys.iter().map(|&k| (k, 10 * k)).collect())
    }
}

#[asynq]
fn get(k: u64) -> Result<u64, Error> {
    Timed::load(k).await
}

/// `f` on a thread of its own; a test that would hang fails after a minute instead.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(Duration::from_secs(60))
        .expect("the call hung instead of returning")
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn assert_refused(result: Result<u64, Error>, call: &str, executor: &str) {
    let err = result.unwrap_err();
    assert!(
        matches!(err, Error::BlockingInAsync { call: c, executor: e } if c == call && e == executor),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "`{call}` would block a thread that is driving {executor}, and the run's sources \
             may need this very thread to make progress: the run would hang; await the run \
             instead (`rt.run_async(task).await`), or block on a thread that may block \
             (`tokio::task::spawn_blocking`)"
        )
    );
}

#[test]
fn a_blocking_run_inside_a_current_thread_tokio_runtime_is_refused_not_hung() {
    let (run, wait, awaited) = bounded(|| {
        let rt = Runtime::new().with_source(Timed);
        current_thread().block_on(async {
            let run = rt.run(get(1));
            let wait = rt.run_async(get(2)).wait();
            // What the error says to do works.
            let awaited = rt.run_async(get(3)).await;
            (run, wait, awaited)
        })
    });
    assert_refused(run, "Runtime::run", "a tokio runtime");
    assert_refused(wait, "RunFuture::wait", "a tokio runtime");
    assert_eq!(awaited.unwrap(), 30);
}

#[test]
fn a_blocking_run_inside_a_task_of_a_multi_thread_runtime_is_refused() {
    let (in_task, in_block_on) = bounded(|| {
        let tokio = multi_thread();
        let in_task = tokio
            .block_on(tokio.spawn(async { Runtime::new().with_source(Timed).run(get(1)) }))
            .unwrap();
        let in_block_on = tokio.block_on(async { Runtime::new().with_source(Timed).run(get(1)) });
        (in_task, in_block_on)
    });
    assert_refused(in_task, "Runtime::run", "a tokio runtime");
    assert_refused(in_block_on, "Runtime::run", "a tokio runtime");
}

#[test]
fn threads_that_may_block_still_run_blocking() {
    let (blocking_pool, entered, budget_kept) = bounded(|| {
        let tokio = current_thread();
        // tokio's blocking pool: the documented place for blocking code in a tokio program.
        let blocking_pool = tokio
            .block_on(tokio.spawn_blocking(|| Runtime::new().with_source(Timed).run(get(1))))
            .unwrap();
        // A plain thread in a multi-thread runtime's context (its drivers run elsewhere).
        let tokio = multi_thread();
        let entered = {
            let _context = tokio.enter();
            Runtime::new().with_source(Timed).run(get(2))
        };
        // Telling a task from blocking code spends tokio's budget of the task; it is put back.
        let budget_kept = current_thread().block_on(async {
            let refused = Runtime::new().run(asynq_core::ready(1u64)).is_err();
            refused && tokio::task::coop::has_budget_remaining()
        });
        (blocking_pool, entered, budget_kept)
    });
    assert_eq!(blocking_pool.unwrap(), 10);
    assert_eq!(entered.unwrap(), 20);
    assert!(budget_kept);
}

#[test]
fn a_blocking_run_inside_a_futures_executor_is_refused() {
    let out = futures::executor::block_on(async { Runtime::new().run(asynq_core::ready(1u64)) });
    let err = out.unwrap_err();
    assert!(
        matches!(
            err,
            Error::BlockingInAsync {
                call: "Runtime::run",
                executor: "a `futures` executor"
            }
        ),
        "{err:?}"
    );
}

// Nested runs. The macro rejects `block_on(..)` and `rt.run(..)` written in an asynq function,
// so each is hidden in a helper, as in real code that reaches a run through a library.

fn block_on_run_async(rt: &Runtime) -> Result<u64, Error> {
    futures::executor::block_on(rt.run_async(asynq_core::ready(Ok::<u64, Error>(1))))
}

fn blocking_run(rt: &Runtime) -> Result<u64, Error> {
    rt.run(asynq_core::ready(Ok::<u64, Error>(1)))
}

fn blocking_wait(rt: &Runtime) -> Result<u64, Error> {
    rt.run_async(asynq_core::ready(Ok::<u64, Error>(1))).wait()
}

#[asynq]
fn nested(rt: &Runtime, how: u8) -> Result<u64, Error> {
    let base = get(1).await?;
    let inner = match how {
        0 => block_on_run_async(rt)?,
        1 => blocking_run(rt)?,
        _ => blocking_wait(rt)?,
    };
    Ok(base + inner)
}

fn assert_nested(result: Result<u64, Error>, call: &str) {
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::NestedRun { task, call: c } if task.ends_with("test_blocking::nested") && *c == call),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "`{call}` was used inside the asynq function `test_blocking::nested` while its run \
             is in progress on this thread; await the task instead"
        )
    );
}

#[test]
fn block_on_run_async_inside_a_blocking_run_is_a_nested_run_not_a_panic() {
    let results = bounded(|| {
        let rt = Runtime::new().with_source(Timed);
        // For the timer, driven by the runtime's workers; `run` may block on this thread.
        let tokio = multi_thread();
        let _context = tokio.enter();
        (0..3)
            .map(|how| rt.run(nested(&rt, how)))
            .collect::<Vec<_>>()
    });
    let mut results = results.into_iter();
    assert_nested(results.next().unwrap(), "Runtime::run_async");
    assert_nested(results.next().unwrap(), "Runtime::run");
    assert_nested(results.next().unwrap(), "RunFuture::wait");
}

#[test]
fn nested_runs_under_tokio_name_the_call_made() {
    let results = bounded(|| {
        let rt = Runtime::new().with_source(Timed);
        current_thread().block_on(async {
            let mut results = Vec::new();
            for how in 0..3 {
                results.push(rt.run_async(nested(&rt, how)).await);
            }
            results
        })
    });
    let mut results = results.into_iter();
    assert_nested(results.next().unwrap(), "Runtime::run_async");
    assert_nested(results.next().unwrap(), "Runtime::run");
    assert_nested(results.next().unwrap(), "RunFuture::wait");
}
