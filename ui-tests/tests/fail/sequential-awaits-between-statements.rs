//! Independent awaits with a statement between them that uses neither: still a round each.
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

fn log(what: &str) {
    eprintln!("{what}");
}

#[asynq]
fn profile(uid: u64) -> Result<String, Error> {
    let name = user_name(uid).await?;
    log("loading the posts");
    let posts = post_count(uid).await?;
    Ok(format!("{name}: {posts}"))
}

fn main() {}
