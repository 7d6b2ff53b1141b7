//! asynq used where `asynq_core` is not a name: under a renamed dependency (`aq`) and through
//! a re-exporting crate (`reexporter::asynq`). `tests/pass/renamed-dependency.rs` and
//! `tests/pass/reexported-crate.rs` run these functions.

/// A task through the renamed dependency.
#[aq::asynq(crate = "aq")]
pub fn double(x: u32) -> u32 {
    x * 2
}

/// Awaits another task and a tuple of them, through the renamed dependency.
#[aq::asynq(crate = "aq")]
pub fn doubles(x: u32) -> (u32, u32) {
    let once = double(x).await;
    (double(once), aq::ready(once)).await
}

/// A task through the re-exporting crate, boxed, and recursive.
#[reexporter::asynq::asynq(crate = "reexporter::asynq", boxed)]
pub fn sum_to(n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    n + sum_to(n - 1).await
}
