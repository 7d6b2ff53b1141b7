//! A call of the function through a local bound to it is a recursive call: its task, held
//! inside the function's own task, needs a box.

use asynq_core::asynq;

#[asynq]
fn depth(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let next = depth;
    1 + next(n - 1).await
}

fn main() {}
