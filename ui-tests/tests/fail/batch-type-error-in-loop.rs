//! Under `#[asynq(batch)]`, a mistake in a loop's await is reported on the user's tokens,
//! though the macro moves the operand into the pass that builds every iteration's task.

use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq(batch)]
fn names(uids: Vec<u64>) -> Vec<String> {
    let mut names = Vec::new();
    for uid in uids {
        names.push(user_name(uid, 1).await);
    }
    names
}

fn main() {}
