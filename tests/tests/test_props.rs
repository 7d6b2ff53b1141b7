//! Property tests: random programs (trees and DAGs of asynq tasks over three sources) run on
//! the runtime and on the sequential reference of `asynq_tests::program`, which must agree on
//! the result, the rounds (the critical path), the keys each round sends to each source and
//! the number of calls that takes.
//!
//! A failure shrinks to a short program printed one node per line.

use std::sync::Arc;

use asynq_tests::faults::{Fault, quiet_injected_panics};
use asynq_tests::program::{self, Fail, SrcA, SrcB, SrcC, check_run, healthy, reference};
use proptest::prelude::*;

proptest! {
    #![proptest_config(program::config(2000))]

    /// Healthy stores (with their holes: keys they do not hold fail with `MissingKey`).
    #[test]
    fn runs_like_the_reference(program in program::program(16), max_batch in program::batch_sizes()) {
        let program = Arc::new(program);
        let expected = reference(&program, &healthy);
        let rt = program::runtime(max_batch);
        check_run(&rt, &program, max_batch, &expected)?;
        // The same runtime again: a new run, a new cache, the same schedule.
        for src in [0, 1, 2] {
            clear(&rt, src);
        }
        check_run(&rt, &program, max_batch, &expected)?;
    }
}

fn clear(rt: &asynq_core::Runtime, src: u8) {
    match src {
        0 => rt.source::<SrcA>().unwrap().clear(),
        1 => rt.source::<SrcB>().unwrap().clear(),
        _ => rt.source::<SrcC>().unwrap().clear(),
    }
}

/// Faults whose effect on a key does not depend on which call carried it, so the reference
/// can predict every waiter's result.
#[derive(Clone, Debug)]
struct Plan {
    /// Per source: keys left out of answers (`MissingKey`).
    missing: [Vec<u32>; 3],
    /// Keys of source C (one key per call) whose call fails.
    fail: Vec<u32>,
    /// Keys of source C whose call panics while polled.
    panic: Vec<u32>,
    /// Keys of source C whose `fetch` panics before returning a future.
    panic_early: Vec<u32>,
    /// Per source: unasked-for pairs added to every answer.
    extra: [bool; 3],
    /// Per source: keys answered a second time with a wrong value, which must lose.
    duplicate: [Vec<u32>; 3],
    /// Per source: polls each call stays pending.
    slow: [usize; 3],
}

fn keys() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(0..program::KEYS, 0..5)
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        [keys(), keys(), keys()],
        (keys(), keys(), keys()),
        any::<[bool; 3]>(),
        [keys(), keys(), keys()],
        [0usize..3, 0usize..3, 0usize..3],
    )
        .prop_map(
            |(missing, (fail, panic, panic_early), extra, duplicate, slow)| Plan {
                missing,
                fail,
                panic,
                panic_early,
                extra,
                duplicate,
                slow,
            },
        )
}

impl Plan {
    /// What fetching `key` from `src` gives under the plan.
    fn outcome(&self, src: u8, key: u32) -> Result<i64, Fail> {
        if src == 2 {
            if self.panic.contains(&key) || self.panic_early.contains(&key) {
                return Err(Fail::Panicked(src, key));
            }
            if self.fail.contains(&key) {
                return Err(Fail::Failed(src, key));
            }
        }
        if self.missing[usize::from(src)].contains(&key) {
            return Err(Fail::Missing(src, key));
        }
        healthy(src, key)
    }

    fn inject(&self, rt: &asynq_core::Runtime) {
        fn apply<const ID: u8>(
            source: &asynq_tests::faults::Faulty<program::Store<ID>>,
            plan: &Plan,
        ) {
            let src = usize::from(ID);
            source.inject(Fault::Missing(plan.missing[src].clone()));
            if plan.extra[src] {
                // Keys nobody asks for (the stores' keys are below `KEYS`): ignored.
                source.inject(Fault::Extra(vec![(1000, -1), (program::KEYS, -1)]));
            }
            let dups = plan.duplicate[src].iter().map(|&k| (k, -7)).collect();
            source.inject(Fault::Duplicate {
                pairs: dups,
                first: false,
            });
            source.inject(Fault::Slow(plan.slow[src]));
            if ID == 2 {
                source.inject(Fault::FailKeys(plan.fail.clone()));
                source.inject(Fault::Panic(plan.panic.clone()));
                source.inject(Fault::PanicEarly(plan.panic_early.clone()));
            }
        }
        apply(rt.source::<SrcA>().unwrap(), self);
        apply(rt.source::<SrcB>().unwrap(), self);
        apply(rt.source::<SrcC>().unwrap(), self);
    }
}

proptest! {
    #![proptest_config(program::config(1000))]

    /// The same programs with faults injected: every waiter of an affected key sees exactly
    /// the documented error, everything else the healthy value, with the healthy schedule
    /// (failed keys are not cached, so asking again sends them again); then the faults are
    /// cleared and the same runtime runs the program as if nothing had happened.
    #[test]
    fn faults_reach_exactly_their_waiters(
        program in program::program(12),
        max_batch in program::batch_sizes(),
        plan in plan(),
    ) {
        // Source C answers one key per call, so that failing a call fails exactly its key.
        let max_batch = [max_batch[0], max_batch[1], Some(1)];
        let program = Arc::new(program);
        let rt = program::runtime(max_batch);
        plan.inject(&rt);
        let expected = reference(&program, &|s, k| plan.outcome(s, k));
        quiet_injected_panics();
        check_run(&rt, &program, max_batch, &expected)?;
        for src in [0, 1, 2] {
            clear(&rt, src);
        }
        check_run(&rt, &program, max_batch, &reference(&program, &healthy))?;
    }
}
