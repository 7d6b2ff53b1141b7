//! `#[asynq(batch)]`: code written one await at a time gives what it gives without the
//! option (results, the first error in program order, side effects in program order), in the
//! rounds of code that awaits by hand what is independent.
//!
//! Each program below is compiled twice from one text, by `programs!`: once plain (with
//! `allow_sequential`, since it is sequential on purpose) and once with `batch`. The property
//! tests run both on random keys of the three stores of `asynq_tests::program` (a key in 13 is
//! a hole, which fails its fetch with `MissingKey`).

use std::cell::RefCell;
use std::rc::Rc;

use std::future::Future;

use asynq_core::{Error, Runtime};
use asynq_examples::feed::{self, Params, fnv1a64};
use asynq_examples::feed_naive;
use asynq_examples::memory::MemoryStore;
use asynq_tests::program::{KEYS, runtime};
use proptest::prelude::*;

/// What the non-await code of a program did, in order.
type Log = Rc<RefCell<Vec<String>>>;

macro_rules! programs {
    ($($option:tt)*) => {
        use asynq_core::{asynq, DataSource, Error};
        use asynq_tests::program::{KEYS, SrcA, SrcB, SrcC};

        use super::Log;

        /// Three independent loads, a statement between them that uses neither result.
        #[asynq($($option)*)]
        pub(crate) fn lets(log: Log, k1: u32, k2: u32, k3: u32) -> Result<i64, Error> {
            let a = SrcA::load(k1).await?;
            log.borrow_mut().push(format!("after a, before b: {k1}"));
            let b = SrcB::load(k2).await?;
            let c = SrcC::load(k3).await.unwrap_or(-1);
            log.borrow_mut().push(format!("a={a} b={b} c={c}"));
            Ok(a * 3 + b * 5 + c)
        }

        /// Independent awaits in one expression, and in a struct literal.
        #[asynq($($option)*)]
        pub(crate) fn expression(k1: u32, k2: u32, k3: u32) -> Result<(i64, (i64, i64)), Error> {
            let sum = SrcA::load(k1).await? * 2 + SrcB::load(k2).await?;
            let pair = Pair {
                left: SrcC::load(k3).await?,
                right: SrcA::load(k2).await.unwrap_or(0),
            };
            Ok((sum, (pair.left, pair.right)))
        }

        pub(crate) struct Pair {
            pub(crate) left: i64,
            pub(crate) right: i64,
        }

        /// A `for` loop whose iterations are independent, with a side effect before the await.
        #[asynq($($option)*)]
        pub(crate) fn each(log: Log, keys: Vec<u32>) -> Result<Vec<i64>, Error> {
            let mut out = Vec::new();
            for k in keys {
                log.borrow_mut().push(format!("key {k}"));
                out.push(SrcB::load(k).await?);
            }
            Ok(out)
        }

        /// A loop between independent awaits: all of it is one await.
        #[asynq($($option)*)]
        pub(crate) fn nested(log: Log, k1: u32, keys: Vec<u32>, k3: u32) -> Result<(i64, Vec<i64>, i64), Error> {
            let a = SrcA::load(k1).await?;
            let mut found = Vec::new();
            for k in keys {
                let v = SrcC::load(k).await.unwrap_or(-1);
                log.borrow_mut().push(format!("{k} -> {v}"));
                found.push(v);
            }
            let b = SrcB::load(k3).await?;
            Ok((a, found, b))
        }

        /// A loop over values that are not `Copy`: the operand clones the binding, the body
        /// keeps it.
        #[asynq($($option)*)]
        pub(crate) fn named(log: Log, names: Vec<String>) -> Result<Vec<String>, Error> {
            let mut out = Vec::new();
            for name in names {
                let v = SrcA::load(super::parse(name.clone())).await?;
                log.borrow_mut().push(format!("{name} -> {v}"));
                out.push(name);
            }
            Ok(out)
        }

        /// A chain: each load needs the one before.
        #[asynq($($option)*)]
        pub(crate) fn chain(k1: u32) -> Result<i64, Error> {
            let a = SrcA::load(k1).await?;
            let b = SrcB::load(a.unsigned_abs() as u32 % KEYS).await?;
            let c = SrcC::load(b.unsigned_abs() as u32 % KEYS).await?;
            Ok(c)
        }
    };
}

/// A key written as text.
fn parse(name: String) -> u32 {
    name.parse().expect("a key")
}

mod plain {
    programs!(allow_sequential);
}

mod batched {
    programs!(batch);
}

/// A run's outcome, an error as its message, and the run's rounds.
fn run<T>(
    rt: &Runtime,
    task: asynq_core::Task<impl Future<Output = Result<T, Error>>>,
) -> (Result<T, String>, usize) {
    let value = rt.run(task).map_err(|error| error.to_string());
    (value, rt.last_stats().rounds)
}

/// Both runtimes, fresh.
fn runtimes() -> (Runtime, Runtime) {
    (runtime([None; 3]), runtime([None; 3]))
}

fn key() -> impl Strategy<Value = u32> {
    0..KEYS
}

fn key_list() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(key(), 0..12)
}

