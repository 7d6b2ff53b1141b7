use asynq_core::asynq;

#[asynq]
fn answer() -> i32 {
    std::future::ready(1).await
}

fn main() {}
