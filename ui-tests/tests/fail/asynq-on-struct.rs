use asynq_core::asynq;

#[asynq]
struct Page {
    title: String,
}

fn main() {}
