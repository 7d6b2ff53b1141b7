//! Independent awaits in the arguments of one call, a round each.
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

fn line(name: Result<String, Error>, posts: Result<u64, Error>) -> String {
    format!("{name:?}: {posts:?}")
}

#[asynq]
fn summary(uid: u64) -> Result<String, Error> {
    Ok(line(user_name(uid).await, post_count(uid).await))
}

fn main() {}
