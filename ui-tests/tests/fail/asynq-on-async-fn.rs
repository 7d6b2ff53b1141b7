use asynq_core::asynq;

#[asynq]
async fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

fn main() {
    // The function is still emitted, as a task: no second error here.
    let _task = user_name(1);
}
