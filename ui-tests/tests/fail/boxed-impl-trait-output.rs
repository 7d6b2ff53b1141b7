use asynq_core::asynq;

#[asynq(boxed)]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

fn main() {
    // The function is still emitted, unboxed: no second error here.
    let _task = evens(10);
}
