//! Plain async code inside a run (`asynq_core::any`): fetch requests and asynq tasks under
//! foreign combinators batch as asynq code does, woken by their combinators' own wakers, and a
//! round is sent exactly when everything waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asynq_core::{DataSource, Error, Runtime, Yieldable, any, asynq};
use futures::StreamExt as _;
use futures::future::{join, join_all, select};
use futures::stream::FuturesUnordered;

/// `k -> k + 1`, counting calls.
#[derive(Default)]
struct Next {
    calls: AtomicUsize,
}

impl DataSource for Next {
    type Key = u64;
    type Value = u64;
    type Error = std::convert::Infallible;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Self::Error> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(keys.iter().map(|&k| (k, k + 1)).collect())
    }
}

fn runtime() -> Runtime {
    Runtime::new().with_source(Next::default())
}

/// Two dependent fetches, written as a plain async fn.
async fn twice(k: u64) -> Result<u64, Error> {
    let a = Next::load(k).await?;
    Next::load(a * 100).await
}

#[test]
fn join_all_of_many_requests_is_one_call() {
    // More than 30 futures: `join_all` polls them through `FuturesOrdered`, which polls a
    // future again only when its waker is called.
    let rt = runtime();
    let got = rt
        .run(any(async {
            join_all(Next::load_many(0..100))
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
        }))
        .unwrap();
    assert_eq!(got, (1..=100).collect::<Vec<_>>());
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls(), stats.keys()), (1, 1, 100));
}

#[test]
fn futures_unordered_of_dependent_fetches_runs_in_the_critical_path() {
    let rt = runtime();
    let got = rt
        .run(any(async {
            let mut all: FuturesUnordered<_> = (0..50).map(twice).collect();
            let mut sum = 0;
            while let Some(v) = all.next().await {
                sum += v?;
            }
            Ok::<_, Error>(sum)
        }))
        .unwrap();
    assert_eq!(got, (0..50).map(|k| (k + 1) * 100 + 1).sum::<u64>());
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls(), stats.keys()), (2, 2, 100));
}

#[test]
fn select_polls_both_sides_in_one_round() {
    let rt = runtime();
    let got = rt
        .run(any(async {
            match select(Next::load(1), Next::load(2)).await {
                futures::future::Either::Left((v, _)) | futures::future::Either::Right((v, _)) => v,
            }
        }))
        .unwrap();
    assert!(got == 2 || got == 3);
    assert_eq!(rt.last_stats().calls(), 1);
}

#[asynq]
fn chain(k: u64) -> Result<u64, Error> {
    let a = Next::load(k).await?;
    Next::load(a * 100).await
}

// One await after the other on purpose (allow_sequential): each level waits for the one below
// before its own fetch, so the chains have depth.
#[asynq(boxed, allow_sequential)]
fn count_down(k: u64) -> Result<u64, Error> {
    if k == 0 {
        return Next::load(0).await;
    }
    Ok(count_down(k - 1).await? + Next::load(k).await?)
}

#[test]
fn asynq_tasks_inside_plain_async_code_batch_with_it() {
    let rt = runtime();
    let (tasks, plain) = rt
        .run(any(async {
            let tasks = join_all((0..40).map(|k| chain(k).into_future()));
            let plain = join_all((40..80).map(twice));
            join(tasks, plain).await
        }))
        .unwrap();
    let expected = |r: std::ops::Range<u64>| r.map(|k| (k + 1) * 100 + 1).collect::<Vec<_>>();
    let ok = |v: Vec<Result<u64, Error>>| v.into_iter().map(Result::unwrap).collect::<Vec<_>>();
    assert_eq!(ok(tasks), expected(0..40));
    assert_eq!(ok(plain), expected(40..80));
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls(), stats.keys()), (2, 2, 160));
}

#[test]
fn boxed_tasks_and_memo_inside_foreign_combinators() {
    let rt = runtime();
    let got = rt
        .run(any(async {
            let all: FuturesUnordered<_> = (0..35).map(|k| count_down(k).into_future()).collect();
            all.collect::<Vec<_>>().await
        }))
        .unwrap();
    assert_eq!(got.len(), 35);
    assert!(got.into_iter().all(|r| r.is_ok()));
}

/// Plain async code around an asynq task around plain async code.
#[asynq]
fn wrapper(k: u64) -> Result<u64, Error> {
    any(async move { twice(k).await }).await
}

#[test]
fn an_asynq_function_can_await_plain_async_code() {
    let rt = runtime();
    let got = rt.run((0..40).map(wrapper).collect::<Vec<_>>()).unwrap();
    assert_eq!(got.len(), 40);
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls()), (2, 2));
}

#[test]
fn a_timer_inside_a_run_wakes_it_and_is_not_a_stall() {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let rt = runtime();
    let got = tokio.block_on(async {
        rt.run_async(any(async {
            let a = Next::load(1).await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
            let b = Next::load(a).await?;
            Ok::<_, Error>(b)
        }))
        .await
    });
    assert_eq!(got.unwrap(), 3);
    assert_eq!(rt.last_stats().calls(), 2);
}

#[test]
fn a_foreign_future_that_nothing_wakes_is_still_a_stall() {
    // `pending()` keeps no waker: nothing can ever wake the run.
    let err = runtime()
        .run(any(async {
            let a = Next::load(1).await?;
            std::future::pending::<()>().await;
            Ok::<_, Error>(a)
        }))
        .unwrap_err();
    assert!(matches!(err, Error::Stall { .. }), "{err}");
}

#[test]
fn many_runs_of_plain_async_code_on_one_runtime_under_tokio() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let rt = Arc::new(runtime());
    let results = tokio.block_on(async {
        let runs = (0..64u64).map(|i| {
            let rt = Arc::clone(&rt);
            tokio::spawn(async move {
                let (result, stats) = rt
                    .run_async(any(async move {
                        let all = join_all((0..40).map(|k| twice(i * 1000 + k))).await;
                        tokio::task::yield_now().await;
                        all.into_iter().collect::<Result<Vec<_>, _>>()
                    }))
                    .with_stats()
                    .await;
                (result, stats.rounds, stats.calls())
            })
        });
        join_all(runs).await
    });
    for (i, joined) in results.into_iter().enumerate() {
        let (result, rounds, calls) = joined.unwrap();
        let values = result.unwrap();
        assert_eq!(values.len(), 40);
        assert_eq!(values[0], (i as u64 * 1000 + 1) * 100 + 1);
        assert_eq!((rounds, calls), (2, 2));
    }
}
