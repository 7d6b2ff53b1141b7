use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn greeting() -> String {
    let name = yield user_name(1);
    format!("hello {name}")
}

fn main() {
    // The function is still emitted, as a task: no second error here.
    let _task = greeting();
}
