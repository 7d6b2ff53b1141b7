use asynq_core::asynq;

#[asynq(crate = 5)]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {}
