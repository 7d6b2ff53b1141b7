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
