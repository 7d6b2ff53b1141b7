//! Property tests of eager resume: the random programs of `test_props`, run with
//! `Runtime::eager_resume(true)`, give the reference's results.
//!
//! The rounds differ from the round-at-a-time schedule (tasks resume as soon as their call
//! answers, so a round may be split), but batching must hold: every call within its source's
//! batch limit, no key twice in one call, and the same keys sent as without eager resume.

use std::collections::BTreeSet;
use std::sync::Arc;

use asynq_tests::faults::Fault;
use asynq_tests::program::{self, SrcA, SrcB, SrcC, healthy, reference, root_task};
use proptest::prelude::*;

proptest! {
    #![proptest_config(program::config(1000))]

    #[test]
    fn eager_runs_like_the_reference(
        program in program::program(16),
        max_batch in program::batch_sizes(),
        slow in [0..4usize, 0..4usize, 0..4usize],
    ) {
        let program = Arc::new(program);
        let expected = reference(&program, &healthy);
        let eager = program::runtime(max_batch).eager_resume(true);
        // Calls of each source stay pending for a few polls, so that sources answer at
        // different times and tasks resume while other calls are in flight.
        eager.source::<SrcA>().unwrap().inject(Fault::Slow(slow[0]));
        eager.source::<SrcB>().unwrap().inject(Fault::Slow(slow[1]));
        eager.source::<SrcC>().unwrap().inject(Fault::Slow(slow[2]));
        let result = futures::executor::block_on(eager.run_async(root_task(&program)));
        prop_assert_eq!(&result, &expected.result, "result");
        let lazy = program::runtime(max_batch);
        let lazy_result = futures::executor::block_on(lazy.run_async(root_task(&program)));
        prop_assert_eq!(&lazy_result, &expected.result, "result without eager resume");
        let (sent_eager, sent_lazy) = (program::sent(&eager), program::sent(&lazy));
        for src in 0..3 {
            for call in &sent_eager[src] {
                prop_assert!(!call.is_empty(), "an empty call to source {}", src);
                if let Some(max) = max_batch[src] {
                    prop_assert!(call.len() <= max.max(1), "a call over the batch limit of source {}", src);
                }
                let distinct: BTreeSet<_> = call.iter().collect();
                prop_assert_eq!(distinct.len(), call.len(), "a key twice in one call to source {}", src);
            }
            let keys = |calls: &Vec<Vec<u32>>| calls.iter().flatten().copied().collect::<BTreeSet<u32>>();
            prop_assert_eq!(keys(&sent_eager[src]), keys(&sent_lazy[src]), "keys sent to source {}", src);
        }
    }
}
