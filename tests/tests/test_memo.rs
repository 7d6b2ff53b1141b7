//! `#[asynq(memo)]`: calls with equal arguments share one execution per run.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use asynq_core::{DataSource, Error, Runtime, asynq};
use common::Recorder;

static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);

/// Counts its executions; two dependent fetches, so it spans rounds while others wait on it.
#[asynq(memo)]
fn expensive(k: u64) -> Result<u64, Error> {
    EXECUTIONS.fetch_add(1, Ordering::SeqCst);
    let a = Recorder::load(k).await?;
    Ok(Recorder::load(a).await? + 1)
}

#[asynq]
fn later(k: u64) -> Result<u64, Error> {
    // Asks after a round has passed: by then the shared execution is done (or under way).
    Recorder::load(1000 + k).await?;
    expensive(k).await
}

#[test]
fn equal_arguments_share_one_execution_within_a_run() {
    let rt = Runtime::new().with_source(Recorder::new("rec"));
    let before = EXECUTIONS.load(Ordering::SeqCst);
    let (a, b, c, d, e) = rt
        .run((expensive(1), expensive(1), expensive(2), later(1), later(2)))
        .unwrap();
    assert_eq!(
        (a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap(), e.unwrap()),
        (101, 101, 201, 101, 201)
    );
    assert_eq!(
        EXECUTIONS.load(Ordering::SeqCst) - before,
        2,
        "one execution per distinct argument"
    );
    let stats = rt.last_stats();
    assert_eq!(stats.rounds, 2);
    assert_eq!(stats.tasks, 7);
    // A new run starts with no memo.
    rt.run(expensive(1)).unwrap();
    assert_eq!(EXECUTIONS.load(Ordering::SeqCst) - before, 3);
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Query {
    table: &'static str,
    id: u64,
}

#[derive(Clone, Debug, PartialEq)]
struct Row(String);

static GENERIC_EXECUTIONS: AtomicUsize = AtomicUsize::new(0);

#[asynq(memo)]
fn lookup<T: Default + Clone + Send>(q: Query, mut suffix: String) -> Row {
    GENERIC_EXECUTIONS.fetch_add(1, Ordering::SeqCst);
    suffix.push('!');
    let _ = T::default();
    Row(format!("{}#{}{suffix}", q.table, q.id))
}

#[test]
fn struct_keys_and_type_parameters_get_tables_of_their_own() {
    let rt = Runtime::new();
    let q = Query {
        table: "users",
        id: 4,
    };
    let before = GENERIC_EXECUTIONS.load(Ordering::SeqCst);
    let (a, b, c, d) = rt
        .run((
            lookup::<u8>(q.clone(), "x".into()),
            lookup::<u8>(q.clone(), "x".into()),
            lookup::<u16>(q.clone(), "x".into()),
            lookup::<u8>(q.clone(), "y".into()),
        ))
        .unwrap();
    assert_eq!(a, Row("users#4x!".into()));
    assert_eq!((&b, &c, &d), (&a, &a, &Row("users#4y!".into())));
    assert_eq!(
        GENERIC_EXECUTIONS.load(Ordering::SeqCst) - before,
        3,
        "(u8, x), (u16, x), (u8, y)"
    );
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Account(u64);

impl Account {
    #[asynq(memo)]
    fn balance(self) -> Result<u64, Error> {
        Recorder::load(self.0).await
    }
}

#[test]
fn methods_taking_self_by_value_are_keyed_on_it() {
    let rt = Runtime::new().with_source(Recorder::new("rec"));
    let (a, b) = rt
        .run((Account(3).balance(), Account(3).balance()))
        .unwrap();
    assert_eq!((a.unwrap(), b.unwrap()), (30, 30));
    assert_eq!(
        rt.last_stats().source("rec").unwrap().requested,
        1,
        "the second call never fetched"
    );
}

#[asynq(memo, boxed)]
fn cyclic(k: u64) -> u64 {
    if k == 0 { cyclic(0).await } else { k }
}

#[test]
fn a_memoized_call_waiting_on_itself_is_a_stall_not_a_hang() {
    let err = Runtime::new().run(cyclic(0)).unwrap_err();
    assert!(matches!(err, Error::Stall { .. }), "{err:?}");
    assert!(
        err.to_string().contains(
            "\n  cyclic\n    cyclic (waits for the call with the same arguments that runs first"
        ),
        "{err}"
    );
}

/// Fails its first call, then answers `k + 1`; counts its calls.
struct FailsFirst {
    calls: AtomicUsize,
}

impl FailsFirst {
    fn new() -> Self {
        FailsFirst {
            calls: AtomicUsize::new(0),
        }
    }
}

impl DataSource for FailsFirst {
    type Key = u64;
    type Value = u64;
    type Error = String;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
        match self.calls.fetch_add(1, Ordering::SeqCst) {
            0 => Err("connection reset".to_owned()),
            _ => Ok(keys.iter().map(|&k| (k, k + 1)).collect()),
        }
    }
}

#[asynq(memo)]
fn memo_get(k: u64) -> Result<u64, Error> {
    FailsFirst::load(k).await
}

fn calls(rt: &Runtime) -> usize {
    rt.source::<FailsFirst>()
        .unwrap()
        .calls
        .load(Ordering::SeqCst)
}

#[test]
fn retry_over_a_memoized_function_runs_it_again_after_a_failure() {
    let rt = Runtime::new().with_source(FailsFirst::new());
    let out = rt.run(asynq_core::tools::retry(3, || memo_get(42)));
    assert_eq!(out.unwrap(), 43);
    assert_eq!(calls(&rt), 2, "one failed call, one that answered");
}

/// Executions of `shared_get`, used by one test only.
static SHARED_GET_EXECUTIONS: AtomicUsize = AtomicUsize::new(0);

#[asynq(memo)]
fn shared_get(k: u64) -> Result<u64, Error> {
    SHARED_GET_EXECUTIONS.fetch_add(1, Ordering::SeqCst);
    FailsFirst::load(k).await
}

#[asynq]
fn together_then_again(k: u64) -> Vec<Result<u64, Error>> {
    // Both calls share the first execution, which fails; the third runs the body again, and
    // the last three share that second execution, which succeeded.
    let (a, b) = (shared_get(k), shared_get(k)).await;
    let c = shared_get(k).await;
    let more = (0..3).map(|_| shared_get(k)).collect::<Vec<_>>().await;
    [a, b, c].into_iter().chain(more).collect()
}

#[test]
fn the_calls_that_waited_on_a_failed_execution_get_its_error_and_the_next_runs_again() {
    let rt = Runtime::new().with_source(FailsFirst::new());
    let before = SHARED_GET_EXECUTIONS.load(Ordering::SeqCst);
    let out = rt.run(together_then_again(7)).unwrap();
    assert_eq!(out.len(), 6);
    for failed in &out[..2] {
        let err = failed.as_ref().unwrap_err();
        assert_eq!(
            err.to_string(),
            "source `FailsFirst` failed to fetch key 7 (in a call of 1 key): connection reset"
        );
    }
    for ok in &out[2..] {
        assert_eq!(ok.as_ref().unwrap(), &8);
    }
    assert_eq!(SHARED_GET_EXECUTIONS.load(Ordering::SeqCst) - before, 2);
    assert_eq!(calls(&rt), 2);
    assert_eq!(rt.last_stats().rounds, 2);
}

/// An output type of an application's own that carries failures.
#[derive(Clone, Debug, PartialEq)]
enum Lookup {
    Found(u64),
    Unavailable,
}

impl asynq_core::MemoFailure for Lookup {
    fn is_failure(&self) -> bool {
        *self == Lookup::Unavailable
    }
}

#[asynq(memo)]
fn lookup_own(k: u64) -> Lookup {
    match FailsFirst::load(k).await {
        Ok(v) => Lookup::Found(v),
        Err(_) => Lookup::Unavailable,
    }
}

#[asynq(memo)]
fn plain_own(k: u64) -> Option<u64> {
    FailsFirst::load(k).await.ok()
}

#[test]
fn outputs_of_own_types_fail_by_their_memo_failure_and_others_are_always_kept() {
    #[asynq]
    fn twice() -> (Lookup, Lookup) {
        let first = lookup_own(1).await;
        (first, lookup_own(1).await)
    }
    let rt = Runtime::new().with_source(FailsFirst::new());
    assert_eq!(
        rt.run(twice()).unwrap(),
        (Lookup::Unavailable, Lookup::Found(2))
    );
    // `Option` is not a failure type: `None` is an answer, kept for the run.
    #[asynq]
    fn twice_plain() -> (Option<u64>, Option<u64>) {
        let first = plain_own(1).await;
        (first, plain_own(1).await)
    }
    let rt = Runtime::new().with_source(FailsFirst::new());
    assert_eq!(rt.run(twice_plain()).unwrap(), (None, None));
    assert_eq!(calls(&rt), 1);
}

mod scoped_values {
    //! Issue 16, item 2: memo and scoped values.
    use std::sync::atomic::{AtomicUsize, Ordering};

    use asynq_core::{Runtime, asynq, scoped_value};

    scoped_value!(static LOCALE: &'static str);

    /// Executions of [`greeting`], per test: each test uses its own `n`.
    static RUNS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

    #[asynq(memo)]
    fn greeting(n: usize) -> String {
        RUNS[n].fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", LOCALE.get().unwrap_or("none"))
    }

    #[asynq]
    fn two_locales() -> (String, String) {
        (
            LOCALE.scope("fr", greeting(0)),
            LOCALE.scope("en", greeting(0)),
        )
            .await
    }

    #[asynq]
    fn one_scope_twice() -> (String, String, String) {
        let (a, b) = LOCALE.scope("fr", (greeting(1), greeting(1))).await;
        (a, b, greeting(1).await)
    }

    #[test]
    fn calls_under_different_scopes_do_not_share_an_execution() {
        let (fr, en) = Runtime::new().run(two_locales()).unwrap();
        assert_eq!((fr.as_str(), en.as_str()), ("fr-0", "en-0"));
        assert_eq!(RUNS[0].load(Ordering::Relaxed), 2);
    }

    #[test]
    fn calls_under_the_same_scope_share_one() {
        let (a, b, outside) = Runtime::new().run(one_scope_twice()).unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("fr-1", "fr-1"));
        assert_eq!(outside, "none-1");
        // One execution inside the scope, one outside.
        assert_eq!(RUNS[1].load(Ordering::Relaxed), 2);
    }
}
