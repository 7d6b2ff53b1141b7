//! Property tests of deep and wide programs: hundreds to a few thousand nodes, each referring
//! to the nodes just before it, so that the interpreter recurses through boxed tasks about as
//! deep as the program is long, with wide joins and memoized subcomputations. The runtime and
//! the sequential reference must agree on the result, the rounds, the keys each round sends
//! to each source and the calls that takes; the runs happen on a thread with a 256 KiB stack,
//! which a depth-bound scheduler would overflow.

use std::sync::Arc;

use asynq_tests::program::{self, Program, check_run, complete, reference};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// `check_run` on a new thread with a 256 KiB stack.
fn check_on_small_stack(
    program: Program,
    max_batch: [Option<usize>; 3],
) -> Result<(), TestCaseError> {
    // The reference is plain recursion: it runs here, on the test's own stack.
    let program = Arc::new(program);
    let expected = reference(&program, &complete);
    let run = Arc::clone(&program);
    let checked = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let rt = program::runtime_complete(max_batch);
            check_run(&rt, &run, max_batch, &expected)
        })
        .expect("spawn a thread")
        .join()
        .expect("the run does not panic");
    checked?;
    prop_assert_eq!(program.live.live(), 0, "every task dropped");
    Ok(())
}

proptest! {
    #![proptest_config(program::config(32))]

    #[test]
    fn deep_and_wide_programs_run_like_the_reference(
        program in program::deep_program(200..=1500),
        max_batch in program::batch_sizes(),
    ) {
        check_on_small_stack(program, max_batch)?;
    }
}
