//! A result extended with another independent await: `ys` does not need `v`, so both can be
//! awaited in one round.
#![deny(warnings)]

use asynq_core::{Error, asynq};

#[asynq]
fn user_name(uid: u64) -> Result<String, Error> {
    Ok(format!("user{uid}"))
}

#[asynq]
fn names(first: Vec<u64>, second: Vec<u64>) -> Vec<Result<String, Error>> {
    let xs = first.into_iter().map(user_name).collect::<Vec<_>>();
    let ys = second.into_iter().map(user_name).collect::<Vec<_>>();
    let mut v = xs.await;
    v.extend(ys.await);
    v
}

fn main() {}
