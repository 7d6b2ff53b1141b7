//! Two functions that call each other: each task would contain the other's, which contains
//! the first. `#[asynq]` sees one function at a time, so rustc reports it, and its error names
//! the fix through the macro that builds the unboxed task: `#[asynq(boxed)]` on one of them.

use asynq_core::asynq;

#[asynq]
fn even(n: u64) -> bool {
    if n == 0 {
        return true;
    }
    odd(n - 1).await
}

#[asynq]
fn odd(n: u64) -> bool {
    if n == 0 {
        return false;
    }
    even(n - 1).await
}

fn main() {}
