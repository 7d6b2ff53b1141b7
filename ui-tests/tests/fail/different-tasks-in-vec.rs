//! Tasks of two different asynq functions in one `vec![..]`: each asynq function's task has a
//! type of its own. Await them as a tuple, `(user_name(uid), bio(uid)).await`, or box each.

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
fn texts(uid: u64) -> Vec<String> {
    vec![user_name(uid), bio(uid)].await
}

fn main() {}
