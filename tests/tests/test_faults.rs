//! Every fault a store can produce, injected with `asynq_tests::faults::Faulty`: exactly the
//! waiters of the affected keys see the documented error, everything else finishes with the
//! right values, and the runtime serves the next run as if nothing had happened.

use std::sync::mpsc;
use std::time::Duration;

use asynq_core::{DataSource, Error, FetchTimeout, Runtime, asynq};
use asynq_tests::faults::{Call, Fault, Faulty, Injected, Outcome, quiet_injected_panics};

/// `k -> 10 k`.
struct Kv {
    max_batch: Option<usize>,
}

impl DataSource for Kv {
    type Key = u32;
    type Value = u32;
    type Error = std::convert::Infallible;
    async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, u32)>, Self::Error> {
        Ok(keys.iter().map(|&k| (k, 10 * k)).collect())
    }
    fn max_batch_size(&self) -> Option<usize> {
        self.max_batch
    }
}

/// A second, healthy source: `k -> k + 1`.
struct Other;

impl DataSource for Other {
    type Key = u32;
    type Value = u32;
    type Error = std::convert::Infallible;
    async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, u32)>, Self::Error> {
        Ok(keys.iter().map(|&k| (k, k + 1)).collect())
    }
}

type F = Faulty<Kv>;

#[asynq]
fn get(k: u32) -> Result<u32, Error> {
    F::load(k).await
}

#[asynq]
fn other(k: u32) -> Result<u32, Error> {
    Other::load(k).await
}

/// What `page` gives: the faulty source's results, the healthy one's, and round 2's.
type Page = (
    Vec<Result<u32, Error>>,
    Vec<Result<u32, Error>>,
    Result<u32, Error>,
);

/// Keys `keys` of the faulty source and the same keys of the healthy one, all together; then,
/// in a second round on purpose, key 100 of the faulty source.
#[asynq(allow_sequential)]
fn page(keys: Vec<u32>) -> Page {
    let faulty: Vec<_> = keys.iter().map(|&k| get(k)).collect();
    let healthy: Vec<_> = keys.iter().map(|&k| other(k)).collect();
    let (faulty, healthy) = (faulty, healthy).await;
    let later = get(100).await;
    (faulty, healthy, later)
}

fn runtime(max_batch: Option<usize>) -> Runtime {
    Runtime::new()
        .with_source(Faulty::new(Kv { max_batch }))
        .with_source(Other)
}

fn faulty(rt: &Runtime) -> &F {
    rt.source::<F>().expect("the faulty source is registered")
}

/// Run `f` on a thread and wait for it for a generous minute: a hang fails the test instead
/// of hanging the suite. Nothing here measures time.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the run hung (or its thread panicked)")
}

/// The call of the faulty source that carried `key`.
fn call_of(calls: &[Call<u32>], key: u32) -> &Call<u32> {
    let mut carrying = calls.iter().filter(|c| c.keys.contains(&key));
    let call = carrying.next().expect("the key was sent");
    assert!(carrying.next().is_none(), "key {key} sent twice: {calls:?}");
    call
}

/// Check a run of `page(0..n)`: the keys whose call had `outcome` failed as `check` says,
/// every other key and the healthy source are right; returns how many keys failed.
fn check_page(
    rt: &Runtime,
    n: u32,
    outcome: Outcome,
    check: impl Fn(u32, &Call<u32>, &Error),
) -> usize {
    let (faulty_results, healthy_results, later) = rt.run(page((0..n).collect())).unwrap();
    let calls = faulty(rt).calls();
    let mut failed = 0;
    for (k, result) in (0..n).zip(faulty_results) {
        let call = call_of(&calls, k);
        match result {
            Ok(v) => {
                assert_eq!(call.outcome, Outcome::Answered, "key {k}: {calls:?}");
                assert_eq!(v, 10 * k);
            }
            Err(e) => {
                assert_eq!(call.outcome, outcome, "key {k} failed with {e}: {calls:?}");
                check(k, call, &e);
                failed += 1;
            }
        }
    }
    for (k, result) in (0..n).zip(healthy_results) {
        assert_eq!(result.unwrap(), k + 1, "the healthy source is untouched");
    }
    assert_eq!(later.unwrap(), 1000, "a later round goes on");
    assert_eq!(rt.last_stats().rounds, 2);
    failed
}

/// After the faults are cleared, the same runtime runs the same page correctly.
fn check_recovers(rt: &Runtime, n: u32) {
    faulty(rt).clear();
    let ok = check_page(rt, n, Outcome::Answered, |k, _, e| panic!("key {k}: {e}"));
    assert_eq!(ok, 0);
    assert_eq!(faulty(rt).live_fetches(), 0);
}

