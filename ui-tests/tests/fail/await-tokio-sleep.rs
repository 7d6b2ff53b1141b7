use std::time::Duration;

use asynq_core::asynq;

#[asynq]
fn slow() -> u32 {
    tokio::time::sleep(Duration::from_millis(10)).await;
    1
}

fn main() {}
