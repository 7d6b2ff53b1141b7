//! Every misuse of `#[asynq]` that the compiler catches, and every signature shape it accepts.
//!
//! `tests/fail/*.rs` must fail to compile with exactly the message in the `.stderr` next to it;
//! `tests/pass/*.rs` must compile and run. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p ui-tests`, then read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/*.rs");
    t.pass("tests/pass/*.rs");
}
