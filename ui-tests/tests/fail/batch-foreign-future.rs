//! Under `#[asynq(batch)]`, an operand that cannot be awaited is still reported on its own
//! tokens, though the macro awaits it together with the await before it.

use std::time::Duration;

use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq(batch)]
fn greeting(uid: u64) -> String {
    let name = user_name(uid).await;
    let () = tokio::time::sleep(Duration::from_millis(uid)).await;
    format!("hello {name}")
}

fn main() {}