fn assert_source_error(e: &Error, key: u32, call: &Call<u32>) -> String {
    match e {
        Error::Source {
            source,
            key: k,
            batch,
            error,
        } => {
            assert_eq!(&**source, "Kv");
            assert_eq!(k, &key.to_string());
            assert_eq!(*batch, call.keys.len(), "the error tells the call's size");
            error.to_string()
        }
        other => panic!("expected Error::Source for key {key}, got {other:?}"),
    }
}

#[test]
fn failing_keys_fail_every_key_of_their_calls_and_nothing_else() {
    let rt = runtime(Some(3));
    faulty(&rt).inject(Fault::FailKeys(vec![4]));
    let failed = check_page(&rt, 9, Outcome::Failed, |k, call, e| {
        assert!(call.keys.contains(&4));
        let Error::Source { error, .. } = e else {
            panic!("{e:?}")
        };
        assert!(error.downcast_ref::<Injected>().is_some(), "key {k}: {e}");
    });
    assert_eq!(failed, 3, "one call of three keys failed");
    assert_eq!(rt.last_stats().source("Kv").unwrap().failed, 3);
    check_recovers(&rt, 9);
}

#[test]
fn a_failed_call_fails_its_keys_only() {
    let rt = runtime(Some(2));
    faulty(&rt).inject(Fault::FailCall(1));
    let failed = check_page(&rt, 6, Outcome::Failed, |k, call, e| {
        assert_eq!(assert_source_error(e, k, call), "injected failure");
    });
    assert_eq!(failed, 2);
    let calls = faulty(&rt).calls();
    assert_eq!(calls[1].outcome, Outcome::Failed);
    check_recovers(&rt, 6);
}

#[test]
fn a_panic_while_fetching_fails_the_calls_keys() {
    quiet_injected_panics();
    let rt = runtime(Some(2));
    faulty(&rt).inject(Fault::Panic(vec![1, 5]));
    let failed = check_page(&rt, 6, Outcome::Panicked, |k, call, e| {
        let msg = assert_source_error(e, k, call);
        assert!(msg.starts_with("fetch panicked: injected panic"), "{msg}");
    });
    assert_eq!(failed, 4);
    check_recovers(&rt, 6);
}

/// Found by these tests: `fetch` was called outside `catch_unwind`, so a source whose `fetch`
/// panics before returning its future unwound through the whole run.
#[test]
fn a_panic_before_the_fetch_future_exists_fails_the_calls_keys() {
    quiet_injected_panics();
    let rt = runtime(Some(2));
    faulty(&rt).inject(Fault::PanicEarly(vec![2]));
    let failed = check_page(&rt, 6, Outcome::Panicked, |k, call, e| {
        let msg = assert_source_error(e, k, call);
        assert!(msg.starts_with("fetch panicked: injected panic"), "{msg}");
    });
    assert_eq!(failed, 2);
    check_recovers(&rt, 6);
}

#[test]
fn missing_keys_fail_alone_with_missing_key() {
    let rt = runtime(None);
    faulty(&rt).inject(Fault::Missing(vec![0, 3]));
    let failed = check_page(&rt, 5, Outcome::Answered, |_, _, _| {});
    assert_eq!(failed, 2);
    let (results, _, _) = rt.run(page(vec![3, 4])).unwrap();
    let err = results[0].as_ref().unwrap_err();
    assert!(matches!(err, Error::MissingKey { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "source `Kv` did not answer key 3 (a source answers every key it is asked for: `None` for an absent row with `Value = Option<Row>`, an empty `Vec` for a key without rows; see `asynq_core::answers`)"
    );
    assert_eq!(results[1].as_ref().unwrap(), &40);
    check_recovers(&rt, 5);
}

#[test]
fn extra_answers_are_ignored_not_cached() {
    let rt = runtime(None);
    // Key 100 is answered (wrongly) in round 1 where nobody asked for it; the page asks for it
    // in round 2, so it must be sent then and get its true value.
    faulty(&rt).inject(Fault::Extra(vec![(100, 7), (555, 7)]));
    let failed = check_page(&rt, 4, Outcome::Answered, |k, _, e| panic!("key {k}: {e}"));
    assert_eq!(failed, 0);
    let calls = faulty(&rt).calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].keys, [100]);
    check_recovers(&rt, 4);
}

#[test]
fn the_first_of_duplicate_answers_wins() {
    let rt = runtime(None);
    faulty(&rt).inject(Fault::Duplicate {
        pairs: vec![(1, 7), (2, 7)],
        first: false,
    });
    let failed = check_page(&rt, 4, Outcome::Answered, |k, _, e| panic!("key {k}: {e}"));
    assert_eq!(failed, 0, "a second answer for a key loses");
    faulty(&rt).clear();
    faulty(&rt).inject(Fault::Duplicate {
        pairs: vec![(1, 7)],
        first: true,
    });
    let (results, _, _) = rt.run(page(vec![0, 1, 2])).unwrap();
    let values: Vec<u32> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        values,
        [0, 7, 20],
        "the first answer wins, even a wrong one"
    );
    check_recovers(&rt, 4);
}

