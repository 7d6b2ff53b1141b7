use asynq_core::asynq;

#[asynq(boxed = true)]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    // The function is still emitted, as a task: no second error here.
    let _task = double(2);
}
