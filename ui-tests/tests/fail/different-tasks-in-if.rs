//! An awaited `if` whose arms are tasks of two different asynq functions: each asynq
//! function's task has a type of its own. Await in each arm instead.

use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn bio(uid: u64) -> String {
    format!("bio of {uid}")
}

#[asynq]
fn text(uid: u64, long: bool) -> String {
    (if long { bio(uid) } else { user_name(uid) }).await
}

fn main() {}
