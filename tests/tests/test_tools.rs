//! The asynq.tools equivalents, `try_all`, `ready`, and the error semantics of collections.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use asynq_core::{DataSource, Error, Runtime, asynq, ready, tools, try_all};
use common::Recorder;

#[asynq]
fn value(k: u64) -> Result<u64, Error> {
    Recorder::load(k).await
}

#[asynq]
fn is_big(k: u64) -> bool {
    // Two dependent fetches per predicate: two rounds whatever the number of items.
    let v = Recorder::load(k).await.unwrap_or(0);
    Recorder::load(v).await.unwrap_or(0) > 300
}

fn rt() -> Runtime {
    Runtime::new().with_source(Recorder::new("rec"))
}

#[test]
fn predicates_of_a_collection_run_in_the_same_rounds() {
    let rt = rt();
    let big = rt
        .run(tools::filter((1..=5).collect(), |&k| is_big(k)))
        .unwrap();
    assert_eq!(big, [4, 5]);
    let stats = rt.last_stats();
    assert_eq!(
        (stats.rounds, stats.calls()),
        (2, 2),
        "5 predicates of 2 rounds each: 2 rounds"
    );
    let (yes, no) = rt
        .run(tools::partition((1..=5).collect(), |&k| is_big(k)))
        .unwrap();
    assert_eq!((yes, no), (vec![4, 5], vec![1, 2, 3]));
    assert_eq!(rt.last_stats().rounds, 2);
}

#[test]
fn sort_max_and_min_by_an_asynq_key() {
    let rt = rt();
    // Keys: 10 * k, descending when negated through the item order below.
    let items = vec![3, 1, 2];
    let sorted = rt
        .run(tools::try_sort_by_key(items.clone(), |&k| value(k)))
        .unwrap();
    assert_eq!(sorted, [1, 2, 3]);
    assert_eq!(rt.last_stats().calls(), 1);
    #[asynq]
    fn neg(k: u64) -> i64 {
        -(value(k).await.unwrap() as i64)
    }
    assert_eq!(
        rt.run(tools::sort_by_key(items.clone(), |&k| neg(k)))
            .unwrap(),
        [3, 2, 1]
    );
    assert_eq!(
        rt.run(tools::max_by_key(items.clone(), |&k| neg(k)))
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        rt.run(tools::min_by_key(items, |&k| neg(k))).unwrap(),
        Some(3)
    );
    assert_eq!(
        rt.run(tools::max_by_key(Vec::<u64>::new(), |&k| neg(k)))
            .unwrap(),
        None
    );
}

static FAILURES_LEFT: AtomicUsize = AtomicUsize::new(0);

fn fails_while_counter_positive(keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
    if FAILURES_LEFT.load(Ordering::SeqCst) > 0 {
        FAILURES_LEFT.fetch_sub(1, Ordering::SeqCst);
        return Err("transient".to_owned());
    }
    common::times_ten(keys)
}

#[test]
fn retry_reruns_only_the_failed_task_and_refetches_its_keys() {
    let rt = Runtime::new()
        .with_source(Recorder::new("flaky").answering(fails_while_counter_positive))
        .with_source(common::Other(Recorder::new("steady")));
    #[asynq]
    fn steady(k: u64) -> Result<u64, Error> {
        common::Other::load(k).await
    }
    let runs = AtomicUsize::new(0);
    #[asynq]
    fn counted(runs: &AtomicUsize, k: u64) -> Result<u64, Error> {
        runs.fetch_add(1, Ordering::SeqCst);
        value(k).await
    }
    FAILURES_LEFT.store(2, Ordering::SeqCst);
    let (flaky, steady) = rt
        .run((tools::retry(3, || counted(&runs, 7)), steady(1)))
        .unwrap();
    assert_eq!(flaky.unwrap(), 70);
    assert_eq!(steady.unwrap(), 10);
    assert_eq!(runs.load(Ordering::SeqCst), 3, "two failures, then success");
    assert_eq!(
        rt.source::<Recorder>().unwrap().calls(),
        vec![vec![7], vec![7], vec![7]]
    );
    assert_eq!(
        rt.source::<common::Other>().unwrap().0.calls(),
        vec![vec![1]],
        "the sibling ran once"
    );
    // Out of attempts: the last error comes back.
    FAILURES_LEFT.store(5, Ordering::SeqCst);
    let err = rt.run(tools::retry(2, || value(8))).unwrap_err();
    assert!(err.to_string().ends_with("transient"), "{err}");
    FAILURES_LEFT.store(0, Ordering::SeqCst);
}

fn fails_on_odd(keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
    if keys.iter().any(|k| k % 2 == 1) {
        return Err(format!("odd key in {keys:?}"));
    }
    common::times_ten(keys)
}

#[test]
fn every_member_of_a_collection_runs_to_completion_and_try_all_gives_the_first_error() {
    let rt = Runtime::new().with_source(Recorder::new("rec").answering(fails_on_odd).max_batch(1));
    let (a, b, c) = rt.run((value(2), value(3), value(4))).unwrap();
    assert_eq!(
        (a.unwrap(), c.unwrap()),
        (20, 40),
        "the failure of b affects only b"
    );
    assert!(b.is_err());
    let err = rt.run(try_all((value(2), value(5), value(3)))).unwrap_err();
    assert!(
        err.to_string().contains("key 5"),
        "the first error in order: {err}"
    );
    assert_eq!(rt.last_stats().calls(), 3, "every member still ran");
    assert_eq!(rt.run(try_all((value(2), value(4)))).unwrap(), (20, 40));
    assert_eq!(rt.run(try_all(vec![value(2), value(4)])).unwrap(), [20, 40]);
}

#[asynq]
fn maybe_cached(known: Option<u64>, k: u64) -> Result<u64, Error> {
    match known {
        Some(v) => ready(Ok(v)).await,
        None => value(k).await,
    }
}

#[test]
fn ready_values_complete_without_a_round() {
    let rt = rt();
    assert_eq!(rt.run(maybe_cached(Some(5), 1)).unwrap(), 5);
    assert_eq!(rt.last_stats().rounds, 0);
    assert_eq!(rt.run(maybe_cached(None, 1)).unwrap(), 10);
    assert_eq!(rt.last_stats().rounds, 1);
}

#[test]
fn string_errors_take_asynq_errors_with_question_mark() {
    #[asynq]
    fn stringly(k: u64) -> Result<u64, String> {
        Ok(common::Other::load(k).await?)
    }
    let err = rt().run(stringly(1)).unwrap_err();
    assert!(err.starts_with("no data source of type"), "{err}");
}
