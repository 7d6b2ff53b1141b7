use asynq_core::asynq;

#[asynq]
fn many() -> Vec<i32> {
    vec![std::future::ready(1), std::future::ready(2)].await
}

fn main() {}
