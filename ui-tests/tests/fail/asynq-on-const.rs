use asynq_core::asynq;

#[asynq]
const LIMIT: usize = 10;

fn main() {}
