use asynq_core::{Runtime, asynq};

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn greeting(rt: &Runtime) -> String {
    let name = rt.run(user_name(1)).unwrap();
    format!("hello {name}")
}

fn main() {
    // The function is still emitted, as a task: no second error here.
    let rt = Runtime::new();
    let _task = greeting(&rt);
}
