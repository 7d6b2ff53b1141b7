//! Under `#[asynq(batch)]`, a result used as the wrong type is reported on the await that
//! produced it, though the macro awaits it together with the others and binds it to a name
//! of its own.

use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn post_count(uid: u64) -> u64 {
    uid * 2
}

#[asynq(batch)]
fn summary(uid: u64) -> String {
    let name = user_name(uid).await;
    let posts: String = post_count(uid).await;
    format!("{name}: {posts}")
}

fn main() {}