#[test]
fn slow_calls_change_nothing_but_time() {
    let rt = runtime(Some(2));
    faulty(&rt).inject(Fault::Slow(5));
    assert_eq!(check_page(&rt, 7, Outcome::Answered, |_, _, _| {}), 0);
    faulty(&rt).clear();
    faulty(&rt).inject(Fault::Sleep(Duration::from_millis(2)));
    let rt = bounded(move || {
        assert_eq!(check_page(&rt, 7, Outcome::Answered, |_, _, _| {}), 0);
        rt
    });
    check_recovers(&rt, 7);
}

/// A source that never answers is bounded by its `fetch_timeout`, under `run` and under
/// `run_async` in tokio: its keys fail with `FetchTimeout`, the other calls of the round
/// finish, and the hung future is dropped.
#[test]
fn a_call_that_never_completes_times_out() {
    let check = |rt: &Runtime| {
        let failed = check_page(rt, 6, Outcome::Hung, |k, call, e| {
            let Error::Source { error, batch, .. } = e else {
                panic!("key {k}: {e:?}")
            };
            assert_eq!(*batch, call.keys.len());
            let timeout = error.downcast_ref::<FetchTimeout>().expect("a timeout");
            assert_eq!(timeout.limit(), Duration::from_millis(20));
            assert!(e.to_string().ends_with("fetch timed out after 20ms"), "{e}");
        });
        assert_eq!(failed, 2);
        assert_eq!(faulty(rt).live_fetches(), 0, "the hung future was dropped");
    };
    let rt = Runtime::new()
        .with_source(Faulty::new(Kv { max_batch: Some(2) }).with_timeout(Duration::from_millis(20)))
        .with_source(Other);
    faulty(&rt).inject(Fault::Hang(vec![3]));
    let rt = bounded(move || {
        check(&rt);
        rt
    });

    // The same under tokio, through `run_async`.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    faulty(&rt).clear();
    faulty(&rt).inject(Fault::Hang(vec![3]));
    let rt = runtime.block_on(async move {
        let run = rt.run_async(page((0..6).collect()));
        let (results, healthy, later) = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the timeout bounds the run")
            .unwrap();
        let failed: Vec<u32> = (0..6).filter(|&k| results[k as usize].is_err()).collect();
        assert_eq!(failed, [2, 3]);
        assert!(healthy.iter().all(Result::is_ok));
        assert_eq!(later.unwrap(), 1000);
        rt
    });
    assert_eq!(faulty(&rt).live_fetches(), 0);
    check_recovers(&rt, 6);
}

/// Without a timeout a hung call leaves the run pending (never a wrong answer); the caller's
/// own timeout cancels it and the runtime carries on.
#[test]
fn without_a_timeout_the_callers_timeout_cancels_the_run() {
    let rt = runtime(None);
    faulty(&rt).inject(Fault::Hang(vec![1]));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rt = runtime.block_on(async move {
        let run = rt.run_async(page(vec![0, 1, 2]));
        let outcome = tokio::time::timeout(Duration::from_millis(20), run).await;
        assert!(outcome.is_err(), "a hung call never answers");
        rt
    });
    assert_eq!(
        faulty(&rt).live_fetches(),
        0,
        "cancelling dropped the hung call"
    );
    check_recovers(&rt, 3);
}

/// Several faults at once, on one call each.
#[test]
fn faults_combine_per_call() {
    quiet_injected_panics();
    let rt = runtime(Some(1));
    let f = faulty(&rt);
    f.inject(Fault::FailKeys(vec![0]))
        .inject(Fault::Panic(vec![1]))
        .inject(Fault::PanicEarly(vec![2]))
        .inject(Fault::Missing(vec![3]))
        .inject(Fault::Extra(vec![(9, 9)]))
        .inject(Fault::Slow(2));
    let (results, healthy, later) = rt.run(page((0..6).collect())).unwrap();
    let kinds: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(v) => format!("ok {v}"),
            Err(Error::Source { error, .. }) if error.is::<Injected>() => "failed".into(),
            Err(Error::Source { error, .. }) => error.to_string(),
            Err(e) => format!("{e:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "failed",
            "fetch panicked: injected panic while fetching [1]",
            "fetch panicked: injected panic in fetch of [2]",
            "MissingKey(source `Kv` did not answer key 3 (a source answers every key it is asked for: `None` for an absent row with `Value = Option<Row>`, an empty `Vec` for a key without rows; see `asynq_core::answers`))",
            "ok 40",
            "ok 50",
        ]
    );
    assert!(healthy.iter().all(Result::is_ok));
    assert_eq!(later.unwrap(), 1000);
    check_recovers(&rt, 6);
}
