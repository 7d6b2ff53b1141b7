#![deny(warnings)]

use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn names(uids: Vec<u64>) -> Vec<String> {
    let mut names = Vec::new();
    for uid in uids {
        let name = user_name(uid).await;
        names.push(name);
    }
    names
}

fn main() {}