proptest! {
    #![proptest_config(asynq_tests::program::config(64))]

    #[test]
    fn lets_batch_into_one_round(k1 in key(), k2 in key(), k3 in key()) {
        let (rt_plain, rt_batched) = runtimes();
        let (log_plain, log_batched) = (Log::default(), Log::default());
        let plain = run(&rt_plain, plain::lets(log_plain.clone(), k1, k2, k3));
        let batched = run(&rt_batched, batched::lets(log_batched.clone(), k1, k2, k3));
        prop_assert_eq!(&plain.0, &batched.0);
        prop_assert_eq!(&*log_plain.borrow(), &*log_batched.borrow());
        // Independent: the critical path is one round, whatever fails.
        prop_assert_eq!(batched.1, 1);
        prop_assert!(batched.1 <= plain.1);
    }

    #[test]
    fn awaits_of_one_expression_batch_into_one_round(k1 in key(), k2 in key(), k3 in key()) {
        let (rt_plain, rt_batched) = runtimes();
        let plain = run(&rt_plain, plain::expression(k1, k2, k3));
        let batched = run(&rt_batched, batched::expression(k1, k2, k3));
        prop_assert_eq!(&plain.0, &batched.0);
        prop_assert_eq!(batched.1, 1);
    }

    #[test]
    fn a_loop_batches_into_one_round(keys in key_list()) {
        let (rt_plain, rt_batched) = runtimes();
        let (log_plain, log_batched) = (Log::default(), Log::default());
        let plain = run(&rt_plain, plain::each(log_plain.clone(), keys.clone()));
        let batched = run(&rt_batched, batched::each(log_batched.clone(), keys.clone()));
        prop_assert_eq!(&plain.0, &batched.0);
        prop_assert_eq!(&*log_plain.borrow(), &*log_batched.borrow());
        prop_assert_eq!(batched.1, usize::from(!keys.is_empty()));
        prop_assert!(batched.1 <= plain.1);
    }

    #[test]
    fn a_loop_between_awaits_joins_them(k1 in key(), keys in key_list(), k3 in key()) {
        let (rt_plain, rt_batched) = runtimes();
        let (log_plain, log_batched) = (Log::default(), Log::default());
        let plain = run(&rt_plain, plain::nested(log_plain.clone(), k1, keys.clone(), k3));
        let batched = run(&rt_batched, batched::nested(log_batched.clone(), k1, keys, k3));
        prop_assert_eq!(&plain.0, &batched.0);
        prop_assert_eq!(&*log_plain.borrow(), &*log_batched.borrow());
        prop_assert_eq!(batched.1, 1);
        prop_assert!(batched.1 <= plain.1);
    }

    #[test]
    fn a_loop_over_owned_values_batches(keys in key_list()) {
        let names: Vec<String> = keys.iter().map(u32::to_string).collect();
        let (rt_plain, rt_batched) = runtimes();
        let (log_plain, log_batched) = (Log::default(), Log::default());
        let plain = run(&rt_plain, plain::named(log_plain.clone(), names.clone()));
        let batched = run(&rt_batched, batched::named(log_batched.clone(), names));
        prop_assert_eq!(&plain.0, &batched.0);
        prop_assert_eq!(&*log_plain.borrow(), &*log_batched.borrow());
        prop_assert_eq!(batched.1, usize::from(!keys.is_empty()));
    }

    #[test]
    fn a_chain_stays_a_chain(k1 in key()) {
        let (rt_plain, rt_batched) = runtimes();
        let plain = run(&rt_plain, plain::chain(k1));
        let batched = run(&rt_batched, batched::chain(k1));
        prop_assert_eq!(plain, batched);
    }
}

/// FEED-1 at Q=10 A=5 and Q=100 A=10, written the naive way: with `batch` the page, its calls
/// and its keys are the hand-joined version's; without, one round per await.
#[test]
fn naive_feed_renders_in_three_calls_with_batch() {
    for (questions, answers, keys, fnv) in [
        (10, 5, 195, 0xac26a36b50baee7b_u64),
        (100, 10, 3400, 0x56dc3f446f2c5f61),
    ] {
        let params = Params { questions, answers };
        let rt = Runtime::new().with_source(feed::memory_store(params));
        let page = rt
            .run(feed_naive::batched::feed::<MemoryStore>(params))
            .expect("the page renders");
        let store = rt.source::<MemoryStore>().unwrap();
        assert_eq!(
            (store.calls(), store.keys()),
            (3, keys),
            "Q={questions} A={answers}"
        );
        assert_eq!(rt.last_stats().rounds, 3);
        assert_eq!(fnv1a64(page.as_bytes()), fnv);
        let hand = Runtime::new().with_source(feed::memory_store(params));
        assert_eq!(hand.run(feed::feed::<MemoryStore>(params)).unwrap(), page);

        let rt = Runtime::new().with_source(feed::memory_store(params));
        assert_eq!(
            rt.run(feed_naive::sequential::feed::<MemoryStore>(params))
                .unwrap(),
            page
        );
        let calls = rt.source::<MemoryStore>().unwrap().calls();
        assert!(
            calls > 3 * questions as usize,
            "without batch: {calls} calls"
        );
    }
}
