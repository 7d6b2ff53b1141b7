#![deny(warnings)]

use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

fn main() {
    user_name(1);
}
