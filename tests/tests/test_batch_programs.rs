//! `#[asynq(batch)]` on random programs: `tests/build.rs` generates asynq functions written
//! with sequential awaits (lets, two awaits in an expression, side effects between, `for`
//! loops, an `if` block, keys computed from fetched values), compiled once without the option
//! and once with it. On random keys of stores where some keys fail, both give the same values
//! or the same error, log the same side effects in the same order, and the batched one takes
//! no more rounds; a program that only fetches keys it was given takes one round with the
//! option (its critical path), whatever fails.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use asynq_core::{Error, Task};
use asynq_tests::program::{KEYS, runtime};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// What the non-await code of a program did, in order.
type Log = Rc<RefCell<Vec<String>>>;

/// A key computed from a fetched value.
fn key(value: i64) -> u32 {
    u32::try_from(value.unsigned_abs() % u64::from(KEYS)).expect("below KEYS")
}

/// The arguments of every program.
#[derive(Debug, Clone)]
struct Keys {
    k: [u32; 3],
    ks: [Vec<u32>; 2],
}

include!(concat!(env!("OUT_DIR"), "/batch_programs.rs"));

/// Runs program `name` both ways on `keys` and compares; its rounds, plain and batched.
fn check<F, G>(
    name: &str,
    independent: bool,
    keys: &Keys,
    plain: impl Fn(Log, &Keys) -> Task<F>,
    batched: impl Fn(Log, &Keys) -> Task<G>,
) -> Result<(usize, usize), TestCaseError>
where
    F: Future<Output = Result<Vec<i64>, Error>>,
    G: Future<Output = Result<Vec<i64>, Error>>,
{
    let (rt_plain, rt_batched) = (runtime([None; 3]), runtime([None; 3]));
    let (log_plain, log_batched) = (Log::default(), Log::default());
    let expected = rt_plain
        .run(plain(log_plain.clone(), keys))
        .map_err(|e| e.to_string());
    let got = rt_batched
        .run(batched(log_batched.clone(), keys))
        .map_err(|e| e.to_string());
    let (rounds_plain, rounds) = (rt_plain.last_stats().rounds, rt_batched.last_stats().rounds);
    let context = format!("{name} (seed {SEED}) on {keys:?}");
    prop_assert_eq!(&expected, &got, "{}: result", &context);
    prop_assert_eq!(
        &*log_plain.borrow(),
        &*log_batched.borrow(),
        "{}: side effects",
        &context
    );
    prop_assert!(
        rounds <= rounds_plain,
        "{}: {} rounds batched, {} plain",
        &context,
        rounds,
        rounds_plain
    );
    if independent {
        // Every program fetches in its first statement.
        prop_assert_eq!(rounds, 1, "{}: rounds of an independent program", &context);
    }
    Ok((rounds_plain, rounds))
}

fn keys() -> impl Strategy<Value = Keys> {
    let list = || proptest::collection::vec(0..KEYS, 0..6);
    ([0..KEYS, 0..KEYS, 0..KEYS], [list(), list()]).prop_map(|(k, ks)| Keys { k, ks })
}

proptest! {
    #![proptest_config(asynq_tests::program::config(48))]

    #[test]
    fn batched_programs_match_their_sequential_runs(keys in keys()) {
        check_all(&keys)?;
    }
}

/// The programs do batch: over all of them, the option saves rounds (a generator that wrote
/// only dependent code would pass the property above without testing the rewrite).
#[test]
fn the_option_saves_rounds_on_the_generated_programs() {
    let keys = Keys {
        k: [1, 2, 3],
        ks: [vec![4, 5, 6], vec![7, 8]],
    };
    let (plain, batched) = check_all(&keys).expect("the programs agree on these keys");
    assert!(
        batched * 2 < plain,
        "{batched} rounds batched, {plain} plain (seed {SEED})"
    );
}
