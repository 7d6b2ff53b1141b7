//! A `loop` that stops on a condition no await changes, each iteration awaiting a task of its
//! own: a round per iteration.
#![deny(warnings)]

use asynq_core::{Error, asynq};

#[asynq]
fn user_name(uid: u64) -> Result<String, Error> {
    Ok(format!("user{uid}"))
}

#[asynq]
fn names(n: u64) -> Vec<String> {
    let mut names = Vec::new();
    let mut uid = 0;
    loop {
        if uid == n {
            break;
        }
        names.push(user_name(uid).await.unwrap_or_default());
        uid += 1;
    }
    names
}

fn main() {}
