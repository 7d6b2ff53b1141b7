use asynq_core::asynq;

#[asynq]
fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = (fib(n - 1).boxed(), fib(n - 2).boxed()).await;
    a + b
}

fn main() {
    // The function is still emitted, as a task: no second error here.
    let _task = fib(10);
}
