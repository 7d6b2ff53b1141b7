#![deny(warnings)]

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
fn profile(uid: u64) -> String {
    let name = user_name(uid).await;
    let about = bio(uid).await;
    format!("{name}: {about}")
}

fn main() {}
