//! A panic in an asynq function ends its run with `Error::TaskPanicked` naming the function
//! (see `Runtime::run`); every task of the run is dropped, other runs are untouched, and the
//! runtime stays usable.

use std::sync::Arc;

use asynq_core::{DataSource, Error, Runtime, asynq};
use asynq_tests::faults::{Injected, Live, LiveCounter, PANIC_MESSAGE, quiet_injected_panics};
use asynq_tests::program::{self, Fail, SrcA, SrcB, SrcC, healthy, reference, root_task};
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

/// Loads `k`, then `k + 1`; panics (with an injected message) once it has read `panic_at`.
#[asynq]
fn leaf(k: u32, panic_at: Option<u32>, live: Live) -> Result<u32, Error> {
    let _live = live;
    let a = Kv::load(k).await?;
    if panic_at == Some(a) {
        panic!("{PANIC_MESSAGE}: leaf read {a}");
    }
    let b = Kv::load(k + 1).await?;
    Ok(a + b)
}

#[asynq]
fn mid(k: u32, panic_at: Option<u32>, counter: LiveCounter) -> Result<u32, Error> {
    let _live = counter.guard();
    let (x, y) = (
        leaf(k, panic_at, counter.guard()),
        leaf(k + 10, None, counter.guard()),
    )
        .await;
    Ok(x? + y?)
}

/// Three `mid`s at once; one of them may panic deep down.
#[asynq]
fn page(panic_at: Option<u32>, counter: LiveCounter) -> Result<u32, Error> {
    let _live = counter.guard();
    let parts = vec![
        mid(0, None, counter.clone()),
        mid(100, panic_at, counter.clone()),
        mid(200, None, counter.clone()),
    ]
    .await;
    parts.into_iter().sum()
}

fn expected_page() -> u32 {
    // leaf(k) = 10k + 10(k+1) = 20k + 10; mid(k) = leaf(k) + leaf(k+10) = 40k + 220.
    [0, 100, 200].iter().map(|k| 40 * k + 220).sum()
}

fn assert_panicked(err: &Error, function: &str, message: &str) {
    match err {
        Error::TaskPanicked { task, message: m } => {
            assert!(
                task.ends_with(&format!("::{function}")),
                "{task} is not {function}"
            );
            assert!(m.starts_with(message), "{m}");
        }
        other => panic!("expected TaskPanicked, got {other:?}"),
    }
}

#[test]
fn a_panicking_task_ends_its_run_with_an_error_naming_it() {
    quiet_injected_panics();
    let rt = Runtime::new().with_source(Kv);
    let counter = LiveCounter::new();
    // `leaf(100)` reads 1000 in round 1 and panics; its siblings wait on round 2's keys.
    let err = rt.run(page(Some(1000), counter.clone())).unwrap_err();
    assert_panicked(&err, "leaf", PANIC_MESSAGE);
    assert!(
        err.to_string()
            .contains("::leaf` panicked: injected panic: leaf read 1000"),
        "{err}"
    );
    assert_eq!(counter.live(), 0, "every task of the run was dropped");
    assert_eq!(rt.last_stats().rounds, 1);

    // The runtime is fine: the same page without the panic.
    assert_eq!(
        rt.run(page(None, counter.clone())).unwrap(),
        expected_page()
    );
    assert_eq!(counter.live(), 0);
    assert_eq!(rt.last_stats().rounds, 2);
}

#[asynq]
fn outer_panics_after_children(counter: LiveCounter) -> Result<u32, Error> {
    let _live = counter.guard();
    let (a, b) = (
        leaf(1, None, counter.guard()),
        leaf(2, None, counter.guard()),
    )
        .await;
    let sum = a? + b?;
    if sum > 0 {
        std::panic::panic_any(Injected); // not a string
    }
    Ok(sum)
}

#[test]
fn the_innermost_running_function_is_named_whatever_the_payload() {
    quiet_injected_panics();
    let rt = Runtime::new().with_source(Kv);
    let counter = LiveCounter::new();
    let err = rt
        .run(outer_panics_after_children(counter.clone()))
        .unwrap_err();
    assert_panicked(
        &err,
        "outer_panics_after_children",
        "(a non-string panic payload)",
    );
    assert_eq!(counter.live(), 0);
}

#[asynq]
fn ok_page(counter: LiveCounter) -> Result<u32, Error> {
    page(None, counter).await
}

/// Two runs polled by one executor task on one thread: one panics, the other is unaffected
/// (each run publishes its own state while it polls, and a panic restores the other's).
#[test]
fn a_panicking_run_does_not_disturb_another_run_on_the_same_thread() {
    quiet_injected_panics();
    let rt = Runtime::new().with_source(Kv);
    let counter = LiveCounter::new();
    let (bad, good) = futures::executor::block_on(futures::future::join(
        rt.run_async(page(Some(1000), counter.clone())),
        rt.run_async(ok_page(counter.clone())),
    ));
    assert_panicked(&bad.unwrap_err(), "leaf", PANIC_MESSAGE);
    assert_eq!(good.unwrap(), expected_page());
    assert_eq!(counter.live(), 0);
}

/// Under a multi-threaded tokio runtime, through `run_async` in spawned tasks.
#[test]
fn panics_in_spawned_runs_come_back_as_errors() {
    quiet_injected_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let rt = std::sync::Arc::new(Runtime::new().with_source(Kv));
    let counter = LiveCounter::new();
    runtime.block_on(async {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let (rt, counter) = (rt.clone(), counter.clone());
                tokio::spawn(async move {
                    let panic_at = (i % 4 == 0).then_some(1000);
                    (i, rt.run_async(page(panic_at, counter)).await)
                })
            })
            .collect();
        for handle in handles {
            let (i, result) = handle.await.expect("the run itself does not unwind");
            if i % 4 == 0 {
                assert_panicked(&result.unwrap_err(), "leaf", PANIC_MESSAGE);
            } else {
                assert_eq!(result.unwrap(), expected_page());
            }
        }
    });
    assert_eq!(counter.live(), 0);
}

proptest! {
    #![proptest_config(program::config(500))]

    /// Random programs some of whose nodes panic: the run ends with `TaskPanicked` exactly
    /// when the sequential reference reaches a panicking node, nothing of the run stays
    /// alive, and the runtime then runs the program without its panics correctly.
    #[test]
    fn a_panic_anywhere_ends_the_run_cleanly(
        program in program::program_with_panics(12),
        max_batch in program::batch_sizes(),
    ) {
        quiet_injected_panics();
        let program = Arc::new(program);
        let rt = program::runtime(max_batch);
        let expected = reference(&program, &healthy);
        let result = rt.run(root_task(&program));
        prop_assert_eq!(&result, &expected.result);
        if matches!(result, Err(Fail::TaskPanicked(_))) {
            prop_assert_eq!(program.live.live(), 0, "tasks alive after the panic");
            let fetches = rt.source::<SrcA>().unwrap().live_fetches()
                + rt.source::<SrcB>().unwrap().live_fetches()
                + rt.source::<SrcC>().unwrap().live_fetches();
            prop_assert_eq!(fetches, 0);
        } else {
            prop_assert_eq!(rt.last_stats().rounds, expected.rounds);
        }
        let healed = Arc::new(program.without_panics());
        let expected = reference(&healed, &healthy);
        prop_assert_eq!(rt.run(root_task(&healed)), expected.result);
        prop_assert_eq!(rt.last_stats().rounds, expected.rounds);
    }
}
