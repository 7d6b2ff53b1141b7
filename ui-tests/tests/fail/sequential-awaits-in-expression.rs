//! Two independent awaits in one expression: the second starts only after the first has
//! finished, a round each. Await them together: `(post_count(uid), post_count(friend)).await`.
#![deny(warnings)]

use asynq_core::{Error, asynq};

#[asynq]
fn user_name(uid: u64) -> Result<String, Error> {
    Ok(format!("user{uid}"))
}

#[asynq]
fn post_count(uid: u64) -> Result<u64, Error> {
    Ok(uid * 3)
}

#[asynq]
fn posts_of_both(uid: u64, friend: u64) -> Result<u64, Error> {
    Ok(post_count(uid).await? + post_count(friend).await?)
}

fn main() {}
