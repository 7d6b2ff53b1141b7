//! Independent awaits in the fields of a struct literal, a round each.
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

struct Card {
    name: String,
    posts: u64,
}

#[asynq]
fn card(uid: u64) -> Result<Card, Error> {
    Ok(Card {
        name: user_name(uid).await?,
        posts: post_count(uid).await?,
    })
}

fn main() {}
