//! Every error of the foundation, produced where it should be, with unaffected tasks finishing.

mod common;

use asynq_core::{DataSource, Error, Runtime, Yieldable, asynq};
use common::{Other, Recorder, chain};

#[asynq]
fn get(k: u64) -> Result<u64, Error> {
    Recorder::load(k).await
}

#[asynq]
fn get_other(k: u64) -> Result<u64, Error> {
    Other::load(k).await
}

#[test]
fn a_source_nobody_registered_is_named_in_the_error() {
    let rt = Runtime::new().with_source(Recorder::new("rec"));
    let (ok, missing) = rt.run((get(1), get_other(1))).unwrap();
    assert_eq!(ok.unwrap(), 10);
    let err = missing.unwrap_err();
    assert!(
        matches!(err, Error::NoSource { source_type } if source_type.ends_with("common::Other")),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "no data source of type `{}` is registered with this runtime; add it with `Runtime::with_source`",
            std::any::type_name::<Other>()
        )
    );
}

fn odd_keys_only(keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
    Ok(keys
        .iter()
        .filter(|&&k| k % 2 == 1)
        .map(|&k| (k, k * 10))
        .collect())
}

#[test]
fn keys_missing_from_an_answer_fail_only_their_waiters() {
    let rt = Runtime::new().with_source(Recorder::new("rec").answering(odd_keys_only));
    let out = rt.run((1..=4).map(get).collect::<Vec<_>>()).unwrap();
    assert_eq!(out[0].as_ref().unwrap(), &10);
    assert_eq!(out[2].as_ref().unwrap(), &30);
    let err = out[1].as_ref().unwrap_err();
    assert!(matches!(err, Error::MissingKey { source, key } if &**source == "rec" && key == "2"));
    assert_eq!(
        err.to_string(),
        "source `rec` did not answer key 2 (a source answers every key it is asked for: `None` for an absent row with `Value = Option<Row>`, an empty `Vec` for a key without rows; see `asynq_core::answers`)"
    );
    assert_eq!(
        out[3].as_ref().unwrap_err().to_string(),
        "source `rec` did not answer key 4 (a source answers every key it is asked for: `None` for an absent row with `Value = Option<Row>`, an empty `Vec` for a key without rows; see `asynq_core::answers`)"
    );
    assert_eq!(rt.last_stats().source("rec").unwrap().failed, 2);
}

fn fail_if_contains_13(keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
    if keys.contains(&13) {
        return Err("connection reset".to_owned());
    }
    common::times_ten(keys)
}

#[asynq]
fn both(k: u64) -> Result<u64, Error> {
    let (a, b) = (get(k), get_other(k)).await;
    Ok(a? + b?)
}

#[test]
fn a_failed_call_fails_its_keys_and_nothing_else() {
    let rt = Runtime::new()
        .with_source(
            Recorder::new("flaky")
                .answering(fail_if_contains_13)
                .max_batch(2),
        )
        .with_source(Other(Recorder::new("other")));
    // Keys 12 and 13 share a chunk; 14 is alone in the next.
    let (a, b, c, d) = rt.run((get(12), get(13), get(14), get_other(13))).unwrap();
    let err = b.unwrap_err();
    match &err {
        Error::Source {
            source,
            key,
            batch,
            error,
        } => {
            assert_eq!((&**source, key.as_str(), *batch), ("flaky", "13", 2));
            assert_eq!(error.to_string(), "connection reset");
        }
        other => panic!("expected a source error, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "source `flaky` failed to fetch key 13 (in a call of 2 keys): connection reset"
    );
    assert_eq!(
        a.unwrap_err().to_string(),
        "source `flaky` failed to fetch key 12 (in a call of 2 keys): connection reset"
    );
    assert_eq!(c.unwrap(), 140);
    assert_eq!(
        d.unwrap(),
        130,
        "another source's key of the same value is unaffected"
    );
    // A task that uses a failed key sees the error through `?`; the runtime goes on.
    assert!(rt.run(both(13)).is_err());
    assert_eq!(rt.run(both(14)).unwrap(), 280);
}

#[test]
fn a_call_of_one_key_says_key() {
    let rt = Runtime::new().with_source(Recorder::new("flaky").answering(fail_if_contains_13));
    let err = rt.run(get(13)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "source `flaky` failed to fetch key 13 (in a call of 1 key): connection reset"
    );
}

/// A store's error with a cause of its own, as a database client's errors have.
#[derive(Debug)]
struct QueryFailed(std::io::Error);

impl std::fmt::Display for QueryFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("query failed")
    }
}

