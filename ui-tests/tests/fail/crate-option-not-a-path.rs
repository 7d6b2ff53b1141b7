use asynq_core::asynq;

#[asynq(crate = "my framework::asynq")]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {}
