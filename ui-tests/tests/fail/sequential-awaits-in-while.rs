//! A `while` loop whose iterations each await a task that no iteration's result changes: a
//! round per iteration. Collect the tasks in the loop and await them once after it.
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
    while uid < n {
        names.push(user_name(uid).await.unwrap_or_default());
        uid += 1;
    }
    names
}

fn main() {}