impl std::error::Error for QueryFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

struct Refusing;

impl DataSource for Refusing {
    type Key = u64;
    type Value = u64;
    type Error = QueryFailed;

    async fn fetch(&self, _keys: &[u64]) -> Result<Vec<(u64, u64)>, QueryFailed> {
        Err(QueryFailed(std::io::Error::other("connection refused")))
    }
}

#[asynq]
fn refused(k: u64) -> Result<u64, Error> {
    Refusing::load(k).await
}

#[test]
fn an_error_chain_shows_the_sources_error_once() {
    let rt = Runtime::new().with_source(Refusing);
    let err = rt.run(refused(7)).unwrap_err();
    assert_eq!(
        chain(&err),
        [
            "source `Refusing` failed to fetch key 7 (in a call of 1 key): query failed",
            "connection refused",
        ]
    );
    // The source's own error is still there to inspect.
    let Error::Source { error, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(error.downcast_ref::<QueryFailed>().is_some());
}

#[test]
fn a_failed_key_is_fetched_again_when_asked_again() {
    // Failures are not cached, so that a retry in the same run can succeed.
    let rt = Runtime::new().with_source(Recorder::new("flaky").answering(fail_if_contains_13));
    #[asynq]
    fn twice() -> (bool, bool) {
        let first = get(13).await.is_err();
        let second = get(13).await.is_err();
        (first, second)
    }
    assert_eq!(rt.run(twice()).unwrap(), (true, true));
    assert_eq!(
        rt.source::<Recorder>().unwrap().calls(),
        vec![vec![13], vec![13]]
    );
}

fn extra_and_duplicates(keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
    let mut out = vec![(999, 1)]; // not asked for: ignored
    for &k in keys {
        out.push((k, k * 10)); // first answer wins
        out.push((k, 0));
    }
    Ok(out)
}

#[test]
fn extra_keys_are_ignored_and_the_first_answer_wins() {
    let rt = Runtime::new().with_source(Recorder::new("rec").answering(extra_and_duplicates));
    let (a, b) = rt.run((get(1), get(2))).unwrap();
    assert_eq!((a.unwrap(), b.unwrap()), (10, 20));
    // Round 1 is answered with 999 too, unasked: it is not cached, so asking for it in round 2
    // calls the source again (whose first answer for 999 is then the `(999, 1)` it always
    // puts first).
    #[asynq]
    fn later() -> Result<u64, Error> {
        get(1).await?;
        get(999).await
    }
    assert_eq!(rt.run(later()).unwrap(), 1);
    assert_eq!(rt.last_stats().calls(), 2);
}

fn answers_nothing(_: &[u64]) -> Result<Vec<(u64, u64)>, String> {
    Ok(Vec::new())
}

#[test]
fn an_empty_answer_fails_every_key_without_hanging() {
    let rt = Runtime::new().with_source(Recorder::new("rec").answering(answers_nothing));
    let out = rt.run(Recorder::load_many(0..5)).unwrap();
    assert!(
        out.iter()
            .all(|r| matches!(r, Err(Error::MissingKey { .. })))
    );
}

/// A yieldable that waits on something the run never hears of: the run must stall, not hang.
struct Never;

impl Yieldable for Never {
    type Output = u64;
    type Future = futures::future::Pending<u64>;
    fn into_future(self) -> Self::Future {
        futures::future::pending()
    }
}

#[asynq]
fn stuck() -> u64 {
    Never.await
}

#[asynq]
fn page() -> Result<u64, Error> {
    let (a, b) = (get(1), stuck()).await;
    Ok(a? + b)
}

#[asynq]
fn crowd() -> u64 {
    let stuck = (0..15).map(|_| stuck()).collect::<Vec<_>>().await;
    stuck.into_iter().sum()
}

#[test]
fn a_stall_of_many_tasks_of_one_function_says_it_once_with_a_count() {
    let err = Runtime::new().run(crowd()).unwrap_err();
    let Error::Stall { waiting } = &err else {
        panic!("expected a stall, got {err:?}")
    };
    assert_eq!(waiting.len(), 15);
    assert_eq!(
        err.to_string(),
        "the run stalled: nothing is runnable and nothing is being fetched, yet 15 asynq tasks \
         still wait:\n  crowd\n    15 × stuck (waits on a future that is neither an asynq task \
         nor a fetch, so nothing will wake it)"
    );
}

#[test]
fn a_stalled_run_is_an_error_naming_the_waiting_functions() {
    let rt = Runtime::new().with_source(Recorder::new("rec"));
    let err = rt.run(page()).unwrap_err();
    match &err {
        Error::Stall { waiting } => assert_eq!(
            waiting,
            &[
                "page > stuck: waits on a future that is neither an asynq task nor a fetch, so \
               nothing will wake it"
            ]
        ),
        other => panic!("expected a stall, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with("the run stalled: nothing is runnable and nothing is being fetched"),
        "{msg}"
    );
    assert!(
        msg.ends_with("yet 1 asynq task still waits:\n  page\n    stuck (waits on a future that is neither an asynq task nor a fetch, so nothing will wake it)"),
        "{msg}"
    );
    // The sibling's fetch happened; the runtime serves the next run.
    assert_eq!(rt.source::<Recorder>().unwrap().calls(), vec![vec![1]]);
    assert_eq!(rt.run(get(2)).unwrap(), 20);
}

/// A plain helper that runs a task: the macro cannot see the `run` inside it (a direct
/// `rt.run(..)` in an asynq function is a compile error), so the runtime must catch it.
fn run_inside(rt: &Runtime) -> Result<u64, Error> {
    rt.run(get(1))
}

fn run_async_inside(rt: &Runtime) -> Result<u64, Error> {
    use futures::FutureExt as _;
    rt.run_async(get(1))
        .now_or_never()
        .expect("a nested run fails at once")
}

#[asynq]
fn nested(rt: &Runtime) -> Result<u64, Error> {
    run_inside(rt)
}

#[asynq]
fn nested_async(rt: &Runtime) -> Result<u64, Error> {
    run_async_inside(rt)
}

#[test]
fn a_run_inside_a_task_is_an_error_naming_the_task() {
    let rt = Runtime::new().with_source(Recorder::new("rec"));
    let err = rt.run(nested(&rt)).unwrap_err();
    assert!(
        matches!(err, Error::NestedRun { task, call: "Runtime::run" } if task.ends_with("test_errors::nested")),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("inside the asynq function `test_errors::nested`"),
        "{err}"
    );
    assert!(err.to_string().ends_with("await the task instead"));
    // Through run_async polled by hand, too.
    assert!(matches!(
        rt.run(nested_async(&rt)),
        Err(Error::NestedRun {
            call: "Runtime::run_async",
            ..
        })
    ));
    assert_eq!(rt.run(get(3)).unwrap(), 30);
}

#[test]
fn a_fetch_polled_outside_any_run_is_an_error() {
    let load = Recorder::load(1);
    let out = futures::executor::block_on(load);
    assert!(matches!(out, Err(Error::NotInRun { .. })), "{out:?}");
}

/// Fails odd keys one by one, through `fetch_each`.
struct PerKey;

impl DataSource for PerKey {
    type Key = u64;
    type Value = u64;
    type Error = String;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
        self.fetch_each(keys)
            .await?
            .into_iter()
            .map(|(k, v)| Ok((k, v?)))
            .collect()
    }

    async fn fetch_each(&self, keys: &[u64]) -> Result<Vec<(u64, Result<u64, String>)>, String> {
        Ok(keys
            .iter()
            .map(|&k| {
                (
                    k,
                    if k % 2 == 0 {
                        Ok(10 * k)
                    } else {
                        Err(format!("{k} is odd"))
                    },
                )
            })
            .collect())
    }

    fn name(&self) -> &str {
        "per-key"
    }
}

#[test]
fn a_source_can_fail_single_keys_of_a_call() {
    #[asynq]
    fn four() -> Vec<Result<u64, Error>> {
        PerKey::load_many(1..=4).await
    }
    let rt = Runtime::new().with_source(PerKey);
    let out = rt.run(four()).unwrap();
    assert_eq!(out[1].as_ref().unwrap(), &20);
    assert_eq!(out[3].as_ref().unwrap(), &40);
    assert_eq!(
        out[0].as_ref().unwrap_err().to_string(),
        "source `per-key` failed to fetch key 1 (in a call of 4 keys): 1 is odd"
    );
    assert!(matches!(&out[2], Err(Error::Source { key, .. }) if key == "3"));
    let stats = rt.last_stats();
    assert_eq!(
        (stats.calls(), stats.source("per-key").unwrap().failed),
        (1, 2)
    );
}
