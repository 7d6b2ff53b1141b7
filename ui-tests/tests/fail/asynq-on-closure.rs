use asynq_core::asynq;

fn main() {
    let double = #[asynq]
    |x: u32| x * 2;
    let _ = double(1);
}
