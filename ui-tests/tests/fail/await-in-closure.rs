use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn names(uids: Vec<u64>) -> Vec<String> {
    uids.into_iter().map(|uid| user_name(uid).await).collect()
}

fn main() {
    // The function is still emitted, as a task: no second error here.
    let _task = names(vec![1, 2]);
}
