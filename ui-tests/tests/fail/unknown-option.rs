use asynq_core::asynq;

#[asynq(fast)]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {}
