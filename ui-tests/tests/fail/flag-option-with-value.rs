use asynq_core::asynq;

#[asynq(boxed = true)]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {}
